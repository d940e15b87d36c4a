"""Robots sharing a world: the mechanism behind "two patrolling robots trail each other and declare
stations unreachable": the other robot, seen by the LiDAR, is lethal in the local costmap, so the
planner refused a goal where it stood with GOAL_IN_OBSTACLE, which the agent took as "never".
The planner now marks a refusal caused only by the local costmap as transient; the agent waits
for such a goal (backoff) instead of skipping it for good (test_market_core covers the agent)."""

import numpy as np

from depai_nodes.agent.core import TRANSIENT_OBSTACLE_MARK, PatrolAgent, Waypoint
from depai_nodes.planner.core import CostmapConfig, GlobalCostmap, LocalCostmap, PlanCode, Planner
from depai_nodes.planner.mapio import OccupancyMap


def _world():
    data = np.zeros((100, 100), np.int8)  # 5 m x 5 m at 5 cm, free
    data[:, 60:62] = 100  # a static wall at x = 3.0..3.1 m
    return GlobalCostmap(OccupancyMap(data, 0.05, 0.0, 0.0), CostmapConfig(robot_radius=0.25, inflation_radius=0.4))


def _other_robot_at(cm, x, y, me=(0.5, 0.5)):
    """The local costmap of the robot at ``me``: another robot's body (0.4 m square) at (x, y)."""
    local = np.zeros((80, 80), np.int8)  # 4 m x 4 m around the robot, 5 cm
    ox, oy = -2.0, -2.0
    c0, r0 = int((x - me[0] - ox) / 0.05), int((y - me[1] - oy) / 0.05)
    local[r0 - 4:r0 + 4, c0 - 4:c0 + 4] = 100
    cm.set_local_costmap(LocalCostmap(local, 0.05, ox, oy), (*me, 0.0), stamp=0.0)


def test_a_goal_blocked_only_by_another_robot_is_marked_transient_a_wall_is_not():
    cm = _world()
    planner = Planner(cm)
    assert planner.plan((0.5, 0.5), (1.5, 1.5), now=0.0).ok
    _other_robot_at(cm, 1.5, 1.5)
    inside = planner.plan((0.5, 0.5), (1.5, 1.5), now=0.0)
    near = planner.plan((0.5, 0.5), (1.5, 1.75), now=0.0)  # within the radius of the robot's body
    for r in (inside, near):
        assert r.code == PlanCode.GOAL_IN_OBSTACLE and TRANSIENT_OBSTACLE_MARK in r.message, r.message
    wall = planner.plan((0.5, 0.5), (3.02, 1.0), now=0.0)
    by_wall = planner.plan((0.5, 0.5), (2.85, 1.0), now=0.0)
    for r in (wall, by_wall):
        assert r.code == PlanCode.GOAL_IN_OBSTACLE and TRANSIENT_OBSTACLE_MARK not in r.message, r.message
    # the robot leaves: the same goal is planned again
    cm.set_local_costmap(None, None, 0.0)
    assert planner.plan((0.5, 0.5), (1.5, 1.5), now=0.0).ok


def test_the_patrol_waits_for_a_station_another_robot_stands_on():
    cm = _world()
    planner = Planner(cm)
    _other_robot_at(cm, 1.5, 1.5)
    agent = PatrolAgent([Waypoint(1.5, 1.5), Waypoint(3.02, 1.0)], loop=True, retry_period=0.5, max_attempts=6)
    now = 0.0
    for attempt in range(3):  # robot 2 stands at the station: asked again, with growing waits
        agent.on_navigation("IDLE", now, "", 0.0)
        wp = agent.goal_to_request(now)
        assert (wp.x, wp.y) == (1.5, 1.5)
        r = planner.plan((0.5, 0.5), (wp.x, wp.y), now=0.0)
        agent.on_plan_result(r.code.name, now, r.length, 0.15, r.message)
        assert agent.index == 0 and agent.skipped == 0
        now = agent.retry_at
    cm.set_local_costmap(None, None, 0.0)  # it moved on
    agent.on_navigation("IDLE", now, "", 0.0)
    wp = agent.goal_to_request(now)
    r = planner.plan((0.5, 0.5), (wp.x, wp.y), now=0.0)
    assert r.ok and "driving to waypoint 0" in agent.on_plan_result(r.code.name, now, r.length, 0.15, r.message)
