"""The task agent's decisions, without ROS: which goal to ask for next, and what each answer means.

The agent owns the robot's *intent* (a list of waypoints to visit, in order, optionally looping)
and leaves *how* to the planner and controller. What it must get right is the reaction to every
outcome: a goal that can never be reached (off the map, in an obstacle, in a keep-out zone voted
by the DAO) is skipped with a log line instead of being retried forever; a transient refusal (map
not ready yet, stale costmap, robot momentarily boxed in) is retried after a pause, a bounded
number of times; arrival moves on to the next waypoint.

No silent stalls: every wait has a deadline and a logged outcome. An accepted plan must be
followed within `follow_timeout` (else: ask again, from where the robot stands now); a robot
following must make progress within `stall_timeout`; a controller that falls silent for
`controller_timeout` is waited for, then asked again. Only a hold the fleet ordered (a pause, no
valid or a stale policy, a zero speed limit) suspends those deadlines, and it is logged.

Whose arrival: the controller follows the latest path on `plan`, whoever asked for it (a goal
sent on `goal_pose` by an operator replaces the agent's). The agent therefore watches `plan`
and counts an ARRIVED only while the path being followed is the one it asked for; a foreign goal
is logged as a preemption, and the agent resumes its waypoint when that goal ends.

Times are plain floats (seconds) so the logic is tested without clocks or DDS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Waypoint", "AgentPhase", "PatrolAgent", "Note", "parse_waypoints", "is_fleet_hold",
    "PERMANENT_REFUSALS", "TRANSIENT_REFUSALS", "FLEET_HOLDS",
]

# Planner result codes (depai/srv/PlanPath) by name: the node translates numbers to these names.
PERMANENT_REFUSALS = frozenset({"GOAL_OFF_MAP", "GOAL_IN_OBSTACLE", "GOAL_IN_KEEPOUT", "INVALID_REQUEST"})
TRANSIENT_REFUSALS = frozenset({"MAP_NOT_READY", "STALE_COSTMAP", "START_INVALID", "START_IN_KEEPOUT", "NO_PATH"})
# Controller STOPPED reasons that mean "the fleet says: do not move" (a wait without deadline).
FLEET_HOLDS = ("fleet paused", "no valid policy", "policy stale", "speed limit is zero")
# The planner's note on a GOAL_IN_OBSTACLE caused by the local costmap alone (planner/core.py TRANSIENT_OBSTACLE)
TRANSIENT_OBSTACLE_MARK = "transient obstacle"
GOAL_MATCH_M = 0.01  # the planner ends every path exactly at the requested goal
PROGRESS_M = 0.05    # distance_remaining must shrink by this much to count as progress


def is_fleet_hold(reason: str) -> bool:
    return reason.startswith(FLEET_HOLDS)


class Note(str):
    """A log line with its cause (for per-cause throttling) and severity."""

    cause: str
    warn: bool

    def __new__(cls, text: str, cause: str = "", warn: bool = False) -> "Note":
        note = super().__new__(cls, text)
        note.cause = cause or text
        note.warn = warn
        return note


@dataclass(frozen=True)
class Waypoint:
    x: float
    y: float
    yaw: float = 0.0


def parse_waypoints(flat: list[float]) -> list[Waypoint]:
    """[x0, y0, yaw0, x1, y1, yaw1, ...] -> waypoints; ValueError on a bad length or non-finite value."""
    if len(flat) % 3:
        raise ValueError(f"waypoints must be x, y, yaw triples; got {len(flat)} numbers")
    if not all(math.isfinite(v) for v in flat):
        raise ValueError("waypoints must be finite numbers")
    return [Waypoint(*flat[i:i + 3]) for i in range(0, len(flat), 3)]


class AgentPhase(str, Enum):
    WAITING = "waiting"      # will ask for a plan at `retry_at` (once the controller is heard)
    PLANNING = "planning"    # a plan request is in flight
    DRIVING = "driving"      # the planner accepted; the controller should be following
    DONE = "done"            # every waypoint visited (no loop) or none left to try


class _Plan(str, Enum):
    UNSEEN = "unseen"        # accepted, but our path not yet seen on `plan`
    OURS = "ours"            # the latest path on `plan` goes to our waypoint
    FOREIGN = "foreign"      # a later path to another goal replaced ours


class PatrolAgent:
    """Visits waypoints in order; one request in flight at a time."""

    def __init__(self, waypoints: list[Waypoint], loop: bool = True, retry_period: float = 1.0,
                 max_attempts: int = 10, idle_timeout: float = 5.0, follow_timeout: float = 5.0,
                 stall_timeout: float = 20.0, controller_timeout: float = 2.0) -> None:
        self.waypoints = list(waypoints)
        self.loop = loop
        self.retry_period = retry_period
        self.max_attempts = max_attempts
        self.idle_timeout = idle_timeout
        self.follow_timeout = follow_timeout
        self.stall_timeout = stall_timeout
        self.controller_timeout = controller_timeout
        self.index = 0
        self.attempts = 0
        self.visited = 0
        self.skipped = 0
        self.rerequests = 0   # plans asked for again because a deadline passed
        self.preemptions = 0  # goals from elsewhere that replaced ours
        self._lap_visited = 0
        self.phase = AgentPhase.WAITING if self.waypoints else AgentPhase.DONE
        self.retry_at = 0.0
        self._status_at: float | None = None  # when the controller was last heard
        self._state = "UNKNOWN"
        self._reason = ""
        self._reset_drive(0.0)
        self._plans_in_flight: list[tuple[float, float] | None] = []

    # ------------------------------------------------------------------ queries

    @property
    def current(self) -> Waypoint | None:
        return self.waypoints[self.index] if self.phase != AgentPhase.DONE else None

    def controller_alive(self, now: float) -> bool:
        return self._status_at is not None and now - self._status_at <= self.controller_timeout

    def controller_silent_for(self, now: float) -> float:
        return math.inf if self._status_at is None else now - self._status_at

    # ------------------------------------------------------------------ requests

    def goal_to_request(self, now: float) -> Waypoint | None:
        """The waypoint to send to the planner now, or None; marks the request as in flight.

        Nothing is asked while the controller is silent: a plan nobody follows is a stall.
        """
        if self.phase == AgentPhase.WAITING and now >= self.retry_at and self.controller_alive(now):
            self.phase = AgentPhase.PLANNING
            self.attempts += 1
            self._plans_in_flight = []
            return self.current
        return None

    def on_plan_result(self, result: str, now: float, length: float = math.inf, tolerance: float = 0.15,
                       message: str = "") -> str:
        """React to the planner's answer for the current waypoint; returns a log line. ``message``:
        the planner's reason (a goal blocked only by what the sensors see now, e.g. another robot
        standing there, is marked transient: waited for, not skipped for good)."""
        if self.phase != AgentPhase.PLANNING:
            return Note(f"ignored a late plan result {result}", cause="late result")
        if result == "GOAL_IN_OBSTACLE" and TRANSIENT_OBSTACLE_MARK in message:
            result = "GOAL_BLOCKED_FOR_NOW"
        wp = self.current
        if result == "SUCCESS":
            self.phase = AgentPhase.DRIVING
            self._reset_drive(now)
            # Already there: the controller reports ARRIVED without ever FOLLOWING.
            self._already_there = length <= tolerance
            # The planner publishes the path before it answers: it may have arrived already.
            later = [line for line in (self._track_plan(goal, now) for goal in self._plans_in_flight) if line]
            self._plans_in_flight = []
            return Note("; then ".join([f"driving to waypoint {self.index} ({wp.x:.2f}, {wp.y:.2f}), path {length:.2f} m", *later]),
                        cause="driving", warn=bool(later))
        if result in PERMANENT_REFUSALS:
            return self._skip(now, f"waypoint {self.index} ({wp.x:.2f}, {wp.y:.2f}) can never be reached: {result}; skipping it")
        if self.attempts >= self.max_attempts:
            if result == "GOAL_BLOCKED_FOR_NOW":  # yield: move on; the lap still counts as one that may reach things
                self._lap_visited += 1
            return self._skip(now, f"waypoint {self.index} refused {self.attempts} times (last: {result}); skipping it")
        self.phase = AgentPhase.WAITING
        # Backoff: a robot in the way leaves sooner or later; two robots asking in lock-step drift apart
        delay = self.retry_period * (min(self.attempts, 5) if result == "GOAL_BLOCKED_FOR_NOW" else 1)
        self.retry_at = now + delay
        return Note(f"waypoint {self.index}: {result}; retrying in {delay:g} s (attempt {self.attempts}/{self.max_attempts})",
                    cause=f"refused {result}", warn=True)

    def on_request_failed(self, now: float, why: str) -> str:
        """The planner did not answer (service absent or timed out): retry later."""
        if self.phase == AgentPhase.PLANNING:
            self.phase = AgentPhase.WAITING
            self.retry_at = now + self.retry_period
            self.attempts = max(0, self.attempts - 1)  # not the waypoint's fault
        return Note(f"plan request failed: {why}; retrying in {self.retry_period:g} s", cause="request failed", warn=True)

    # ------------------------------------------------------------------ what the controller follows

    def on_plan(self, goal: tuple[float, float] | None, now: float) -> str | None:
        """A path was published on `plan` (what the controller follows): its last point, or None if empty."""
        if self.phase == AgentPhase.PLANNING:
            self._plans_in_flight.append(goal)
            return None
        if self.phase != AgentPhase.DRIVING:
            return None
        return self._track_plan(goal, now)

    def _ours(self, goal: tuple[float, float] | None) -> bool:
        wp = self.current
        return goal is not None and wp is not None and math.hypot(goal[0] - wp.x, goal[1] - wp.y) <= GOAL_MATCH_M

    def _track_plan(self, goal: tuple[float, float] | None, now: float | None = None) -> str | None:
        if self._ours(goal):
            if self._plan == _Plan.OURS:
                self._rebase = True  # a replan: progress is measured along the new path
            elif self._plan == _Plan.FOREIGN:
                self._seen_following = False  # ours again (someone re-sent it): follow it anew
            self._plan = _Plan.OURS
            return None
        if self._plan == _Plan.UNSEEN:
            # Paths from one publisher arrive in order: one that is not ours, before ours, is older.
            return None
        if now is None:
            return None
        if goal is None:
            if self._plan == _Plan.OURS:
                return self._ask_again(now, f"the path to waypoint {self.index} was withdrawn (empty path on `plan`)", "withdrawn",
                                       delay=self.retry_period)
            return self._ask_again(now, f"the goal from elsewhere was withdrawn (empty path on `plan`); resuming waypoint {self.index}",
                                   "foreign goal ended", delay=self.retry_period, warn=False)
        if self._plan == _Plan.OURS:
            self.preemptions += 1
            line = Note(f"preempted: the controller now follows a path to ({goal[0]:.2f}, {goal[1]:.2f}) that another node "
                        f"asked for; waypoint {self.index} resumes when that goal ends", cause="preempted", warn=True)
        else:
            line = None  # another foreign goal replaces the first: keep waiting for it
        self._plan = _Plan.FOREIGN
        self._seen_following = False
        self._best_remaining = math.inf
        self._progress_at = now
        return line

    # ------------------------------------------------------------------ the controller's state

    def on_navigation(self, state: str, now: float, reason: str = "", distance_remaining: float = math.nan) -> str | None:
        """React to the controller's state (IDLE, FOLLOWING, ARRIVED, STOPPED); maybe a log line."""
        self._status_at = now
        self._state, self._reason = state, reason
        if self.phase != AgentPhase.DRIVING:
            return None
        held = state == "STOPPED" and is_fleet_hold(reason)
        if held != self._held:
            self._held = held
            # A hold the fleet ordered is a wait without a deadline: restart the clocks when it ends.
            self._accepted_at = self._progress_at = now
            self._idle_since = None
            return Note(f"holding at the fleet's order ({reason}); waypoint {self.index} is kept" if held
                        else f"fleet hold over; continuing to waypoint {self.index}", cause="hold")
        if held:
            self._progress_at = self._accepted_at = now
            return None
        if self._plan == _Plan.FOREIGN:
            # Someone else's goal: when it ends (reached, dropped or refused), go back to ours.
            ended = (state in ("ARRIVED", "IDLE") and self._seen_following) or (state == "STOPPED" and reason.startswith("path refused"))
            if ended:
                return self._ask_again(now, f"the goal from elsewhere ended ({state}{': ' + reason if reason else ''}); "
                                            f"resuming waypoint {self.index}", "foreign goal ended", delay=self.retry_period, warn=False)
            if state == "FOLLOWING":
                self._seen_following = True
                self._note_progress(now, distance_remaining)
            return None
        if state == "ARRIVED" and (self._already_there or (self._plan == _Plan.OURS and self._seen_following)):
            self.visited += 1
            self._lap_visited += 1
            wp = self.current
            line = f"arrived at waypoint {self.index} ({wp.x:.2f}, {wp.y:.2f})"
            self._advance(now, delay=0.0)
            return Note(line + ("" if self.phase != AgentPhase.DONE else "; patrol complete"), cause="arrived")
        if self._plan != _Plan.OURS:
            return None  # not attributable to our path yet
        if state == "FOLLOWING":
            if not self._seen_following:
                self._seen_following = True
                self._progress_at = now
            self._idle_since = None
            self._note_progress(now, distance_remaining)
        elif state == "IDLE" and self._seen_following:
            # The plan was withdrawn (the planner gave up on replans): ask again.
            self._idle_since = now if self._idle_since is None else self._idle_since
        elif state == "STOPPED" and reason.startswith("path refused"):
            # The controller refused the path (e.g. it no longer starts at the robot): plan again from here.
            return self._ask_again(now, f"the controller refused the path to waypoint {self.index} ({reason})", "path refused",
                                   delay=self.retry_period)
        return None

    def on_tick(self, now: float) -> str | None:
        """Deadlines: call periodically. Returns a log line when one passed (and what was done)."""
        if self.phase != AgentPhase.DRIVING:
            return None
        silent = self.controller_silent_for(now)
        if silent > self.controller_timeout:
            self._ask_again(now, "", "controller silent")
            return Note(f"no navigation_status for {silent:.1f} s: the controller is silent; waypoint {self.index} "
                        "will be asked for again when it is back", cause="controller silent", warn=True)
        if self._held:
            return None
        controller = f"controller: {self._state}{' (' + self._reason + ')' if self._reason else ''}"
        if self._plan == _Plan.UNSEEN and now - self._accepted_at > self.follow_timeout:
            return self._ask_again(now, f"the accepted path to waypoint {self.index} was not seen on `plan` within "
                                        f"{self.follow_timeout:g} s ({controller})", "plan not seen")
        if self._plan == _Plan.OURS and not self._seen_following and not self._already_there \
                and now - self._accepted_at > self.follow_timeout:
            return self._ask_again(now, f"the accepted path to waypoint {self.index} was not followed within "
                                        f"{self.follow_timeout:g} s ({controller})", "not followed")
        if self._idle_since is not None and now - self._idle_since >= self.idle_timeout:
            return self._ask_again(now, f"controller idle for {self.idle_timeout:g} s before waypoint {self.index}", "idle")
        if (self._seen_following or self._plan == _Plan.FOREIGN) and now - self._progress_at > self.stall_timeout:
            return self._ask_again(now, f"no progress towards waypoint {self.index} for {self.stall_timeout:g} s ({controller})",
                                   "stalled")
        return None

    # ------------------------------------------------------------------ internals

    def _note_progress(self, now: float, distance_remaining: float) -> None:
        if not math.isfinite(distance_remaining):
            return
        if self._rebase or math.isinf(self._best_remaining):  # a new path: its distance is the baseline, not progress
            self._rebase = False
            self._best_remaining = distance_remaining
        elif distance_remaining < self._best_remaining - PROGRESS_M:
            self._best_remaining = distance_remaining
            self._progress_at = now

    def _ask_again(self, now: float, why: str, cause: str, delay: float = 0.0, warn: bool = True) -> Note:
        self.phase = AgentPhase.WAITING
        self.retry_at = now + delay
        self.rerequests += 1
        self.attempts = max(0, self.attempts - 1)  # the planner did not refuse: not the waypoint's fault
        self._reset_drive(now)
        return Note(f"{why}; asking for a new plan", cause=cause, warn=warn)

    def _reset_drive(self, now: float) -> None:
        self._plan = _Plan.UNSEEN
        self._seen_following = False
        self._already_there = False
        self._held = False
        self._idle_since: float | None = None
        self._accepted_at = now
        self._progress_at = now
        self._best_remaining = math.inf
        self._rebase = False

    def _skip(self, now: float, line: str) -> Note:
        self.skipped += 1
        self._advance(now, delay=self.retry_period)
        return Note(line, cause="skipped", warn=True)

    def _advance(self, now: float, delay: float) -> None:
        self.attempts = 0
        self._reset_drive(now)
        last = self.index + 1 >= len(self.waypoints)
        if last and not self.loop:
            self.phase = AgentPhase.DONE
            return
        if last and self._lap_visited == 0:
            # A whole lap without reaching anything: looping again would spin forever.
            self.phase = AgentPhase.DONE
            return
        self.index = 0 if last else self.index + 1
        if last:
            self._lap_visited = 0
        self.phase = AgentPhase.WAITING
        self.retry_at = now + delay
