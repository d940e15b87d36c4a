"""The simulator's TF tree (REP-105) over real DDS: every frame resolves to `map` at the stamps the
data carries, and the transforms agree with the simulator's ground truth (its spawn poses, its
odometry, and its ground-truth occupancy map of the world)."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
from geometry_msgs.msg import Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import PointCloud2
from tf2_msgs.msg import TFMessage

from depai.msg import ObstacleArray
from depai_nodes.common.pointcloud2 import cloud_to_xyz
from depai_nodes.common.qos import CLOUD_QOS, LATCHED_QOS, RELIABLE_QOS
from depai_nodes.common.tfbuffer import Transform, TransformBuffer, TransformError, stamp_ns
from depai_nodes.common.qos import TF_QOS, TF_STATIC_QOS

SPAWN2 = (-4.0, 2.5, 1.0)
SIM = {"world": "warehouse", "robots": ["robot1", "robot2"], "spawn_poses": [0.0, 0.0, 0.0, *SPAWN2],
       "lidar_beams": 16, "lidar_horizontal": 512, "lidar_mount_height": 0.5}
# Stock Jazzy's type hash of tf2_msgs/msg/TFMessage (rosidl golden hashes); ours must be the same.
JAZZY_TFMESSAGE_HASH = "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"


class TfListener:
    def __init__(self, probe) -> None:
        # The test looks up stamps from its whole run (a slow machine may take minutes of sim
        # time between a stamp and its lookup): keep every sample, not the nodes' 10 s window.
        self.buffer = TransformBuffer(cache_s=3600.0)
        self.lock = threading.Lock()
        self.static = probe.subscribe(TFMessage, "/tf_static", TF_STATIC_QOS)
        probe.node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS)

    def _on_tf(self, msg) -> None:
        with self.lock:
            self.buffer.add_message(msg)

    def lookup(self, target: str, source: str, stamp: int, timeout: float = 10.0) -> Transform:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                for msg in self.static.messages:
                    self.buffer.add_message(msg, static=True)
                try:
                    return self.buffer.lookup(target, source, stamp)
                except TransformError:
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.05)


def _occupied_fraction(points_map: np.ndarray, grid: OccupancyGrid) -> float:
    """Share of the points that fall on (or next to) an occupied cell of the ground-truth map."""
    info = grid.info
    occ = np.asarray(grid.data, np.int8).reshape(info.height, info.width) == 100
    near = occ.copy()  # one cell of slack for LiDAR noise and cell boundaries
    near[1:] |= occ[:-1]
    near[:-1] |= occ[1:]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    c = np.floor((points_map[:, 0] - info.origin.position.x) / info.resolution).astype(int)
    r = np.floor((points_map[:, 1] - info.origin.position.y) / info.resolution).astype(int)
    inside = (c >= 0) & (c < info.width) & (r >= 0) & (r < info.height)
    return float(near[r[inside], c[inside]].mean()) if inside.any() else 0.0


def _yaw(q) -> float:
    return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def test_tf_tree_resolves_and_agrees_with_ground_truth(ros_node, start_node):
    sim = start_node("simulator", parameters=SIM)
    start_node("perception", namespace="robot1", parameters={"expected_frame": "robot1/lidar_link", "use_sim_time": True})
    tf = TfListener(ros_node)
    obstacles = ros_node.subscribe(ObstacleArray, "/robot1/obstacles", RELIABLE_QOS)
    costmaps = ros_node.subscribe(OccupancyGrid, "/robot1/local_costmap", RELIABLE_QOS)
    clouds = ros_node.subscribe(PointCloud2, "/robot1/points", CLOUD_QOS)
    odom = ros_node.subscribe(Odometry, "/robot1/odom", RELIABLE_QOS)
    ground_truth = ros_node.subscribe(OccupancyGrid, "/robot1/map", LATCHED_QOS)
    sim.wait_for_log("simulating world 'warehouse'", timeout=30)

    # /tf_static: both robots' LiDAR mounts, latched in one message.
    static = tf.static.wait_for(timeout=20)
    mounts = {(t.header.frame_id, t.child_frame_id): t.transform.translation.z for t in static.transforms}
    assert mounts == {("robot1/base_link", "robot1/lidar_link"): 0.5, ("robot2/base_link", "robot2/lidar_link"): 0.5}

    # Drive robot1 along an arc so its pose has both a translation and a turn.
    cmd = ros_node.publisher(Twist, "/robot1/cmd_vel", RELIABLE_QOS)
    ros_node.wait_for_subscribers(cmd)
    twist = Twist()
    twist.linear.x, twist.angular.z = 0.4, 0.6
    start = odom.wait_for(timeout=20)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cmd.publish(twist)
        time.sleep(0.1)
        last = odom.messages[-1]
        if abs(_yaw(last.pose.pose.orientation) - _yaw(start.pose.pose.orientation)) > 0.5:
            break
    else:
        raise AssertionError("robot1 did not turn on cmd_vel")
    moved_at = stamp_ns(odom.messages[-1].header.stamp)

    # The frame a cloud names resolves to map at the cloud's own stamp...
    cloud = clouds.wait_for(lambda c: stamp_ns(c.header.stamp) >= moved_at, timeout=20)
    assert cloud.header.frame_id == "robot1/lidar_link"
    stamp = stamp_ns(cloud.header.stamp)
    map_from_lidar = tf.lookup("map", "robot1/lidar_link", stamp)

    # ...and agrees with the odometry at that stamp (map -> odom is ground truth: the identity,
    # since the simulated odometry does not drift) plus the mount.
    at_stamp = odom.wait_for(lambda m: stamp_ns(m.header.stamp) == stamp, timeout=10)
    assert (at_stamp.header.frame_id, at_stamp.child_frame_id) == ("robot1/odom", "robot1/base_link")
    pose = at_stamp.pose.pose
    np.testing.assert_allclose(map_from_lidar.translation, [pose.position.x, pose.position.y, pose.position.z + 0.5], atol=1e-6)
    assert math.isclose(map_from_lidar.yaw, _yaw(pose.orientation), abs_tol=1e-6)
    assert abs(map_from_lidar.yaw) > 0.3  # it did turn: the check below sees the rotation

    # The sweep, placed in map with that transform, lands on the world's obstacles (the
    # simulator's ground-truth map); with the yaw off by 0.3 rad it does not.
    xyz = cloud_to_xyz(cloud)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    in_map = map_from_lidar.apply(xyz)
    walls = in_map[(in_map[:, 2] > 0.2) & (in_map[:, 2] < 1.5)]
    assert len(walls) > 500
    grid = ground_truth.wait_for(timeout=20)
    assert grid.header.frame_id == "map"
    placed = _occupied_fraction(walls, grid)
    q = np.array([0, 0, math.sin(0.15), math.cos(0.15)])
    wrong = Transform(map_from_lidar.translation, q) * Transform(np.zeros(3), map_from_lidar.rotation)
    misplaced = _occupied_fraction(wrong.apply(xyz)[(in_map[:, 2] > 0.2) & (in_map[:, 2] < 1.5)], grid)
    assert placed > 0.9, placed
    assert misplaced < placed - 0.2, (placed, misplaced)

    # robot2 was never driven: TF puts it at its spawn pose, its LiDAR 0.5 m above the floor.
    robot2 = tf.lookup("map", "robot2/lidar_link", stamp)
    np.testing.assert_allclose(robot2.translation[:2], SPAWN2[:2], atol=1e-6)
    assert math.isclose(robot2.yaw, SPAWN2[2], abs_tol=1e-6)
    assert math.isclose(robot2.translation[2], 0.5, abs_tol=0.05)
    # What perception derives from a sweep names a frame that resolves to map at its stamp
    # (derived from a sweep taken after the robot moved, not the first one of the run).
    for derived in (obstacles.wait_for(lambda m: stamp_ns(m.header.stamp) >= stamp, timeout=30),
                    costmaps.wait_for(lambda m: stamp_ns(m.header.stamp) >= stamp, timeout=30)):
        assert derived.header.frame_id == "robot1/lidar_link"
        tf.lookup("map", derived.header.frame_id, stamp_ns(derived.header.stamp))

    # Both robots' frames hang off the one map frame.
    assert tf.buffer.frames() >= {"map", "robot1/odom", "robot1/base_link", "robot1/lidar_link",
                                  "robot2/odom", "robot2/base_link", "robot2/lidar_link"}


def test_tfmessage_type_is_the_stock_one():
    """Ours (pip path, ros_compat/tf2_msgs) or the system's: the same type and type hash as Jazzy's."""
    import json
    from pathlib import Path

    from ament_index_python.packages import get_package_share_directory

    assert TFMessage.__module__.startswith("tf2_msgs.msg")
    assert list(TFMessage.get_fields_and_field_types().items()) == [("transforms", "sequence<geometry_msgs/TransformStamped>")]
    share = Path(get_package_share_directory("tf2_msgs"))
    description = json.loads((share / "msg" / "TFMessage.json").read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in description["type_hashes"]}
    assert hashes["tf2_msgs/msg/TFMessage"] == JAZZY_TFMESSAGE_HASH
