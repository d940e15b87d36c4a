"""Planner node over real DDS: service result codes, a plan avoiding a keep-out zone, replan on a
new keep-out zone covering the current path."""
from __future__ import annotations

import time

import numpy as np
import pytest
from geometry_msgs.msg import Point32, PoseStamped
from nav_msgs.msg import Odometry, Path

from depai.msg import FleetPolicy, KeepOutZone, PlanResult
from depai.srv import PlanPath
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

START = (2.0, 2.0)     # depot: free floor (checked in the test)
GOAL = (26.0, 12.0)


def _after(inbox, n, msg) -> bool:
    """True when msg is one of the messages received after the first n (identity, not value)."""
    return any(msg is m for m in inbox.messages[n:])



def _square_distance(points, centre, half):
    """Euclidean distance of points to an axis-aligned square (0 inside)."""
    d = np.maximum(np.abs(np.asarray(points) - centre) - half, 0.0)
    return np.hypot(d[:, 0], d[:, 1])



def _pose(x, y, frame="map"):
    p = PoseStamped()
    p.header.frame_id = frame
    p.pose.position.x, p.pose.position.y = float(x), float(y)
    p.pose.orientation.w = 1.0
    return p


def _call(probe, client, request, timeout=15.0):
    """Sent once: a plan request with a goal publishes a plan, which must not happen twice here."""
    return probe.call(client.srv_type, client.srv_name, request, timeout=timeout, resend_after=None)


def _policy(zones, version):
    msg = FleetPolicy()
    msg.header.frame_id = "map"
    msg.version = version
    msg.max_speed = 1.0
    for i, poly in enumerate(zones):
        z = KeepOutZone()
        z.id = f"zone{i}"
        z.polygon.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in poly]
        msg.keep_out_zones.append(z)
    msg.source = "test"
    return msg


def _pts(path: Path) -> np.ndarray:
    return np.array([[p.pose.position.x, p.pose.position.y] for p in path.poses])


@pytest.fixture
def planner(start_node, ros_node, shared_data):
    node = start_node("planner", parameters={
        "map_yaml": str(shared_data / "maps" / "depot.yaml"), "mode": "smooth", "replan_period": 0.1,
        "odom_timeout": 5.0, "tf_placement": False})  # no /tf here: local costmaps placed at the odometry pose
    node.wait_for_log("map ready", timeout=30)
    odom_pub = ros_node.publisher(Odometry, "odom", RELIABLE_QOS)
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.position.x, odom.pose.pose.position.y = START
    odom.pose.pose.orientation.w = 1.0
    timer = ros_node.node.create_timer(0.05, lambda: odom_pub.publish(odom))
    ros_node.wait_for_subscribers(odom_pub)  # the planner hears odom before any goal is sent
    time.sleep(0.2)
    yield node
    timer.cancel()


def test_service_codes_keepout_and_replan(planner, ros_node):
    client = ros_node.node.create_client(PlanPath, "plan_path")
    plans = ros_node.subscribe(Path, "plan", RELIABLE_QOS)
    results = ros_node.subscribe(PlanResult, "plan_result", RELIABLE_QOS)
    policy_pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)

    def plan(goal, **kw):
        req = PlanPath.Request()
        req.goal = goal
        for k, v in kw.items():
            setattr(req, k, v)
        return _call(ros_node, client, req)

    # Odom may take a moment to reach the planner: START_INVALID until then.
    deadline = time.monotonic() + 10
    while True:
        r = plan(_pose(*GOAL), dry_run=True)
        if r.result != PlanPath.Response.START_INVALID or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.result == PlanPath.Response.SUCCESS, r.message
    free_len = r.length

    assert plan(_pose(-50.0, 3.0)).result == PlanPath.Response.GOAL_OFF_MAP
    assert plan(_pose(*GOAL, frame="base_link")).result == PlanPath.Response.INVALID_REQUEST
    bad = plan(_pose(float("nan"), 1.0))
    assert bad.result == PlanPath.Response.INVALID_REQUEST
    planner.wait_for_log("plan refused: GOAL_OFF_MAP")

    # A keep-out zone across the straight-line corridor: the plan goes around it.
    pts = _pts(r.path)
    mid = pts[len(pts) // 2]
    zone = [(mid[0] - 1.0, mid[1] - 1.0), (mid[0] + 1.0, mid[1] - 1.0), (mid[0] + 1.0, mid[1] + 1.0), (mid[0] - 1.0, mid[1] + 1.0)]
    inzone = plan(_pose(*mid), dry_run=True)
    assert inzone.result == PlanPath.Response.SUCCESS
    policy_pub.publish(_policy([zone], 1))
    planner.wait_for_log("policy v1: 1 keep-out zone(s)")
    refused = plan(_pose(*mid), dry_run=True)
    assert refused.result == PlanPath.Response.GOAL_IN_KEEPOUT, refused.message
    around = plan(_pose(*GOAL), dry_run=True)
    assert around.result == PlanPath.Response.SUCCESS, around.message
    p2 = _pts(around.path)
    assert _square_distance(p2, mid, 1.0).min() > 0.2
    assert around.length > free_len

    # Lift the zone, follow a goal, then drop a new zone on the current path: a replan avoids it.
    policy_pub.publish(_policy([], 2))
    planner.wait_for_log("policy v2: 0 keep-out zone(s)")
    n0 = len(plans.messages)
    go = plan(_pose(*GOAL))
    assert go.result == PlanPath.Response.SUCCESS
    first = plans.wait_for(lambda m: len(m.poses) > 0, timeout=10)
    assert len(plans.messages) > n0
    cur = _pts(first)
    mid = cur[len(cur) // 2]
    zone = [(mid[0] - 1.0, mid[1] - 1.0), (mid[0] + 1.0, mid[1] - 1.0), (mid[0] + 1.0, mid[1] + 1.0), (mid[0] - 1.0, mid[1] + 1.0)]
    count = len(plans.messages)
    policy_pub.publish(_policy([zone], 3))
    replanned = plans.wait_for(lambda m: _after(plans, count, m), timeout=10)
    rp = _pts(replanned)
    assert len(rp) > 0
    assert _square_distance(rp, mid, 1.0).min() > 0.2
    replan_result = results.wait_for(lambda m: m.replan, timeout=10)
    assert replan_result.result == PlanPath.Response.SUCCESS, replan_result.message
    planner.wait_for_log("path blocked")


def test_goal_topic_and_refusal_logged(planner, ros_node, shared_data):
    from depai_nodes.planner.mapio import load_map

    depot = load_map(shared_data / "maps" / "depot.yaml")
    r, c = np.argwhere(depot.data == 100)[len(np.argwhere(depot.data == 100)) // 2]
    wall = tuple(float(v) for v in depot.cell_to_world(c, r))
    goals = ros_node.publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
    results = ros_node.subscribe(PlanResult, "plan_result", RELIABLE_QOS)
    ros_node.wait_for_subscribers(goals)
    time.sleep(0.5)  # odom reaches the planner
    goals.publish(_pose(*GOAL))
    ok = results.wait_for(timeout=10)
    assert ok.result == PlanPath.Response.SUCCESS, ok.message
    goals.publish(_pose(*wall))
    bad = results.wait_for(lambda m: m.result != PlanPath.Response.SUCCESS, timeout=10)
    assert bad.result == PlanPath.Response.GOAL_IN_OBSTACLE
    planner.wait_for_log("plan refused: GOAL_IN_OBSTACLE")


def test_bad_map_is_a_config_error(start_node, tmp_path):
    (tmp_path / "m.yaml").write_text("image: nope.pgm\nresolution: 0.1\norigin: [0, 0, 0]\n")
    node = start_node("planner", parameters={"map_yaml": str(tmp_path / "m.yaml")})
    assert node.wait_exit(timeout=30) == 2
    assert "map_yaml" in node.log() and "not found" in node.log()


def test_local_costmap_obstacle_on_path_triggers_replan(planner, ros_node):
    from nav_msgs.msg import OccupancyGrid

    plans = ros_node.subscribe(Path, "plan", RELIABLE_QOS)
    results = ros_node.subscribe(PlanResult, "plan_result", RELIABLE_QOS)
    goals = ros_node.publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
    ros_node.wait_for_subscribers(goals)
    time.sleep(0.5)
    goals.publish(_pose(*GOAL))
    first = _pts(plans.wait_for(lambda m: len(m.poses) > 0, timeout=10))
    # An obstacle 2 m along the path, seen by perception in the robot's frame (yaw 0 at START).
    d = np.cumsum(np.r_[0.0, np.hypot(*np.diff(first, axis=0).T)])
    target = first[int(np.searchsorted(d, 2.0))]
    rel = target - np.array(START)
    grid = OccupancyGrid()
    grid.header.frame_id = "lidar_link"
    grid.info.resolution = 0.1
    grid.info.width = grid.info.height = 80
    grid.info.origin.position.x = grid.info.origin.position.y = -4.0
    grid.info.origin.orientation.w = 1.0
    data = np.zeros((80, 80), np.int8)
    c, r = int((rel[0] + 4.0) / 0.1), int((rel[1] + 4.0) / 0.1)
    data[r - 3 : r + 4, c - 3 : c + 4] = 100
    grid.data = data.ravel().tolist()
    cm_pub = ros_node.publisher(OccupancyGrid, "local_costmap", RELIABLE_QOS)
    n = len(plans.messages)
    timer = ros_node.node.create_timer(0.1, lambda: cm_pub.publish(grid))
    try:
        planner.wait_for_log("path blocked", timeout=10)
        new = plans.wait_for(lambda m: _after(plans, n, m) and len(m.poses) > 0, timeout=10)
        pts = _pts(new)
        # The obstacle block is 0.7 m wide around target; the robot keeps its radius from it.
        assert _square_distance(pts, target, 0.35).min() > 0.2 - 0.05
        assert results.wait_for(lambda m: m.replan and m.result == PlanPath.Response.SUCCESS, timeout=10)
    finally:
        timer.cancel()


def test_map_topic_not_ready_then_ready_and_stale_costmap(start_node, ros_node, shared_data):
    from nav_msgs.msg import OccupancyGrid

    from depai_nodes.planner.mapio import load_map

    node = start_node("planner", parameters={"costmap_timeout": 0.5, "odom_timeout": 30.0, "tf_placement": False})
    node.wait_for_log("waiting for a map")
    client = ros_node.node.create_client(PlanPath, "plan_path")

    def plan(start, goal):
        req = PlanPath.Request()
        req.goal = _pose(*goal)
        req.use_start = True
        req.start = _pose(*start)
        req.dry_run = True
        return _call(ros_node, client, req)

    r = plan((0.0, 0.0), (1.0, 1.0))
    assert r.result == PlanPath.Response.MAP_NOT_READY
    m = load_map(shared_data / "maps" / "tb3_sandbox.yaml")
    grid = OccupancyGrid()
    grid.header.frame_id = "map"
    grid.info.resolution = m.resolution
    grid.info.width, grid.info.height = m.width, m.height
    grid.info.origin.position.x, grid.info.origin.position.y = m.origin_x, m.origin_y
    grid.info.origin.orientation.w = 1.0
    grid.data = m.data.ravel().tolist()
    map_pub = ros_node.publisher(OccupancyGrid, "map", LATCHED_QOS)
    map_pub.publish(grid)
    node.wait_for_log("map ready: 384x384", timeout=15)
    from depai_nodes.planner.core import GlobalCostmap, Planner

    local_planner = Planner(GlobalCostmap(m))
    free = np.argwhere(local_planner.costmap.passable > 0)
    a, b = free[0], free[-1]
    start = tuple(float(v) for v in m.cell_to_world(a[1], a[0]))
    goal = tuple(float(v) for v in m.cell_to_world(b[1], b[0]))
    expected = local_planner.plan(start, goal, "smooth")
    assert expected.ok
    r = plan(start, goal)
    assert r.result == PlanPath.Response.SUCCESS, r.message
    assert r.length == pytest.approx(expected.length, rel=1e-6)
    # One local costmap (placed with odom), then perception goes silent: plans are refused.
    odom = Odometry()
    odom.pose.pose.position.x, odom.pose.pose.position.y = start
    odom.pose.pose.orientation.w = 1.0
    odom_pub = ros_node.publisher(Odometry, "odom", RELIABLE_QOS)
    local = OccupancyGrid()
    local.header.frame_id = "lidar_link"
    local.info.resolution = 0.1
    local.info.width = local.info.height = 20
    local.info.origin.position.x = local.info.origin.position.y = -1.0
    local.info.origin.orientation.w = 1.0
    local.data = [0] * 400
    cm_pub = ros_node.publisher(OccupancyGrid, "local_costmap", RELIABLE_QOS)
    ros_node.wait_for_subscribers(cm_pub)
    deadline = time.monotonic() + 10
    stale = None
    while time.monotonic() < deadline:
        odom_pub.publish(odom)
        time.sleep(0.1)
        cm_pub.publish(local)
        time.sleep(1.0)  # longer than costmap_timeout
        stale = plan(start, goal)
        if stale.result == PlanPath.Response.STALE_COSTMAP:
            break
    assert stale.result == PlanPath.Response.STALE_COSTMAP, stale.message
    node.wait_for_log("STALE_COSTMAP")


def _tf(parent, child, sec, x, y=0.0):
    from geometry_msgs.msg import TransformStamped

    t = TransformStamped()
    t.header.frame_id, t.child_frame_id = parent, child
    t.header.stamp.sec = sec
    t.transform.translation.x, t.transform.translation.y = float(x), float(y)
    t.transform.rotation.w = 1.0
    return t


def test_local_costmap_is_placed_by_the_transform_at_its_stamp(start_node, ros_node, shared_data):
    """A sweep taken at t1 is placed where the LiDAR was at t1, not where the robot is now."""
    from nav_msgs.msg import OccupancyGrid
    from tf2_msgs.msg import TFMessage

    from depai_nodes.common.qos import TF_QOS, TF_STATIC_QOS

    node = start_node("planner", parameters={"map_yaml": str(shared_data / "maps" / "depot.yaml"), "odom_timeout": 30.0,
                                             "costmap_timeout": 30.0, "tf_wait": 5.0})
    node.wait_for_log("map ready", timeout=30)
    client = ros_node.node.create_client(PlanPath, "plan_path")

    def dry(goal):
        req = PlanPath.Request()
        req.goal, req.use_start, req.start, req.dry_run = _pose(*goal), True, _pose(*START), True
        return _call(ros_node, client, req)

    # The robot drove 3 m along +x between t1 = 1000 s and t2 = 1001 s; the LiDAR sits 0.2 m ahead of base_link.
    x0, y0 = START
    mount = 0.2
    at_stamp, at_latest = (x0 + mount + 1.0, y0), (x0 + 3.0 + mount + 1.0, y0)
    assert dry(at_stamp).result == PlanPath.Response.SUCCESS  # both spots free floor before any costmap
    assert dry(at_latest).result == PlanPath.Response.SUCCESS
    static = ros_node.publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
    tf = ros_node.publisher(TFMessage, "/tf", TF_QOS)
    odom_pub = ros_node.publisher(Odometry, "odom", RELIABLE_QOS)
    ros_node.wait_for_subscribers(tf)
    ros_node.wait_for_subscribers(static)
    static.publish(TFMessage(transforms=[_tf("base_link", "lidar_link", 0, mount)]))
    tf.publish(TFMessage(transforms=[_tf("map", "odom", 1000, 0.0), _tf("odom", "base_link", 1000, x0, y0)]))
    tf.publish(TFMessage(transforms=[_tf("map", "odom", 1001, 0.0), _tf("odom", "base_link", 1001, x0 + 3.0, y0)]))
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.position.x, odom.pose.pose.position.y = x0 + 3.0, y0  # the latest pose
    odom.pose.pose.orientation.w = 1.0
    odom_pub.publish(odom)

    # An obstacle 1 m ahead of the LiDAR, in a sweep stamped t1 (0.5 m square around (1, 0) in lidar_link).
    grid = OccupancyGrid()
    grid.header.frame_id = "lidar_link"
    grid.header.stamp.sec = 1000
    grid.info.resolution = 0.1
    grid.info.width = grid.info.height = 40
    grid.info.origin.position.x = grid.info.origin.position.y = -2.0
    grid.info.origin.orientation.w = 1.0
    data = np.zeros((40, 40), np.int8)
    data[18:23, 28:33] = 100
    grid.data = data.ravel().tolist()
    cm_pub = ros_node.publisher(OccupancyGrid, "local_costmap", RELIABLE_QOS)
    ros_node.wait_for_subscribers(cm_pub)
    deadline = time.monotonic() + 15
    while True:
        cm_pub.publish(grid)
        time.sleep(0.3)
        if dry(at_stamp).result == PlanPath.Response.GOAL_IN_OBSTACLE:
            break
        assert time.monotonic() < deadline, "the costmap was never placed at the transform of its stamp"
    assert dry(at_latest).result == PlanPath.Response.SUCCESS  # not where the robot is now

    # A sweep stamped after the newest /tf sample is held until that sample comes (tf_wait), then
    # placed by it: here the robot stood still at the latest pose from t2 to t3 = 1004 s.
    late = OccupancyGrid()
    late.header, late.info, late.data = grid.header, grid.info, grid.data
    late.header.stamp.sec = 1004
    cm_pub.publish(late)
    time.sleep(1.0)
    assert dry(at_latest).result == PlanPath.Response.SUCCESS  # held, not placed at a guess
    tf.publish(TFMessage(transforms=[_tf("map", "odom", 1004, 0.0), _tf("odom", "base_link", 1004, x0 + 3.0, y0)]))
    deadline = time.monotonic() + 10
    while dry(at_latest).result != PlanPath.Response.GOAL_IN_OBSTACLE:
        assert time.monotonic() < deadline, "the held costmap was not placed when its /tf sample came"
        time.sleep(0.2)
    assert "ignored after waiting" not in node.log()
    # One whose sample never comes is dropped after tf_wait, and the log says why.
    never = OccupancyGrid()
    never.header, never.info, never.data = grid.header, grid.info, grid.data
    never.header.stamp.sec = 1100
    cm_pub.publish(never)
    node.wait_for_log("local costmap ignored after waiting", timeout=20)
    assert "samples cover" in node.log() and node.process.poll() is None
