"""ROS wiring of the embedded simulator: one process, one world, N namespaced robots.

Per robot ``<r>`` (relative names, so ``robots: [robot1, robot2]`` gives ``/robot1/...``):

* subscribes ``<r>/cmd_vel`` (geometry_msgs/Twist);
* publishes ``<r>/odom`` (nav_msgs/Odometry, ``<r>/odom`` -> ``<r>/base_link``) and ``<r>/points``
  (sensor_msgs/PointCloud2 in ``<r>/lidar_link``, organized beams x horizontal, reliable keep-last-5);

once, ``/clock`` (rosgraph_msgs/Clock); and the TF tree per REP-105 (tf2_msgs/TFMessage): on
``/tf``, with every odometry message and the same stamp, ``map -> <r>/odom`` (what a localiser
would publish: ground truth here, and since this odometry does not drift it is the identity) and
``<r>/odom -> <r>/base_link`` (the odometry); on ``/tf_static`` (latched) ``<r>/base_link ->
<r>/lidar_link`` (the LiDAR mount). Frames carry the robot's name as prefix (``frame_prefix``). The simulator owns time: a wall-clock timer runs at
``physics_rate * real_time_factor`` and each tick advances simulated time by one fixed step, so
every consumer with ``use_sim_time`` sees a consistent clock. If a tick takes longer than its
period (a slow machine), simulated time slows down instead of skipping sweeps.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import PointCloud2
from tf2_msgs.msg import TFMessage

from depai_nodes.common.params import ParameterError, declare_params
from depai_nodes.common.pointcloud2 import CloudBuffer
from depai_nodes.common.qos import CLOUD_QOS, LATCHED_QOS, RELIABLE_QOS, TF_QOS, TF_STATIC_QOS
from depai_nodes.common.runner import run_node

from .core import CLOUD_DTYPE, LidarConfig, SimParams, Simulator, SimulatorError, robot_frames
from .sdf import SdfError

# Parameters that shape the world or the set of robots cannot change while running.
_RESTART_ONLY = {"world", "robots", "spawn_poses", "physics_rate", "seed"}
_CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
MAP_FRAME = "map"


def _stamp(t: float) -> Time:
    """builtin_interfaces/Time of t seconds (rounded to the nanosecond, carry included)."""
    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _transform(stamp: Time, parent: str, child: str, z: float = 0.0) -> TransformStamped:
    """parent -> child, a translation along z (0: the identity)."""
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.z = float(z)
    t.transform.rotation.w = 1.0
    return t


def _topic(robot: str, name: str) -> str:
    return f"{robot}/{name}" if robot else name


class SimulatorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("simulator", **kwargs)
        self.params = declare_params(self, SimParams, on_change=self._on_params)
        try:
            self.sim = Simulator(self.params)
        except (SimulatorError, SdfError) as error:
            field = "spawn_poses" if "spawns inside" in str(error) else "world"
            raise ParameterError(field, str(error)) from None
        for w in self.sim.world.warnings:
            self.get_logger().warning(w)
        p = self.params
        self.dt = 1.0 / p.physics_rate
        self.clock_pub = self.create_publisher(Clock, "/clock", _CLOCK_QOS)
        self.odom_pubs, self.cloud_pubs, self.buffers = {}, {}, {}
        n = p.lidar_beams * p.lidar_horizontal
        for name in p.robots:
            self.create_subscription(Twist, _topic(name, "cmd_vel"), lambda msg, r=name: self._on_cmd(r, msg), RELIABLE_QOS)
            self.odom_pubs[name] = self.create_publisher(Odometry, _topic(name, "odom"), RELIABLE_QOS)
            # Reliable keep-last-5: best-effort delivery of 2.6 MB sweeps loses most of them with
            # Fast DDS defaults (bench/transport.py); reliable writers also serve best-effort readers.
            self.cloud_pubs[name] = self.create_publisher(PointCloud2, _topic(name, "points"), CLOUD_QOS)
            self.buffers[name] = CloudBuffer(CLOUD_DTYPE, n)
        self.frames = {name: robot_frames(name, p.frame_prefix) for name in p.robots}
        self.tf_pub = self.create_publisher(TFMessage, "/tf", TF_QOS)
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        self._publish_static_tf()
        self.map_pubs = {}
        if p.publish_map:
            self._publish_maps()
        self.steps = 0
        self.sweeps_published = 0
        self._next_odom = 0.0
        self._next_lidar = 0.0
        self._wall0 = time.monotonic()
        self.timer = self.create_timer(1.0 / (p.physics_rate * p.real_time_factor), self._tick)
        self._diagnostics()
        robots = ", ".join(self.resolve_topic_name(_topic(r, "points")) for r in p.robots)
        self.get_logger().info(
            f"simulating world '{self.sim.world.name}' ({len(self.sim.objects)} models) with "
            f"{len(p.robots)} robot(s); LiDAR {p.lidar_beams}x{p.lidar_horizontal} at {p.lidar_rate:g} Hz on {robots}")

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): `real-time factor` (simulated s per wall s between
        two reports; WARN below 80 % of the target: the machine is too slow, simulated time slows
        down, nothing is skipped), the physics step's time, and `<robot>/cmd_vel` per robot (WARN:
        no command yet or none for 1 s: nothing drives that robot, it stands)."""
        from depai_nodes.common.diagnostics import OK, WARN, NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        self.diag_step = self.diag.diag.timing("step")
        self.diag_cmd = {name: self.diag.diag.topic(_topic(name, "cmd_vel"), stale_after=1.0) for name in self.params.robots}
        last: list[float] = []  # wall, simulated time at the previous report

        def rtf():
            wall, sim = time.monotonic(), self.sim.time
            target = self.params.real_time_factor
            values = {"target": f"{target:g}", "sim_time_s": f"{sim:.2f}", "steps": self.steps, "sweeps": self.sweeps_published}
            prev, last[:] = list(last), [wall, sim]
            if not prev or wall - prev[0] <= 0:
                return OK, "measuring", values
            factor = (sim - prev[1]) / (wall - prev[0])
            values["factor"] = f"{factor:.3f}"
            if factor < 0.8 * target:
                return WARN, f"slow: {factor:.2f} x real time, target {target:g} (simulated time slows down)", values
            return OK, f"{factor:.2f} x real time", values

        self.diag.diag.check("real-time factor", rtf)

    def _on_cmd(self, robot: str, msg: Twist) -> None:
        self.diag_cmd[robot].tick()
        self.sim.set_cmd(robot, msg.linear.x, msg.angular.z)

    def _publish_maps(self) -> None:
        """The world's ground-truth occupancy map, latched on <r>/map for each robot's planner."""
        t0 = time.monotonic()
        grid, ox, oy = self.sim.occupancy_map(self.params.map_resolution)
        msg = OccupancyGrid()
        msg.header.frame_id = MAP_FRAME
        msg.header.stamp = _stamp(self.sim.time)
        msg.info.map_load_time = msg.header.stamp
        msg.info.resolution = float(self.params.map_resolution)
        msg.info.height, msg.info.width = grid.shape
        msg.info.origin.position.x, msg.info.origin.position.y = ox, oy
        msg.info.origin.orientation.w = 1.0
        msg.data = grid.ravel().tobytes()
        for name in self.params.robots:
            self.map_pubs[name] = self.create_publisher(OccupancyGrid, _topic(name, "map"), LATCHED_QOS)
            self.map_pubs[name].publish(msg)
        self.get_logger().info(
            f"ground-truth map {grid.shape[1]}x{grid.shape[0]} @ {self.params.map_resolution:g} m "
            f"({time.monotonic() - t0:.2f} s) on {', '.join(self.resolve_topic_name(_topic(r, 'map')) for r in self.params.robots)}")

    def _on_params(self, params: SimParams) -> None:
        changed = {k for k in SimParams.model_fields if getattr(params, k) != getattr(self.params, k)}
        ignored = changed & _RESTART_ONLY
        if ignored:
            self.get_logger().warning(f"{', '.join(sorted(ignored))} take effect after a restart")
        self.params = params
        self.sim.params = params
        new_lidar = LidarConfig.from_params(params)
        if new_lidar != self.sim.lidar:
            self.sim.lidar = new_lidar
            self.sim._dirs = new_lidar.directions()
            for name in self.buffers:
                self.buffers[name] = CloudBuffer(CLOUD_DTYPE, params.lidar_beams * params.lidar_horizontal)
        self.timer.timer_period_ns = int(1e9 / (params.physics_rate * params.real_time_factor))
        if "lidar_mount_height" in changed:
            self._publish_static_tf()

    def _tick(self) -> None:
        try:
            with self.diag_step.measure():
                self._step_and_publish()
        except Exception:
            # A SIGINT/SIGTERM handled in the middle of a tick shuts the context down under our
            # feet; publishing then fails, which is the expected end, not a crash.
            if self.context.ok():
                raise

    def _step_and_publish(self) -> None:
        p = self.params
        self.sim.step(self.dt)
        self.steps += 1
        now = self.sim.time
        stamp = _stamp(now)
        self.clock_pub.publish(Clock(clock=stamp))
        if now + 1e-9 >= self._next_odom:
            self._next_odom += 1.0 / p.odom_rate
            transforms = []
            for name, r in self.sim.robots.items():
                odom = self._odom(r, stamp, *self.frames[name][:2])
                self.odom_pubs[name].publish(odom)
                transforms += [_transform(stamp, MAP_FRAME, odom.header.frame_id), self._odom_tf(odom)]
            self.tf_pub.publish(TFMessage(transforms=transforms))
        if now + 1e-9 >= self._next_lidar:
            self._next_lidar += 1.0 / p.lidar_rate
            for name in self.sim.robots:
                self._publish_sweep(name, stamp)

    def _publish_static_tf(self) -> None:
        """base_link -> lidar_link of every robot, in one latched message (a late subscriber gets all)."""
        stamp = _stamp(self.sim.time)
        self.tf_static_pub.publish(TFMessage(transforms=[
            _transform(stamp, base, lidar, z=self.params.lidar_mount_height)
            for _, base, lidar in self.frames.values()
        ]))

    @staticmethod
    def _odom_tf(odom: Odometry) -> TransformStamped:
        t = _transform(odom.header.stamp, odom.header.frame_id, odom.child_frame_id)
        p = odom.pose.pose
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = p.position.x, p.position.y, p.position.z
        t.transform.rotation = p.orientation
        return t

    @staticmethod
    def _odom(r, stamp, odom_frame: str = "odom", base_frame: str = "base_link") -> Odometry:
        o = Odometry()
        o.header.stamp = stamp
        o.header.frame_id = odom_frame
        o.child_frame_id = base_frame
        o.pose.pose.position.x, o.pose.pose.position.y, o.pose.pose.position.z = r.x, r.y, r.z
        o.pose.pose.orientation.z = math.sin(r.yaw / 2)
        o.pose.pose.orientation.w = math.cos(r.yaw / 2)
        o.twist.twist.linear.x = r.v
        o.twist.twist.angular.z = r.w
        return o

    def _publish_sweep(self, name: str, stamp) -> None:
        sweep = self.sim.sweep(name)
        buf = self.buffers[name]
        buf.xyz[:] = sweep.xyz.reshape(-1, 3)
        buf.points["intensity"] = sweep.intensity.reshape(-1)
        buf.points["ring"] = self._rings()  # row index: 0 = lowest beam
        msg = buf.to_msg(self.frames[name][2], stamp, height=self.params.lidar_beams)
        self.cloud_pubs[name].publish(msg)
        self.sweeps_published += 1

    def _rings(self):
        p = self.params
        key = (p.lidar_beams, p.lidar_horizontal)
        if getattr(self, "_ring_key", None) != key:
            self._ring_key = key
            self._ring = np.repeat(np.arange(p.lidar_beams, dtype=np.uint16), p.lidar_horizontal)
        return self._ring

    def on_shutdown(self) -> None:
        wall = time.monotonic() - self._wall0
        self.get_logger().info(
            f"simulated {self.sim.time:.1f} s in {wall:.1f} s wall (real-time factor {self.sim.time / max(wall, 1e-9):.2f}); "
            f"published {self.sweeps_published} sweeps")


def main(args=None) -> int:
    return run_node(SimulatorNode, args)


if __name__ == "__main__":
    sys.exit(main())
