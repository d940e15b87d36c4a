"""Regulated pure pursuit core: regulation, stops, limits, and closed-loop following on a real map."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depai_nodes.controller.core import (ControllerConfig, InvalidPathError, NavState, ObstacleField,
                                         PathFollower, SpeedMask)
from depai_nodes.planner.core import CostmapConfig, GlobalCostmap, Planner
from depai_nodes.planner.mapio import OccupancyMap, load_map

DT = 0.05


def straight(n=200, step=0.05):
    return np.stack([np.arange(n) * step, np.zeros(n)], axis=1)


def run(f, pose, steps, limit=0.5, field=None):
    """Drive a unicycle with the follower's commands; returns final pose and commands."""
    x, y, th = pose
    cmds = []
    for _ in range(steps):
        c = f.step((x, y, th), DT, limit, field)
        cmds.append(c)
        if c.state != NavState.FOLLOWING:
            if c.state == NavState.ARRIVED:
                break
            continue
        x += c.linear * math.cos(th) * DT
        y += c.linear * math.sin(th) * DT
        th += c.angular * DT
    return (x, y, th), cmds


def field_with(points, res=0.05, size=120):
    """Robot-centric local costmap with lethal cells at the given robot-frame points, robot at origin."""
    data = np.zeros((size, size), np.int8)
    half = size * res / 2
    for px, py in points:
        data[int((py + half) / res), int((px + half) / res)] = 100
    return ObstacleField(OccupancyMap(data, res, -half, -half), (0.0, 0.0, 0.0))


def test_follows_straight_path_and_arrives_within_tolerance():
    f = PathFollower()
    f.set_path(straight())
    pose, cmds = run(f, (0.0, 0.0, 0.0), 600)
    assert cmds[-1].state == NavState.ARRIVED
    assert math.hypot(pose[0] - 9.95, pose[1]) <= f.config.goal_tolerance + 1e-6
    v = [c.linear for c in cmds if c.state == NavState.FOLLOWING]
    assert max(v) == pytest.approx(0.5) and min(v) >= 0
    assert all(abs(c.angular) < 1e-6 for c in cmds)
    # approach regulation: the last commands are slower than cruise
    assert v[-1] < 0.25
    assert cmds[-1].progress == 1.0


def test_speed_never_exceeds_limit_and_zero_limit_stops():
    f = PathFollower()
    f.set_path(straight())
    _, cmds = run(f, (0.0, 0.0, 0.0), 100, limit=0.2)
    assert max(c.linear for c in cmds) <= 0.2 + 1e-9
    f2 = PathFollower()
    f2.set_path(straight())
    c = f2.step((0, 0, 0), DT, 0.0)
    assert c.state == NavState.STOPPED and c.linear == 0 and c.angular == 0


def test_curvature_regulation_slows_on_tight_arcs():
    t = np.linspace(0, math.pi, 200)
    arc = np.stack([0.4 * np.sin(t), 0.4 - 0.4 * np.cos(t)], axis=1)  # radius 0.4 m
    fa, fs = PathFollower(), PathFollower()
    fa.set_path(arc)
    fs.set_path(straight())
    fa.last = fs.last = (0.3, 0.0)
    ca = fa.step((0.0, 0.0, 0.0), DT, 0.5)
    cs = fs.step((0.0, 0.0, 0.0), DT, 0.5)
    assert ca.state == cs.state == NavState.FOLLOWING
    assert ca.linear < cs.linear and ca.angular > 0


def test_rotates_in_place_when_path_is_behind():
    f = PathFollower()
    f.set_path(straight() * -1)
    c = f.step((0.0, 0.0, 0.0), DT, 0.5)
    assert c.linear == 0 and abs(c.angular) > 0


def test_slows_near_obstacle_and_stops_before_collision():
    side = field_with([(0.5, 0.45)])  # beside the path, 0.45 m left of it
    f1, f2 = PathFollower(), PathFollower()
    f1.set_path(straight())
    f2.set_path(straight())
    f1.last = f2.last = (0.5, 0.0)
    free = f1.step((0.0, 0.0, 0.0), DT, 0.5, None)
    near = f2.step((0.0, 0.0, 0.0), DT, 0.5, side)
    assert near.state == NavState.FOLLOWING and 0 < near.linear < free.linear
    ahead = field_with([(0.4, 0.0)])
    f3 = PathFollower()
    f3.set_path(straight())
    c = f3.step((0.0, 0.0, 0.0), DT, 0.5, ahead)
    assert c.state == NavState.STOPPED and c.reason == "collision imminent" and c.linear == 0 == c.angular


def test_invalid_path_and_empty_path():
    f = PathFollower()
    with pytest.raises(InvalidPathError):
        f.set_path([(0, 0), (math.nan, 1)])
    f.set_path([])
    assert f.step((0, 0, 0), DT, 0.5).state == NavState.IDLE


def test_speed_mask_nav2_semantics(shared_data):
    mask = load_map(shared_data / "maps" / "depot_speed.yaml")
    sm = SpeedMask(mask, "percent", 100.0, -1.0)
    for value, expect in ((50, 0.25), (25, 0.375), (20, 0.4)):
        r, c = np.argwhere(mask.data == value)[0]
        x, y = mask.cell_to_world(c, r)
        assert sm.limit(float(x), float(y), 0.5) == pytest.approx(expect)
    r, c = np.argwhere(mask.data == 0)[0]
    assert sm.limit(*map(float, mask.cell_to_world(c, r)), 0.5) is None
    assert sm.limit(-100.0, -100.0, 0.5) is None
    absolute = SpeedMask(mask, "absolute", 0.0, 0.01)
    r, c = np.argwhere(mask.data == 50)[0]
    assert absolute.limit(*map(float, mask.cell_to_world(c, r)), 0.5) == pytest.approx(0.5)


def test_closed_loop_on_planned_path_stays_clear(shared_data):
    """Plan on the real depot map, follow it with a unicycle model, never touch an obstacle."""
    m = load_map(shared_data / "maps" / "depot.yaml")
    cm = GlobalCostmap(m, CostmapConfig())
    free = np.argwhere(cm.passable > 0)
    rng = np.random.default_rng(1)
    while True:
        a, b = free[rng.integers(len(free), size=2)]
        if 60 < np.hypot(*(a - b)) < 150:
            break
    start = tuple(map(float, m.cell_to_world(a[1], a[0])))
    goal = tuple(map(float, m.cell_to_world(b[1], b[0])))
    res = Planner(cm).plan(start, goal, "smooth")
    assert res.ok
    from depai_nodes.planner.core import densify
    f = PathFollower(ControllerConfig())
    pts = densify(res.points, 0.05)
    f.set_path(pts)
    th0 = math.atan2(pts[5, 1] - pts[0, 1], pts[5, 0] - pts[0, 0])
    x, y, th = start[0], start[1], th0
    from scipy import ndimage
    clear = ndimage.distance_transform_edt(m.data != 100) * m.resolution
    worst = math.inf
    for _ in range(4000):
        c = f.step((x, y, th), DT, 0.5)
        if c.state == NavState.ARRIVED:
            break
        x += c.linear * math.cos(th) * DT
        y += c.linear * math.sin(th) * DT
        th += c.angular * DT
        col, row = m.world_to_cell(x, y)
        worst = min(worst, clear[int(row), int(col)])
    assert c.state == NavState.ARRIVED
    assert math.hypot(x - goal[0], y - goal[1]) <= 0.1 + 1e-6
    assert worst > 0.1  # the body (0.22 m) may graze inflation on corners, the centre never nears a wall


def test_turns_to_goal_heading_then_arrives():
    f = PathFollower()
    f.set_path(straight(), goal_yaw=math.pi / 2)
    pose, cmds = run(f, (0.0, 0.0, 0.0), 800)
    assert cmds[-1].state == NavState.ARRIVED
    assert abs(pose[2] - math.pi / 2) <= f.config.goal_yaw_tolerance
    turning = [c for c in cmds if c.reason == "turning to the goal heading"]
    assert turning and all(c.linear == 0.0 and c.angular > 0 for c in turning)
    assert math.hypot(pose[0] - 9.95, pose[1]) <= f.config.goal_tolerance + 1e-6
    with pytest.raises(InvalidPathError):
        f.set_path(straight(), goal_yaw=math.nan)
