"""A* against a plain Dijkstra on the same cost model: exact costs with the block heuristic on
(maze-like grids where it prunes, gradient costs, partial blocks at the map edges)."""
from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from depai_nodes.planner import search


def _dijkstra(passable, penalty, start):
    """Costs from ``start`` to every cell: 8-connected, no corner cutting, step cost
    ``len * (1 + (pen[a] + pen[b]) / 2)`` -- written independently of the numba kernel."""
    H, W = passable.shape
    dist = np.full((H, W), math.inf)
    dist[start] = 0.0
    heap = [(0.0, start)]
    while heap:
        d, (r, c) = heapq.heappop(heap)
        if d > dist[r, c]:
            continue
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr == 0 and dc == 0:
                    continue
                nr, nc = r + dr, c + dc
                if not (0 <= nr < H and 0 <= nc < W) or not passable[nr, nc]:
                    continue
                if dr and dc and not (passable[r, nc] and passable[nr, c]):
                    continue
                step = math.sqrt(2.0) if dr and dc else 1.0
                if penalty is not None:
                    step *= 1.0 + 0.5 * (float(penalty[r, c]) + float(penalty[nr, nc]))
                nd = d + step
                if nd < dist[nr, nc]:
                    dist[nr, nc] = nd
                    heapq.heappush(heap, (nd, (nr, nc)))
    return dist


def _maze(rng, H, W):
    """Thick walls (whole blocks, so the block graph sees them) with narrow gaps, thin walls
    (it does not), random clutter, and a sealed room (unreachable: the block graph rules it
    out before any expansion)."""
    g = np.ones((H, W), np.uint8)
    for r in range(8, H - 20, 30):
        g[r:r + 18, :] = 0
        for gap in rng.integers(0, W - 3, size=2):
            g[r:r + 18, gap:gap + 2] = 1
    for c in range(10, W - 4, 23):
        g[:, c] = np.where(rng.random(H) < 0.2, 1, 0)
    g[rng.random((H, W)) < 0.06] = 0
    g[H - 39:, W - 39:] = 0
    g[H - 22:H - 17, W - 22:W - 17] = 1  # sealed room, walls 17 cells thick
    return g


def _check_path(passable, penalty, cells, cost, start, goal):
    assert tuple(cells[0]) == start and tuple(cells[-1]) == goal
    d = np.abs(np.diff(cells, axis=0))
    assert d.max() <= 1 and d.sum(axis=1).min() >= 1
    assert passable[cells[:, 0], cells[:, 1]].all()
    for (r0, c0), (r1, c1) in zip(cells[:-1], cells[1:]):
        if r0 != r1 and c0 != c1:
            assert passable[r0, c1] and passable[r1, c0]  # no corner cutting
    steps = np.where(d.sum(axis=1) == 2, math.sqrt(2.0), 1.0)
    if penalty is not None:
        p = penalty[cells[:, 0], cells[:, 1]].astype(np.float64)
        steps = steps * (1.0 + 0.5 * (p[1:] + p[:-1]))
    assert steps.sum() == pytest.approx(cost, abs=1e-9)


@pytest.mark.parametrize("shape,seed", [((101, 83), 1), ((96, 96), 2), ((75, 141), 3)])
@pytest.mark.parametrize("gradient", [False, True])
def test_astar_matches_dijkstra_with_block_heuristic(shape, seed, gradient):
    assert search.BLOCK >= 2 and shape[0] * shape[1] >= search.BLOCK_MIN_CELLS  # heuristic on
    rng = np.random.default_rng(seed)
    g = _maze(rng, *shape)
    pen = (rng.random(shape) * 3.0).astype(np.float32) if gradient else None
    free = np.argwhere(g > 0)
    ws = search.SearchWorkspace()
    sealed = (shape[0] - 20, shape[1] - 20)
    assert g[sealed]
    for _ in range(4):
        s = tuple(int(v) for v in free[rng.integers(len(free))])
        dist = _dijkstra(g, pen, s)
        goals = [tuple(int(v) for v in free[i]) for i in rng.integers(len(free), size=12)] + [sealed]
        for goal in goals:
            cells, cost, expansions = search.astar(g, s, goal, pen, ws)
            if math.isinf(dist[goal]):
                assert cells is None and math.isinf(cost), (s, goal)
                if goal == sealed:
                    assert expansions == 0  # the block graph already separates them
            else:
                assert cells is not None, (s, goal)
                assert cost == pytest.approx(dist[goal], abs=1e-9), (s, goal)
                _check_path(g, pen, cells, cost, s, goal)


def test_block_heuristic_prunes_and_keeps_costs():
    """Long walls with one gap at the far end: the heuristic follows the detour (fewer
    expansions than octile A*) and the cost is the same."""
    g = np.ones((200, 200), np.uint8)
    for r in range(20, 200, 40):
        g[r:r + 20, :] = 0
        g[r:r + 20, (0 if (r // 40) % 2 else 196):][:, :4] = 1
    ws = search.SearchWorkspace()
    old = search.BLOCK
    try:
        cells, cost, exp_block = search.astar(g, (5, 100), (170, 100), None, ws)
        search.BLOCK = 0
        cells0, cost0, exp_octile = search.astar(g, (5, 100), (170, 100), None, ws)
    finally:
        search.BLOCK = old
    assert cells is not None and cost == pytest.approx(cost0, abs=1e-9)
    assert cost == pytest.approx(_dijkstra(g, None, (5, 100))[170, 100], abs=1e-9)
    assert exp_block < exp_octile
