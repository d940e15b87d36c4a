"""Planner core: optimality on MovingAI scenarios, inflation, keep-outs, local costmaps, codes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depai_nodes.planner import movingai, search
from depai_nodes.planner.core import (CostmapConfig, GlobalCostmap, LocalCostmap, PlanCode, Planner,
                                      rasterize_polygons)
from depai_nodes.planner.errors import InvalidGridError, InvalidPolygonError
from depai_nodes.planner.mapio import OccupancyMap, load_map


@pytest.fixture(scope="module")
def depot(shared_data):
    return load_map(shared_data / "maps" / "depot.yaml")


@pytest.fixture(scope="module")
def wheel():
    return movingai.ensure_wheel(verbose=False)


def _square_distance(points, centre, half):
    """Euclidean distance of points to an axis-aligned square (0 inside)."""
    d = np.maximum(np.abs(np.asarray(points) - centre) - half, 0.0)
    return np.hypot(d[:, 0], d[:, 1])



def test_movingai_all_scenarios_optimal(wheel):
    """Every scenario of -even-1.scen on all 12 maps, within 1e-3 of the listed optimum."""
    ws = search.SearchWorkspace()
    total = 0
    for name in movingai.list_maps(wheel):
        grid, scen = movingai.load(name, (1,), wheel)
        assert scen, name
        for s in scen:
            cells, cost, _ = search.astar(grid, s.start, s.goal, None, ws)
            assert cells is not None, (name, s)
            assert abs(cost - s.optimal) <= 1e-3, (name, s, cost)
            assert tuple(cells[0]) == s.start and tuple(cells[-1]) == s.goal
            if len(cells) > 1:
                steps = np.abs(np.diff(cells, axis=0))
                assert steps.max() <= 1 and steps.sum(axis=1).min() >= 1
            assert grid[cells[:, 0], cells[:, 1]].all()
            total += 1
    assert total > 7000


def test_no_corner_cutting_and_no_path():
    g = np.ones((3, 3), np.uint8)
    g[0, 1] = 0  # blocks the corner between (0,0) and (1,1)
    cells, cost, _ = search.astar(g, (0, 0), (1, 1))
    assert cost == pytest.approx(2.0) and len(cells) == 3
    g = np.ones((3, 3), np.uint8)
    g[:, 1] = 0
    cells, cost, _ = search.astar(g, (0, 0), (0, 2))
    assert cells is None and math.isinf(cost)


def test_smooth_mode_is_shorter_and_collision_free(wheel):
    grid, scen = movingai.load("room-64-64-8", (1,), wheel)
    for s in scen[::5]:
        cells, cost, _ = search.astar(grid, s.start, s.goal)
        sm = search.smooth_path(grid, cells)
        assert tuple(sm[0]) == s.start and tuple(sm[-1]) == s.goal
        length = search.polyline_length(sm)
        assert length <= cost + 1e-9
        for a, b in zip(sm[:-1], sm[1:]):
            assert math.isfinite(search.segment_cost(grid, np.zeros((1, 1), np.float32), False, a[0], a[1], b[0], b[1]))


def _free_far_pair(cm, rng):
    cells = np.argwhere(cm.passable > 0)
    a, b = cells[0], cells[-1]
    for _ in range(1000):
        a, b = cells[rng.integers(len(cells), size=2)]
        if np.hypot(*(a - b)) > 200:
            break
    xa, ya = cm.map.cell_to_world(a[1], a[0])
    xb, yb = cm.map.cell_to_world(b[1], b[0])
    return (float(xa), float(ya)), (float(xb), float(yb))


def _clearance_ok(cm, pts):
    c, r = cm.map.world_to_cell(pts[:, 0], pts[:, 1])
    return bool(cm.passable[r[1:-1], c[1:-1]].all())


def test_inflation_keeps_robot_radius_and_gradient(depot):
    cfg = CostmapConfig(robot_radius=0.22, inflation_radius=0.55)
    cm = GlobalCostmap(depot, cfg)
    lethal = depot.data == 100
    from scipy import ndimage
    d = ndimage.distance_transform_edt(depot.data != 100) * depot.resolution
    assert not cm.passable[lethal].any()
    assert not cm.passable[(d <= 0.22) & (depot.data == 0)].any()
    assert cm.passable[(d > 0.23) & (depot.data == 0)].all()
    near = cm.penalty[(d > 0.25) & (d < 0.3) & (depot.data == 0)]
    far = cm.penalty[(d > 0.45) & (d < 0.5) & (depot.data == 0)]
    assert near.min() > far.max() > 0
    assert (cm.penalty[(d > 0.6) & (depot.data == 0)] == 0).all()


@pytest.mark.parametrize("mode", ["optimal", "smooth"])
def test_keepout_polygon_forces_detour(depot, mode):
    cm = GlobalCostmap(depot, CostmapConfig())
    planner = Planner(cm)
    start, goal = _free_far_pair(cm, np.random.default_rng(3))
    first = planner.plan(start, goal, mode)
    assert first.ok, first.message
    assert _clearance_ok(cm, first.points)
    mid = first.points[len(first.points) // 2]
    box = np.array([[mid[0] - 0.6, mid[1] - 0.6], [mid[0] + 0.6, mid[1] - 0.6],
                    [mid[0] + 0.6, mid[1] + 0.6], [mid[0] - 0.6, mid[1] + 0.6]])
    cm.set_keepout_polygons([box])
    assert cm.path_blocked(first.points) >= 0
    # The incremental update equals a full rebuild with the zone burnt into the map.
    burnt = depot.data.copy()
    burnt[cm.policy_keepout] = 100
    full = GlobalCostmap(OccupancyMap(burnt, depot.resolution, depot.origin_x, depot.origin_y), CostmapConfig())
    assert np.array_equal(full.passable, cm.passable)
    assert np.allclose(full.penalty, cm.penalty, atol=1e-5)
    second = planner.plan(start, goal, mode)
    assert second.ok, second.message
    # The robot centre keeps its radius (0.22 m, less half a 5 cm cell) from the zone.
    assert _square_distance(second.points, mid, 0.6).min() > 0.2
    assert second.length > first.length
    # Lifting the zone restores the original plan.
    cm.set_keepout_polygons([])
    assert planner.plan(start, goal, mode).length == pytest.approx(first.length)


def test_result_codes(depot, shared_data):
    cm = GlobalCostmap(depot, CostmapConfig(), load_map(shared_data / "maps" / "depot_keepout.yaml"))
    planner = Planner(cm, costmap_timeout=1.0)
    assert Planner(None).plan((0, 0), (1, 1)).code == PlanCode.MAP_NOT_READY
    start, goal = _free_far_pair(cm, np.random.default_rng(5))
    assert planner.plan(start, goal).ok
    assert planner.plan(start, (-5.0, 1.0)).code == PlanCode.GOAL_OFF_MAP
    assert planner.plan((-5.0, 1.0), goal).code == PlanCode.START_INVALID
    assert planner.plan(start, (math.nan, 1.0)).code == PlanCode.INVALID_REQUEST
    assert planner.plan(start, goal, "fastest").code == PlanCode.INVALID_REQUEST
    # (the depot keep-out mask also covers the walls, so walls are checked without it)
    plain = Planner(GlobalCostmap(depot, CostmapConfig()))
    occ = np.argwhere(depot.data == 100)[0]
    x, y = depot.cell_to_world(occ[1], occ[0])
    assert plain.plan(start, (float(x), float(y))).code == PlanCode.GOAL_IN_OBSTACLE
    near = np.argwhere((plain.costmap.passable == 0) & (depot.data == 0))[0]
    x, y = depot.cell_to_world(near[1], near[0])
    r = plain.plan(start, (float(x), float(y)))
    assert r.code == PlanCode.GOAL_IN_OBSTACLE and "robot radius" in r.message
    mask_only = np.argwhere(cm.mask_keepout & (depot.data == 0))
    k = mask_only[len(mask_only) // 2]
    x, y = depot.cell_to_world(k[1], k[0])
    r = planner.plan(start, (float(x), float(y)))
    assert r.code == PlanCode.GOAL_IN_KEEPOUT, r.message
    assert planner.plan((float(x), float(y)), goal).code == PlanCode.START_IN_KEEPOUT
    # A goal sealed off by a keep-out ring is unreachable.
    gx, gy = goal
    ring = [np.array([[gx - 1.5, gy - 1.5], [gx + 1.5, gy - 1.5], [gx + 1.5, gy - 1.4], [gx - 1.5, gy - 1.4]]),
            np.array([[gx - 1.5, gy + 1.4], [gx + 1.5, gy + 1.4], [gx + 1.5, gy + 1.5], [gx - 1.5, gy + 1.5]]),
            np.array([[gx - 1.5, gy - 1.5], [gx - 1.4, gy - 1.5], [gx - 1.4, gy + 1.5], [gx - 1.5, gy + 1.5]]),
            np.array([[gx + 1.4, gy - 1.5], [gx + 1.5, gy - 1.5], [gx + 1.5, gy + 1.5], [gx + 1.4, gy + 1.5]])]
    cm.set_keepout_polygons(ring)
    assert planner.plan(start, goal).code == PlanCode.NO_PATH
    cm.set_keepout_polygons([])
    # Stale local costmap.
    cm.set_local_costmap(LocalCostmap(np.zeros((20, 20), np.int8), 0.1, -1.0, -1.0), (*start, 0.0), stamp=100.0)
    assert planner.plan(start, goal, now=100.5).ok
    assert planner.plan(start, goal, now=102.0).code == PlanCode.STALE_COSTMAP


def test_local_costmap_blocks_then_clears_and_matches_full_rebuild(depot):
    cfg = CostmapConfig()
    cm = GlobalCostmap(depot, cfg)
    planner = Planner(cm)
    start, goal = _free_far_pair(cm, np.random.default_rng(11))
    first = planner.plan(start, goal, "optimal")
    assert first.ok
    # Robot a few metres along the path, facing along it; an obstacle 1 m ahead in the local map.
    i = min(len(first.points) - 1, 40)
    p, q = first.points[i], first.points[min(i + 10, len(first.points) - 1)]
    yaw = math.atan2(q[1] - p[1], q[0] - p[0])
    local = np.zeros((60, 60), np.int8)  # 6 m x 6 m at 0.1 m, robot-centric
    local[27:33, 39:43] = 100  # x in [0.9, 1.3] m ahead, y in [-0.3, 0.3] m
    lc = LocalCostmap(local, 0.1, -3.0, -3.0)
    cm.set_local_costmap(lc, (float(p[0]), float(p[1]), yaw), stamp=0.0)
    ahead = (p[0] + 1.1 * math.cos(yaw), p[1] + 1.1 * math.sin(yaw))
    assert not cm.passable[cm.cell_of(*ahead)]
    # Windowed update equals a full rebuild with the obstacle burnt into the static map.
    burnt = depot.data.copy()
    burnt[cm.local_lethal] = 100
    full = GlobalCostmap(OccupancyMap(burnt, depot.resolution, depot.origin_x, depot.origin_y), cfg)
    assert np.array_equal(full.passable, cm.passable)
    assert np.allclose(full.penalty, cm.penalty, atol=1e-5)
    # A new, empty local costmap clears the obstacle again.
    cm.set_local_costmap(LocalCostmap(np.zeros((60, 60), np.int8), 0.1, -3.0, -3.0),
                         (float(p[0]), float(p[1]), yaw), stamp=0.1)
    assert not cm.local_lethal.any()
    base = GlobalCostmap(depot, cfg)
    assert np.array_equal(base.passable, cm.passable)


def test_start_too_close_to_new_obstacle_can_escape(depot):
    cm = GlobalCostmap(depot, CostmapConfig())
    planner = Planner(cm)
    start, goal = _free_far_pair(cm, np.random.default_rng(2))
    local = np.zeros((40, 40), np.int8)
    local[20, 21] = 100  # 0.1 m to the robot's left-front: inside its radius
    cm.set_local_costmap(LocalCostmap(local, 0.1, -2.0, -2.0), (*start, 0.0), stamp=0.0)
    assert not cm.passable[cm.cell_of(*start)]
    r = planner.plan(start, goal, now=0.1)
    assert r.ok, r.message
    assert not cm.passable[cm.cell_of(*start)]  # the escape was for that query only


def test_bad_polygons_and_grids(depot):
    with pytest.raises(InvalidPolygonError):
        rasterize_polygons(depot, [np.array([[0, 0], [1, 1]])])
    with pytest.raises(InvalidPolygonError):
        rasterize_polygons(depot, [np.array([[0, 0], [1, math.inf], [2, 0]])])
    cm = GlobalCostmap(depot, CostmapConfig())
    with pytest.raises(InvalidGridError):
        cm.set_local_costmap(LocalCostmap(np.zeros((0, 0), np.int8), 0.1, 0, 0), (1.0, 1.0, 0.0), 0.0)
    with pytest.raises(InvalidGridError):
        cm.set_local_costmap(LocalCostmap(np.zeros((4, 4), np.int8), 0.0, 0, 0), (1.0, 1.0, 0.0), 0.0)


def test_tiny_polygon_still_marks_its_cell(depot):
    x, y = depot.cell_to_world(100, 100)
    eps = 0.004
    mask = rasterize_polygons(depot, [np.array([[x - eps, y - eps], [x + eps, y - eps], [x, y + eps]])])
    assert mask[100, 100] and mask.sum() <= 4


def test_coarse_to_fine_smooth_mode_is_valid_and_near_optimal(depot):
    cm = GlobalCostmap(depot, CostmapConfig())
    fast = Planner(cm, coarse_min_cells=0)  # force the corridor search on this small map
    rng = np.random.default_rng(9)
    for _ in range(5):
        start, goal = _free_far_pair(cm, rng)
        ref = Planner(cm).plan(start, goal, "optimal")
        r = fast.plan(start, goal, "smooth")
        assert r.ok and ref.ok
        from depai_nodes.planner.core import densify
        assert _clearance_ok(cm, densify(r.points, depot.resolution / 2))
        assert r.length <= ref.length * 1.05


def test_coarse_grid_without_path_falls_back_to_full_search():
    data = np.zeros((200, 200), np.int8)
    data[:, 100] = 100
    data[95:107, 100] = 0  # a 0.6 m door: after inflation ~3 cells wide, no coarse 8x8 block fits
    m = OccupancyMap(data, 0.05)
    cm = GlobalCostmap(m, CostmapConfig())
    assert cm.coarse_passable[:, 12].sum() == 0  # the coarse grid is cut
    r = Planner(cm, coarse_min_cells=0).plan((2.0, 2.0), (8.0, 8.0), "smooth")
    assert r.ok, r.message
    assert np.any(np.abs(r.points[:, 0] - 5.025) < 0.5)


def test_heap_overflow_is_retried_with_a_bigger_heap():
    g = np.ones((300, 300), np.uint8)
    g[100:200, 150] = 0
    ws = search.SearchWorkspace()
    ws.prepare(g.shape)
    ws.grow(16)  # far too small: the search must enlarge it and start again
    cells, cost, _ = search.astar(g, (150, 10), (150, 290), None, ws)
    ref_cells, ref_cost, _ = search.astar(g, (150, 10), (150, 290))
    assert cells is not None and cost == pytest.approx(ref_cost)
    assert ws.hk.shape[0] > 16
