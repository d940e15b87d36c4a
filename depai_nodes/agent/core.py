"""The task agent's decisions, without ROS: which goal to ask for next, and what each answer means.

The agent owns the robot's *intent* (a list of waypoints to visit, in order, optionally looping)
and leaves *how* to the planner and controller. What it must get right is the reaction to every
outcome: a goal that can never be reached (off the map, in an obstacle, in a keep-out zone voted
by the DAO) is skipped with a log line instead of being retried forever; a transient refusal (map
not ready yet, stale costmap, robot momentarily boxed in) is retried after a pause, a bounded
number of times; arrival moves on to the next waypoint. Times are plain floats (seconds) so the
logic is tested without clocks or DDS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["Waypoint", "AgentPhase", "PatrolAgent", "parse_waypoints", "PERMANENT_REFUSALS", "TRANSIENT_REFUSALS"]

# Planner result codes (depai/srv/PlanPath) by name: the node translates numbers to these names.
PERMANENT_REFUSALS = frozenset({"GOAL_OFF_MAP", "GOAL_IN_OBSTACLE", "GOAL_IN_KEEPOUT", "INVALID_REQUEST"})
TRANSIENT_REFUSALS = frozenset({"MAP_NOT_READY", "STALE_COSTMAP", "START_INVALID", "START_IN_KEEPOUT", "NO_PATH"})


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
    WAITING = "waiting"      # will ask for a plan at `retry_at`
    PLANNING = "planning"    # a plan request is in flight
    DRIVING = "driving"      # the planner accepted; the controller is following
    DONE = "done"            # every waypoint visited (no loop) or none left to try


class PatrolAgent:
    """Visits waypoints in order; one request in flight at a time."""

    def __init__(self, waypoints: list[Waypoint], loop: bool = True, retry_period: float = 1.0,
                 max_attempts: int = 10, idle_timeout: float = 5.0) -> None:
        self.waypoints = list(waypoints)
        self.loop = loop
        self.retry_period = retry_period
        self.max_attempts = max_attempts
        self.idle_timeout = idle_timeout
        self.index = 0
        self.attempts = 0
        self.visited = 0
        self.skipped = 0
        self._lap_visited = 0
        self.phase = AgentPhase.WAITING if self.waypoints else AgentPhase.DONE
        self.retry_at = 0.0
        self._seen_following = False
        self._idle_since: float | None = None

    @property
    def current(self) -> Waypoint | None:
        return self.waypoints[self.index] if self.phase != AgentPhase.DONE else None

    def goal_to_request(self, now: float) -> Waypoint | None:
        """The waypoint to send to the planner now, or None; marks the request as in flight."""
        if self.phase == AgentPhase.WAITING and now >= self.retry_at:
            self.phase = AgentPhase.PLANNING
            self.attempts += 1
            return self.current
        return None

    def on_plan_result(self, result: str, now: float, length: float = math.inf, tolerance: float = 0.15) -> str:
        """React to the planner's answer for the current waypoint; returns a log line."""
        if self.phase != AgentPhase.PLANNING:
            return f"ignored a late plan result {result}"
        wp = self.current
        if result == "SUCCESS":
            self.phase = AgentPhase.DRIVING
            # Already there: the controller reports ARRIVED without ever FOLLOWING.
            self._seen_following = length <= tolerance
            self._idle_since = None
            return f"driving to waypoint {self.index} ({wp.x:.2f}, {wp.y:.2f}), path {length:.2f} m"
        if result in PERMANENT_REFUSALS:
            return self._skip(now, f"waypoint {self.index} ({wp.x:.2f}, {wp.y:.2f}) can never be reached: {result}; skipping it")
        if self.attempts >= self.max_attempts:
            return self._skip(now, f"waypoint {self.index} refused {self.attempts} times (last: {result}); skipping it")
        self.phase = AgentPhase.WAITING
        self.retry_at = now + self.retry_period
        return f"waypoint {self.index}: {result}; retrying in {self.retry_period:g} s (attempt {self.attempts}/{self.max_attempts})"

    def on_request_failed(self, now: float, why: str) -> str:
        """The planner did not answer (service absent or timed out): retry later."""
        if self.phase == AgentPhase.PLANNING:
            self.phase = AgentPhase.WAITING
            self.retry_at = now + self.retry_period
            self.attempts = max(0, self.attempts - 1)  # not the waypoint's fault
        return f"plan request failed: {why}; retrying in {self.retry_period:g} s"

    def on_navigation(self, state: str, now: float) -> str | None:
        """React to the controller's state (IDLE, FOLLOWING, ARRIVED, STOPPED); maybe a log line."""
        if self.phase != AgentPhase.DRIVING:
            return None
        if state == "FOLLOWING":
            self._seen_following = True
            self._idle_since = None
        elif state == "ARRIVED" and self._seen_following:
            self.visited += 1
            self._lap_visited += 1
            wp = self.current
            line = f"arrived at waypoint {self.index} ({wp.x:.2f}, {wp.y:.2f})"
            self._advance(now, delay=0.0)
            return line + ("" if self.phase != AgentPhase.DONE else "; patrol complete")
        elif state == "IDLE" and self._seen_following:
            # The plan was withdrawn (the planner gave up on replans): ask again.
            self._idle_since = now if self._idle_since is None else self._idle_since
            if now - self._idle_since >= self.idle_timeout:
                self.phase = AgentPhase.WAITING
                self.retry_at = now
                self._idle_since = None
                return f"controller idle for {self.idle_timeout:g} s before waypoint {self.index}; asking for a new plan"
        return None

    def _skip(self, now: float, line: str) -> str:
        self.skipped += 1
        self._advance(now, delay=self.retry_period)
        return line

    def _advance(self, now: float, delay: float) -> None:
        self.attempts = 0
        self._seen_following = False
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
