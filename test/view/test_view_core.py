"""The live view's ROS-free logic, fed real generated messages (core.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import Point32, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path

from depai.msg import FleetPolicy, KeepOutZone, Obstacle, ObstacleArray
from depai_nodes.common.pointcloud2 import array_to_cloud
from depai_nodes.common.tfbuffer import Transform
from depai_nodes.view.core import (
    FleetState, MapImage, ViewInputError, cloud_points, footprint, obstacle_boxes, path_points, robot_of_frame, zone_outlines,
)


def _yawed(x: float, y: float, yaw: float) -> Transform:
    return Transform(np.array([x, y, 0.0]), np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))


def test_cloud_downsampled_moved_to_map_and_nan_dropped():
    pts = np.zeros(10_000, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    pts["x"] = np.arange(10_000) * 1e-3
    pts["z"] = 1.0
    pts["x"][::10] = np.nan  # 1000 non-finite returns (no hit)
    msg = array_to_cloud(pts, frame_id="robot1/lidar_link")
    cloud = cloud_points(msg, _yawed(2.0, 3.0, math.pi / 2), max_points=1000)
    assert cloud.total == 9000
    assert 900 <= len(cloud.points) <= 1000
    assert np.isfinite(cloud.points).all()
    # x along the sensor becomes y in map (yaw 90 degrees), shifted by (2, 3)
    assert np.allclose(cloud.points[:, 0], 2.0, atol=1e-5)
    assert cloud.points[:, 1].min() >= 3.0 - 1e-5 and cloud.points[:, 1].max() > 12.0
    assert cloud.colors.shape == (len(cloud.points), 3) and cloud.colors.dtype == np.uint8


def test_cloud_without_xyz_is_a_typed_error():
    pts = np.zeros(5, dtype=[("a", "<f4"), ("b", "<f4")])
    with pytest.raises(ViewInputError, match="no x, y, z"):
        cloud_points(array_to_cloud(pts), Transform.identity())


def _obstacle(i, lo, hi):
    ob = Obstacle(id=i)
    ob.box_min.x, ob.box_min.y, ob.box_min.z = lo
    ob.box_max.x, ob.box_max.y, ob.box_max.z = hi
    return ob


def test_obstacle_boxes_in_map_and_bad_box_refused():
    msg = ObstacleArray(obstacles=[_obstacle(7, (1, -1, 0), (3, 1, 2))])
    boxes = obstacle_boxes(msg, _yawed(10.0, 0.0, math.pi))
    assert boxes.ids == [7]
    assert np.allclose(boxes.centers[0], [8.0, 0.0, 1.0])
    assert np.allclose(boxes.half_sizes[0], [1.0, 1.0, 1.0])
    assert math.isclose(abs(boxes.yaws[0]), math.pi)
    with pytest.raises(ViewInputError, match="obstacle 3"):
        obstacle_boxes(ObstacleArray(obstacles=[_obstacle(3, (1, 1, 1), (0, 2, 2))]), Transform.identity())
    assert len(obstacle_boxes(ObstacleArray(), Transform.identity())) == 0


def test_footprint_ring_and_heading():
    ring, tick = footprint(1.0, 2.0, math.pi / 2, 0.3)
    assert np.allclose(np.hypot(ring[:, 0] - 1.0, ring[:, 1] - 2.0), 0.3)
    assert np.allclose(ring[0], ring[-1])
    assert np.allclose(tick[1][:2], [1.0, 2.3])
    with pytest.raises(ViewInputError):
        footprint(float("nan"), 0.0, 0.0, 0.3)


def test_zones_closed_and_invalid_refused():
    zone = KeepOutZone(id="dock")
    zone.polygon.points = [Point32(x=4.0, y=1.0), Point32(x=6.0, y=1.0), Point32(x=6.0, y=3.0)]
    (zid, outline), = zone_outlines(FleetPolicy(keep_out_zones=[zone]))
    assert zid == "dock" and len(outline) == 4 and np.allclose(outline[0], outline[-1])
    zone.polygon.points = [Point32(x=4.0, y=1.0), Point32(x=float("nan"), y=1.0), Point32(x=6.0, y=3.0)]
    with pytest.raises(ViewInputError, match="dock"):
        zone_outlines(FleetPolicy(keep_out_zones=[zone]))


def test_path_points_drop_non_finite():
    path = Path()
    for x in (0.0, 1.0, float("inf"), 2.0):
        ps = PoseStamped()
        ps.pose.position.x = x
        path.poses.append(ps)
    assert path_points(path)[:, 0].tolist() == [0.0, 1.0, 2.0]


def test_map_image_orientation_and_pixels():
    grid = OccupancyGrid()
    grid.header.frame_id = "map"
    grid.info.width, grid.info.height, grid.info.resolution = 4, 2, 0.5
    grid.info.origin.position.x, grid.info.origin.position.y = -1.0, -0.5
    grid.info.origin.orientation.w = 1.0
    cells = np.zeros((2, 4), np.int8)
    cells[0, 3] = 100  # row 0 = smallest y, last column
    cells[1, 0] = -1
    grid.data = cells.ravel().tobytes()
    image = MapImage.from_grid(grid)
    assert image.rgb.shape == (2, 4, 3)
    assert image.rgb[1, 3, 0] < 60          # occupied: dark, in the image's bottom row
    assert image.rgb[0, 0, 0] == 140        # unknown: grey, top row
    assert image.rgb[0, 1, 0] > 200         # free: light
    # the centre of cell (col 3, row 0) is x = -1 + 3.75 * 0.5... pixel (3.5, 1.5)
    assert np.allclose(image.to_pixels(np.array([[-1.0 + 3.5 * 0.5, -0.5 + 0.25]])), [[3.5, 1.5]])
    grid.data = bytes(3)
    with pytest.raises(ViewInputError, match="3 cells"):
        MapImage.from_grid(grid)


def test_fleet_state_series():
    s = FleetState()
    odom = Odometry()
    odom.twist.twist.linear.x, odom.twist.twist.linear.y = 0.3, 0.4
    assert math.isclose(s.on_odom("robot1", odom), 0.5)
    assert s.on_balance("robot1", "1500000000000000000") == 1.5
    with pytest.raises(ViewInputError):
        s.on_balance("robot1", "-1")
    assert s.on_anchor_status("robot1", "b1", True) == 1
    assert s.on_anchor_status("robot1", "b1", True) == 1   # a repeated CONFIRMED counts once
    assert s.on_anchor_status("robot1", "b2", False) == 1
    assert s.on_anchor_status("robot1", "b2", True) == 2
    assert robot_of_frame("robot2/lidar_link") == "robot2" and robot_of_frame("map") == ""
