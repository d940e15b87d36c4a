"""ROS wiring of the path-following controller (regulated pure pursuit).

Subscribes ``plan`` (latched), ``odom``, ``local_costmap`` and ``/fleet/policy``; publishes
``cmd_vel`` and ``navigation_status`` every control period. It fails closed: it holds still
(zero ``cmd_vel``, state STOPPED with the reason) until it has a valid fleet policy and whenever
that policy is older than ``policy_timeout`` (by its own receipt time), when the fleet is paused,
when odom is missing or stale, when the local costmap is missing or stale (unless
``require_costmap`` is false), when the rolled-out command would collide or bring the footprint
into a keep-out zone, and when the path is in another frame or does not start at the robot. A
fleet pause is applied the moment the policy arrives: the zero command is published from the
policy callback, without waiting for the next control tick. Every command is clamped to the
tightest speed limit last of all.
"""
from __future__ import annotations

import math
import re
import sys
import time
from typing import Literal

import numpy as np

from geometry_msgs.msg import Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from pydantic import Field
from rclpy.node import Node

from depai.msg import FleetPolicy, NavigationStatus
from depai_nodes.common.logthrottle import CauseThrottle, with_count
from depai_nodes.common.params import READ_ONLY, ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
from depai_nodes.common.runner import run_node
from depai_nodes.planner.errors import InvalidGridError, MapLoadError
from depai_nodes.planner.mapio import load_map
from depai_nodes.planner.node import grid_from_msg

from .core import Command, ControllerConfig, InvalidPathError, NavState, ObstacleField, PathFollower, SpeedMask, stop
from .safety import PolicyTracker, ZoneGuard, last_stage, path_problem

POLICY_TOPIC = "/fleet/policy"


class ControllerParams(ParamsModel):
    control_frequency: float = Field(20.0, gt=0.0, le=200.0, description="Hz; control period = 1 / this")
    desired_linear_vel: float = Field(0.5, gt=0.0, le=5.0, description="m/s; cruise speed before any limit")
    max_angular_vel: float = Field(1.5, gt=0.0, le=10.0, description="rad/s")
    lookahead_time: float = Field(1.5, gt=0.0, le=10.0, description="s; lookahead distance = speed * this, clamped")
    min_lookahead: float = Field(0.3, gt=0.0, le=5.0, description="m")
    max_lookahead: float = Field(0.9, gt=0.0, le=10.0, description="m")
    regulated_min_radius: float = Field(0.9, ge=0.0, le=10.0, description="m; tighter arcs are driven slower")
    min_regulated_speed: float = Field(0.05, ge=0.0, le=1.0, description="m/s; regulation never goes below this")
    obstacle_slowdown_distance: float = Field(0.6, ge=0.0, le=5.0, description="m of clearance below which the robot slows")
    obstacle_min_speed_scale: float = Field(0.25, ge=0.0, le=1.0, description="fraction of the limit kept at zero clearance")
    approach_distance: float = Field(0.6, ge=0.0, le=5.0, description="m before the goal where the robot slows")
    min_approach_speed: float = Field(0.05, ge=0.0, le=1.0, description="m/s")
    goal_tolerance: float = Field(0.1, gt=0.0, le=2.0, description="m; arrival distance")
    rotate_to_heading_min_angle: float = Field(0.785, ge=0.0, le=3.2, description="rad; rotate in place above this heading error")
    rotate_to_heading_angular_vel: float = Field(1.0, gt=0.0, le=10.0, description="rad/s")
    rotate_to_goal_heading: bool = Field(True, description="on arrival, turn in place to the orientation of the path's last pose")
    goal_yaw_tolerance: float = Field(0.1, gt=0.0, le=3.2, description="rad; heading error accepted at the goal")
    robot_radius: float = Field(0.22, ge=0.0, le=5.0, description="m")
    collision_horizon: float = Field(1.0, ge=0.0, le=10.0, description="s of the command rolled out for the collision check")
    collision_min_distance: float = Field(0.3, ge=0.0, le=5.0, description="m; the roll-out is at least this long")
    max_linear_accel: float = Field(2.5, gt=0.0, le=20.0, description="m/s^2 (speeding up only)")
    max_angular_accel: float = Field(3.2, gt=0.0, le=50.0, description="rad/s^2 (speeding up only)")
    lethal_threshold: int = Field(65, ge=1, le=100, description="local costmap value from which a cell is an obstacle")
    odom_timeout: float = Field(0.5, gt=0.0, le=10.0, description="s; older odom stops the robot")
    costmap_timeout: float = Field(0.5, gt=0.0, le=10.0, description="s; an older local costmap stops the robot")
    require_costmap: bool = Field(True, description="stay stopped until a fresh local costmap arrives")
    speed_mask_yaml: str = Field("", description="Nav2 speed filter mask YAML (mode scale); empty: none")
    speed_mask_type: Literal["percent", "absolute"] = Field("percent", description="mask limit in % of desired_linear_vel or m/s")
    speed_mask_base: float = Field(100.0, description="Nav2 CostmapFilterInfo base: limit = base + multiplier * value")
    speed_mask_multiplier: float = Field(-1.0, description="Nav2 CostmapFilterInfo multiplier")
    frame_id: str = Field("map", min_length=1, description="the controller's frame: paths and policy zones in another frame are refused", json_schema_extra=READ_ONLY)
    policy_timeout: float = Field(5.0, gt=0.0, le=600.0, description="s; a policy not received again for this long is stale: the robot holds still")
    policy_source: str = Field("", description="accept policies only from a source identity starting with this (e.g. 'chain:3338:'); empty: any", json_schema_extra=READ_ONLY)
    path_start_tolerance: float = Field(0.5, gt=0.0, le=10.0, description="m; a path whose first pose is farther from the robot is refused")


def _yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class ControllerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("controller", **kwargs)
        self.params = declare_params(self, ControllerParams, on_change=self._on_params)
        self.follower = PathFollower(self._config())
        self._mask: SpeedMask | None = None
        self._load_mask()
        self._odom = None
        self._odom_time = -math.inf
        self._field: ObstacleField | None = None
        self._field_time = -math.inf
        self.policies = PolicyTracker(self.params.frame_id, self.params.policy_source)
        self._policy_log = CauseThrottle(10.0)
        self._path_frames: list[str] = []
        self._path_checked = True
        self._refused = ""  # why the current plan was refused ("" when none was)
        self._last_state = None
        self._last_key = None
        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
        self.status_pub = self.create_publisher(NavigationStatus, "navigation_status", RELIABLE_QOS)
        # Latched: a plan published before this subscription matched (start-up, restart) is not
        # lost; a stale one is caught by the path-start check.
        self.create_subscription(Path, "plan", self._on_plan, LATCHED_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        self.create_subscription(OccupancyGrid, "local_costmap", self._on_local, SENSOR_QOS)
        self.create_subscription(FleetPolicy, POLICY_TOPIC, self._on_policy, LATCHED_QOS)
        self._timer = self.create_timer(1.0 / self.params.control_frequency, self._tick)
        self._diagnostics()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): the policy enforced (ERROR: none, the robot holds
        still; WARN: stale or paused), inputs odom / local_costmap / plan, the control step's time."""
        from depai_nodes.common.diagnostics import ERROR, OK, WARN, NodeDiagnostics

        self.diag = NodeDiagnostics(self)

        def policy():
            cur = self.policies.current
            hold = self.policies.hold_reason(time.monotonic(), self.params.policy_timeout)
            values = {"version": cur.version, "source": cur.source} if cur is not None else {"version": 0, "source": ""}
            if cur is None:
                return ERROR, f"{hold}: holding still", values
            if hold is not None:
                return WARN, f"{hold}: holding still", values
            if cur.policy.paused:
                return WARN, f"fleet paused (policy v{cur.version})", values
            return OK, f"policy v{cur.version} enforced (max_speed {cur.policy.max_speed:g} m/s)", values

        self.diag.diag.check("policy", policy)
        self.diag_odom = self.diag.diag.topic("odom", stale_after=self.params.odom_timeout)
        self.diag_costmap = self.diag.diag.topic("local_costmap", stale_after=self.params.costmap_timeout)
        self.diag_tick = self.diag.diag.timing("control step")

    def _config(self) -> ControllerConfig:
        p = self.params
        names = ControllerConfig.__dataclass_fields__.keys()
        return ControllerConfig(**{k: getattr(p, k) for k in names})

    @staticmethod
    def _make_mask(p: ControllerParams) -> SpeedMask | None:
        if not p.speed_mask_yaml:
            return None
        try:
            return SpeedMask(load_map(p.speed_mask_yaml), p.speed_mask_type, p.speed_mask_base, p.speed_mask_multiplier)
        except (MapLoadError, ValueError) as exc:
            raise ParameterError("speed_mask_yaml", str(exc)) from None

    def _load_mask(self) -> None:
        self._mask = self._make_mask(self.params)

    def _on_params(self, new: ControllerParams) -> None:
        """All or nothing: everything that can fail (the mask) is prepared before anything changes;
        a ParameterError fails the `ros2 param set` and leaves the old mask and parameters."""
        old = self.params
        mask = self._mask
        if (old.speed_mask_yaml, old.speed_mask_type, old.speed_mask_base, old.speed_mask_multiplier) != (
                new.speed_mask_yaml, new.speed_mask_type, new.speed_mask_base, new.speed_mask_multiplier):
            mask = self._make_mask(new)
        self.params = new
        self._mask = mask
        self.follower.config = self._config()
        if old.control_frequency != new.control_frequency:
            self._timer.cancel()
            self._timer = self.create_timer(1.0 / new.control_frequency, self._tick)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs

    def _on_plan(self, msg: Path) -> None:
        pts = [(p.pose.position.x, p.pose.position.y) for p in msg.poses]
        goal_yaw = None
        if pts:
            q = msg.poses[-1].pose.orientation
            if abs(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w - 1.0) < 1e-3:  # a set orientation
                goal_yaw = _yaw(q)
        self._refused = ""
        self._path_frames = [msg.header.frame_id] + [p.header.frame_id for p in msg.poses]
        problem = path_problem(np.zeros((0, 2)), self._path_frames, None, self.params.frame_id, math.inf) if pts else None
        try:
            if problem:
                raise InvalidPathError(problem)
            self.follower.set_path(pts, goal_yaw)
        except InvalidPathError as exc:
            self._refuse(f"path refused: {exc}")
            return
        self._path_checked = not pts  # the start is checked against the robot at the next tick
        if not pts:
            self.get_logger().info("empty path: stopping")
            self._publish(stop(NavState.IDLE, "empty path"))
        else:
            self.get_logger().info(f"received a path of {self.follower.length:.2f} m ({len(pts)} poses)")

    def _refuse(self, reason: str) -> None:
        self.follower.set_path([])
        self.follower.last = (0.0, 0.0)
        self._refused = reason
        self.get_logger().error(f"{reason}; holding still")
        self._publish(stop(NavState.STOPPED, reason))

    def _on_odom(self, msg: Odometry) -> None:
        self.diag_odom.tick()
        p = msg.pose.pose
        vals = (p.position.x, p.position.y, _yaw(p.orientation))
        if all(math.isfinite(v) for v in vals):
            self._odom = vals
            self._odom_time = self._now()

    def _on_local(self, msg: OccupancyGrid) -> None:
        self.diag_costmap.tick()
        if self._odom is None:
            return
        try:
            grid = grid_from_msg(msg)
        except InvalidGridError as exc:
            self.get_logger().error(f"local costmap ignored: {exc}", throttle_duration_sec=5.0)
            return
        self._field = ObstacleField(grid, self._odom, self.params.lethal_threshold)
        self._field_time = self._now()

    def _on_policy(self, msg: FleetPolicy) -> None:
        was = self.policies.current
        offer = self.policies.offer(msg, time.monotonic(), self.params.policy_timeout)
        if not offer.accepted:
            # No policy: it neither replaces nor refreshes the one in force (which goes stale).
            log, held = self._policy_log.check(offer.reason)
            if log:
                self.get_logger().error(with_count(f"{offer.reason}; ignored", held))
            return
        cur = self.policies.current
        if cur.policy.paused:
            # Stop now, not at the next tick.
            self.follower.last = (0.0, 0.0)
            self._publish(stop(NavState.STOPPED, "fleet paused"))
        if not offer.changed:
            return
        if not cur.policy.paused:
            # A new limit or zone is enforced (and reported on navigation_status) now, not at the
            # next control tick: the DAO's decision reaches cmd_vel within the message's latency.
            self._tick()
        if offer.new_source:
            self.get_logger().warning(
                f"policy source {cur.source} (v{cur.version}) in force" + (f", replacing {was.source} v{was.version}: "
                                                                          "its versions start a new sequence" if was else ""))
        if offer.restarted:
            self.get_logger().warning(f"policy v{was.version} from {cur.source} had gone stale: v{cur.version} "
                                      "starts its sequence again")
        if was is not None and was.policy.paused != cur.policy.paused:
            self.get_logger().warning(f"fleet {'paused' if cur.policy.paused else 'resumed'} (policy v{cur.version})")
        self.get_logger().info(f"policy v{cur.version} from {cur.source}: max_speed {cur.policy.max_speed:.2f} m/s, "
                               f"paused {cur.policy.paused}, {len(cur.zones)} keep-out zone(s)")

    # ------------------------------------------------------------------ control

    def _speed_limit(self, x: float, y: float, max_speed: float) -> float:
        p = self.params
        lim = min(p.desired_linear_vel, max_speed)
        if self._mask is not None:
            m = self._mask.limit(x, y, p.desired_linear_vel)
            if m is not None:
                lim = min(lim, m)
        return lim

    def _tick(self) -> None:
        with self.diag_tick.measure():
            self._control_step()

    def _control_step(self) -> None:
        now = self._now()
        p = self.params
        active = None
        hold = self.policies.hold_reason(time.monotonic(), p.policy_timeout)
        if hold is None:
            active = self.policies.current
        if hold is not None:
            cmd = stop(NavState.STOPPED, hold)
        elif active.policy.paused:
            cmd = stop(NavState.STOPPED, "fleet paused")
        elif self._refused:
            cmd = stop(NavState.STOPPED, self._refused)
        elif self.follower.path is None:
            cmd = stop(NavState.IDLE, "no path")
        elif self._odom is None or now - self._odom_time > p.odom_timeout:
            cmd = stop(NavState.STOPPED, "no odom" if self._odom is None else "odom stale")
        elif p.require_costmap and (self._field is None or now - self._field_time > p.costmap_timeout):
            cmd = stop(NavState.STOPPED, "no local costmap" if self._field is None else "local costmap stale")
        elif not self._path_checked and (problem := path_problem(
                self.follower.path, self._path_frames, self._odom, p.frame_id, p.path_start_tolerance)):
            self._refuse(f"path refused: {problem}")
            cmd = stop(NavState.STOPPED, self._refused)
        else:
            self._path_checked = True
            fresh = self._field is not None and now - self._field_time <= p.costmap_timeout
            x, y, _ = self._odom
            limit = self._speed_limit(x, y, active.policy.max_speed)
            cmd = self.follower.step(self._odom, 1.0 / p.control_frequency, limit, self._field if fresh else None)
            cmd = self._last_stage(cmd, active, limit)
        if cmd.state in (NavState.STOPPED, NavState.IDLE, NavState.ARRIVED):
            self.follower.last = (0.0, 0.0)
        # While idle or arrived, publish zero once (on entering), so teleop can drive the robot.
        quiet = cmd.state in (NavState.IDLE, NavState.ARRIVED) and self._last_state == cmd.state
        self._publish(cmd, publish_cmd=not quiet, policy=active)

    def _last_stage(self, cmd: Command, active, limit: float) -> Command:
        """Independent of how the command was made: keep-out zones along its arc, then the clamp."""
        p = self.params
        guard = ZoneGuard(p.robot_radius, p.collision_horizon, p.collision_min_distance, 1.0 / p.control_frequency,
                          p.max_linear_accel)
        out = last_stage(cmd, self._odom, active.zones, guard, limit, p.max_angular_vel,
                         max_distance=cmd.distance_remaining)
        self.follower.last = (out.linear, out.angular)
        return out

    def _publish(self, cmd: Command, publish_cmd: bool = True, policy=None) -> None:
        if publish_cmd:
            t = Twist()
            t.linear.x = float(cmd.linear)
            t.angular.z = float(cmd.angular)
            self.cmd_pub.publish(t)
        # Logged on a change of state or cause (numbers in the reason, like an age, do not count).
        key = (cmd.state, re.sub(r"\d+(\.\d+)?", "#", cmd.reason) if cmd.state == NavState.STOPPED else "")
        if key != self._last_key:
            text = f"state {cmd.state.name}{': ' + cmd.reason if key[1] else ''}"
            if cmd.state == NavState.STOPPED:
                self.get_logger().warning(text)
            else:
                self.get_logger().info(text)
        self._last_key = key
        self._last_state = cmd.state
        s = NavigationStatus()
        s.header.stamp = self.get_clock().now().to_msg()
        s.header.frame_id = self.params.frame_id
        s.state = int(cmd.state)
        s.reason = cmd.reason
        s.distance_remaining = float(cmd.distance_remaining)
        s.progress = float(cmd.progress)
        s.speed_limit = float(cmd.speed_limit) if math.isfinite(cmd.speed_limit) else 0.0
        s.linear_velocity = float(cmd.linear)
        s.angular_velocity = float(cmd.angular)
        if policy is None:
            policy = self.policies.enforced(time.monotonic(), self.params.policy_timeout)
        if policy is not None:
            s.policy_version = int(policy.version)
            s.policy_source = policy.source
        self.status_pub.publish(s)


def main(args=None):
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
