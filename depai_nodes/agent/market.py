"""The task agent in market mode, without ROS: which TaskMarket task to take, and the life of one.

The node feeds it what it hears (TaskMarket events from the chain, the fleet policy, planner dry
runs, the wallet's answers, telemetry's arrival proofs, the controller's status through the
driving ``PatrolAgent``) and asks it what to do next; every answer comes back with a log line.
Times: ``now`` is monotonic seconds (waits, retries), ``chain_now`` the chain's unix time
(deadlines are the contract's, judged by block time).

One task at a time::

    IDLE --(best open task with positive value)--> ACCEPTING --SUCCESS--> DRIVING --arrived--> RECORDING
      ^          REVERTED TaskNotOpen: lost the race, next task at once          |
      |                                                                          v
      +---- PAID <--SUCCESS-- COMPLETING <--ANCHORED-- PROVING <--record published-+
      +---- gave up (deadline, keep-out zone over the goal, goal unreachable, refused) from any phase

Scoring (``score``): the trip is the planner's dry-run path length; its cost is
``cost_per_m * length + cost_per_s * (length / speed + overhead_s)`` (token base units); the value
is the reward minus that cost; a task counts only if it is open, its reward is at least the
fleet's minimum price, the fleet is not paused, and the robot can arrive (and have the proof
anchored, ``overhead_s``) ``deadline_margin_s`` before the deadline. A goal the planner says can
never be reached (off the map, in a static obstacle) is never accepted; one in a keep-out zone is
not while that zone stands (re-checked when the policy changes); each logged once, with why. A
goal blocked only by what the sensors see now (another robot standing there) is tried again later.

Resuming: a task the chain shows Accepted by this machine and not settled is this agent's task
(after a restart, from the events since deployment); nothing is accepted twice (the wallet is
idempotent too: ``already_done``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from .core import TRANSIENT_OBSTACLE_MARK, AgentPhase, Note, PatrolAgent, Waypoint

__all__ = ["MarketTask", "MarketPolicy", "MarketConfig", "Score", "score", "MarketAgent", "MarketPhase", "in_polygon",
           "NEVER", "TRANSIENT_OBSTACLE_MARK"]

NEVER = frozenset({"GOAL_OFF_MAP", "GOAL_IN_OBSTACLE", "INVALID_REQUEST"})  # as the map stands: never

RETRYABLE = frozenset({"CHAIN_UNAVAILABLE", "TIMEOUT", "BUSY", "WALLET_UNAVAILABLE"})
# Refusals that are about this machine, not the task: not registered in the market yet, or a stake
# that does not cover one more task yet (the identity node's registration may still be on its way).
MACHINE_NOT_READY = frozenset({"CollateralTooLow", "NotRegistered"})

# A completion the contract refused only for now: the arrival is later than the chain's latest block
# time (the chain's clock lags the robot's by up to a block): asked again, never given up for it
LATER = frozenset({"ReportFromFuture"})
OPEN, ACCEPTED = "Open", "Accepted"
SETTLED = frozenset({"Completed", "Refunded", "Cancelled", "Slashed"})


def in_polygon(x: float, y: float, polygon: list[tuple[float, float]], margin: float = 0.0) -> bool:
    """Point in a simple polygon (even-odd), or within ``margin`` of its edges."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        if margin > 0:
            dx, dy = x2 - x1, y2 - y1
            t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
            if math.hypot(x - (x1 + t * dx), y - (y1 + t * dy)) <= margin:
                return True
    return inside


@dataclass
class MarketTask:
    """A task as the chain's events describe it (SI units; reward in token base units)."""

    task_id: int
    reward: int = 0
    deadline: int = 0
    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    tolerance: float = 0.0
    station: str = ""
    status: str = OPEN
    machine: str = ""
    posted: bool = False  # its TaskPosted was seen (the goal is known)
    accepted_at: int = 0  # chain time of its acceptance (an arrival may not claim an earlier time)

    def arrival_time(self, chain_now: float | None, wall: float) -> float:
        """When an arrival now is, on the chain's clock scale (TaskMarket compares it with block times)."""
        return max(chain_now if chain_now is not None else wall, float(self.accepted_at))

    def label(self) -> str:
        return f"task {self.task_id}" + (f" ({self.station})" if self.station else "") + f" at ({self.x:.2f}, {self.y:.2f})"


@dataclass(frozen=True)
class MarketPolicy:
    paused: bool = False
    min_task_price: int = 0
    zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    version: int = 0

    def zone_over(self, x: float, y: float, margin: float = 0.0) -> str | None:
        for zid, poly in self.zones:
            if in_polygon(x, y, list(poly), margin):
                return zid
        return None


@dataclass
class MarketConfig:
    speed: float = 0.5              # m/s expected average (the trip's time)
    cost_per_m: int = 0             # token base units per metre driven
    cost_per_s: int = 0             # token base units per second of the trip
    overhead_s: float = 20.0        # s beyond driving: accepting, the batch sealing and being anchored, completing
    deadline_margin_s: float = 5.0  # s to spare before the deadline
    robot_radius: float = 0.3       # m: a keep-out zone this close to the goal counts as over it
    retry_period: float = 1.0       # s: a retryable wallet answer, a transient dry run
    max_retry_period: float = 30.0  # s: the backoff's ceiling
    proof_poll_s: float = 0.5       # s between arrival_proof questions
    record_timeout_s: float = 10.0  # s an arrival record may stay UNKNOWN before it is published again
    max_records: int = 5            # publications of one arrival record before the task is given up
    dry_run_ttl_s: float = 30.0     # s a dry-run answer is trusted while idle
    park: tuple[float, float, float] | None = None  # where an idle robot waits (off the stations: it blocks no one's goal)


@dataclass(frozen=True)
class Score:
    ok: bool
    value: float = -math.inf   # token base units (reward - cost)
    cost: float = 0.0
    eta_s: float = 0.0         # trip + overhead
    why: str = ""


def score(task: MarketTask, length: float, chain_now: float, policy: MarketPolicy, cfg: MarketConfig) -> Score:
    """The value of taking ``task`` now for a trip of ``length`` metres (see the module doc)."""
    if task.status != OPEN:
        return Score(False, why=f"not open ({task.status})")
    if policy.paused:
        return Score(False, why="the fleet is paused")
    if task.reward < policy.min_task_price:
        return Score(False, why=f"reward {task.reward} below the fleet's minimum price {policy.min_task_price}")
    if not math.isfinite(length) or length < 0:
        return Score(False, why="no trip length")
    drive_s = length / max(cfg.speed, 1e-6)
    eta = drive_s + cfg.overhead_s
    cost = cfg.cost_per_m * length + cfg.cost_per_s * (drive_s + cfg.overhead_s)
    value = task.reward - cost
    if chain_now + eta + cfg.deadline_margin_s > task.deadline:
        return Score(False, value, cost, eta, f"cannot arrive in time: needs {eta:.0f} s + {cfg.deadline_margin_s:g} s margin, "
                                               f"the deadline is in {task.deadline - chain_now:.0f} s")
    if value <= 0:
        return Score(False, value, cost, eta, f"not worth it: reward {task.reward} <= trip cost {cost:.0f}")
    return Score(True, value, cost, eta, "")


class MarketPhase(str, Enum):
    IDLE = "idle"
    ACCEPTING = "accepting"
    DRIVING = "driving"
    RECORDING = "recording"    # arrived: the node publishes the arrival record
    PROVING = "proving"        # waiting for telemetry to have it anchored
    COMPLETING = "completing"  # the wallet's complete_task in flight (or to be retried)


@dataclass
class _Eval:
    result: str
    length: float = math.inf
    message: str = ""
    at: float = 0.0
    policy_version: int = 0


@dataclass
class _Current:
    task: MarketTask
    drive: PatrolAgent
    since: float
    resumed: bool = False
    proof: dict = field(default_factory=dict)
    recorded_at: float = -math.inf
    records: int = 0
    retry_at: float = 0.0
    failures: int = 0
    remaining: float = math.nan
    far_since: float | None = None


class MarketAgent:
    """The decisions of market mode; one task at a time, one request of each kind in flight."""

    def __init__(self, cfg: MarketConfig | None = None, *, drive_factory=None) -> None:
        self.cfg = cfg or MarketConfig()
        self._drive_factory = drive_factory or (lambda wp: PatrolAgent([wp], loop=False, retry_period=self.cfg.retry_period))
        self.machine = ""  # this machine's account (from the wallet), lower case compare
        self.tasks: dict[int, MarketTask] = {}
        self.policy: MarketPolicy | None = None
        self.phase = MarketPhase.IDLE
        self.current: _Current | None = None
        self.evals: dict[int, _Eval] = {}
        self.never: dict[int, str] = {}       # task id -> why it is never taken
        self.skip_until: dict[int, float] = {}  # task id -> not before (monotonic)
        self.paid: list[tuple[int, int]] = []  # (task id, reward)
        self.gave_up: list[tuple[int, str]] = []
        self.lost_races = 0
        self.accepts = 0
        self.synced = False  # the events since deployment were read (resuming needs them)
        self._accept_at = 0.0
        self._accept_failures = 0
        self._dry_in_flight: int | None = None
        self.park_drive: PatrolAgent | None = None  # idle: driving to the parking pose

    # ------------------------------------------------------------------ what the chain says

    def on_event(self, name: str, args: dict) -> str | None:
        """A TaskMarket event (decoded; SI units already): updates the task table."""
        try:
            tid = int(args["taskId"])
        except (KeyError, TypeError, ValueError):
            return None
        t = self.tasks.setdefault(tid, MarketTask(tid))
        if name == "TaskPosted":
            t.posted = True
            t.reward, t.deadline = int(args.get("reward", 0)), int(args.get("deadline", 0))
            t.x, t.y, t.yaw = float(args.get("x", 0.0)), float(args.get("y", 0.0)), float(args.get("yaw", 0.0))
            t.tolerance, t.station = float(args.get("tolerance", 0.0)), str(args.get("station", ""))
            if t.status not in SETTLED and t.status != ACCEPTED:
                t.status = OPEN
        elif name == "TaskAccepted":
            t.status, t.machine = ACCEPTED, str(args.get("machine", ""))
        elif name in ("TaskCompleted", "TaskRefunded", "TaskCancelled", "MachineSlashed"):
            t.status = {"TaskCompleted": "Completed", "TaskRefunded": "Refunded", "TaskCancelled": "Cancelled",
                        "MachineSlashed": "Slashed"}[name]
        else:
            return None
        cur = self.current
        if cur is not None and cur.task.task_id == tid and t.status in SETTLED and self.phase != MarketPhase.COMPLETING:
            if t.status == "Completed" and t.machine.lower() == self.machine.lower():
                return None  # ours, settled: the wallet's answer says how (no second payment either way)
            return self._give_up(f"{t.label()} was settled on chain ({t.status}) before this machine completed it")
        return None

    def on_task(self, info) -> str | None:
        """A task as read from the chain (``depai_nodes.chain.models.TaskInfo``: SI units, status)."""
        status = info.status_name
        args = {"taskId": info.id, "reward": info.reward, "deadline": info.deadline, "x": info.goal_x, "y": info.goal_y,
                "yaw": info.goal_yaw, "tolerance": info.tolerance, "station": info.station}
        t = self.tasks.get(info.id)
        if t is not None and t.posted and t.status == status and (t.machine or "").lower() == (info.machine or "").lower() \
                and t.accepted_at == int(getattr(info, "accepted_at", 0) or 0):
            return None  # nothing new
        self.on_event("TaskPosted", args)
        self.tasks[info.id].accepted_at = int(getattr(info, "accepted_at", 0) or 0)
        if status == ACCEPTED:
            return self.on_event("TaskAccepted", {"taskId": info.id, "machine": info.machine or ""})
        name = {"Completed": "TaskCompleted", "Refunded": "TaskRefunded", "Cancelled": "TaskCancelled",
                "Slashed": "MachineSlashed"}.get(status)
        if name is not None:
            if info.machine:
                self.tasks[info.id].machine = info.machine
            return self.on_event(name, {"taskId": info.id})
        return None

    def on_synced(self, now: float) -> str | None:
        """The events up to the chain head were read: resume a task this machine accepted earlier."""
        self.synced = True
        return self._resume_mine(now)

    def _resume_mine(self, now: float) -> str | None:
        """Idle, and the chain shows a task accepted by this machine, not settled (accepted before a
        restart, or an acceptance whose answer was lost: a timeout, a wallet restart): take it up."""
        if self.current is not None or self.phase != MarketPhase.IDLE or not self.machine or not self.synced:
            return None
        given_up = {tid for tid, _ in self.gave_up}
        mine = sorted(t.task_id for t in self.tasks.values()
                      if t.status == ACCEPTED and t.posted and t.machine.lower() == self.machine.lower() and t.task_id not in given_up)
        if not mine:
            return None
        t = self.tasks[mine[0]]
        self._start(t, now, resumed=True)
        extra = f" ({len(mine) - 1} more accepted by this machine wait)" if len(mine) > 1 else ""
        return Note(f"resuming {t.label()}: accepted by this machine and not settled on chain{extra}", cause="resume")

    def on_policy(self, policy: MarketPolicy) -> str | None:
        changed = self.policy is None or policy.version != self.policy.version
        self.policy = policy
        if changed:
            # a zone voted in or lifted changes what can be reached: ask the planner again
            self.evals = {k: e for k, e in self.evals.items() if e.result != "GOAL_IN_KEEPOUT" and policy.version == e.policy_version}
        cur = self.current
        if cur is not None and self.phase in (MarketPhase.ACCEPTING, MarketPhase.DRIVING):
            zone = policy.zone_over(cur.task.x, cur.task.y, self.cfg.robot_radius)
            if zone is not None:
                return self._give_up(f"the DAO voted keep-out zone '{zone}' over the goal of {cur.task.label()} "
                                     f"(policy version {policy.version}); abandoning it")
        return None

    # ------------------------------------------------------------------ choosing (idle)

    def dry_run_wanted(self, now: float) -> MarketTask | None:
        """An open task whose trip cost is unknown (or stale): the node asks the planner (dry run)."""
        if self.phase != MarketPhase.IDLE or self._dry_in_flight is not None or self.policy is None or self.policy.paused:
            return None
        for t in sorted(self.tasks.values(), key=lambda t: (-t.reward, t.task_id)):
            if not (t.posted and t.status == OPEN) or t.task_id in self.never or self.skip_until.get(t.task_id, 0) > now:
                continue
            if t.reward < self.policy.min_task_price:
                continue
            e = self.evals.get(t.task_id)
            if e is None or now - e.at > self.cfg.dry_run_ttl_s:
                self._dry_in_flight = t.task_id
                return t
        return None

    def on_dry_run(self, task_id: int, result: str, length: float, message: str, now: float) -> str | None:
        self._dry_in_flight = None
        t = self.tasks.get(task_id)
        if t is None:
            return None
        version = self.policy.version if self.policy else 0
        self.evals[task_id] = _Eval(result, length, message, now, version)
        if result == "SUCCESS":
            return None
        transient = result == "GOAL_IN_OBSTACLE" and TRANSIENT_OBSTACLE_MARK in message
        if result in NEVER and not transient:
            self.never[task_id] = f"{result}: {message}" if message else result
            return Note(f"never taking {t.label()}: {result}" + (f" ({message})" if message else ""), cause=f"never {task_id}", warn=True)
        if result == "GOAL_IN_KEEPOUT":
            return Note(f"not taking {t.label()} while a keep-out zone covers it (policy version {version})"
                        + (f": {message}" if message else ""), cause=f"keepout {task_id}")
        # transient (map not ready, no path now, a robot standing at the goal): later
        self.skip_until[task_id] = now + self.cfg.retry_period * 5
        return Note(f"{t.label()}: {result} for now" + (f" ({message})" if message else "") + "; will ask again",
                    cause=f"transient {result}", warn=True)

    def on_dry_run_failed(self, task_id: int, now: float) -> None:
        self._dry_in_flight = None
        self.skip_until[task_id] = now + self.cfg.retry_period

    def best(self, chain_now: float, now: float) -> tuple[MarketTask, Score] | None:
        if self.phase != MarketPhase.IDLE or self.policy is None or now < self._accept_at:
            return None
        found = []
        for t in self.tasks.values():
            e = self.evals.get(t.task_id)
            if e is None or e.result != "SUCCESS" or t.task_id in self.never or self.skip_until.get(t.task_id, 0) > now:
                continue
            if self.policy.zone_over(t.x, t.y, self.cfg.robot_radius) is not None:
                continue
            s = score(t, e.length, chain_now, self.policy, self.cfg)
            if s.ok:
                found.append((s.value, -t.task_id, t, s))
        if not found:
            return None
        _, _, t, s = max(found, key=lambda f: (f[0], f[1]))
        return t, s

    def take(self, task: MarketTask, s: Score, now: float) -> str:
        """The node asks the wallet to accept ``task`` now."""
        self.phase = MarketPhase.ACCEPTING
        self.park_drive = None
        self.current = _Current(task, self._drive_factory(Waypoint(task.x, task.y, task.yaw)), now)
        self.accepts += 1
        return Note(f"accepting {task.label()}: reward {task.reward}, trip cost {s.cost:.0f}, value {s.value:.0f}, "
                    f"eta {s.eta_s:.0f} s", cause="accepting")

    def on_accept(self, result: str, error: str, reason: str, already_done: bool, now: float) -> str:
        cur = self.current
        if self.phase != MarketPhase.ACCEPTING or cur is None:
            return Note(f"ignored a late accept answer {result}", cause="late accept")
        t = cur.task
        if result == "SUCCESS":
            self._accept_failures = 0
            t.status, t.machine = ACCEPTED, self.machine or t.machine
            self.phase = MarketPhase.DRIVING
            cur.since = now
            return Note(f"accepted {t.label()}" + (" (it was already this machine's)" if already_done else "") + "; driving there",
                        cause="accepted")
        self.current = None
        self.phase = MarketPhase.IDLE
        if result == "REVERTED" and error == "TaskNotOpen":
            self.lost_races += 1
            t.status = ACCEPTED if t.status == OPEN else t.status
            return Note(f"lost the race for {t.label()}: another machine accepted it first ({error}); moving on", cause="lost race")
        if result in RETRYABLE or error in MACHINE_NOT_READY:
            # RETRYABLE: the wallet or the chain, for now. MACHINE_NOT_READY: this machine, not the
            # task (at start-up its stake may still be on its way): the same task again, later.
            self._accept_failures += 1
            delay = min(self.cfg.max_retry_period, self.cfg.retry_period * 2 ** (self._accept_failures - 1))
            self._accept_at = now + delay
            why = f" ({reason})" if error in MACHINE_NOT_READY and reason else ""
            return Note(f"could not accept {t.label()} now ({result}{': ' + error if error else ''}){why}; trying again in {delay:g} s",
                        cause=f"accept {result} {error}", warn=True)
        # refused for this task (policy, deadline, pause...): not this task for a while
        self.skip_until[t.task_id] = now + self.cfg.max_retry_period
        return Note(f"the wallet did not accept {t.label()}: {result}" + (f" {error}" if error else "") + (f" ({reason})" if reason else ""),
                    cause=f"accept refused {error or result}", warn=True)

    # ------------------------------------------------------------------ driving

    def on_navigation(self, state: str, now: float, reason: str, distance_remaining: float) -> str | None:
        cur = self.current
        if cur is None and self.park_drive is not None:
            self.park_drive.on_navigation(state, now, reason, distance_remaining)
            return None
        if cur is None or self.phase != MarketPhase.DRIVING:
            if cur is not None:
                cur.drive.on_navigation(state, now, reason, distance_remaining)
            return None
        if math.isfinite(distance_remaining):
            cur.remaining = distance_remaining
        line = cur.drive.on_navigation(state, now, reason, distance_remaining)
        return self._after_drive(line)

    def on_plan(self, goal: tuple[float, float] | None, now: float) -> str | None:
        """A path on `plan` (what the controller follows): the driving agent tells its own from others'."""
        cur = self.current
        if cur is not None and self.phase == MarketPhase.DRIVING:
            return cur.drive.on_plan(goal, now)
        if cur is None and self.park_drive is not None:
            self.park_drive.on_plan(goal, now)
        return None

    def on_plan_result(self, result: str, now: float, length: float, tolerance: float, message: str = "") -> str | None:
        cur = self.current
        if cur is None or self.phase != MarketPhase.DRIVING:
            return None
        # a goal blocked only by another robot standing there is waited for (the driving agent backs off)
        line = cur.drive.on_plan_result(result, now, length, tolerance, message)
        if result == "SUCCESS" and math.isfinite(length):
            cur.remaining = length
        return self._after_drive(line, refusal=None if result == "SUCCESS" else f"{result}" + (f" ({message})" if message else ""))

    def _after_drive(self, line: str | None, refusal: str | None = None) -> str | None:
        cur = self.current
        if cur.drive.phase != AgentPhase.DONE:
            return line
        if cur.drive.visited:
            self.phase = MarketPhase.RECORDING
            return Note(f"arrived at {cur.task.label()}; recording the arrival", cause="arrived")
        return self._give_up(f"the goal of {cur.task.label()} cannot be reached: {refusal or line}")

    def goal_to_request(self, now: float) -> Waypoint | None:
        """The goal to plan (and follow) now: the task's while driving, the parking pose while idle."""
        cur = self.current
        if cur is None:
            if self.phase == MarketPhase.IDLE and self.park_drive is not None and self.park_drive.phase != AgentPhase.DONE:
                return self.park_drive.goal_to_request(now)
            return None
        if self.phase != MarketPhase.DRIVING:
            return None
        return cur.drive.goal_to_request(now)

    def park_plan_result(self, result: str, now: float, length: float, tolerance: float, message: str = "") -> str | None:
        if self.park_drive is None:
            return None
        line = self.park_drive.on_plan_result(result, now, length, tolerance, message)
        return line if result != "SUCCESS" else None

    # ------------------------------------------------------------------ deadlines (call periodically)

    def on_tick(self, now: float, chain_now: float | None) -> str | None:
        cur = self.current
        if cur is None:
            if self.park_drive is not None:
                self.park_drive.on_tick(now)
            return self._resume_mine(now)
        t = cur.task
        if self.phase == MarketPhase.DRIVING:
            line = cur.drive.on_tick(now)
            if chain_now is not None:
                left = cur.remaining if math.isfinite(cur.remaining) else 0.0  # not known yet: the overhead alone
                need = left / max(self.cfg.speed, 1e-6) + self.cfg.overhead_s
                if chain_now + need > t.deadline:
                    return self._give_up(f"the deadline of {t.label()} is about to pass: {t.deadline - chain_now:.0f} s left, "
                                         f"about {need:.0f} s needed ({left:.1f} m to drive + {self.cfg.overhead_s:g} s to prove and "
                                         "complete); giving up (the requester can refund it after the deadline)")
            return self._after_drive(line) if line else None
        if self.phase in (MarketPhase.RECORDING, MarketPhase.PROVING, MarketPhase.COMPLETING) and chain_now is not None \
                and chain_now > t.deadline:
            return self._give_up(f"the deadline of {t.label()} passed while {self.phase.value}; giving up "
                                 "(the requester can refund it)")
        return None

    # ------------------------------------------------------------------ the proof

    def record_wanted(self, now: float, pose: tuple[float, float] | None = None) -> MarketTask | str | None:
        """The task whose arrival record the node should publish now (first, or again after it stayed
        UNKNOWN) - only while ``pose`` (odometry) lies within the task's tolerance of its goal: the
        contract pays nothing else (ArrivalTooFar). Otherwise None, or a log line when it drives again."""
        cur = self.current
        if cur is None or self.phase != MarketPhase.RECORDING:
            return None
        t = cur.task
        if pose is None or t.tolerance <= 0:
            return t if pose is not None else None
        off = math.hypot(pose[0] - t.x, pose[1] - t.y)
        if off <= t.tolerance:
            cur.far_since = None
            return t
        if cur.far_since is None:
            cur.far_since = now
        elif now - cur.far_since > self.cfg.record_timeout_s:
            # the controller said ARRIVED, the odometry disagrees: drive there again
            cur.far_since = None
            cur.drive = self._drive_factory(Waypoint(t.x, t.y, t.yaw))
            self.phase = MarketPhase.DRIVING
            return Note(f"arrived at {t.label()} by the controller's word, but the odometry is {off:.2f} m from the goal "
                        f"(tolerance {t.tolerance:g} m) for {self.cfg.record_timeout_s:g} s: driving there again",
                        cause="far", warn=True)
        return None

    def on_recorded(self, now: float) -> None:
        cur = self.current
        if cur is not None and self.phase == MarketPhase.RECORDING:
            cur.recorded_at = now
            cur.records += 1
            cur.retry_at = now + self.cfg.proof_poll_s
            self.phase = MarketPhase.PROVING

    def proof_wanted(self, now: float) -> MarketTask | None:
        cur = self.current
        if cur is not None and self.phase == MarketPhase.PROVING and now >= cur.retry_at:
            cur.retry_at = now + self.cfg.proof_poll_s
            return cur.task
        return None

    def on_batch_anchored(self, now: float) -> None:
        """Telemetry reports a batch anchored: if an arrival waits for its proof, ask at once
        instead of at the next proof_poll_s (the poll stays, for a missed report)."""
        cur = self.current
        if cur is not None and self.phase == MarketPhase.PROVING:
            cur.retry_at = min(cur.retry_at, now)

    def on_proof(self, result: str, answer: dict, now: float) -> str | None:
        cur = self.current
        if cur is None or self.phase != MarketPhase.PROVING:
            return None
        if result == "ANCHORED":
            cur.proof = dict(answer)
            cur.retry_at = now
            cur.failures = 0
            self.phase = MarketPhase.COMPLETING
            return Note(f"the arrival record of {cur.task.label()} is anchored in batch {answer.get('batch_id')}; "
                        "asking the wallet to complete it", cause="anchored")
        if result == "UNKNOWN" and now - cur.recorded_at > self.cfg.record_timeout_s:
            if cur.records >= self.cfg.max_records:
                return self._give_up(f"the arrival record of {cur.task.label()} was recorded {cur.records} times and never "
                                     f"anchored ({answer.get('reason', '')}); giving up")
            self.phase = MarketPhase.RECORDING  # lost or refused: record it again
            return Note(f"telemetry has no arrival record of {cur.task.label()} after {self.cfg.record_timeout_s:g} s "
                        f"({answer.get('reason', '')}); recording it again", cause="record again", warn=True)
        return None

    # ------------------------------------------------------------------ completing

    def complete_wanted(self, now: float) -> tuple[MarketTask, dict] | None:
        cur = self.current
        if cur is not None and self.phase == MarketPhase.COMPLETING and now >= cur.retry_at:
            cur.retry_at = math.inf  # in flight
            return cur.task, cur.proof
        return None

    def on_complete(self, result: str, error: str, reason: str, reward: str, already_done: bool, now: float) -> str:
        cur = self.current
        if cur is None or self.phase != MarketPhase.COMPLETING:
            return Note(f"ignored a late complete answer {result}", cause="late complete")
        t = cur.task
        if result == "SUCCESS":
            paid = int(reward) if str(reward).isdigit() else 0
            if already_done and not paid:
                paid = t.reward  # settled by an earlier request of this machine (the wallet sent nothing now)
            self.paid.append((t.task_id, paid))
            t.status = "Completed"
            self._finish()
            return Note(f"completed {t.label()}: paid {paid}" + (" (by an earlier request: nothing sent now, nothing paid twice)"
                                                                 if already_done else ""), cause="paid")
        if result in RETRYABLE or (result == "REVERTED" and error in LATER):
            cur.failures += 1
            delay = min(self.cfg.max_retry_period, self.cfg.retry_period * 2 ** (cur.failures - 1))
            if error in LATER:
                delay = max(delay, 1.0)  # the chain's clock moves in whole seconds
            cur.retry_at = now + delay
            return Note(f"could not complete {t.label()} now ({result}{': ' + error if error else ''}); the arrival is proven, "
                        f"trying again in {delay:g} s", cause=f"complete {result}", warn=True)
        return self._give_up(f"completing {t.label()} was refused: {result}" + (f" {error}" if error else "")
                             + (f" ({reason})" if reason else ""))

    # ------------------------------------------------------------------ internals

    def _start(self, task: MarketTask, now: float, resumed: bool) -> None:
        self.park_drive = None
        self.current = _Current(task, self._drive_factory(Waypoint(task.x, task.y, task.yaw)), now, resumed=resumed)
        self.phase = MarketPhase.DRIVING

    def _finish(self) -> None:
        self.current = None
        self.phase = MarketPhase.IDLE
        self.evals.clear()  # the robot moved: every trip cost changed
        if self.cfg.park is not None:  # yield the station: wait where no task's goal is
            self.park_drive = self._drive_factory(Waypoint(*self.cfg.park))

    def _give_up(self, why: str) -> Note:
        cur = self.current
        if cur is not None:
            self.gave_up.append((cur.task.task_id, why))
            self.never.setdefault(cur.task.task_id, why)
        self._finish()
        return Note(why, cause="gave up", warn=True)
