"""ROS wiring of the live view: subscribes to the fleet's topics, draws them in Rerun and Foxglove.

One fleet-scoped process (`./depai launch --view`, or the stack entry `view`). Per robot `<r>` it
subscribes `<r>/points`, `<r>/odom`, `<r>/obstacles`, `<r>/plan`, `<r>/plan_result` (task goals),
`<r>/map` (latched; the first robot's is drawn), and when they exist `<r>/identity` (token balance,
read from the chain by the identity node) and `<r>/anchor_status` (batches anchored); fleet-wide
`/fleet/policy` (keep-out zones), `/tf` and `/tf_static`. Stations come from the world's stations
file (common/stations.py). Topics that nobody publishes simply stay empty panels.

Sweeps are drawn at most `cloud_rate` times a second per robot, downsampled to `cloud_points`,
placed in `map` by the transform at the sweep's stamp (common/tfbuffer.py). A message the view
cannot draw is counted and logged once per cause per `log_period`; it never ends the node. The
view only subscribes: it never alters the system it watches. Its inputs, what it could not place
or draw, and its viewers' servers are on /diagnostics (see `_diagnostics`).
"""

from __future__ import annotations

import sys
import time

from geometry_msgs.msg import PoseStamped  # noqa: F401 - PlanResult.goal's type
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from pydantic import Field
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import PointCloud2
from tf2_msgs.msg import TFMessage

from depai.msg import FleetPolicy, MachineIdentity, ObstacleArray, PlanResult, TxStatus
from depai_nodes.common.diagnostics import OK
from depai_nodes.common.logthrottle import CauseThrottle, with_count
from depai_nodes.common.params import READ_ONLY, ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, TF_QOS, TF_STATIC_QOS
from depai_nodes.common.runner import run_node
from depai_nodes.common.tfbuffer import TransformBuffer, TransformError, stamp_ns

from .core import FleetState, MapImage, Problems, ViewInputError, cloud_points, footprint, obstacle_boxes, path_points, station_markers, yaw_of, zone_outlines

POLICY_TOPIC = "/fleet/policy"
# Sweeps: reliable keep-last-1 (matches the simulator's reliable writer; best effort loses most
# multi-fragment samples). Only the newest matters to a viewer.
_CLOUD_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
_CONFIRMED = 2  # depai/TxStatus.CONFIRMED


class ViewParams(ParamsModel):
    robots: list[str] = Field(default_factory=lambda: ["robot1"], description="robot namespaces to draw", json_schema_extra=READ_ONLY)
    world: str = Field("warehouse", description="world whose stations file is drawn ('' : none)", json_schema_extra=READ_ONLY)
    rerun: bool = Field(True, description="serve the Rerun web viewer", json_schema_extra=READ_ONLY)
    rerun_web_port: int = Field(9090, ge=1, le=65535, description="http://127.0.0.1:<port>/ : the browser viewer", json_schema_extra=READ_ONLY)
    rerun_grpc_port: int = Field(9876, ge=1, le=65535, description="Rerun's gRPC data port (the viewer connects to it)", json_schema_extra=READ_ONLY)
    rerun_host: str = Field("127.0.0.1", description="address Rerun's data (gRPC) server binds", json_schema_extra=READ_ONLY)
    rerun_memory_limit: str = Field("512MiB", description="data Rerun's server keeps for late browsers", json_schema_extra=READ_ONLY)
    foxglove: bool = Field(True, description="serve a Foxglove WebSocket endpoint", json_schema_extra=READ_ONLY)
    foxglove_host: str = Field("127.0.0.1", description="address the Foxglove endpoint binds", json_schema_extra=READ_ONLY)
    foxglove_port: int = Field(8765, ge=0, le=65535, description="ws://<host>:<port> (0: any free port, logged)", json_schema_extra=READ_ONLY)
    cloud_rate: float = Field(2.0, gt=0.0, le=20.0, description="Hz: sweeps drawn per robot at most")
    cloud_points: int = Field(6000, ge=100, le=200000, description="points drawn per sweep at most")
    robot_radius: float = Field(0.3, gt=0.0, le=5.0, description="m, footprint drawn")
    pose_rate: float = Field(10.0, gt=0.0, le=100.0, description="Hz: footprints and speed drawn per robot at most")
    log_period: float = Field(10.0, ge=0.0, le=3600.0, description="s; a repeated drawing problem is logged at most this often")


class ViewNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("view", **kwargs)
        self.params = declare_params(self, ViewParams)
        p = self.params
        self._throttle = CauseThrottle(p.log_period)
        self.tf = TransformBuffer(cache_s=10.0)
        self.state = FleetState()
        self.sinks = []
        self.servers: dict[str, tuple[int, str, dict[str, str]]] = {}  # viewer -> its /diagnostics entry
        self._start_viewers()
        self._diagnostics()
        self._index = {r: i for i, r in enumerate(p.robots)}
        self._last_cloud: dict[str, float] = {}
        self._last_pose: dict[str, float] = {}
        self._map_robot: str | None = None
        self.drawn = {"clouds": 0, "poses": 0, "problems": 0}
        self._draw_stations()
        for r in p.robots:
            # raw: a sweep that is not drawn (most of them, at cloud_rate) is never deserialized
            self.create_subscription(PointCloud2, f"{r}/points", lambda m, r=r: self._on_cloud(r, m), _CLOUD_QOS, raw=True)
            self.create_subscription(Odometry, f"{r}/odom", lambda m, r=r: self._on_odom(r, m), SENSOR_QOS)
            self.create_subscription(ObstacleArray, f"{r}/obstacles", lambda m, r=r: self._on_obstacles(r, m), RELIABLE_QOS)
            self.create_subscription(Path, f"{r}/plan", lambda m, r=r: self._on_plan(r, m), LATCHED_QOS)
            self.create_subscription(PlanResult, f"{r}/plan_result", lambda m, r=r: self._on_plan_result(r, m), RELIABLE_QOS)
            self.create_subscription(OccupancyGrid, f"{r}/map", lambda m, r=r: self._on_map(r, m), LATCHED_QOS)
            self.create_subscription(MachineIdentity, f"{r}/identity", lambda m, r=r: self._on_identity(r, m), LATCHED_QOS)
            self.create_subscription(TxStatus, f"{r}/anchor_status", lambda m, r=r: self._on_anchor(r, m), RELIABLE_QOS)
        self.create_subscription(FleetPolicy, POLICY_TOPIC, self._on_policy, LATCHED_QOS)
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), TF_QOS)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), TF_STATIC_QOS)
        self.create_timer(0.5, lambda: self._each("tick"))  # re-sends latched content to new Foxglove clients

    def _start_viewers(self) -> None:
        """Each enabled viewer's server. One that cannot start (a port in use) is an ERROR on
        /diagnostics and the other one goes on; none started: a configuration error (exit 2)."""
        from depai_nodes.common.diagnostics import ERROR

        p = self.params
        failed = []
        for viewer, param in (("rerun", "rerun_web_port"), ("foxglove", "foxglove_port")):
            if not getattr(p, viewer):
                self.servers[viewer] = (OK, f"disabled ({viewer}: false)", {})
                continue
            try:
                if viewer == "rerun":
                    from .rerun_sink import RerunSink

                    sink = RerunSink(grpc_port=p.rerun_grpc_port, web_port=p.rerun_web_port, memory_limit=p.rerun_memory_limit,
                                     host=p.rerun_host)
                    self.get_logger().info(f"live view (Rerun) in a browser: {sink.web_url}")
                    self.servers[viewer] = (OK, f"serving {sink.web_url}", {"web_url": sink.web_url, "grpc_url": sink.grpc_url})
                else:
                    from .foxglove_sink import FoxgloveSink

                    sink = FoxgloveSink(host=p.foxglove_host, port=p.foxglove_port)
                    self.get_logger().info(f"Foxglove endpoint: ws://{p.foxglove_host}:{sink.port} (layout: config/foxglove_layout.json)")
                    self.servers[viewer] = (OK, f"serving ws://{p.foxglove_host}:{sink.port}", {"url": f"ws://{p.foxglove_host}:{sink.port}"})
                self.sinks.append(sink)
            except ImportError as error:
                raise ParameterError(viewer, f"the viewer extra is not installed ({error}); `./depai launch --view` installs requirements/view.txt") from None
            except (OSError, RuntimeError) as error:  # a port in use
                failed.append((param, error))
                self.servers[viewer] = (ERROR, f"failed to start: {error}", {"error": str(error)[:200]})
        if failed and not self.sinks:
            param, error = failed[0]
            raise ParameterError(param, f"cannot serve the view: {error}")
        for param, error in failed:
            self.get_logger().error(f"cannot serve the viewer of `{param}`: {error}; the other viewer goes on")

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py), cheap on the hot paths (a tick() per message):
        inputs `<r>/points`, `<r>/odom`, `<r>/plan` per robot, `/fleet/policy`, `/tf` (WARN: none
        yet, or streams (points, odom, /tf) silent for 2 s); `placement` (messages that could not
        be placed in map: the TF errors, WARN while the last is under 10 s old); `drawing` (other
        undrawable messages, the same way; sweeps and poses drawn); `viewer rerun` / `viewer
        foxglove` (OK serving or disabled; ERROR: failed to start)."""
        from depai_nodes.common.diagnostics import NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        d = self.diag.diag
        self._in: dict[str, dict[str, object]] = {}
        for r in self.params.robots:
            self._in[r] = {
                "points": d.topic(self.resolve_topic_name(f"{r}/points"), stale_after=2.0),
                "odom": d.topic(self.resolve_topic_name(f"{r}/odom"), stale_after=2.0),
                "plan": d.topic(self.resolve_topic_name(f"{r}/plan")),
            }
        self._in_policy = d.topic(POLICY_TOPIC)
        self._in_tf = d.topic("/tf", stale_after=2.0)
        self.placement = Problems("place in map")
        self.drawing = Problems("draw")
        d.check("placement", lambda: self.placement.check(time.monotonic()))
        d.check("drawing", lambda: self.drawing.check(time.monotonic(), {
            "sweeps": str(self.drawn["clouds"]), "poses": str(self.drawn["poses"])}))
        for viewer in self.servers:
            d.check(f"viewer {viewer}", lambda v=viewer: self._server_status(v))

    def _server_status(self, viewer: str) -> tuple[int, str, dict[str, str]]:
        level, message, values = self.servers[viewer]
        if viewer == "foxglove" and level == OK:
            sink = next((s for s in self.sinks if hasattr(s, "subscriptions")), None)
            if sink is not None:
                values = {**values, "subscriptions": str(sink.subscriptions)}
        return level, message, values

    # ---- helpers
    def _each(self, method: str, *args) -> None:
        for sink in self.sinks:
            fn = getattr(sink, method, None)
            if fn is not None:
                fn(*args)

    def _problem(self, what: str, error: Exception) -> None:
        self.drawn["problems"] += 1
        (self.placement if isinstance(error, TransformError) else self.drawing).add(time.monotonic(), what, error)
        log_now, suppressed = self._throttle.check(f"{what}: {type(error).__name__}")
        if log_now:
            self.get_logger().warning(with_count(f"cannot draw {what}: {error}", suppressed))

    def _now(self) -> float:
        """The node's clock (sim time with use_sim_time): where chain-side samples go on the
        timeline (their stamps may come from another clock, e.g. a block's time)."""
        return self.get_clock().now().nanoseconds / 1e9

    def _to_map(self, frame: str, stamp):
        """The transform frame -> map at the stamp; the latest one when the message came before the
        transform of its own stamp (/tf and the data travel on different topics). TransformError otherwise."""
        try:
            return self.tf.lookup("map", frame, stamp_ns(stamp))
        except TransformError:
            return self.tf.lookup("map", frame, None)

    def _draw_stations(self) -> None:
        if not self.params.world:
            return
        from depai_nodes.common.stations import StationsError, load_stations, stations_path_for

        try:
            path = stations_path_for(self.params.world)
        except Exception:  # noqa: BLE001 - an SDF path or an unknown world: no stations to draw
            return
        if not path.exists():
            return
        try:
            pts, labels = station_markers(load_stations(path).stations)
        except StationsError as error:
            self._problem("stations", error)
            return
        self._each("stations", pts, labels)

    # ---- callbacks
    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        if not static:
            self._in_tf.tick()
        try:
            self.tf.add_message(msg, static=static)
        except (ValueError, TransformError) as error:
            self._problem("/tf", error)
        self._each("transforms", msg, static)

    def _on_cloud(self, robot: str, raw: bytes) -> None:
        self._in[robot]["points"].tick()
        now = time.monotonic()
        if now - self._last_cloud.get(robot, -1e9) < 1.0 / self.params.cloud_rate:
            return
        self._last_cloud[robot] = now
        try:
            msg = deserialize_message(raw, PointCloud2)
        except Exception as error:  # noqa: BLE001 - a malformed sample: counted, not fatal
            self._problem(f"{robot}/points", ViewInputError(f"cannot deserialize: {error}"))
            return
        try:
            to_map = self._to_map(msg.header.frame_id, msg.header.stamp)
            cloud = cloud_points(msg, to_map, self.params.cloud_points)
        except (ViewInputError, TransformError) as error:
            self._problem(f"{robot}/points", error)
            return
        self.drawn["clouds"] += 1
        self._each("cloud", robot, self._index[robot], stamp_ns(msg.header.stamp) / 1e9, cloud)

    def _on_obstacles(self, robot: str, msg: ObstacleArray) -> None:
        try:
            to_map = self._to_map(msg.header.frame_id, msg.header.stamp)
            boxes = obstacle_boxes(msg, to_map)
        except (ViewInputError, TransformError) as error:
            self._problem(f"{robot}/obstacles", error)
            return
        self._each("obstacles", robot, self._index[robot], stamp_ns(msg.header.stamp) / 1e9, boxes)

    def _on_odom(self, robot: str, msg: Odometry) -> None:
        self._in[robot]["odom"].tick()
        now = time.monotonic()
        if now - self._last_pose.get(robot, -1e9) < 1.0 / self.params.pose_rate:
            return
        self._last_pose[robot] = now
        t = stamp_ns(msg.header.stamp) / 1e9
        try:
            to_map = self._to_map(msg.header.frame_id, msg.header.stamp)
            pose = msg.pose.pose
            x, y, _ = to_map.apply([[pose.position.x, pose.position.y, 0.0]])[0]
            yaw = yaw_of(pose.orientation) + to_map.yaw
            strips = footprint(float(x), float(y), yaw, self.params.robot_radius)
            speed = self.state.on_odom(robot, msg)
        except (ViewInputError, TransformError) as error:
            self._problem(f"{robot}/odom", error)
            return
        self.drawn["poses"] += 1
        self._each("robot", robot, self._index[robot], t, float(x), float(y), strips)
        self._each("scalar", "speed", robot, t, speed)

    def _on_plan(self, robot: str, msg: Path) -> None:
        self._in[robot]["plan"].tick()
        if msg.header.frame_id not in ("map", ""):
            self._problem(f"{robot}/plan", ViewInputError(f"frame '{msg.header.frame_id}' (the view draws plans in map)"))
            return
        self._each("path", robot, self._index[robot], stamp_ns(msg.header.stamp) / 1e9, path_points(msg))

    def _on_plan_result(self, robot: str, msg: PlanResult) -> None:
        if msg.result != 0:
            return
        p = msg.goal.pose.position
        label = f"{robot} goal ({p.x:.1f}, {p.y:.1f})"
        self._each("goal", robot, self._index[robot], stamp_ns(msg.header.stamp) / 1e9, float(p.x), float(p.y), label)

    def _on_map(self, robot: str, msg: OccupancyGrid) -> None:
        if self._map_robot not in (None, robot):
            return  # one ground-truth map for the fleet: the first robot's
        try:
            image = MapImage.from_grid(msg)
        except ViewInputError as error:
            self._problem(f"{robot}/map", error)
            return
        self._map_robot = robot
        self._each("map", image)
        if getattr(self, "_zones", None):
            self._each("zones", self._zones_t, self._zones)

    def _on_policy(self, msg: FleetPolicy) -> None:
        self._in_policy.tick()
        try:
            zones = zone_outlines(msg)
        except ViewInputError as error:
            self._problem(POLICY_TOPIC, error)
            return
        self._zones, self._zones_t = zones, stamp_ns(msg.header.stamp) / 1e9
        self._each("zones", self._zones_t, zones)

    def _on_identity(self, robot: str, msg: MachineIdentity) -> None:
        if not msg.token_balance:
            return
        try:
            value = self.state.on_balance(robot, msg.token_balance)
        except ViewInputError as error:
            self._problem(f"{robot}/identity", error)
            return
        self._each("scalar", "balance", robot, self._now(), value)

    def _on_anchor(self, robot: str, msg: TxStatus) -> None:
        count = self.state.on_anchor_status(robot, msg.request_id, msg.status == _CONFIRMED)
        self._each("scalar", "batches", robot, self._now(), count)

    def on_shutdown(self) -> None:
        self.get_logger().info(f"view drew {self.drawn['clouds']} sweeps, {self.drawn['poses']} poses ({self.drawn['problems']} problems)")
        for sink in self.sinks:
            sink.close()


def main(args=None) -> int:
    return run_node(ViewNode, args)


if __name__ == "__main__":
    sys.exit(main())
