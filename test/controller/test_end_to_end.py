"""End to end over DDS: simulator + dao_listener + planner + controller, namespaced robot1, in the
warehouse world, under the shipped fleet policy (no policy, no motion). The planner rasterises its
static map from the world's SDF file (map_yaml: *.sdf); the goal lies behind an obstacle, so the
straight line is blocked and the robot must drive around it."""
from __future__ import annotations

from pathlib import Path

import math
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from scipy import ndimage

from depai.msg import NavigationStatus, PlanResult
from depai.srv import PlanPath
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.planner.world_map import world_to_map

START = (-1.5, -2.5, math.pi)
GOAL = (-6.5, -2.5)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("map_source", ["sdf", "simulator_topic"])
def test_robot_reaches_goal_around_obstacle(start_node, ros_node, tmp_path, map_source):
    """The static map comes from the world file (map_yaml: *.sdf) or from the simulator's
    latched ground-truth map on robot1/map (map_yaml empty)."""
    world = REPO_ROOT / "worlds" / "warehouse.sdf"
    m = world_to_map(world)
    # The goal is hidden behind an obstacle: the straight segment crosses occupied cells.
    xs = np.linspace(START[0], GOAL[0], 200)
    c, r = m.world_to_cell(xs, np.full_like(xs, START[1]))
    assert (m.data[r, c] == 100).any()

    start_node("simulator", parameters={
        "world": "warehouse", "robots": ["robot1"], "spawn_poses": list(START),
        "lidar_beams": 4, "lidar_horizontal": 64, "lidar_rate": 1.0, "robot_radius": 0.3})
    planner = start_node("planner", namespace="robot1", parameters={
        "map_yaml": str(world) if map_source == "sdf" else "", "robot_radius": 0.3, "inflation_radius": 0.7,
        "mode": "smooth"})
    start_node("dao_listener", parameters={"policy_file": str(REPO_ROOT / "config" / "policy.yaml")})
    start_node("controller", namespace="robot1", parameters={"require_costmap": False, "robot_radius": 0.3})
    planner.wait_for_log("map ready", timeout=30)

    track = []
    ros_node.node.create_subscription(
        Odometry, "/robot1/odom", lambda o: track.append((o.pose.pose.position.x, o.pose.pose.position.y)), RELIABLE_QOS)
    status = ros_node.subscribe(NavigationStatus, "/robot1/navigation_status", RELIABLE_QOS)
    goals = ros_node.publisher(PoseStamped, "/robot1/goal_pose", RELIABLE_QOS)
    ros_node.wait_for_subscribers(goals)
    deadline = time.monotonic() + 20
    while not track:  # the planner needs odom before it can plan
        assert time.monotonic() < deadline, "no odom from the simulator"
        time.sleep(0.1)
    time.sleep(0.5)
    goal = PoseStamped()
    goal.header.frame_id = "map"
    goal.pose.position.x, goal.pose.position.y = GOAL
    goal.pose.orientation.w = 1.0
    # Discovery between the simulator and the planner can lag the test's own: until the planner
    # has odom it answers START_INVALID, so the goal is re-sent until it is accepted.
    results = ros_node.subscribe(PlanResult, "/robot1/plan_result", RELIABLE_QOS)
    deadline = time.monotonic() + 30
    while True:
        n = len(results.messages)
        goals.publish(goal)
        res = results.wait_for(lambda m: any(m is x for x in results.messages[n:]), timeout=10)
        if res.result != PlanPath.Response.START_INVALID or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert res.result == PlanPath.Response.SUCCESS, res.message
    arrived = status.wait_for(lambda s: s.state == NavigationStatus.ARRIVED, timeout=90)
    assert arrived.progress == 1.0
    assert arrived.policy_version == 1 and arrived.policy_source.startswith("file:")
    # It only ever moved under that policy.
    assert all(s.policy_version == 1 for s in status.messages if s.state == NavigationStatus.FOLLOWING)
    time.sleep(0.3)
    x, y = track[-1]
    assert math.hypot(x - GOAL[0], y - GOAL[1]) <= 0.15
    # It drove around: never closer to an obstacle than its radius.
    clear = ndimage.distance_transform_edt(m.data != 100) * m.resolution
    pts = np.array(track)
    c, r = m.world_to_cell(pts[:, 0], pts[:, 1])
    assert clear[r, c].min() > 0.3
    assert np.abs(pts[:, 1] - START[1]).max() > 0.3  # left the straight line
