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
so a query on a 2000 x 2000 grid does not pay for clearing 4 M cells. The heuristic adds a
consistent lower bound from a breadth-first search over 8 x 8 blocks (see :func:`astar`), the
open list is a 4-ary heap with decrease-key (a node is in it at most once, so no stale
duplicates are popped: that halved the heap work), and the best child of each expansion skips
the heap when it is next anyway.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

SQRT2 = math.sqrt(2.0)

FOUND = 0
NO_PATH = 1
HEAP_FULL = 2

# Block neighbour directions (row, col); direction 7 - k is the opposite of direction k.
_BDIR = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)], dtype=np.int64)


@nb.njit(cache=True)
def _block_bounds(passable, f, gr, gc, bdist, bmask, queue):
    """Lower bounds for the block heuristic (see :func:`astar`): the grid is cut into f x f
    blocks, a block is a node when it holds a passable cell (the goal's block always is),
    8-adjacent nodes are linked, and ``bdist`` gets each block's breadth-first distance from
    the goal's block (-1: empty or not linked to it). ``bmask`` gets, per block, a bit for each
    neighbour one step nearer the goal (bit k: direction ``_BDIR[k]``). Returns the number of
    linked blocks."""
    H, W = passable.shape
    Hb = (H + f - 1) // f
    Wb = (W + f - 1) // f
    for bi in range(Hb):
        r0 = bi * f
        r1 = min(H, r0 + f)
        for bj in range(Wb):
            c0 = bj * f
            c1 = min(W, c0 + f)
            v = -1
            for r in range(r0, r1):
                for c in range(c0, c1):
                    if passable[r, c] != 0:
                        v = -2
                        break
                if v == -2:
                    break
            bdist[bi * Wb + bj] = v
            bmask[bi * Wb + bj] = 0
    gb = (gr // f) * Wb + gc // f
    bdist[gb] = 0
    queue[0] = gb
    head = 0
    tail = 1
    while head < tail:
        cur = queue[head]
        head += 1
        d = bdist[cur]
        bi = cur // Wb
        bj = cur - bi * Wb
        for k in range(8):
            ni = bi + _BDIR[k, 0]
            nj = bj + _BDIR[k, 1]
            if ni < 0 or ni >= Hb or nj < 0 or nj >= Wb:
                continue
            nb = ni * Wb + nj
            v = bdist[nb]
            if v == -2:
                bdist[nb] = d + 1
                queue[tail] = nb
                tail += 1
                v = d + 1
            if v == d + 1:
                bmask[nb] |= np.uint8(1 << (7 - k))  # from nb, cur lies in the opposite direction
    return tail


_BTAB: dict[int, np.ndarray] = {}


def _block_table(f: int) -> np.ndarray:
    """``t[(mask * f + r) * f + c]``: Chebyshev distance from cell (r, c) of a block to the
    nearest of the neighbouring blocks whose bits are set in ``mask`` (f when none)."""
    if f <= 0:
        return np.zeros(1, np.int32)
    t = _BTAB.get(f)
    if t is None:
        t = np.full((256, f, f), f, np.int32)
        r = np.arange(f)[:, None]
        c = np.arange(f)[None, :]
        for k, (di, dj) in enumerate(_BDIR):
            dr = np.broadcast_to(r + 1 if di < 0 else (f - r if di > 0 else 0 * r), (f, f))
            dc = np.broadcast_to(c + 1 if dj < 0 else (f - c if dj > 0 else 0 * c), (f, f))
            v = np.maximum(dr, dc)
            for m in range(256):
                if m & (1 << k):
                    t[m] = np.minimum(t[m], v)
        t = t.ravel()
        _BTAB[f] = t
    return t


@nb.njit(cache=True, inline="always")
def _sift_up(hk, hn, pos, i, key, node):
    """4-ary min-heap (children of i: 4i+1 .. 4i+4; shallower than a binary heap, and the
    children's keys share a cache line); ``pos[node]`` tracks each node's slot (decrease-key)."""
    while i > 0:
        p = (i - 1) >> 2
        if key < hk[p]:
            hk[i] = hk[p]
            m = hn[p]
            hn[i] = m
            pos[m] = i
            i = p
        else:
            break
    hk[i] = key
    hn[i] = node
    pos[node] = i


@nb.njit(cache=True, inline="always")
def _heap_sift_down(hk, hn, pos, size, k, m):
    """Place (k, m) at the root of a heap of ``size`` entries and sift it down."""
    i = 0
    while True:
        c = 4 * i + 1
        if c >= size:
            break
        e = c + 4 if c + 4 <= size else size
        kc = hk[c]
        for j in range(c + 1, e):
            if hk[j] < kc:
                kc = hk[j]
                c = j
        if kc < k:
            hk[i] = kc
            x = hn[c]
            hn[i] = x
            pos[x] = i
            i = c
        else:
            break
    hk[i] = k
    hn[i] = m
    pos[m] = i


@nb.njit(cache=True)
def _astar_kernel(passable, penalty, use_penalty, sr, sc, gr, gc, g, parent, state, gen, hk, hn, pos,
                  f, bdist, bmask, btab):
    """A* over a flattened grid. ``state[i] == 2 gen`` means open, ``2 gen + 1`` closed, so
    nothing needs clearing between queries (cells of blocks not linked to the goal's are
    closed without expansion). ``pos[i]`` is an open node's slot in the heap, which holds
    (key, node) with ``key = g + h (1 + 1e-9)``: ties in f go to the node nearer the goal (far
    fewer expansions on grids, where ties abound) at a cost bound of 1e-9 relative, far below
    any tolerance.
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
    Wb = (W + f - 1) // f if f > 0 else 0
    fs = 0
    while (1 << fs) < f:
        fs += 1
    fm = f - 1
    if f > 0 and bdist[(sr // f) * Wb + sc // f] < 0:
        return NO_PATH, 0  # not even the blocks link start and goal
    a = abs(sr - gr)
    b = abs(sc - gc)
    # The best child of the last expansion is held out of the heap: when it is still the
    # smallest key (moving straight on towards the goal, mostly) it is expanded next without a
    # push and a pop. The order of expansions is the heap's.
    hold = start
    holdk = (a + (SQRT2 - 1.0) * b if b < a else b + (SQRT2 - 1.0) * a) * TIE
    size = 0
    expansions = 0
    offs = np.array([-W, W, -1, 1, -W - 1, -W + 1, W - 1, W + 1], dtype=np.int64)
    dro = np.array([-1, 1, 0, 0, -1, -1, 1, 1], dtype=np.int64)
    dco = np.array([0, 0, -1, 1, -1, 1, -1, 1], dtype=np.int64)
    while True:
        if hold >= 0 and (size == 0 or holdk <= hk[0]):
            cur = hold
            hold = -1
        else:
            if hold >= 0:
                if size >= hk.shape[0]:
                    return HEAP_FULL, expansions
                _sift_up(hk, hn, pos, size, holdk, hold)
                size += 1
                hold = -1
            if size == 0:
                break
            cur = hn[0]
            size -= 1
            if size > 0:
                _heap_sift_down(hk, hn, pos, size, hk[size], hn[size])
        if state[cur] == CLOSED:
            continue  # a stale duplicate
        state[cur] = CLOSED
        expansions += 1
        if cur == goal:
            return FOUND, expansions
        r = cur // W
        c0 = cur - r * W
        # Which of the 8 moves are allowed (bit kk): the straight neighbours must be passable,
        # a diagonal one too and both cells beside it (no corner cutting).
        pu = r > 0 and pas[cur - W] != 0
        pd = r < H - 1 and pas[cur + W] != 0
        pl = c0 > 0 and pas[cur - 1] != 0
        pr = c0 < W - 1 and pas[cur + 1] != 0
        allowed = (pu * 1) | (pd * 2) | (pl * 4) | (pr * 8)
        if pu and pl and pas[cur - W - 1] != 0:
            allowed |= 16
        if pu and pr and pas[cur - W + 1] != 0:
            allowed |= 32
        if pd and pl and pas[cur + W - 1] != 0:
            allowed |= 64
        if pd and pr and pas[cur + W + 1] != 0:
            allowed |= 128
        gcur = g[cur]
        pcur = pen[cur] if use_penalty else 0.0
        for kk in range(8):
            if not (allowed >> kk) & 1:
                continue
            nxt = cur + offs[kk]
            if state[nxt] == CLOSED:
                continue
            step = SQRT2 if kk >= 4 else 1.0
            if use_penalty:
                step *= 1.0 + 0.5 * (pcur + pen[nxt])
            ng = gcur + step
            isopen = state[nxt] == OPEN
            if isopen and ng >= g[nxt]:
                continue
            nr = r + dro[kk]
            nc = c0 + dco[kk]
            a = abs(nr - gr)
            b = abs(nc - gc)
            h = a + (SQRT2 - 1.0) * b if b < a else b + (SQRT2 - 1.0) * a
            if f > 0:  # f is a power of two: shifts and masks, no divisions
                bb = (nr >> fs) * Wb + (nc >> fs)
                d = bdist[bb]
                if d < 0:
                    state[nxt] = CLOSED  # its block is not linked to the goal's: a dead end
                    continue
                if d >= 2:
                    hb = float(f * (d - 2) + btab[(((bmask[bb] << fs) | (nr & fm)) << fs) | (nc & fm)])
                    if hb > h:
                        h = hb
            key = ng + h * TIE
            g[nxt] = ng
            parent[nxt] = cur
            if isopen:  # a better path to an open node: decrease its key
                if nxt == hold:
                    holdk = key
                else:
                    _sift_up(hk, hn, pos, pos[nxt], key, nxt)
                continue
            state[nxt] = OPEN
            if hold < 0:
                hold = nxt
                holdk = key
                continue
            if key < holdk:
                key, holdk = holdk, key
                nxt, hold = hold, nxt
            if size >= hk.shape[0]:
                return HEAP_FULL, expansions
            _sift_up(hk, hn, pos, size, key, nxt)
            size += 1
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
        self.bdist = np.empty(0, np.int32)
        self.bmask = np.empty(0, np.uint8)
        self.bqueue = np.empty(0, np.int32)

    def prepare(self, shape: tuple[int, int]) -> None:
        if self.shape != shape:
            n = shape[0] * shape[1]
            self.g = np.empty(n, np.float64)
            if n >= 2**31:
                raise ValueError(f"grid of {n} cells is too large (limit 2**31)")
            self.parent = np.empty(n, np.int32)
            self.pos = np.empty(n, np.int32)
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
# Block heuristic (see :func:`astar`): block size in cells (a power of two; < 2: octile
# distance only), and the grid size from which it is used. 4, 8 and 16 measured alike on the
# warehouse maps (bench/planning.py); 8 keeps the block search cheap (~1 ms on 2000 x 2000).
BLOCK = 8
BLOCK_MIN_CELLS = 0


def astar(passable: np.ndarray, start: tuple[int, int], goal: tuple[int, int],
          penalty: np.ndarray | None = None, workspace: SearchWorkspace | None = None):
    """Optimal 8-connected A* from ``start`` to ``goal`` (both ``(row, col)``).

    Returns ``(cells, cost, expansions)``: ``cells`` an (N, 2) int array of (row, col) from
    start to goal and ``cost`` its cost, or ``(None, inf, expansions)`` when no path exists.
    The caller checks that start and goal are in bounds and passable.

    Heuristic: the larger of the octile distance and a block bound. The grid is cut into
    ``BLOCK`` x ``BLOCK`` blocks; blocks holding a passable cell are linked to their 8
    neighbours and a breadth-first search from the goal's block gives each block its distance
    ``D`` in block steps. Any path from a cell of a block at distance ``D`` visits blocks at
    every distance below ``D`` and needs at least ``BLOCK`` steps per block distance (cells up
    to ``BLOCK`` steps apart lie in the same or adjacent blocks), so ``BLOCK * (D - 1)`` is a
    lower bound on its cost (every step costs at least 1). Within a block the bound is
    interpolated towards the neighbours one step nearer the goal, ``BLOCK * (D - 2) +`` the
    Chebyshev distance to the nearest of them, which makes it consistent (it changes by at most
    1 per step) as well as admissible: A* stays exactly optimal and never reopens a node. It
    sees walls and shelves at least a block thick, which the octile distance ignores, and a
    block not linked to the goal's at all is never entered (no path passes through it).
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
    H, W = passable.shape
    f = BLOCK if BLOCK >= 2 and H * W >= BLOCK_MIN_CELLS else 0
    if f & (f - 1):
        raise ValueError(f"BLOCK must be a power of two (got {f})")
    if f:
        nb_ = ((H + f - 1) // f) * ((W + f - 1) // f)
        if ws.bdist.shape[0] < nb_:
            ws.bdist = np.empty(nb_, np.int32)
            ws.bmask = np.empty(nb_, np.uint8)
            ws.bqueue = np.empty(nb_, np.int32)
        _block_bounds(passable, f, gr, gc, ws.bdist, ws.bmask, ws.bqueue)
    wasted = 0
    while True:
        status, expansions = _astar_kernel(
            passable, pen, use_penalty, sr, sc, gr, gc, ws.g, ws.parent, ws.state, ws.gen, ws.hk, ws.hn,
            ws.pos, f, ws.bdist, ws.bmask, _block_table(f))
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
