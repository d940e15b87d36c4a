"""ROS wiring of the path-following controller (regulated pure pursuit).

Subscribes ``plan``, ``odom``, ``local_costmap`` and ``/fleet/policy``; publishes ``cmd_vel``
and ``navigation_status`` every control period. It holds still (zero ``cmd_vel``, state
STOPPED with the reason) when the fleet is paused, when odom is missing or stale, when the
local costmap is missing or stale (unless ``require_costmap`` is false), or when the rolled-out
command would collide. A fleet pause is applied the moment the policy arrives: the zero command
is published from the policy callback, without waiting for the next control tick.
"""
from __future__ import annotations

import math
import sys
from typing import Literal

from geometry_msgs.msg import Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from pydantic import Field
from rclpy.node import Node

from depai.msg import FleetPolicy, NavigationStatus
from depai_nodes.common.params import ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
from depai_nodes.common.runner import run_node
from depai_nodes.planner.errors import InvalidGridError, MapLoadError
from depai_nodes.planner.mapio import load_map
from depai_nodes.planner.node import grid_from_msg

from .core import Command, ControllerConfig, InvalidPathError, NavState, ObstacleField, PathFollower, SpeedMask, stop

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
        self._paused = False
        self._max_speed = math.inf
        self._last_state = None
        self._last_key = None
        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
        self.status_pub = self.create_publisher(NavigationStatus, "navigation_status", RELIABLE_QOS)
        self.create_subscription(Path, "plan", self._on_plan, RELIABLE_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        self.create_subscription(OccupancyGrid, "local_costmap", self._on_local, SENSOR_QOS)
        self.create_subscription(FleetPolicy, POLICY_TOPIC, self._on_policy, LATCHED_QOS)
        self._timer = self.create_timer(1.0 / self.params.control_frequency, self._tick)

    def _config(self) -> ControllerConfig:
        p = self.params
        names = ControllerConfig.__dataclass_fields__.keys()
        return ControllerConfig(**{k: getattr(p, k) for k in names})

    def _load_mask(self) -> None:
        p = self.params
        self._mask = None
        if p.speed_mask_yaml:
            try:
                mask = load_map(p.speed_mask_yaml)
            except MapLoadError as exc:
                raise ParameterError("speed_mask_yaml", str(exc)) from None
            self._mask = SpeedMask(mask, p.speed_mask_type, p.speed_mask_base, p.speed_mask_multiplier)

    def _on_params(self, new: ControllerParams) -> None:
        old = self.params
        self.params = new
        self.follower.config = self._config()
        if (old.speed_mask_yaml, old.speed_mask_type, old.speed_mask_base, old.speed_mask_multiplier) != (
                new.speed_mask_yaml, new.speed_mask_type, new.speed_mask_base, new.speed_mask_multiplier):
            try:
                self._load_mask()
            except ParameterError as exc:
                self.get_logger().error(f"speed mask not loaded: {exc}")
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
        try:
            self.follower.set_path(pts, goal_yaw)
        except InvalidPathError as exc:
            self.follower.set_path([])
            self.get_logger().error(f"path rejected, stopping: {exc}")
        if not pts:
            self.get_logger().info("empty path: stopping")
            self._publish(stop(NavState.IDLE, "empty path"))
        else:
            self.get_logger().info(f"following a path of {self.follower.length:.2f} m ({len(pts)} poses)")

    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        vals = (p.position.x, p.position.y, _yaw(p.orientation))
        if all(math.isfinite(v) for v in vals):
            self._odom = vals
            self._odom_time = self._now()

    def _on_local(self, msg: OccupancyGrid) -> None:
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
        was = self._paused
        self._paused = bool(msg.paused)
        if math.isfinite(msg.max_speed) and msg.max_speed >= 0:
            self._max_speed = float(msg.max_speed)  # 0 means: do not move
        else:
            self._max_speed = 0.0
            self.get_logger().error(f"policy v{msg.version}: invalid max_speed {msg.max_speed}; holding still")
        if self._paused:
            # Stop now, not at the next tick.
            self.follower.last = (0.0, 0.0)
            self._publish(stop(NavState.STOPPED, "fleet paused"))
        if was != self._paused:
            self.get_logger().warning(f"fleet {'paused' if self._paused else 'resumed'} (policy v{msg.version})")
        self.get_logger().info(f"policy v{msg.version}: max_speed {msg.max_speed:.2f} m/s, paused {self._paused}")

    # ------------------------------------------------------------------ control

    def _speed_limit(self, x: float, y: float) -> float:
        p = self.params
        lim = min(p.desired_linear_vel, self._max_speed)
        if self._mask is not None:
            m = self._mask.limit(x, y, p.desired_linear_vel)
            if m is not None:
                lim = min(lim, m)
        return lim

    def _tick(self) -> None:
        now = self._now()
        p = self.params
        if self.follower.path is None:
            cmd = stop(NavState.IDLE, "no path")
        elif self._paused:
            cmd = stop(NavState.STOPPED, "fleet paused")
        elif self._odom is None or now - self._odom_time > p.odom_timeout:
            cmd = stop(NavState.STOPPED, "no odom" if self._odom is None else "odom stale")
        elif p.require_costmap and (self._field is None or now - self._field_time > p.costmap_timeout):
            cmd = stop(NavState.STOPPED, "no local costmap" if self._field is None else "local costmap stale")
        else:
            fresh = self._field is not None and now - self._field_time <= p.costmap_timeout
            x, y, _ = self._odom
            cmd = self.follower.step(self._odom, 1.0 / p.control_frequency, self._speed_limit(x, y),
                                     self._field if fresh else None)
        if cmd.state in (NavState.STOPPED, NavState.IDLE, NavState.ARRIVED):
            self.follower.last = (0.0, 0.0)
        # While idle or arrived, publish zero once (on entering), so teleop can drive the robot.
        quiet = cmd.state in (NavState.IDLE, NavState.ARRIVED) and self._last_state == cmd.state
        self._publish(cmd, publish_cmd=not quiet)

    def _publish(self, cmd: Command, publish_cmd: bool = True) -> None:
        if publish_cmd:
            t = Twist()
            t.linear.x = float(cmd.linear)
            t.angular.z = float(cmd.angular)
            self.cmd_pub.publish(t)
        key = (cmd.state, cmd.reason if cmd.state == NavState.STOPPED else "")
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
        s.header.frame_id = "map"
        s.state = int(cmd.state)
        s.reason = cmd.reason
        s.distance_remaining = float(cmd.distance_remaining)
        s.progress = float(cmd.progress)
        s.speed_limit = float(cmd.speed_limit) if math.isfinite(cmd.speed_limit) else 0.0
        s.linear_velocity = float(cmd.linear)
        s.angular_velocity = float(cmd.angular)
        self.status_pub.publish(s)


def main(args=None):
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
