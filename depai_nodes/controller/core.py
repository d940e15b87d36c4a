"""Regulated pure pursuit, ROS-free: follow a path, slow down where it is wise, stop when unsafe.

One :meth:`PathFollower.step` per control period turns (pose, path, obstacles, limits) into a
velocity command and a status:

* pure pursuit on a lookahead point ``clamp(|v| * lookahead_time, min, max)`` ahead on the path,
  ``curvature = 2 y / d^2`` in the robot frame;
* curvature regulation: on arcs tighter than ``regulated_min_radius`` the speed scales with
  ``radius / regulated_min_radius``;
* proximity regulation: closer than ``obstacle_slowdown_distance`` (clearance beyond the robot
  radius, from the local costmap) the speed scales down linearly, to at least
  ``obstacle_min_speed_scale`` of the limit;
* approach: within ``approach_distance`` of the goal the speed scales with the remaining
  distance (never below ``min_approach_speed``), and the goal is reached within ``goal_tolerance``;
* heading: when the lookahead point is more than ``rotate_to_heading_min_angle`` off the
  heading, rotate in place first; at the goal, turn in place to the goal's orientation
  (``rotate_to_goal_heading``, within ``goal_yaw_tolerance``);
* collision: the commanded arc is rolled out for ``collision_horizon`` seconds (at least
  ``collision_min_distance`` metres); if it brings the robot centre within ``robot_radius`` of a
  lethal local-costmap cell, the command is zero (state STOPPED, reason "collision imminent");
* limits: speed never exceeds the tightest of ``desired_linear_vel``, the fleet policy's
  ``max_speed`` and the speed-mask limit at the robot; acceleration limits apply to speeding up
  only, never to stopping.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from depai_nodes.planner.mapio import OccupancyMap


class ControllerError(Exception):
    """Base of the controller's errors."""


class InvalidPathError(ControllerError):
    """A path with non-finite coordinates."""


class NavState(enum.IntEnum):
    """Same numbers as the constants of ``depai/msg/NavigationStatus``."""

    IDLE = 0
    FOLLOWING = 1
    ARRIVED = 2
    STOPPED = 3


@dataclass
class ControllerConfig:
    desired_linear_vel: float = 0.5
    max_angular_vel: float = 1.5
    lookahead_time: float = 1.5
    min_lookahead: float = 0.3
    max_lookahead: float = 0.9
    regulated_min_radius: float = 0.9
    min_regulated_speed: float = 0.05
    obstacle_slowdown_distance: float = 0.6
    obstacle_min_speed_scale: float = 0.25
    approach_distance: float = 0.6
    min_approach_speed: float = 0.05
    goal_tolerance: float = 0.1
    rotate_to_heading_min_angle: float = 0.785
    rotate_to_heading_angular_vel: float = 1.0
    robot_radius: float = 0.22
    collision_horizon: float = 1.0
    collision_min_distance: float = 0.3
    max_linear_accel: float = 2.5
    max_angular_accel: float = 3.2
    lethal_threshold: int = 65
    rotate_to_goal_heading: bool = True
    goal_yaw_tolerance: float = 0.1


@dataclass
class Command:
    linear: float
    angular: float
    state: NavState
    reason: str = ""
    distance_remaining: float = 0.0
    progress: float = 0.0
    speed_limit: float = 0.0


def stop(state: NavState, reason: str, **kw) -> Command:
    return Command(0.0, 0.0, state, reason, **kw)


class ObstacleField:
    """Clearance (metres to the nearest lethal cell) of a robot-centric local costmap.

    ``pose`` is the robot pose (map frame) when the costmap was taken; the costmap lies in
    the robot's sensor frame (x forward, y left), so queries are rotated into it. Cells
    outside the costmap count as free (unobserved space is the planner's business).
    """

    def __init__(self, grid: OccupancyMap, pose: tuple[float, float, float], lethal_threshold: int = 65):
        self.grid = grid
        self.pose = pose
        lethal = grid.data >= lethal_threshold
        if lethal.any():
            self.dist = (ndimage.distance_transform_edt(~lethal) * grid.resolution).astype(np.float32)
        else:
            self.dist = None

    def clearance(self, x, y) -> np.ndarray:
        """Distance from map-frame points to the nearest lethal cell (inf when none known)."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        y = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if self.dist is None:
            return np.full(x.shape, np.inf)
        px, py, pyaw = self.pose
        c, s = math.cos(pyaw), math.sin(pyaw)
        dx, dy = x - px, y - py
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        col, row = self.grid.world_to_cell(lx, ly)
        inside = self.grid.in_bounds(col, row)
        out = np.full(x.shape, np.inf)
        out[inside] = self.dist[row[inside], col[inside]]
        return out


class SpeedMask:
    """Nav2 SpeedFilter semantics on a filter mask: value 0 or unknown means no limit, values
    1..100 give ``limit = base + multiplier * value``, in percent of ``desired_linear_vel``
    (``kind='percent'``) or in m/s (``kind='absolute'``). A limit <= 0 is no limit (Nav2)."""

    def __init__(self, mask: OccupancyMap, kind: str = "percent", base: float = 100.0, multiplier: float = -1.0):
        if kind not in ("percent", "absolute"):
            raise ValueError("speed mask kind must be 'percent' or 'absolute'")
        self.mask, self.kind, self.base, self.multiplier = mask, kind, base, multiplier

    def limit(self, x: float, y: float, max_speed: float) -> float | None:
        col, row = self.mask.world_to_cell(x, y)
        if not self.mask.in_bounds(col, row):
            return None
        v = int(self.mask.data[int(row), int(col)])
        if v <= 0:
            return None
        lim = self.base + self.multiplier * v
        if lim <= 0:
            return None
        return max_speed * lim / 100.0 if self.kind == "percent" else lim



class PathFollower:
    """Stateful regulated pure pursuit along one path at a time."""

    def __init__(self, config: ControllerConfig | None = None) -> None:
        self.config = config or ControllerConfig()
        self.path: np.ndarray | None = None
        self._cum = np.zeros(0)
        self._index = 0
        self.arrived = False
        self.at_goal = False
        self.goal_yaw: float | None = None
        self.last = (0.0, 0.0)

    def set_path(self, points, goal_yaw: float | None = None) -> None:
        """Follow ``points`` ((N, 2) x, y); with ``goal_yaw`` the robot turns to it on arrival
        (when ``rotate_to_goal_heading``)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(pts).all():
            raise InvalidPathError("path has non-finite coordinates")
        if goal_yaw is not None and not math.isfinite(goal_yaw):
            raise InvalidPathError("goal orientation is not finite")
        self.goal_yaw = goal_yaw
        self.at_goal = False
        if len(pts) == 0:
            self.path = None
            self._cum = np.zeros(0)
        else:
            self.path = pts
            d = np.hypot(*np.diff(pts, axis=0).T) if len(pts) > 1 else np.zeros(0)
            self._cum = np.concatenate([[0.0], np.cumsum(d)])
        self._index = 0
        self.arrived = False

    @property
    def length(self) -> float:
        return float(self._cum[-1]) if len(self._cum) else 0.0

    def _closest(self, x: float, y: float) -> int:
        # Search forward from the last index, within a window, so a path that loops back near
        # itself does not make the robot jump ahead.
        lo = self._index
        hi = len(self.path)
        window = np.searchsorted(self._cum, self._cum[lo] + 2.0 * self.config.max_lookahead + 1.0) + 1
        hi = min(hi, int(window))
        seg = self.path[lo:hi]
        i = lo + int(np.argmin(np.hypot(seg[:, 0] - x, seg[:, 1] - y)))
        self._index = i
        return i

    def _lookahead_point(self, x: float, y: float, i: int, L: float) -> np.ndarray:
        pts = self.path
        d = np.hypot(pts[i:, 0] - x, pts[i:, 1] - y)
        beyond = np.flatnonzero(d >= L)
        if beyond.size == 0:
            return pts[-1]
        j = i + int(beyond[0])
        if j == i:
            return pts[j]
        # Circle-segment intersection between pts[j-1] (inside) and pts[j] (outside).
        a, b = pts[j - 1], pts[j]
        f = a - (x, y)
        dvec = b - a
        A = float(dvec @ dvec)
        B = 2.0 * float(f @ dvec)
        C = float(f @ f) - L * L
        disc = B * B - 4 * A * C
        if A <= 0 or disc < 0:
            return b
        t = (-B + math.sqrt(disc)) / (2 * A)
        return a + min(max(t, 0.0), 1.0) * dvec

    def step(self, pose: tuple[float, float, float], dt: float, speed_limit: float,
             field: ObstacleField | None = None) -> Command:
        """One control period. ``speed_limit`` is the tightest external limit (m/s)."""
        cfg = self.config
        if self.path is None:
            self.last = (0.0, 0.0)
            return stop(NavState.IDLE, "no path")
        x, y, yaw = pose
        i = self._closest(x, y)
        goal = self.path[-1]
        to_goal = math.hypot(goal[0] - x, goal[1] - y)
        remaining = float(self.length - self._cum[i]) + float(math.hypot(self.path[i, 0] - x, self.path[i, 1] - y))
        remaining = max(remaining, to_goal) if i >= len(self.path) - 1 else remaining
        progress = float(self._cum[i] / self.length) if self.length > 0 else 1.0
        info = dict(distance_remaining=remaining, progress=progress, speed_limit=speed_limit)
        if self.arrived or self.at_goal or to_goal <= cfg.goal_tolerance:
            # Within tolerance once is enough: a final turn must not restart the approach.
            self.at_goal = True
            info.update(distance_remaining=to_goal, progress=1.0)
            if not self.arrived and cfg.rotate_to_goal_heading and self.goal_yaw is not None:
                err = (self.goal_yaw - yaw + math.pi) % (2.0 * math.pi) - math.pi
                if abs(err) > cfg.goal_yaw_tolerance:
                    w_max = min(cfg.rotate_to_heading_angular_vel, cfg.max_angular_vel)
                    # Slow down as the error shrinks (P-control), never below 0.2 rad/s.
                    w = math.copysign(min(w_max, max(0.2, 2.0 * abs(err))), err)
                    _, w_prev = self.last
                    if dt > 0 and abs(w) > abs(w_prev):
                        w = math.copysign(min(abs(w), abs(w_prev) + cfg.max_angular_accel * dt), w)
                    self.last = (0.0, w)
                    return Command(0.0, w, NavState.FOLLOWING, "turning to the goal heading", **info)
            self.arrived = True
            self.last = (0.0, 0.0)
            return stop(NavState.ARRIVED, "", **info)
        if speed_limit <= 0.0:
            self.last = (0.0, 0.0)
            return stop(NavState.STOPPED, "speed limit is zero", **info)

        v_prev, w_prev = self.last
        L = min(max(abs(v_prev) * cfg.lookahead_time, cfg.min_lookahead), cfg.max_lookahead)
        target = self._lookahead_point(x, y, i, L)
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = target[0] - x, target[1] - y
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        heading_err = math.atan2(ly, lx)
        reason = ""
        if abs(heading_err) > cfg.rotate_to_heading_min_angle:
            v = 0.0
            w = math.copysign(min(cfg.rotate_to_heading_angular_vel, cfg.max_angular_vel), heading_err)
        else:
            d2 = lx * lx + ly * ly
            k = 2.0 * ly / d2 if d2 > 1e-9 else 0.0
            v = speed_limit
            if abs(k) > 1e-9:
                radius = 1.0 / abs(k)
                if radius < cfg.regulated_min_radius:
                    v *= radius / cfg.regulated_min_radius
                    reason = "slowing for curvature"
            if field is not None:
                clearance = float(field.clearance(x, y)[0]) - cfg.robot_radius
                if clearance < cfg.obstacle_slowdown_distance:
                    scale = max(cfg.obstacle_min_speed_scale, max(clearance, 0.0) / cfg.obstacle_slowdown_distance)
                    if speed_limit * scale < v:
                        v = speed_limit * scale
                        reason = "slowing near obstacle"
            if remaining < cfg.approach_distance:
                va = max(cfg.min_approach_speed, speed_limit * remaining / cfg.approach_distance)
                if va < v:
                    v = va
                    reason = "approaching goal"
            v = min(max(v, min(cfg.min_regulated_speed, speed_limit)), speed_limit)
            w = v * k
            if abs(w) > cfg.max_angular_vel:
                w = math.copysign(cfg.max_angular_vel, w)
                v = abs(w / k)
        # Acceleration limits on speeding up only; braking is never delayed.
        if dt > 0:
            if abs(v) > abs(v_prev):
                v = math.copysign(min(abs(v), abs(v_prev) + cfg.max_linear_accel * dt), v)
            if abs(w) > abs(w_prev):
                w = math.copysign(min(abs(w), abs(w_prev) + cfg.max_angular_accel * dt), w)
        if field is not None and self._collides(pose, v, w, field):
            self.last = (0.0, 0.0)
            return stop(NavState.STOPPED, "collision imminent", **info)
        self.last = (v, w)
        return Command(v, w, NavState.FOLLOWING, reason, **info)

    def _collides(self, pose, v: float, w: float, field: ObstacleField) -> bool:
        cfg = self.config
        res = field.grid.resolution
        horizon = cfg.collision_horizon
        if abs(v) > 1e-6:
            horizon = max(horizon, cfg.collision_min_distance / abs(v))
            n = int(math.ceil(abs(v) * horizon / (0.5 * res))) + 1
        elif abs(w) > 1e-6:
            n = 8
        else:
            return False
        t = np.linspace(0.0, horizon, min(n, 400) + 1)[1:]
        x0, y0, th0 = pose
        if abs(w) < 1e-6:
            xs = x0 + v * t * math.cos(th0)
            ys = y0 + v * t * math.sin(th0)
        else:
            th = th0 + w * t
            xs = x0 + v / w * (np.sin(th) - math.sin(th0))
            ys = y0 - v / w * (np.cos(th) - math.cos(th0))
        clear = field.clearance(xs, ys)
        here = float(field.clearance(x0, y0)[0])
        # Moving away from an obstacle the robot is already too close to is allowed.
        bad = clear < cfg.robot_radius
        return bool(np.any(bad & (clear <= here + 1e-9)))
