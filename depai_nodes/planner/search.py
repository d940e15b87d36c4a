"""Compiled grid search kernels (numba): 8-connected A* and any-angle string pulling.

Why a compiled core of our own rather than a library planner: the two well-kept Python grid
planners solve a different problem. pyastar2d charges a diagonal step like a straight one
(Chebyshev metric) and both it and scikit-image's MCP cut corners, so neither returns the
octile-optimal, corner-safe paths a robot (and the MovingAI benchmark) needs. `bench/planning.py`
measures all three side by side on the same queries.

Conventions:
* grids are indexed ``[row, col]``, flattened row-major (``idx = row * width + col``);
* ``passable`` is uint8, non-zero where the robot centre may be;
* ``penalty`` is float32 >= 0, an extra cost per unit length inside a cell (0 everywhere gives
  pure geometric lengths). A step from cell a to cell b costs
  ``length * (1 + (penalty[a] + penalty[b]) / 2)`` with length 1 or sqrt(2), so the octile
  distance stays an admissible, consistent heuristic and A* stays optimal;
* a diagonal step is allowed only when both cells it squeezes between are passable
  (no corner cutting, the MovingAI rule).

Search state lives in a reusable :class:`SearchWorkspace` stamped with a generation counter,
so a query on a 2000 x 2000 grid does not pay for clearing 4 M cells.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

SQRT2 = math.sqrt(2.0)

FOUND = 0
NO_PATH = 1
HEAP_FULL = 2


@nb.njit(cache=True)
def _astar_kernel(passable, penalty, use_penalty, sr, sc, gr, gc, g, parent, state, gen, hk, hn):
    """A* over a flattened grid. ``state[i] == 2 gen`` means open, ``2 gen + 1`` closed, so
    nothing needs clearing between queries. The heap holds (key, node) with
    ``key = g + h (1 + 1e-9)``: ties in f go to the node nearer the goal (far fewer expansions
    on grids, where ties abound) at a cost bound of 1e-9 relative, far below any tolerance.
    Returns (status, expansions). The heap never grows inside the loop (a reassignable array
    there costs a third of the speed): when it is full the caller enlarges it and searches again."""
    H, W = passable.shape
    pas = passable.ravel()
    pen = penalty.ravel()
    start = sr * W + sc
    goal = gr * W + gc
    OPEN = np.uint32(2 * gen)
    CLOSED = np.uint32(2 * gen + 1)
    TIE = 1.0 + 1e-9
    g[start] = 0.0
    parent[start] = -1
    state[start] = OPEN
    a = abs(sr - gr)
    b = abs(sc - gc)
    hk[0] = (a + (SQRT2 - 1.0) * b if b < a else b + (SQRT2 - 1.0) * a) * TIE
    hn[0] = start
    size = 1
    expansions = 0
    offs = np.array([-W, W, -1, 1, -W - 1, -W + 1, W - 1, W + 1], dtype=np.int64)
    while size > 0:
        cur = hn[0]
        size -= 1
        if size > 0:  # pop: sift the last entry down from the root
            k = hk[size]
            m = hn[size]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and hk[c + 1] < hk[c]:
                    c += 1
                if hk[c] < k:
                    hk[i] = hk[c]
                    hn[i] = hn[c]
                    i = c
                else:
                    break
            hk[i] = k
            hn[i] = m
        if state[cur] == CLOSED:
            continue  # a stale duplicate
        state[cur] = CLOSED
        expansions += 1
        if cur == goal:
            return FOUND, expansions
        r = cur // W
        c0 = cur - r * W
        up = r > 0
        down = r < H - 1
        left = c0 > 0
        right = c0 < W - 1
        gcur = g[cur]
        pcur = pen[cur] if use_penalty else 0.0
        for kk in range(8):
            if kk == 0:
                if not up:
                    continue
            elif kk == 1:
                if not down:
                    continue
            elif kk == 2:
                if not left:
                    continue
            elif kk == 3:
                if not right:
                    continue
            elif kk == 4:
                if not (up and left):
                    continue
            elif kk == 5:
                if not (up and right):
                    continue
            elif kk == 6:
                if not (down and left):
                    continue
            elif not (down and right):
                continue
            nxt = cur + offs[kk]
            if pas[nxt] == 0 or state[nxt] == CLOSED:
                continue
            if kk >= 4:
                # No corner cutting: both cells beside the diagonal must be passable.
                side_c = cur - 1 if (kk == 4 or kk == 6) else cur + 1
                side_r = cur - W if kk < 6 else cur + W
                if pas[side_c] == 0 or pas[side_r] == 0:
                    continue
                step = SQRT2
            else:
                step = 1.0
            if use_penalty:
                step *= 1.0 + 0.5 * (pcur + pen[nxt])
            ng = gcur + step
            if state[nxt] != OPEN or ng < g[nxt]:
                state[nxt] = OPEN
                g[nxt] = ng
                parent[nxt] = cur
                nr = nxt // W
                a = abs(nr - gr)
                b = abs(nxt - nr * W - gc)
                key = ng + (a + (SQRT2 - 1.0) * b if b < a else b + (SQRT2 - 1.0) * a) * TIE
                if size >= hk.shape[0]:
                    return HEAP_FULL, expansions
                i = size
                size += 1
                while i > 0:  # push: sift up
                    p = (i - 1) >> 1
                    if key < hk[p]:
                        hk[i] = hk[p]
                        hn[i] = hn[p]
                        i = p
                    else:
                        break
                hk[i] = key
                hn[i] = nxt
    return NO_PATH, expansions


@nb.njit(cache=True)
def _trace(parent, start, goal, W):
    n = 1
    cur = goal
    while cur != start:
        cur = parent[cur]
        n += 1
    out = np.empty((n, 2), np.int64)
    cur = goal
    for i in range(n - 1, -1, -1):
        out[i, 0] = cur // W
        out[i, 1] = cur - (cur // W) * W
        if i > 0:
            cur = parent[cur]
    return out


class SearchWorkspace:
    """Reusable A* state for grids of one shape (re-allocated on a new shape)."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None
        self.gen = 0
        self.hk = np.empty(0, np.float64)
        self.hn = np.empty(0, np.int32)

    def prepare(self, shape: tuple[int, int]) -> None:
        if self.shape != shape:
            n = shape[0] * shape[1]
            self.g = np.empty(n, np.float64)
            if n >= 2**31:
                raise ValueError(f"grid of {n} cells is too large (limit 2**31)")
            self.parent = np.empty(n, np.int32)
            self.state = np.zeros(n, np.uint32)
            self.shape = shape
            self.gen = 0
            cap = max(1 << 16, n // 8)
            if self.hk.shape[0] < cap:
                self.grow(cap)
        self.gen += 1
        if 2 * self.gen + 1 >= 2**32:
            self.state[:] = 0
            self.gen = 1

    def grow(self, capacity: int) -> None:
        self.hk = np.empty(capacity, np.float64)
        self.hn = np.empty(capacity, np.int32)


_EMPTY_PENALTY = np.zeros((1, 1), np.float32)


def astar(passable: np.ndarray, start: tuple[int, int], goal: tuple[int, int],
          penalty: np.ndarray | None = None, workspace: SearchWorkspace | None = None):
    """Optimal 8-connected A* from ``start`` to ``goal`` (both ``(row, col)``).

    Returns ``(cells, cost, expansions)``: ``cells`` an (N, 2) int array of (row, col) from
    start to goal and ``cost`` its cost, or ``(None, inf, expansions)`` when no path exists.
    The caller checks that start and goal are in bounds and passable.
    """
    passable = np.ascontiguousarray(passable, dtype=np.uint8)
    ws = workspace or SearchWorkspace()
    ws.prepare(passable.shape)
    use_penalty = penalty is not None
    pen = np.ascontiguousarray(penalty, dtype=np.float32) if use_penalty else _EMPTY_PENALTY
    if use_penalty and pen.shape != passable.shape:
        raise ValueError("penalty must have the shape of passable")
    sr, sc = int(start[0]), int(start[1])
    gr, gc = int(goal[0]), int(goal[1])
    wasted = 0
    while True:
        status, expansions = _astar_kernel(
            passable, pen, use_penalty, sr, sc, gr, gc, ws.g, ws.parent, ws.state, ws.gen, ws.hk, ws.hn)
        if status != HEAP_FULL:
            break
        # Rare (the capacity is kept for later queries): enlarge the heap and search again.
        wasted += expansions
        ws.grow(2 * ws.hk.shape[0])
        ws.prepare(passable.shape)
    expansions += wasted
    if status != FOUND:
        return None, math.inf, int(expansions)
    W = passable.shape[1]
    goal_idx = gr * W + gc
    cells = _trace(ws.parent, sr * W + sc, goal_idx, W)
    return cells, float(ws.g[goal_idx]), int(expansions)


# ----------------------------------------------------------------------------- any-angle


@nb.njit(cache=True)
def segment_cost(passable, penalty, use_penalty, r0, c0, r1, c1):
    """Cost of the straight segment between the centres of cells (r0, c0) and (r1, c1).

    Walks every cell the segment touches (Amanatides-Woo); returns inf if one is blocked.
    Where the segment passes exactly through a cell corner, both cells beside the corner
    must be free, like the no-corner-cutting rule of the grid search.
    """
    H, W = passable.shape
    x0 = c0 + 0.5
    y0 = r0 + 0.5
    dx = float(c1 - c0)
    dy = float(r1 - r0)
    length = math.sqrt(dx * dx + dy * dy)
    if length == 0.0:
        return 0.0
    c = c0
    r = r0
    sx = 1 if dx > 0 else (-1 if dx < 0 else 0)
    sy = 1 if dy > 0 else (-1 if dy < 0 else 0)
    tdx = abs(1.0 / dx) if dx != 0 else math.inf
    tdy = abs(1.0 / dy) if dy != 0 else math.inf
    tmx = ((c + (1 if sx > 0 else 0)) - x0) / dx if dx != 0 else math.inf
    tmy = ((r + (1 if sy > 0 else 0)) - y0) / dy if dy != 0 else math.inf
    t = 0.0
    total = 0.0
    while True:
        if passable[r, c] == 0:
            return math.inf
        tn = min(tmx, tmy, 1.0)
        w = 1.0 + (penalty[r, c] if use_penalty else 0.0)
        total += (tn - t) * length * w
        t = tn
        if r == r1 and c == c1:
            break
        if tn >= 1.0:
            break
        if abs(tmx - tmy) < 1e-12:
            # Through a corner: the two side cells must both be free.
            if passable[r, c + sx] == 0 or passable[r + sy, c] == 0:
                return math.inf
            c += sx
            r += sy
            tmx += tdx
            tmy += tdy
        elif tmx < tmy:
            c += sx
            tmx += tdx
        else:
            r += sy
            tmy += tdy
        if r < 0 or r >= H or c < 0 or c >= W:
            return math.inf
    return total


@nb.njit(cache=True)
def _string_pull(passable, penalty, use_penalty, cells, prefix, tolerance):
    n = cells.shape[0]
    keep = np.empty(n, np.int64)
    k = 0
    keep[k] = 0
    k += 1
    i = 0
    while i < n - 1:
        best = i + 1
        j = i + 2
        while j < n:
            sc = segment_cost(passable, penalty, use_penalty, cells[i, 0], cells[i, 1],
                              cells[j, 0], cells[j, 1])
            if sc <= (prefix[j] - prefix[i]) * (1.0 + tolerance) + 1e-9:
                best = j
                j += 1
            else:
                break
        keep[k] = best
        k += 1
        i = best
    return keep[:k]


@nb.njit(cache=True)
def _prefix_costs(penalty, use_penalty, cells):
    n = cells.shape[0]
    out = np.zeros(n, np.float64)
    for i in range(1, n):
        dr = abs(cells[i, 0] - cells[i - 1, 0])
        dc = abs(cells[i, 1] - cells[i - 1, 1])
        step = SQRT2 if (dr + dc) == 2 else 1.0
        if use_penalty:
            step *= 1.0 + 0.5 * (penalty[cells[i, 0], cells[i, 1]] +
                                 penalty[cells[i - 1, 0], cells[i - 1, 1]])
        out[i] = out[i - 1] + step
    return out


def smooth_path(passable: np.ndarray, cells: np.ndarray, penalty: np.ndarray | None = None,
                tolerance: float = 0.0) -> np.ndarray:
    """Any-angle post-smoothing of a grid path (greedy string pulling).

    From each kept vertex, the next one is the furthest path cell reachable in a straight
    line that touches only free cells and costs at most ``(1 + tolerance)`` times the grid
    path it replaces; with a cost gradient this keeps the path as far from obstacles as the
    optimal grid path while removing the 45-degree zig-zags. Returns the kept vertices,
    (M, 2) int (row, col), first and last equal to the input's.
    """
    if cells.shape[0] <= 2:
        return cells.copy()
    passable = np.ascontiguousarray(passable, dtype=np.uint8)
    use_penalty = penalty is not None
    pen = np.ascontiguousarray(penalty, dtype=np.float32) if use_penalty else _EMPTY_PENALTY
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    prefix = _prefix_costs(pen, use_penalty, cells)
    keep = _string_pull(passable, pen, use_penalty, cells, prefix, float(tolerance))
    return cells[keep]


def polyline_length(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    d = np.diff(np.asarray(points, dtype=np.float64), axis=0)
    return float(np.hypot(d[:, 0], d[:, 1]).sum())


def warm_up() -> None:
    """Load (or compile) every kernel now, so the first real query does not pay for it."""
    g = np.ones((3, 3), np.uint8)
    cells, _, _ = astar(g, (0, 0), (2, 2))
    astar(g, (0, 0), (2, 2), np.zeros((3, 3), np.float32))
    smooth_path(g, np.array([[0, 0], [1, 1], [2, 2]]))
    smooth_path(g, np.array([[0, 0], [1, 1], [2, 2]]), np.zeros((3, 3), np.float32))
