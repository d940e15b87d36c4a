"""ROS wiring of the global planner: goals in, result-coded plans out, replans on change.

Subscribes ``goal_pose``, ``odom``, ``local_costmap``, ``/fleet/policy`` (and ``map`` when no
``map_yaml`` is given); publishes ``plan`` (nav_msgs/Path), ``plan_result`` (depai/PlanResult,
one per attempt) and ``global_costmap`` (latched, for RViz); serves ``plan_path``
(depai/srv/PlanPath). Every refusal is logged with its result code and reason. ``plan`` is
latched (transient local, depth 1): a plan published before the controller's subscription
matched is still delivered. A custom start (``use_start``) is for dry runs only: a plan the
robot follows always starts where the robot stands.

While a goal is active the path ahead of the robot is checked every ``replan_period``: when a
new obstacle or keep-out zone blocks it, the planner replans; when that fails it publishes an
empty path (the controller then holds still) and retries, at most ``max_replan_failures``
times in a row before it drops the goal.
"""
from __future__ import annotations

import array
import math
import sys
import time
from typing import Literal

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from pydantic import Field, model_validator
from rclpy.node import Node

from depai.msg import FleetPolicy, PlanResult as PlanResultMsg
from depai.srv import PlanPath
from depai_nodes.common.params import READ_ONLY, ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, TF_QOS, TF_STATIC_QOS
from depai_nodes.common.tfbuffer import ExtrapolationError, TransformBuffer, TransformError, TransformQueue, stamp_ns
from depai_nodes.common.runner import run_node

from . import search
from .core import CostmapConfig, GlobalCostmap, LocalCostmap, PlanCode, Planner, PlanResult, densify
from .errors import InvalidGridError, InvalidPolygonError, MapLoadError
from .mapio import OccupancyMap, load_map, load_map_or_world

POLICY_TOPIC = "/fleet/policy"


class PlannerParams(ParamsModel):
    map_yaml: str = Field("", description="map_server YAML of the static map, or an SDF world (*.sdf) to rasterise; empty: subscribe to `map`", json_schema_extra=READ_ONLY)
    keepout_mask_yaml: str = Field("", description="Nav2 keep-out filter mask YAML (occupied cells are forbidden); empty: none", json_schema_extra=READ_ONLY)
    frame_id: str = Field("map", min_length=1, description="planning frame (goals in this frame or in `odom`, which equals it)", json_schema_extra=READ_ONLY)
    mode: Literal["optimal", "smooth"] = Field("smooth", description="optimal: 8-connected A*; smooth: A* then any-angle string pulling")
    robot_radius: float = Field(0.22, ge=0.0, le=5.0, description="m; the robot centre keeps at least this far from lethal cells")
    inflation_radius: float = Field(0.55, ge=0.0, le=10.0, description="m; the cost gradient reaches this far from lethal cells")
    cost_scaling_factor: float = Field(3.0, ge=0.0, le=100.0, description="1/m; decay rate of the cost gradient")
    cost_weight: float = Field(2.0, ge=0.0, le=100.0, description="extra cost per metre at the robot radius (0: pure shortest paths)")
    lethal_threshold: int = Field(65, ge=1, le=100, description="occupancy value from which a cell is an obstacle")
    allow_unknown: bool = Field(False, description="plan through unknown (-1) cells of the static map")
    replan_period: float = Field(0.1, gt=0.0, le=10.0, description="s between checks that the path ahead is still free")
    costmap_timeout: float = Field(1.0, gt=0.0, le=60.0, description="s; an older local costmap is stale: plans are refused")
    odom_timeout: float = Field(1.0, gt=0.0, le=60.0, description="s; with older odom the start pose is unknown")
    path_spacing: float = Field(0.05, gt=0.0, le=1.0, description="m between consecutive poses of the published path")
    smooth_tolerance: float = Field(0.02, ge=0.0, le=1.0, description="smooth mode: a shortcut may cost this fraction more than the grid path")
    goal_tolerance: float = Field(0.15, gt=0.0, le=5.0, description="m; within this of the goal the goal is done (no more replans)")
    max_replan_failures: int = Field(50, ge=1, le=100000, description="failed replans in a row before the goal is dropped")
    tf_placement: bool = Field(True, description="place each local costmap by the transform `frame_id` <- its frame at its stamp (/tf, /tf_static); false: at the latest odometry pose (a stack without TF)", json_schema_extra=READ_ONLY)
    tf_cache: float = Field(10.0, gt=0.0, le=300.0, description="s of /tf history kept for lookups at a costmap's stamp", json_schema_extra=READ_ONLY)
    tf_wait: float = Field(0.5, ge=0.0, le=10.0, description="s a local costmap stamped after the newest /tf sample is held for that sample (as tf2_ros MessageFilter); 0: ignored at once", json_schema_extra=READ_ONLY)
    publish_costmap: bool = Field(True, description="publish the inflated planning grid on `global_costmap` (latched)", json_schema_extra=READ_ONLY)
    coarse_factor: int = Field(8, ge=0, le=64, description="smooth mode on big maps: coarse grid block size in cells (< 2: off)")
    coarse_min_cells: int = Field(1_000_000, ge=0, description="smooth mode searches coarse-to-fine on maps with at least this many cells")

    @model_validator(mode="after")
    def _radii(self):
        if self.inflation_radius < self.robot_radius:
            raise ValueError("inflation_radius must be >= robot_radius")
        return self


def _yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _set_yaw(q, yaw: float) -> None:
    q.x = q.y = 0.0
    q.z = math.sin(yaw / 2.0)
    q.w = math.cos(yaw / 2.0)


def grid_from_msg(msg: OccupancyGrid) -> OccupancyMap:
    info = msg.info
    w, h = int(info.width), int(info.height)
    if w == 0 or h == 0 or len(msg.data) != w * h:
        raise InvalidGridError(f"occupancy grid {w}x{h} with {len(msg.data)} cells")
    raw = msg.data
    data = (np.frombuffer(raw, dtype=np.int8) if isinstance(raw, array.array) else np.asarray(raw, dtype=np.int8)).reshape(h, w)
    try:
        return OccupancyMap(data=data, resolution=float(info.resolution), origin_x=info.origin.position.x,
                            origin_y=info.origin.position.y, origin_yaw=_yaw(info.origin.orientation),
                            frame_id=msg.header.frame_id or "map")
    except MapLoadError as exc:
        raise InvalidGridError(str(exc)) from None


class PlannerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("planner", **kwargs)
        self.params = declare_params(self, PlannerParams, on_change=self._on_params)
        p = self.params
        self.planner = Planner(None, p.costmap_timeout, p.smooth_tolerance, p.coarse_min_cells)
        self._static: OccupancyMap | None = None
        self._keepout_mask: OccupancyMap | None = None
        self._polygons: list[np.ndarray] = []
        self._odom: tuple[float, float, float] | None = None
        self._odom_time = -math.inf
        self._goal: PoseStamped | None = None
        self._goal_mode = p.mode
        self._path_pts: np.ndarray | None = None
        self._progress = 0
        self._failures = 0
        self._policy_version = None

        # Latched: the controller gets the current plan even if it subscribed after it was sent.
        self.plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self.result_pub = self.create_publisher(PlanResultMsg, "plan_result", RELIABLE_QOS)
        self.costmap_pub = self.create_publisher(OccupancyGrid, "global_costmap", LATCHED_QOS) if p.publish_costmap else None

        if p.keepout_mask_yaml:
            try:
                self._keepout_mask = load_map(p.keepout_mask_yaml, p.frame_id)
            except MapLoadError as exc:
                raise ParameterError("keepout_mask_yaml", str(exc)) from None
        if p.map_yaml:
            try:
                self._static = load_map_or_world(p.map_yaml, p.frame_id)
            except MapLoadError as exc:
                raise ParameterError("map_yaml", str(exc)) from None
            self._rebuild_costmap()
        else:
            self.create_subscription(OccupancyGrid, "map", self._on_map, LATCHED_QOS)
            self.get_logger().info("waiting for a map on `map` (no map_yaml given)")

        self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        self.tf: TransformBuffer | None = None
        self._tf_waiting: TransformQueue | None = None
        if p.tf_placement:
            from tf2_msgs.msg import TFMessage

            self.tf = TransformBuffer(cache_s=p.tf_cache)
            if p.tf_wait > 0:
                self._tf_waiting = TransformQueue(size=4, timeout_s=p.tf_wait)
                self.create_timer(min(0.1, p.tf_wait / 2), self._retry_waiting)  # a held costmap whose /tf never comes
            self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), TF_QOS)
            self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), TF_STATIC_QOS)
        self.create_subscription(OccupancyGrid, "local_costmap", self._on_local, SENSOR_QOS)
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, RELIABLE_QOS)
        self.create_subscription(FleetPolicy, POLICY_TOPIC, self._on_policy, LATCHED_QOS)
        self.create_service(PlanPath, "plan_path", self._on_plan_service)
        self._timer = self.create_timer(p.replan_period, self._check_path)
        self._diagnostics()

    # ------------------------------------------------------------------ setup

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): inputs odom / local_costmap (WARN: none yet or
        older than odom_timeout / costmap_timeout on the node's clock), `map` (WARN: none yet,
        every plan is refused), `policy` (WARN: no /fleet/policy yet, no DAO keep-out zones),
        `goal` (WARN: replans failing, the robot holds still), the planning time."""
        from depai_nodes.common.diagnostics import OK, WARN, NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        p = self.params
        self.diag_odom = self.diag.diag.topic("odom", stale_after=p.odom_timeout)
        self.diag_local = self.diag.diag.topic("local_costmap", stale_after=p.costmap_timeout)
        self.diag_plan = self.diag.diag.timing("plan")

        def map_state():
            m = self._static
            if m is None or self.planner.costmap is None:
                return WARN, "no map yet: every plan is refused", {"source": "topic map" if not self.params.map_yaml else self.params.map_yaml}
            return OK, f"{m.width}x{m.height} cells at {m.resolution:g} m", {"source": m.source or "topic", "keepout_mask": self._keepout_mask is not None}

        def policy():
            if self._policy_version is None:
                return WARN, "no /fleet/policy yet: no keep-out zones from the DAO", {"version": "", "zones": 0}
            return OK, f"policy v{self._policy_version}: {len(self._polygons)} keep-out zone(s)", {"version": self._policy_version, "zones": len(self._polygons)}

        def goal():
            values = {"active": self._goal is not None, "failed_replans": self._failures}
            if self._goal is None:
                return OK, "no goal", values
            g = self._goal.pose.position
            values["goal"] = f"{g.x:.2f},{g.y:.2f}"
            if self._failures:
                return WARN, (f"replanning failed {self._failures} time(s) in a row (of {self.params.max_replan_failures}): "
                              "holding still"), values
            return OK, f"following a plan to ({g.x:.2f}, {g.y:.2f})", values

        self.diag.diag.check("map", map_state)
        self.diag.diag.check("policy", policy)
        self.diag.diag.check("goal", goal)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _config(self) -> CostmapConfig:
        p = self.params
        return CostmapConfig(robot_radius=p.robot_radius, inflation_radius=p.inflation_radius,
                             cost_scaling_factor=p.cost_scaling_factor, cost_weight=p.cost_weight,
                             lethal_threshold=p.lethal_threshold, allow_unknown=p.allow_unknown,
                             coarse_factor=p.coarse_factor)

    def _rebuild_costmap(self) -> None:
        if self._static is None:
            return
        cm = GlobalCostmap(self._static, self._config(), self._keepout_mask)
        if self._polygons:
            cm.set_keepout_polygons(self._polygons)
        self.planner.costmap = cm
        search.warm_up()  # load the compiled kernels now, not on the first goal
        m = self._static
        self.get_logger().info(
            f"map ready: {m.width}x{m.height} cells at {m.resolution} m ({m.source or 'topic'}); "
            f"keep-out mask: {'yes' if self._keepout_mask is not None else 'no'}, "
            f"policy keep-out zones: {len(self._polygons)}")
        self._publish_costmap()

    def _on_params(self, new: PlannerParams) -> None:
        old = self.params
        self.params = new
        self.planner.costmap_timeout = new.costmap_timeout
        self.planner.smooth_tolerance = new.smooth_tolerance
        self.planner.coarse_min_cells = new.coarse_min_cells
        if old.mode != new.mode:
            self._goal_mode = new.mode
        keys = ("robot_radius", "inflation_radius", "cost_scaling_factor", "cost_weight", "lethal_threshold",
                "allow_unknown", "coarse_factor")
        if any(getattr(old, k) != getattr(new, k) for k in keys):
            self._rebuild_costmap()
        if old.replan_period != new.replan_period:
            self._timer.timer_period_ns = int(new.replan_period * 1e9)

    def _publish_costmap(self) -> None:
        cm = self.planner.costmap
        if self.costmap_pub is None or cm is None:
            return
        m = cm.map
        out = np.zeros(m.data.shape, dtype=np.int8)
        w = max(self.params.cost_weight, 1e-9)
        out[:] = np.clip(np.rint(cm.penalty / w * 98.0), 0, 98).astype(np.int8)
        out[cm.passable == 0] = 99
        out[cm.static_lethal | cm.keepout | cm.local_lethal] = 100
        out[cm.unknown & ~cm.keepout] = -1 if self.params.allow_unknown else 100
        msg = OccupancyGrid()
        msg.header.frame_id = self.params.frame_id
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.info.resolution = float(m.resolution)
        msg.info.width, msg.info.height = m.width, m.height
        msg.info.origin.position.x, msg.info.origin.position.y = m.origin_x, m.origin_y
        _set_yaw(msg.info.origin.orientation, m.origin_yaw)
        msg.data = array.array("b", out.ravel().tobytes())
        self.costmap_pub.publish(msg)

    # ------------------------------------------------------------------ inputs

    def _on_map(self, msg: OccupancyGrid) -> None:
        try:
            self._static = grid_from_msg(msg)
        except InvalidGridError as exc:
            self.get_logger().error(f"ignored map on `map`: {exc}")
            return
        self._rebuild_costmap()

    def _on_odom(self, msg: Odometry) -> None:
        self.diag_odom.tick()
        pose = msg.pose.pose
        vals = (pose.position.x, pose.position.y, _yaw(pose.orientation))
        if all(math.isfinite(v) for v in vals):
            self._odom = vals
            self._odom_time = self._now()

    def _fresh_odom(self):
        if self._odom is None or self._now() - self._odom_time > self.params.odom_timeout:
            return None
        return self._odom

    def _on_tf(self, msg, static: bool) -> None:
        jumps = self.tf.jumps_back
        try:
            self.tf.add_message(msg, static=static)
        except (TransformError, ValueError) as exc:  # a loop, a second parent, a non-finite value
            self.get_logger().error(f"transform ignored: {exc}", throttle_duration_sec=5.0)
        if self.tf.jumps_back != jumps:
            self.get_logger().warning("time jumped back on /tf (a restarted simulator?): transform history cleared")
        self._retry_waiting()

    def _placement(self, msg: OccupancyGrid) -> tuple[float, float, float] | None:
        """Where the costmap's frame stood in the planning frame when its sweep was taken: the
        transform at the costmap's own stamp (the robot has moved on since; the latest pose
        would shift every obstacle by the distance driven during perception's latency); raises
        TransformError when it cannot be looked up. Without TF (tf_placement false): the latest
        odometry pose (None: none recent)."""
        if self.tf is None:
            odom = self._fresh_odom()
            if odom is None:
                self.get_logger().warning("local costmap ignored: no recent odom to place it on the map",
                                          throttle_duration_sec=5.0)
            return odom
        t = self.tf.lookup(self.params.frame_id, msg.header.frame_id, stamp_ns(msg.header.stamp))
        return (float(t.translation[0]), float(t.translation[1]), t.yaw)

    def _on_local(self, msg: OccupancyGrid) -> None:
        self.diag_local.tick()
        if self.planner.costmap is None:
            return
        try:
            self._apply_local(msg)
        except ExtrapolationError as exc:
            if exc.ahead and self._tf_waiting is not None:  # its /tf sample is on its way: hold it
                if self._tf_waiting.hold(msg, time.monotonic()) is not None:
                    self.get_logger().warning("local costmap ignored: newer ones wait for /tf too", throttle_duration_sec=5.0)
                return
            self.get_logger().warning(f"local costmap ignored: {exc}", throttle_duration_sec=5.0)
        except TransformError as exc:
            self.get_logger().warning(f"local costmap ignored: {exc}", throttle_duration_sec=5.0)

    def _apply_local(self, msg: OccupancyGrid) -> None:
        """Place ``msg`` and make it the local costmap (TransformError: not placeable now)."""
        cm = self.planner.costmap
        pose = self._placement(msg)
        if pose is None or cm is None:
            return
        try:
            g = grid_from_msg(msg)
            local = LocalCostmap(g.data, g.resolution, g.origin_x, g.origin_y, g.origin_yaw)
            cm.set_local_costmap(local, pose, self._now())
        except InvalidGridError as exc:
            self.get_logger().error(f"local costmap ignored: {exc}", throttle_duration_sec=5.0)

    def _retry_waiting(self) -> None:
        """The held costmaps again (a /tf sample came, or time passed); say why one is dropped."""
        if not self._tf_waiting:
            return
        for _, held_s, exc in self._tf_waiting.retry(self._apply_local, time.monotonic()):
            self.get_logger().warning(f"local costmap ignored after waiting {held_s:.2f} s for /tf: {exc}",
                                      throttle_duration_sec=5.0)

    def _on_policy(self, msg: FleetPolicy) -> None:
        # The listener re-publishes the policy as a heartbeat every second: only a policy whose
        # zones differ is worth re-rasterising the keep-out layer and a log line.
        key = (msg.source, tuple((z.id, tuple((p.x, p.y) for p in z.polygon.points)) for z in msg.keep_out_zones))
        if key == getattr(self, "_policy_key", None):
            self._policy_version = msg.version
            return
        self._policy_key = key
        polygons = []
        for zone in msg.keep_out_zones:
            pts = np.array([[p.x, p.y] for p in zone.polygon.points], dtype=np.float64).reshape(-1, 2)
            if pts.shape[0] < 3 or not np.isfinite(pts).all():
                self.get_logger().error(f"keep-out zone '{zone.id}' ignored: needs >= 3 finite vertices")
                continue
            polygons.append(pts)
        self._polygons = polygons
        self._policy_version = msg.version
        cm = self.planner.costmap
        if cm is not None:
            try:
                cm.set_keepout_polygons(polygons)
            except InvalidPolygonError as exc:
                self.get_logger().error(f"keep-out zones not applied: {exc}")
                return
            self._publish_costmap()
        self.get_logger().info(f"policy v{msg.version}: {len(polygons)} keep-out zone(s)")
        self._check_path()

    # ------------------------------------------------------------------ planning

    def _frame_problem(self, what: str, pose: PoseStamped) -> str | None:
        frame = pose.header.frame_id
        if frame not in ("", self.params.frame_id, "odom"):
            return f"{what} frame '{frame}' is not '{self.params.frame_id}'"
        return None

    def _plan(self, goal: PoseStamped, start_xy, mode: str) -> PlanResult:
        problem = self._frame_problem("goal", goal)
        if problem:
            return PlanResult(PlanCode.INVALID_REQUEST, problem)
        if start_xy is None:
            return PlanResult(PlanCode.START_INVALID, "no recent odom: the robot's start pose is unknown")
        g = goal.pose.position
        return self.planner.plan(start_xy, (g.x, g.y), mode or self.params.mode, self._now())

    def _to_path(self, res: PlanResult, goal: PoseStamped) -> Path:
        path = Path()
        path.header.frame_id = self.params.frame_id
        path.header.stamp = self.get_clock().now().to_msg()
        if not res.ok:
            return path
        pts = densify(res.points, self.params.path_spacing)
        d = np.diff(pts, axis=0)
        yaws = np.arctan2(d[:, 1], d[:, 0]) if len(d) else np.zeros(0)
        q = goal.pose.orientation
        if abs(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w - 1.0) < 1e-3:
            gyaw = _yaw(q)
        else:  # no orientation given (e.g. all zeros): keep the heading of the last segment
            gyaw = float(yaws[-1]) if len(yaws) else 0.0
        for i, (x, y) in enumerate(pts):
            ps = PoseStamped()
            ps.header = path.header
            ps.pose.position.x, ps.pose.position.y = float(x), float(y)
            _set_yaw(ps.pose.orientation, float(yaws[i]) if i < len(yaws) else gyaw)
            path.poses.append(ps)
        return path

    def _report(self, res: PlanResult, goal: PoseStamped, replan: bool) -> None:
        msg = PlanResultMsg()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params.frame_id
        msg.result = int(res.code)
        msg.message = res.message
        msg.replan = replan
        msg.length = float(res.length)
        msg.planning_time = float(res.planning_time)
        msg.goal = goal
        self.result_pub.publish(msg)
        self.diag_plan.add(float(res.planning_time))
        what = "replan" if replan else "plan"
        if res.ok:
            self.get_logger().info(f"{what}: {res.message} in {res.planning_time * 1e3:.1f} ms ({res.mode})")
        else:
            self.get_logger().warning(f"{what} refused: {res.code.name}: {res.message}")

    def _start(self):
        odom = self._fresh_odom()
        return None if odom is None else (odom[0], odom[1])

    def _execute(self, goal: PoseStamped, mode: str, replan: bool) -> tuple[PlanResult, Path]:
        res = self._plan(goal, self._start(), mode)
        path = self._to_path(res, goal)
        self._report(res, goal, replan)
        if res.ok:
            self._goal, self._goal_mode = goal, mode or self.params.mode
            self._path_pts = np.array([[p.pose.position.x, p.pose.position.y] for p in path.poses])
            self._progress = 0
            self._failures = 0
            self.plan_pub.publish(path)
        elif replan:
            # Following a path that is now blocked and no way round: hold still, retry later.
            self._failures += 1
            self._path_pts = None
            self.plan_pub.publish(path)
            if self._failures >= self.params.max_replan_failures:
                self.get_logger().error(f"goal dropped after {self._failures} failed replans")
                self._goal = None
        else:
            # A new goal that cannot be planned replaces the old one: the robot stops.
            self._goal = None
            self._path_pts = None
            self.plan_pub.publish(path)
        return res, path

    def _on_goal(self, msg: PoseStamped) -> None:
        self._execute(msg, self.params.mode, replan=False)

    def _on_plan_service(self, request: PlanPath.Request, response: PlanPath.Response):
        if request.use_start:
            # A custom start answers "what if" questions; a plan the robot follows must start
            # where the robot stands (the controller refuses any other), so never publish one.
            s = request.start.pose.position
            problem = self._frame_problem("start", request.start)
            if not request.dry_run:
                problem = "use_start is only allowed with dry_run: a followed plan starts at the robot's own pose"
            if problem:
                res = PlanResult(PlanCode.INVALID_REQUEST, problem)
            else:
                res = self._plan(request.goal, (s.x, s.y), request.mode)
            path = self._to_path(res, request.goal)
            self._report(res, request.goal, False)
        elif request.dry_run:
            res = self._plan(request.goal, self._start(), request.mode)
            path = self._to_path(res, request.goal)
            self._report(res, request.goal, False)
        else:
            res, path = self._execute(request.goal, request.mode, replan=False)
        response.result = int(res.code)
        response.message = res.message
        response.path = path
        response.length = float(res.length)
        response.planning_time = float(res.planning_time)
        return response

    def _check_path(self) -> None:
        cm = self.planner.costmap
        if self._goal is None or cm is None:
            return
        odom = self._fresh_odom()
        g = self._goal.pose.position
        if odom is not None and math.hypot(odom[0] - g.x, odom[1] - g.y) < self.params.goal_tolerance:
            self.get_logger().info("goal reached; no more replanning for it")
            self._goal = None
            return
        if self._path_pts is None:
            self._execute(self._goal, self._goal_mode, replan=True)  # retry after a failure
            return
        if odom is not None:
            # Progress: nearest path point in a window ahead of the last one.
            lo = self._progress
            hi = min(len(self._path_pts), lo + 400)
            seg = self._path_pts[lo:hi]
            if len(seg):
                self._progress = lo + int(np.argmin(np.hypot(seg[:, 0] - odom[0], seg[:, 1] - odom[1])))
        # The cells under the robot itself do not count: it may stand inside the inflation
        # of an obstacle that just appeared (the controller's collision check guards that).
        skip = int(math.ceil(self.params.robot_radius / self.params.path_spacing)) + 1
        blocked = cm.path_blocked(self._path_pts, self._progress + skip)
        if blocked >= 0:
            x, y = self._path_pts[blocked]
            self.get_logger().info(f"path blocked at ({x:.2f}, {y:.2f}); replanning")
            self._execute(self._goal, self._goal_mode, replan=True)


def main(args=None):
    return run_node(PlannerNode, args)


if __name__ == "__main__":
    sys.exit(main())
