"""Simulator and perception as real node processes over real DDS.

One simulator process (two namespaced robots in the warehouse) and one perception process per
robot namespace; the test's probe node drives a robot and listens to what comes out.
"""

import math

import numpy as np
from geometry_msgs.msg import Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import PointCloud2

from depai.msg import ObstacleArray
from depai_nodes.common.pointcloud2 import cloud_to_array, cloud_to_xyz
from depai_nodes.common.qos import RELIABLE_QOS, SENSOR_QOS
from depai_nodes.common.qos import CLOUD_QOS

SIM = {"world": "warehouse", "robots": ["robot1", "robot2"], "spawn_poses": [0.0, 0.0, 0.0, -4.0, 2.5, 0.0],
       "lidar_beams": 32, "lidar_horizontal": 512}


def test_sim_and_perception_processes_exchange_clouds_obstacles_and_costmaps(ros_node, start_node):
    sim = start_node("simulator", parameters=SIM)
    start_node("perception", namespace="robot1", parameters={"expected_frame": "robot1/lidar_link", "sensor_height": 0.5})
    clock = ros_node.subscribe(Clock, "/clock", RELIABLE_QOS)
    points = ros_node.subscribe(PointCloud2, "/robot1/points", SENSOR_QOS)
    points2 = ros_node.subscribe(PointCloud2, "/robot2/points", SENSOR_QOS)
    odom = ros_node.subscribe(Odometry, "/robot1/odom", RELIABLE_QOS)
    obstacles = ros_node.subscribe(ObstacleArray, "/robot1/obstacles", RELIABLE_QOS)
    costmap = ros_node.subscribe(OccupancyGrid, "/robot1/local_costmap", RELIABLE_QOS)
    sim.wait_for_log("simulating world 'warehouse'", timeout=30)

    cloud = points.wait_for(timeout=30)
    assert (cloud.height, cloud.width, cloud.header.frame_id) == (32, 512, "robot1/lidar_link")
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity", "ring"]
    xyz = cloud_to_xyz(cloud)
    assert np.isfinite(xyz).all(axis=1).sum() > 1000 and not cloud.is_dense
    assert set(np.unique(cloud_to_array(cloud)["ring"])) == set(range(32))
    points2.wait_for(timeout=10)
    assert clock.wait_for(lambda m: m.clock.sec >= 1, timeout=30)

    # The column at (0, -3.5) stands 3.5 m to the right of robot1: an obstacle must be there.
    def column_seen(m):
        return any(abs(o.centroid.x) < 0.6 and abs(o.centroid.y + 3.5) < 0.6 for o in m.obstacles)

    obs = obstacles.wait_for(lambda m: len(m.obstacles) >= 5 and column_seen(m), timeout=30)
    assert obs.header.frame_id == "robot1/lidar_link"
    for o in obs.obstacles:
        assert o.box_min.x <= o.centroid.x <= o.box_max.x and o.point_count > 0
    grid = costmap.wait_for(timeout=30)
    data = np.asarray(grid.data, dtype=np.int8).reshape(grid.info.height, grid.info.width)
    assert math.isclose(grid.info.origin.position.x, -grid.info.width * grid.info.resolution / 2, abs_tol=1e-5)
    assert (data == 100).any() and (data == 0).any() and (data == -1).any()

    # Drive robot1 forward; odometry follows in sim time.
    cmd = ros_node.publisher(Twist, "/robot1/cmd_vel", RELIABLE_QOS)
    ros_node.wait_for_subscribers(cmd)
    start = odom.wait_for(timeout=10).pose.pose.position.x
    twist = Twist()
    twist.linear.x = 0.5
    import time
    deadline = time.monotonic() + 30
    moved = None
    while time.monotonic() < deadline:
        cmd.publish(twist)
        time.sleep(0.1)
        last = odom.messages[-1]
        if last.pose.pose.position.x > start + 0.3:
            moved = last
            break
    assert moved is not None, "robot1 did not move on cmd_vel"
    assert moved.header.frame_id == "robot1/odom" and moved.child_frame_id == "robot1/base_link"
    assert math.isclose(moved.twist.twist.linear.x, 0.5, abs_tol=0.05)


def test_perception_drops_bad_clouds_and_survives(ros_node, start_node):
    perception = start_node("perception", parameters={"expected_frame": "lidar_link"})
    pub = ros_node.publisher(PointCloud2, "points", CLOUD_QOS)
    obstacles = ros_node.subscribe(ObstacleArray, "obstacles", RELIABLE_QOS)
    perception.wait_for_log("perception ready", timeout=30)
    ros_node.wait_for_subscribers(pub)
    from depai_nodes.common.pointcloud2 import array_to_cloud

    pts = np.zeros(2000, [("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    rng = np.random.default_rng(0)
    pts["x"], pts["y"], pts["z"] = rng.uniform(-5, 5, 2000), rng.uniform(-5, 5, 2000), -0.5
    pts["z"][:200] = np.nan
    wrong_frame = array_to_cloud(pts, "map")
    broken = array_to_cloud(pts, "lidar_link")
    broken.row_step = 7  # inconsistent layout
    good = array_to_cloud(pts, "lidar_link")
    # Best effort: keep publishing until the node has seen (and logged) each kind of bad cloud.
    import time
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        pub.publish(wrong_frame)
        pub.publish(broken)
        log = perception.log()
        if "expected 'lidar_link'" in log and "unusable cloud" in log:
            break
        time.sleep(0.2)
    assert "expected 'lidar_link'" in log and "unusable cloud: row_step" in log
    assert not obstacles.messages  # nothing was published for bad clouds
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10 and not obstacles.messages:
        pub.publish(good)
        time.sleep(0.2)
    assert obstacles.messages and obstacles.messages[0].header.frame_id == "lidar_link"
    assert perception.process.poll() is None  # still alive


def test_perception_parameters_are_validated_at_start_and_at_run_time(ros_node, start_node):
    bad = start_node("perception", name="bad_perception", parameters={"voxel_size": -1.0})
    assert bad.wait_exit(timeout=30) == 2
    assert "voxel_size" in bad.log()
    good = start_node("perception")
    good.wait_for_log("perception ready", timeout=30)
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    def set_param(name, value):  # idempotent: resent until answered
        req = SetParameters.Request()
        req.parameters = [Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))]
        return ros_node.call(SetParameters, "/perception/set_parameters", req, timeout=10).results[0]

    assert not set_param("crop_z_max", -10.0).successful  # below crop_z_min: rejected by the model
    ok = set_param("cluster_tolerance", 0.5)
    assert ok.successful
    good.wait_for_log("cluster_tolerance=0.5", timeout=10)


def test_simulator_runtime_parameters(ros_domain):
    """LiDAR and rate changes apply live; world-shaping ones are read-only; bad ones are refused."""
    import rclpy
    from rclpy.parameter import Parameter

    from depai_nodes.simulator.node import SimulatorNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain)
    node = SimulatorNode(context=ctx, parameter_overrides=[Parameter("lidar_beams", value=8),
                                                           Parameter("lidar_horizontal", value=64)])
    try:
        r = node.set_parameters([Parameter("lidar_beams", value=16), Parameter("real_time_factor", value=2.0)])
        assert all(x.successful for x in r)
        assert node.sim.lidar.beams == 16 and node.buffers["robot1"].count == 16 * 64
        assert node.timer.timer_period_ns == int(1e9 / (50 * 2.0))
        node._tick()
        assert node.sweeps_published == 1  # the first tick publishes a sweep with the new shape
        r = node.set_parameters([Parameter("lidar_vfov_min_deg", value=30.0)])
        assert not r[0].successful and "lidar_vfov_max_deg" in r[0].reason
        r = node.set_parameters([Parameter("world", value="yard")])
        assert not r[0].successful and node.params.world == "warehouse"
    finally:
        node.destroy_node()
        ctx.try_shutdown()
