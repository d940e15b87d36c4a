"""The DAO acts mid-run: the main job's Governor round, from the bring-up side.

`dao_round:` in the stack file (DaoRoundSpec), or `depai launch --vote-at S`, has the launcher run
one real Governor round on its local chain S seconds after the nodes start, the way
`depai dao propose ... --now` does (`governance.local_round`): a member proposes, the members
vote with their delegated FLEET, blocks are mined through the voting period, the proposal is
queued, time is moved past the timelock delay and it is executed. The proposal lowers the speed
limit and covers one station of the world with a square keep-out zone.

The members' keys (anvil's public demo keys DEMO_MEMBERS, local chain only) live in the launcher
for the length of the round, like the deployer's key it funds with; no ROS node ever holds one.
The robots learn of the decision as they would of any other: the dao_listener follows FleetPolicy
on the chain and publishes /fleet/policy; planners route around the zone, controllers enforce the
limit and the zone themselves, agents give up a task whose goal the zone covers and take no new
one there, the requester posts no more tasks there.

Before it votes, the round waits (at most ``max_wait`` s) until no robot has held a task to a goal
inside the new zone for ``clear_for`` s: a robot inside a fresh zone may only leave it (the
controller's ZoneGuard) and its arrival there could no longer be paid. A chain that already has
the decision in force (a relaunch on the restored chain) gets no second vote.

Logged (label `dao`): the proposal's id and description, each step of the round, the execution's
transaction hash and block, and how long after the execution's receipt the listener published the
new policy and each robot's planner and controller reported enforcing it (from their log lines,
which the launcher's console passes to `on_line`); a controller later than 200 ms is a warning.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .stack import DaoRoundSpec

__all__ = ["DaoRoundError", "RoundPlan", "plan_round", "square", "already_in_force", "held_in_zone", "DaoRound",
           "OBEY_BUDGET_S"]

OBEY_BUDGET_S = 0.2  # s after the execution's block a controller must enforce the new policy by
REPORT_TIMEOUT_S = 15.0  # s the round waits for every controller's report before it says who is missing
ROBOT_RADIUS = 0.3  # m: a task goal this close to the zone counts as inside it (the agent's rule)

# What the nodes log when they take a policy (dao_listener and controller: "policy v7 from chain:...";
# planner: "policy v7: 1 keep-out zone(s)").
_POLICY_LINE = re.compile(r"\bpolicy v(\d+)(?: from chain:|: \d+ keep-out zone)")


class DaoRoundError(ValueError):
    """The round's configuration cannot be used (an unknown station, no change)."""


@dataclass(frozen=True)
class RoundPlan:
    """What the members vote for (SI units)."""

    max_speed: float | None
    station: str
    zone_id: str
    polygon: tuple[tuple[float, float], ...]
    description: str

    def zones(self) -> dict[str, list[tuple[float, float]]]:
        return {self.zone_id: list(self.polygon)} if self.zone_id else {}

    def what(self) -> str:
        parts = []
        if self.max_speed is not None:
            parts.append(f"slow the fleet to {self.max_speed:.2f} m/s")
        if self.zone_id:
            xs, ys = [p[0] for p in self.polygon], [p[1] for p in self.polygon]
            parts.append(f"close station {self.station} with keep-out zone '{self.zone_id}' "
                         f"({min(xs):.2f}, {min(ys):.2f})..({max(xs):.2f}, {max(ys):.2f})")
        return " and ".join(parts)


def square(x: float, y: float, half: float) -> tuple[tuple[float, float], ...]:
    """The square of half-width ``half`` around (x, y), counter-clockwise, centimetre vertices."""
    r = lambda v: round(v, 2)  # noqa: E731 - FleetPolicy stores millimetres
    return ((r(x - half), r(y - half)), (r(x + half), r(y - half)), (r(x + half), r(y + half)), (r(x - half), r(y + half)))


def plan_round(spec: DaoRoundSpec, stations=None) -> RoundPlan:
    """The round's proposal from its spec; ``stations``: a StationsFile (default: the spec's world's)."""
    zone_id, polygon = "", ()
    if spec.station:
        if stations is None:
            from depai_nodes.common.stations import StationsError, load_stations, stations_path_for

            try:
                stations = load_stations(stations_path_for(spec.world))
            except (StationsError, OSError, ValueError) as e:
                raise DaoRoundError(f"dao_round: the stations of world {spec.world!r}: {e}") from None
        found = {s.id: s for s in stations.stations}
        if spec.station not in found:
            raise DaoRoundError(f"dao_round: no station {spec.station!r} in world {spec.world!r} (known: {', '.join(found)})")
        s = found[spec.station]
        zone_id = spec.zone_id or f"{spec.station}_closed"[:32]
        if len(zone_id.encode()) > 32:
            raise DaoRoundError(f"dao_round: zone id {zone_id!r} does not fit bytes32")
        polygon = square(s.x, s.y, spec.zone_half_width)
    if spec.max_speed is None and not zone_id:
        raise DaoRoundError("dao_round: nothing to vote for (no max_speed, no station)")
    plan = RoundPlan(spec.max_speed, spec.station, zone_id, polygon, "")
    return RoundPlan(plan.max_speed, plan.station, plan.zone_id, plan.polygon,
                     spec.description or f"DePAI demo vote: {plan.what()}")


def already_in_force(snapshot, plan: RoundPlan) -> bool:
    """Whether the chain's policy (a PolicySnapshot) already says what ``plan`` asks."""
    if plan.max_speed is not None and abs(snapshot.max_speed - plan.max_speed) > 5e-4:
        return False
    if plan.zone_id:
        have = {z.id: [tuple(p) for p in z.polygon] for z in snapshot.keep_out_zones}
        want = [tuple(p) for p in plan.polygon]
        got = have.get(plan.zone_id)
        if got is None or len(got) != len(want) or any(abs(a - b) > 5e-4 for p, q in zip(got, want) for a, b in zip(p, q)):
            return False
    return True


def held_in_zone(tasks, polygon, radius: float = ROBOT_RADIUS) -> list:
    """Tasks a robot holds (Accepted) whose goal lies in ``polygon`` or within ``radius`` of it."""
    if not polygon:
        return []
    from depai_nodes.common.polygon import signed_distance

    return [t for t in tasks if t.status_name == "Accepted"
            and float(signed_distance(list(polygon), [t.goal_x], [t.goal_y])[0]) < radius]


@dataclass
class _Seen:
    at: float  # time.time()
    version: int


@dataclass
class DaoRound:
    """One round, in its own thread: `start()`, the console's `on_line` for every node line, `stop()`.

    ``robots``: the robot namespaces (whose planner and controller reports are timed);
    ``machines``: machine address -> robot name (for the log); ``say``: one log line.
    """

    spec: DaoRoundSpec
    at_s: float
    config_path: str
    robots: list[str]
    say: Callable[[str], None]
    machines: dict[str, str] = field(default_factory=dict)
    report_timeout: float = REPORT_TIMEOUT_S
    report: bool = True  # time each node's uptake from its log lines (needs a console that passes them to on_line)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _seen: dict[str, list[_Seen]] = field(default_factory=dict, init=False)
    _watching: bool = field(default=False, init=False)
    _lines_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    result: dict = field(default_factory=dict, init=False)  # what happened (for the caller / tests)

    def start(self) -> "DaoRound":
        self._thread = threading.Thread(target=self._main, name="dao_round", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """End the round (a vote not yet begun is not held) and wait for its thread."""
        self._stop.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the round to end by itself; whether it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    # ---- node log lines (called by the console under the supervisor's print lock: quick)
    def on_line(self, label: str, text: str) -> None:
        if not self._watching or not (label == "dao_listener" or label.endswith(("/controller", "/planner"))):
            return
        m = _POLICY_LINE.search(text)
        if m:
            with self._lines_lock:
                self._seen.setdefault(label, []).append(_Seen(time.time(), int(m.group(1))))

    # ---- the round
    def _main(self) -> None:
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - the launch goes on; the round says why it ended
            if self._stop.is_set():
                self.say(f"the DAO round was cut short by the shutdown ({type(e).__name__}: {e})")
            else:
                self.say(f"the DAO round failed: {type(e).__name__}: {e}")
            self.result["error"] = str(e)

    def _run(self) -> None:
        from depai_nodes.chain import governance as g
        from depai_nodes.chain.client import ChainClient
        from depai_nodes.chain.config import load_config
        from depai_nodes.chain.fleet import Fleet, read_policy
        from depai_nodes.chain.signer import demo_signer
        from depai_nodes.dao.core import build_actions, existing_proposal, ProposalChange

        plan = plan_round(self.spec)
        self.say(f"the DAO votes at t={self.at_s:g} s: {plan.what()} (`--vote-at 0` for no vote)")
        if self._stop.wait(self.at_s):
            return
        cfg = load_config(self.config_path)
        client = ChainClient(cfg, demo_signer(0, cfg.chain_id))  # the deployer; a member proposes (local_round)
        before = read_policy(client)
        if already_in_force(before, plan):
            self.say(f"the chain's policy v{before.version} already says this (an earlier run's vote on this restored "
                     "chain): no second vote (`depai launch --fresh` starts a new chain)")
            self.result["skipped"] = True
            return
        if not self._wait_clear(Fleet(client), plan):
            return
        actions = build_actions(client, ProposalChange(max_speed=plan.max_speed, zones=plan.zones()))
        description = plan.description
        if existing_proposal(client, actions, description):  # the same words once before: the Governor wants new ones
            description += f" (again at block {client.block_number()})"
        self.say(f'proposing to the DAO: "{description}"')
        stamps: dict[str, float] = {}

        def progress(msg: str) -> None:
            if msg.startswith("queued"):
                stamps["queued"] = time.time()
                self._watching = True  # every policy line from here on is timed
            elif msg.startswith("executed"):
                stamps["executed"] = time.time()
            self.say(msg)

        # Checked again right before the execute tx: a robot may have taken a task in the zone
        # while the round proposed, voted and queued (seconds); the gap left is one read.
        p = g.local_round(client, actions, description, progress=progress,
                          before_execute=lambda: self._wait_clear(Fleet(client), plan))
        if "executed" not in stamps:
            return
        gov = client.contract("FleetGovernor")
        ex = next((e for e in gov.events("ProposalExecuted", p.block_number) if e["proposalId"] == p.proposal_id), None)
        if ex is None:
            raise RuntimeError(f"proposal {p.proposal_id} executed but no ProposalExecuted event found")
        after = read_policy(client, ex["block_number"])
        t_exec = stamps.get("executed", time.time())
        self.result.update(proposal_id=p.proposal_id, description=description, tx=ex["tx_hash"], block=ex["block_number"],
                           executed_at=t_exec, version_before=before.version, version=after.version)
        zones = ", ".join(z.id for z in after.keep_out_zones) or "none"
        self.say(f'executed proposal {p.proposal_id} ("{description}") in block'
                 f" {ex['block_number']}, tx {ex['tx_hash']}, "
                 f"receipt at unix {t_exec:.3f}: policy v{before.version} -> v{after.version}, max {after.max_speed:.2f} m/s, "
                 f"keep-out: {zones}")
        if self.report:
            self._report(after.version, t_exec, stamps.get("queued", t_exec), planners=bool(plan.zone_id))
        else:
            self._watching = False
            self.say("the robots take it from the dao_listener (their uptake is timed under `depai launch`, whose console reads their log lines)")

    def _wait_clear(self, fleet, plan: RoundPlan) -> bool:
        """Wait until no robot has held a task inside the zone for clear_for s (at most max_wait s)."""
        if not plan.polygon or self.spec.clear_for <= 0:
            return True
        start = time.monotonic()
        clear_since = start
        told = False
        while True:
            held = held_in_zone(fleet.tasks(), plan.polygon)
            now = time.monotonic()
            if held:
                clear_since = now
                if not told:
                    who = ", ".join(f"task {t.id} ({t.station or 'no station'}) held by "
                                    f"{self.machines.get((t.machine or '').lower(), t.machine)}" for t in held)
                    self.say(f"the vote waits: {who}; the DAO votes once no robot has held a task in the zone for "
                             f"{self.spec.clear_for:g} s (at most {self.spec.max_wait:g} s)")
                    told = True
            elif now - clear_since >= self.spec.clear_for or not told:
                return True
            if now - start >= self.spec.max_wait:
                self.say(f"voting although a robot held a task in the zone within {self.spec.clear_for:g} s "
                         f"(waited {self.spec.max_wait:g} s): a robot inside the zone may only leave it, a task there is given up")
                return True
            if self._stop.wait(0.5):
                return False

    def _report(self, version: int, t_exec: float, t_queued: float, planners: bool = True) -> None:
        """How long after the execution each node took the new policy (from its log line; a
        planner logs only a change of zones, so it is waited for only when the round adds one)."""
        want = ["dao_listener"] + [f"{r}/planner" for r in self.robots] + [f"{r}/controller" for r in self.robots]
        awaited = [w for w in want if planners or not w.endswith("/planner")]
        deadline = time.monotonic() + self.report_timeout
        while True:
            with self._lines_lock:
                got = {label: next((s.at for s in self._seen.get(label, []) if s.version >= version), None) for label in want}
            if all(got[w] is not None for w in awaited) or time.monotonic() > deadline or self._stop.is_set():
                break
            time.sleep(0.05)
        self._watching = False
        parts, late, missing = [], [], []
        for label in want:
            at = got[label]
            if at is None:
                if label in awaited:
                    missing.append(label)
                continue
            ms = (at - t_exec) * 1000.0
            parts.append(f"{label} {ms:+.0f} ms")
            if label.endswith("/controller"):
                self.result.setdefault("controller_ms", {})[label] = ms
                if at - t_exec > OBEY_BUDGET_S:
                    late.append(label)
        sent = (t_exec - t_queued) * 1000.0
        self.say(f"policy v{version} taken after the execution's receipt (the execute tx was sent at most {sent:.0f} ms "
                 f"before it): {', '.join(parts) or 'by no node yet'}")
        if missing:
            self.say(f"no report of policy v{version} within {self.report_timeout:g} s from {', '.join(missing)}")
        if late:
            self.say(f"later than {OBEY_BUDGET_S * 1000:.0f} ms after the execution: {', '.join(late)}")
        elif not missing:
            self.say(f"every robot enforces policy v{version} within {OBEY_BUDGET_S * 1000:.0f} ms of the execution")
