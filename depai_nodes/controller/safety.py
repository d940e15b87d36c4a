"""The controller's last-stage safety checks, ROS-free: the policy it may move under, keep-out
zones against the footprint along the commanded arc, and whether a path may be followed at all.

The controller runs these on every command, whatever the planner sent (the planner also avoids
zones, but a bug, a custom start or a stale plan there must not move the robot into one):

* ``PolicyTracker``: no valid policy, no motion. A FleetPolicy message is adopted only when it is
  valid (``policy_from_msg``: finite speed in range, simple non-degenerate zones, ...), in the
  controller's frame, from an accepted source, and not older than the one in force: versions
  compare only within one source identity, and only against a policy that is still fresh; a new
  identity (a restarted file listener, a reset chain) starts a new sequence, and so does any
  valid policy once the one in force has gone stale (a chain restored to an older state counts
  its versions from there: the robots hold still for ``policy_timeout``, then follow it). Its age is measured from the controller's own receipt time (a
  monotonic clock), so a dead listener, however its clock runs, makes the policy stale.
* ``ZoneGuard``: the robot footprint (a circle of ``robot_radius``) rolled out along the command's
  arc must stay out of every keep-out zone; a robot already overlapping a zone may only move so
  that it gets out of it (never deeper; turning in place is allowed, the circle does not change).
* ``path_problem``: a path in another frame, or whose first pose is not at the robot, is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from depai_nodes.common.polygon import signed_distance
from depai_nodes.dao_listener.core import Policy, PolicyError, policy_from_msg

from .core import Command, NavState, stop

__all__ = ["ActivePolicy", "PolicyTracker", "ZoneGuard", "rollout", "path_problem", "last_stage"]


@dataclass
class ActivePolicy:
    source: str
    version: int
    policy: Policy
    received: float  # monotonic s of the last receipt of this version (a heartbeat refreshes it)
    zones: list[tuple[str, np.ndarray]] = field(default_factory=list)


@dataclass
class Offer:
    """What became of one received FleetPolicy message."""

    accepted: bool
    reason: str = ""           # why it was refused (empty when accepted)
    changed: bool = False      # a different policy is now in force (not just a refresh)
    new_source: bool = False   # it started a new source sequence
    restarted: bool = False    # same source, but the policy in force was stale: a new sequence


class PolicyTracker:
    """The one policy the controller enforces, and whether it is fresh enough to move under."""

    def __init__(self, frame_id: str = "map", source_prefix: str = "") -> None:
        self.frame_id = frame_id
        self.source_prefix = source_prefix
        self.current: ActivePolicy | None = None

    def offer(self, msg, now: float, timeout: float = math.inf) -> Offer:
        """Consider a FleetPolicy message received at monotonic time ``now``; ``timeout`` is the
        policy_timeout (a stale policy in force does not hold back a lower version)."""
        source = str(msg.source)
        version = int(msg.version)
        frame = str(msg.header.frame_id)
        if not source:
            return Offer(False, "policy without a source identity")
        if self.source_prefix and not source.startswith(self.source_prefix):
            return Offer(False, f"policy from '{source}', not from the configured source '{self.source_prefix}...'")
        if frame != self.frame_id:
            return Offer(False, f"policy v{version} from {source}: keep-out zones in frame '{frame}', "
                                f"not the controller's '{self.frame_id}'")
        try:
            policy = policy_from_msg(msg)
        except PolicyError as exc:
            return Offer(False, f"invalid policy v{version} from {source}: {exc}")
        cur = self.current
        stale = cur is not None and now - cur.received > timeout
        if cur is not None and cur.source == source and not stale:
            if version < cur.version:
                return Offer(False, f"policy v{version} from {source} is older than v{cur.version} in force")
            if version == cur.version:
                if policy != cur.policy:
                    return Offer(False, f"policy v{version} from {source} differs from the v{version} in force")
                cur.received = now  # a heartbeat: same policy, still current
                return Offer(True)
        zones = [(z.id, np.asarray(z.polygon, dtype=np.float64)) for z in policy.keep_out_zones]
        self.current = ActivePolicy(source, version, policy, now, zones)
        same = cur is not None and cur.source == source
        if same and version == cur.version and policy == cur.policy:
            cur.received = now  # the stale policy, received again: fresh again
            return Offer(True)
        return Offer(True, changed=True, new_source=not same, restarted=same and stale)

    def age(self, now: float) -> float:
        return math.inf if self.current is None else now - self.current.received

    def hold_reason(self, now: float, timeout: float) -> str | None:
        """Why the robot must hold still for lack of a usable policy (None: it may move)."""
        if self.current is None:
            return "no valid policy"
        age = now - self.current.received
        if age > timeout:
            return f"policy stale ({age:.1f} s old)"
        return None

    def enforced(self, now: float, timeout: float) -> ActivePolicy | None:
        """The policy in force, or None when there is none or it is stale."""
        return None if self.hold_reason(now, timeout) else self.current


def rollout(pose: tuple[float, float, float], v: float, w: float, horizon: float, min_distance: float,
            step: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Centre positions along the arc of (v, w) from ``pose`` over ``horizon`` s (at least
    ``min_distance`` m when moving), sampled every ``step`` m or so; the pose itself excluded."""
    x0, y0, th0 = pose
    if abs(v) < 1e-9:
        return np.zeros(0), np.zeros(0)
    horizon = max(horizon, min_distance / abs(v))
    n = min(int(math.ceil(abs(v) * horizon / step)) + 1, 400)
    t = np.linspace(0.0, horizon, n + 1)[1:]
    if abs(w) < 1e-6:
        return x0 + v * t * math.cos(th0), y0 + v * t * math.sin(th0)
    th = th0 + w * t
    return x0 + v / w * (np.sin(th) - math.sin(th0)), y0 - v / w * (np.cos(th) - math.cos(th0))


class ZoneGuard:
    """Footprint (circle of ``radius``) against keep-out polygons along a commanded arc.

    The arc is rolled out for ``horizon`` s, at least ``min_distance`` m, but not beyond
    ``max_distance`` (the rest of the path: the follower stops at its end, so a goal next to a
    zone stays reachable, and a path ending in one is still stopped short), and never shorter
    than what one more control period and a stop at ``brake_accel`` take (``dt`` s at the
    commanded speed, then v^2 / 2a). Samples lie about 5 cm apart along the arc.
    """

    def __init__(self, radius: float, horizon: float, min_distance: float, dt: float = 0.05,
                 brake_accel: float = 2.5) -> None:
        self.radius, self.horizon, self.min_distance = radius, horizon, min_distance
        self.dt, self.brake_accel = dt, brake_accel

    def inside(self, pose, zones) -> list[str]:
        """Ids of the zones the footprint overlaps at ``pose``."""
        x, y = pose[0], pose[1]
        return [zid for zid, poly in zones if float(signed_distance(poly, [x], [y])[0]) < self.radius]

    def check(self, pose, v: float, w: float, zones, max_distance: float = math.inf) -> str | None:
        """Why the command (v, w) at ``pose`` is refused (None: allowed)."""
        if not zones or abs(v) < 1e-9:
            return None  # holding still or turning in place: a circle sweeps nothing new
        speed = abs(v)
        length = min(max(self.min_distance, speed * self.horizon), max_distance)
        length = max(length, speed * self.dt + speed * speed / (2.0 * self.brake_accel))
        xs, ys = rollout(pose, v, w, length / speed, 0.0)
        for zid, poly in zones:
            here = float(signed_distance(poly, [pose[0]], [pose[1]])[0])
            d = signed_distance(poly, xs, ys)
            if here < self.radius:
                # Already overlapping (the zone was voted over the robot): only a way out.
                if np.any(d < here - 1e-9) or not d[-1] > here + 1e-6:
                    return f"inside keep-out zone '{zid}': only a move out of it is allowed"
                continue
            if np.any(d < self.radius):
                k = int(np.argmax(d < self.radius))
                ahead = math.hypot(xs[k] - pose[0], ys[k] - pose[1])
                return f"keep-out zone '{zid}' {ahead:.2f} m ahead"
        return None


def path_problem(points: np.ndarray, frames: list[str], pose: tuple[float, float, float] | None,
                 frame_id: str, tolerance: float) -> str | None:
    """Why a path must not be followed (None: it may). ``frames`` are the header frame of the path
    then those of its poses ('' for a pose means: the path's frame)."""
    path_frame = frames[0] if frames else ""
    if path_frame != frame_id:
        return f"path frame '{path_frame}' is not the controller's frame '{frame_id}'"
    bad = next((f for f in frames[1:] if f and f != frame_id), None)
    if bad is not None:
        return f"path pose in frame '{bad}', not '{frame_id}'"
    if pose is not None and len(points):
        off = math.hypot(points[0][0] - pose[0], points[0][1] - pose[1])
        if off > tolerance:
            return f"path starts {off:.2f} m from the robot (tolerance {tolerance:.2f} m)"
    return None


def last_stage(cmd: Command, pose, zones, guard: ZoneGuard, limit: float, max_angular: float,
               max_distance: float = math.inf) -> Command:
    """The command that may leave the controller, whatever made ``cmd``: zero (STOPPED, the zone
    named) when its arc brings the footprint into a keep-out zone, else clamped to
    ``|v| <= limit`` and ``|w| <= max_angular`` (non-finite values become zero).
    ``max_distance`` caps the roll-out (see ZoneGuard)."""
    reason = guard.check(pose, cmd.linear, cmd.angular, zones, max_distance) if math.isfinite(cmd.linear) and \
        math.isfinite(cmd.angular) else None
    if reason:
        return stop(NavState.STOPPED, reason, distance_remaining=cmd.distance_remaining,
                    progress=cmd.progress, speed_limit=cmd.speed_limit)
    limit = max(limit, 0.0) if math.isfinite(limit) else 0.0
    v = max(-limit, min(limit, cmd.linear)) if math.isfinite(cmd.linear) else 0.0
    w = max(-max_angular, min(max_angular, cmd.angular)) if math.isfinite(cmd.angular) else 0.0
    cmd.linear, cmd.angular = v, w
    return cmd
