"""Global planner core, ROS-free: layered costmap, keep-out zones, result-coded planning.

The costmap is the static map, plus the Nav2 keep-out filter mask (when given), plus the keep-out
polygons of the fleet policy, plus the latest local costmap from perception, all turned into
lethal cells and then inflated by the robot radius with an exponentially decaying cost
gradient out to the inflation radius (Nav2's inflation model). The robot centre may enter a
cell only when its distance to every lethal cell exceeds the robot radius; inside the
inflation radius a step costs more (``1 + cost_weight * exp(-k (d - r))`` per metre), which
keeps paths off walls without making them suboptimal in open space.

Keep-out zones are lethal for the whole robot (they are inflated like walls): a robot that
obeys a keep-out zone keeps its body out of it, not just its centre.

Local costmap updates touch only the window they cover (plus the inflation radius), so
merging a 10 Hz local costmap into a 2000 x 2000 map costs milliseconds.
"""
from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import search
from .errors import InvalidGridError, InvalidPolygonError
from .mapio import OccupancyMap


# Appended to a GOAL_IN_OBSTACLE message when only the local costmap (what the sensors see now,
# e.g. another robot standing at the goal) blocks the goal, not the static map: it may move.
TRANSIENT_OBSTACLE = " (a transient obstacle: local costmap only)"


class PlanCode(enum.IntEnum):
    """Result codes; the same numbers as the constants of ``depai/srv/PlanPath``."""

    SUCCESS = 0
    GOAL_OFF_MAP = 1
    GOAL_IN_OBSTACLE = 2
    GOAL_IN_KEEPOUT = 3
    START_INVALID = 4
    NO_PATH = 5
    MAP_NOT_READY = 6
    STALE_COSTMAP = 7
    INVALID_REQUEST = 8
    START_IN_KEEPOUT = 9


MODES = ("optimal", "smooth")


@dataclass
class CostmapConfig:
    """Inflation and occupancy interpretation (see the planner README for meanings)."""

    robot_radius: float = 0.22
    inflation_radius: float = 0.55
    cost_scaling_factor: float = 3.0
    cost_weight: float = 2.0
    lethal_threshold: int = 65
    allow_unknown: bool = False
    coarse_factor: int = 8  # block size of the coarse grid used by smooth mode on big maps; < 2: off

    def __post_init__(self) -> None:
        if not (self.robot_radius >= 0 and math.isfinite(self.robot_radius)):
            raise ValueError("robot_radius must be >= 0")
        if not self.inflation_radius >= self.robot_radius:
            raise ValueError("inflation_radius must be >= robot_radius")
        if not 1 <= self.lethal_threshold <= 100:
            raise ValueError("lethal_threshold must lie in 1..100")


@dataclass
class PlanResult:
    code: PlanCode
    message: str
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (N, 2) world x, y
    length: float = 0.0
    cost: float = 0.0
    expansions: int = 0
    planning_time: float = 0.0
    mode: str = "optimal"

    @property
    def ok(self) -> bool:
        return self.code == PlanCode.SUCCESS


def _resample_to(mask: OccupancyMap, grid: OccupancyMap) -> np.ndarray:
    """Values of ``mask`` at the centres of ``grid``'s cells (-1 where the mask has none)."""
    same = (
        mask.data.shape == grid.data.shape
        and math.isclose(mask.resolution, grid.resolution)
        and math.isclose(mask.origin_x, grid.origin_x, abs_tol=1e-9)
        and math.isclose(mask.origin_y, grid.origin_y, abs_tol=1e-9)
        and math.isclose(mask.origin_yaw, grid.origin_yaw, abs_tol=1e-12)
    )
    if same:
        return mask.data
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    x, y = grid.cell_to_world(cols, rows)
    mc, mr = mask.world_to_cell(x, y)
    inside = mask.in_bounds(mc, mr)
    out = np.full(grid.data.shape, -1, dtype=np.int8)
    out[inside] = mask.data[mr[inside], mc[inside]]
    return out


def rasterize_polygons(grid: OccupancyMap, polygons) -> np.ndarray:
    """Boolean grid of the cells touched by any polygon (list of (N, 2) x, y arrays, map frame).

    Uses OpenCV's scan-line fill with 8 fractional bits, so sub-cell vertices are honoured;
    cells on the boundary count as inside (a keep-out zone errs on the side of keeping out).
    """
    import cv2

    out = np.zeros(grid.data.shape, dtype=np.uint8)
    pts_list = []
    for poly in polygons:
        p = np.asarray(poly, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] < 3 or p.shape[1] != 2:
            raise InvalidPolygonError(f"a keep-out polygon needs >= 3 (x, y) vertices, got shape {p.shape}")
        if not np.isfinite(p).all():
            raise InvalidPolygonError("keep-out polygon has non-finite coordinates")
        gx, gy = grid.world_to_grid(p[:, 0], p[:, 1])
        # Cell (c, r) has its centre at grid (c + .5, r + .5), OpenCV pixel centres are integers.
        q = np.stack([gx - 0.5, gy - 0.5], axis=1)
        q = np.clip(q, -1e6, 1e6)
        pts_list.append(np.round(q * 256.0).astype(np.int32).reshape(-1, 1, 2))
    if pts_list:
        cv2.fillPoly(out, pts_list, 1, lineType=cv2.LINE_8, shift=8)
        # Also mark every cell a boundary edge passes through, for thin or tiny polygons.
        cv2.polylines(out, pts_list, True, 1, lineType=cv2.LINE_8, shift=8)
    return out.astype(bool)


@dataclass
class LocalCostmap:
    """A robot-centric local costmap (the agreed ``local_costmap`` topic), ROS-free."""

    data: np.ndarray  # int8 [row, col], row 0 at the bottom
    resolution: float
    origin_x: float  # lower-left corner in the sensor frame (base_link x/y)
    origin_y: float
    origin_yaw: float = 0.0

    def validate(self) -> None:
        d = np.asarray(self.data)
        if d.ndim != 2 or d.size == 0:
            raise InvalidGridError(f"local costmap is empty (shape {d.shape})")
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise InvalidGridError(f"local costmap resolution must be > 0, got {self.resolution}")
        if not all(math.isfinite(v) for v in (self.origin_x, self.origin_y, self.origin_yaw)):
            raise InvalidGridError("local costmap origin is not finite")

    def lethal_points(self, threshold: int, subsamples: int) -> np.ndarray:
        """Sample points (x, y, sensor frame) covering every lethal cell, (M, 2)."""
        rows, cols = np.nonzero(np.asarray(self.data) >= threshold)
        if rows.size == 0:
            return np.zeros((0, 2))
        offs = (np.arange(subsamples) + 0.5) / subsamples
        ox, oy = np.meshgrid(offs, offs)
        lx = (cols[:, None] + ox.ravel()[None, :]) * self.resolution
        ly = (rows[:, None] + oy.ravel()[None, :]) * self.resolution
        c, s = math.cos(self.origin_yaw), math.sin(self.origin_yaw)
        x = self.origin_x + c * lx - s * ly
        y = self.origin_y + s * lx + c * ly
        return np.stack([x.ravel(), y.ravel()], axis=1)

    def footprint_corners(self) -> np.ndarray:
        h, w = np.asarray(self.data).shape
        lx = np.array([0, w, w, 0]) * self.resolution
        ly = np.array([0, 0, h, h]) * self.resolution
        c, s = math.cos(self.origin_yaw), math.sin(self.origin_yaw)
        return np.stack([self.origin_x + c * lx - s * ly, self.origin_y + s * lx + c * ly], axis=1)


def _to_world(points: np.ndarray, pose: tuple[float, float, float]) -> np.ndarray:
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    return np.stack([x + c * points[:, 0] - s * points[:, 1], y + s * points[:, 0] + c * points[:, 1]], axis=1)


class GlobalCostmap:
    """Layered, inflated planning grid (see module doc). All poses in the map frame."""

    def __init__(self, static: OccupancyMap, config: CostmapConfig | None = None,
                 keepout_mask: OccupancyMap | None = None) -> None:
        self.map = static
        self.config = config or CostmapConfig()
        cfg = self.config
        data = static.data
        lethal = data >= cfg.lethal_threshold
        if not cfg.allow_unknown:
            lethal |= data < 0
        self.static_lethal = lethal
        self.unknown = data < 0
        if keepout_mask is not None:
            self.mask_keepout = _resample_to(keepout_mask, static) >= cfg.lethal_threshold
        else:
            self.mask_keepout = np.zeros(data.shape, dtype=bool)
        self.policy_keepout = np.zeros(data.shape, dtype=bool)
        self.local_lethal = np.zeros(data.shape, dtype=bool)
        self._local_box: tuple[int, int, int, int] | None = None
        self.local_stamp: float | None = None
        res = static.resolution
        self.r_cells = cfg.robot_radius / res
        self.infl_cells = cfg.inflation_radius / res
        self.margin = int(math.ceil(self.infl_cells)) + 2
        self.dist = np.empty(data.shape, dtype=np.float32)  # cells to nearest lethal, clamped
        self.passable = np.empty(data.shape, dtype=np.uint8)
        self.penalty = np.zeros(data.shape, dtype=np.float32)
        self.workspace = search.SearchWorkspace()
        f = cfg.coarse_factor
        if f >= 2:
            shape = (-(-data.shape[0] // f), -(-data.shape[1] // f))
            self.coarse_passable = np.zeros(shape, dtype=np.uint8)
            self.coarse_penalty = np.zeros(shape, dtype=np.float32)
            self.coarse_workspace = search.SearchWorkspace()
        else:
            self.coarse_passable = None
        self._recompute((0, data.shape[0], 0, data.shape[1]))

    # ------------------------------------------------------------------ layers

    @property
    def keepout(self) -> np.ndarray:
        """Both keep-out layers as one grid (a full-map operation: use :meth:`keepout_at` for
        a few cells)."""
        return self.mask_keepout | self.policy_keepout

    def keepout_at(self, rows, cols):
        return self.mask_keepout[rows, cols] | self.policy_keepout[rows, cols]

    def _recompute(self, box: tuple[int, int, int, int]) -> None:
        """Refresh distances, passability and costs after lethal cells changed inside ``box``
        (rows r0:r1, cols c0:c1): every cell within the inflation margin of it is rewritten,
        from a distance transform over a region one more margin wider."""
        m = self.margin
        r0, r1, c0, c1 = box
        H, W = self.map.data.shape
        r0, c0 = max(0, r0 - m), max(0, c0 - m)
        r1, c1 = min(H, r1 + m), min(W, c1 + m)
        if r0 >= r1 or c0 >= c1:
            return
        e0, e1 = max(0, r0 - m), min(H, r1 + m)
        f0, f1 = max(0, c0 - m), min(W, c1 + m)
        sl = (slice(e0, e1), slice(f0, f1))
        lethal = (self.static_lethal[sl] | self.mask_keepout[sl] | self.policy_keepout[sl]
                  | self.local_lethal[sl])
        if lethal.any():
            d = ndimage.distance_transform_edt(~lethal).astype(np.float32)
        else:
            d = np.full(lethal.shape, np.float32(m), dtype=np.float32)
        inner = (slice(r0 - e0, r1 - e0), slice(c0 - f0, c1 - f0))
        d = np.minimum(d[inner], np.float32(m))
        tgt = (slice(r0, r1), slice(c0, c1))
        self.dist[tgt] = d
        cfg = self.config
        res = self.map.resolution
        passable = d > self.r_cells
        self.passable[tgt] = passable
        if cfg.cost_weight > 0 and self.infl_cells > self.r_cells:
            metres = d.astype(np.float32) * np.float32(res)
            pen = cfg.cost_weight * np.exp(-cfg.cost_scaling_factor * (metres - cfg.robot_radius))
            pen = np.where(passable & (d < self.infl_cells), pen, 0.0).astype(np.float32)
            self.penalty[tgt] = pen
        else:
            self.penalty[tgt] = 0.0
        if self.coarse_passable is not None:
            self._update_coarse(r0, r1, c0, c1)

    def _update_coarse(self, r0: int, r1: int, c0: int, c1: int) -> None:
        """Coarse cells (blocks of ``coarse_factor``^2 cells) touching the given fine region:
        passable when every cell of the block is, with the block's mean cost."""
        f = self.config.coarse_factor
        H, W = self.map.data.shape
        b0, b1 = r0 // f, -(-r1 // f)
        d0, d1 = c0 // f, -(-c1 // f)
        rows, cols = (b1 - b0) * f, (d1 - d0) * f
        pas = np.zeros((rows, cols), dtype=np.uint8)
        pen = np.zeros((rows, cols), dtype=np.float32)
        fr1, fc1 = min(H, b1 * f), min(W, d1 * f)
        pas[: fr1 - b0 * f, : fc1 - d0 * f] = self.passable[b0 * f : fr1, d0 * f : fc1]
        pen[: fr1 - b0 * f, : fc1 - d0 * f] = self.penalty[b0 * f : fr1, d0 * f : fc1]
        self.coarse_passable[b0:b1, d0:d1] = pas.reshape(b1 - b0, f, d1 - d0, f).min(axis=(1, 3))
        self.coarse_penalty[b0:b1, d0:d1] = pen.reshape(b1 - b0, f, d1 - d0, f).mean(axis=(1, 3))

    def set_keepout_polygons(self, polygons) -> None:
        """Replace the policy keep-out zones (list of (N, 2) map-frame polygons)."""
        new = rasterize_polygons(self.map, polygons) if len(polygons) else np.zeros_like(self.policy_keepout)
        changed = new ^ self.policy_keepout
        self.policy_keepout = new
        if changed.any():
            rows = np.nonzero(changed.any(axis=1))[0]
            cols = np.nonzero(changed.any(axis=0))[0]
            self._recompute((rows[0], rows[-1] + 1, cols[0], cols[-1] + 1))

    def set_local_costmap(self, local: LocalCostmap | None, robot_pose: tuple[float, float, float] | None,
                          stamp: float) -> None:
        """Merge the latest local costmap (replacing the previous one) placed at ``robot_pose``.

        Only lethal cells are merged; the static map is never cleared by a local costmap.
        ``None`` removes the local layer.
        """
        old_box = self._local_box
        if local is not None:
            local.validate()
            res = self.map.resolution
            sub = max(1, int(math.ceil(local.resolution / res)) + 1)
            pts = local.lethal_points(self.config.lethal_threshold, sub)
            corners = _to_world(local.footprint_corners(), robot_pose)
            cc, cr = self.map.world_to_cell(corners[:, 0], corners[:, 1])
            new_box = (int(cr.min()) - 1, int(cr.max()) + 2, int(cc.min()) - 1, int(cc.max()) + 2)
        else:
            pts = np.zeros((0, 2))
            new_box = None
        if old_box is not None:
            r0, r1, c0, c1 = old_box
            self.local_lethal[max(0, r0):max(0, r1), max(0, c0):max(0, c1)] = False
        if pts.shape[0]:
            w = _to_world(pts, robot_pose)
            c, r = self.map.world_to_cell(w[:, 0], w[:, 1])
            ok = self.map.in_bounds(c, r)
            self.local_lethal[r[ok], c[ok]] = True
        self._local_box = new_box
        self.local_stamp = stamp if local is not None else None
        boxes = [b for b in (old_box, new_box) if b is not None]
        if boxes:
            self._recompute((min(b[0] for b in boxes), max(b[1] for b in boxes),
                             min(b[2] for b in boxes), max(b[3] for b in boxes)))

    # ------------------------------------------------------------------ queries

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        c, r = self.map.world_to_cell(x, y)
        return int(r), int(c)

    def in_bounds(self, rc: tuple[int, int]) -> bool:
        return 0 <= rc[0] < self.map.height and 0 <= rc[1] < self.map.width

    def _disk(self, rc: tuple[int, int], radius_cells: float):
        R = int(math.ceil(radius_cells))
        r0, r1 = max(0, rc[0] - R), min(self.map.height, rc[0] + R + 1)
        c0, c1 = max(0, rc[1] - R), min(self.map.width, rc[1] + R + 1)
        rr, cc = np.mgrid[r0:r1, c0:c1]
        inside = (rr - rc[0]) ** 2 + (cc - rc[1]) ** 2 <= radius_cells ** 2
        return rr[inside], cc[inside]

    def classify_blocked(self, rc: tuple[int, int]) -> tuple[PlanCode, str] | None:
        """Why the robot centre may not be at cell ``rc`` (None if it may)."""
        if self.keepout_at(*rc):
            return PlanCode.GOAL_IN_KEEPOUT, "inside a keep-out zone"
        if self.static_lethal[rc] or self.local_lethal[rc]:
            what = "unknown space" if self.unknown[rc] and not self.config.allow_unknown else "an obstacle"
            return PlanCode.GOAL_IN_OBSTACLE, f"inside {what}" + ("" if self.static_lethal[rc] else TRANSIENT_OBSTACLE)
        if self.passable[rc]:
            return None
        rr, cc = self._disk(rc, self.r_cells)
        if self.keepout_at(rr, cc).any():
            return PlanCode.GOAL_IN_KEEPOUT, f"within the robot radius ({self.config.robot_radius} m) of a keep-out zone"
        # only sensed (e.g. another robot standing there), nothing of the static map: it may move
        transient = "" if self.static_lethal[rr, cc].any() else TRANSIENT_OBSTACLE
        return PlanCode.GOAL_IN_OBSTACLE, f"within the robot radius ({self.config.robot_radius} m) of an obstacle{transient}"

    def path_blocked(self, points: np.ndarray, from_index: int = 0) -> int:
        """Index of the first path point at or after ``from_index`` whose cell is not passable
        (-1 when the rest of the path is clear). ``points`` are dense (x, y) map-frame points."""
        if from_index >= len(points):
            return -1
        p = points[from_index:]
        c, r = self.map.world_to_cell(p[:, 0], p[:, 1])
        ok = self.map.in_bounds(c, r)
        bad = ~ok
        bad[ok] = self.passable[r[ok], c[ok]] == 0
        idx = np.flatnonzero(bad)
        return -1 if idx.size == 0 else int(idx[0]) + from_index


def densify(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points along a polyline no more than ``spacing`` apart (keeps every vertex)."""
    if len(points) < 2:
        return np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(math.ceil(math.hypot(*(b - a)) / spacing)))
        t = (np.arange(1, n + 1) / n)[:, None]
        out.append(a + (b - a) * t)
    return np.concatenate(out, axis=0)


class Planner:
    """Result-coded global planning on a :class:`GlobalCostmap`."""

    def __init__(self, costmap: GlobalCostmap | None = None, costmap_timeout: float = 1.0,
                 smooth_tolerance: float = 0.02, coarse_min_cells: int = 1_000_000,
                 corridor: int = 2) -> None:
        self.costmap = costmap
        self.costmap_timeout = costmap_timeout
        self.smooth_tolerance = smooth_tolerance
        self.coarse_min_cells = coarse_min_cells
        self.corridor = corridor

    def _corridor_search(self, passable, s, g):
        """Coarse-to-fine search for smooth mode on big maps: A* on the coarse grid, then the
        fine A* restricted to a corridor of ``corridor`` coarse cells around the coarse path.
        Not guaranteed optimal (that is what ``optimal`` mode is for); returns None (caller
        falls back to the full search) when the coarse grid or the corridor has no path."""
        from scipy import ndimage

        cm = self.costmap
        f = cm.config.coarse_factor
        cp = cm.coarse_passable
        cs, cg = (s[0] // f, s[1] // f), (g[0] // f, g[1] // f)
        saved = cp[cs], cp[cg]
        cp[cs] = cp[cg] = 1  # the blocks of start and goal may be partly blocked
        try:
            ccells, _, cexp = search.astar(cp, cs, cg, cm.coarse_penalty, cm.coarse_workspace)
        finally:
            cp[cs], cp[cg] = saved
        if ccells is None:
            return None, cexp
        mask = np.zeros(cp.shape, dtype=bool)
        mask[ccells[:, 0], ccells[:, 1]] = True
        mask = ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=self.corridor)
        H, W = passable.shape
        fine = np.repeat(np.repeat(mask, f, axis=0), f, axis=1)[:H, :W]
        corridor = passable & fine
        cells, cost, exp = search.astar(corridor, s, g, cm.penalty, cm.workspace)
        return (cells, cost) if cells is not None else None, cexp + exp

    def plan(self, start: tuple[float, float], goal: tuple[float, float], mode: str = "optimal",
             now: float | None = None) -> PlanResult:
        t0 = time.perf_counter()
        res = self._plan(start, goal, mode, now)
        res.planning_time = time.perf_counter() - t0
        res.mode = mode
        return res

    def _plan(self, start, goal, mode, now) -> PlanResult:
        cm = self.costmap
        if cm is None:
            return PlanResult(PlanCode.MAP_NOT_READY, "no map loaded yet")
        if mode not in MODES:
            return PlanResult(PlanCode.INVALID_REQUEST, f"unknown mode '{mode}' (expected {' or '.join(MODES)})")
        if not all(math.isfinite(float(v)) for v in (*start, *goal)):
            return PlanResult(PlanCode.INVALID_REQUEST, "start and goal must be finite coordinates")
        if cm.local_stamp is not None and now is not None and now - cm.local_stamp > self.costmap_timeout:
            return PlanResult(PlanCode.STALE_COSTMAP,
                              f"local costmap is {now - cm.local_stamp:.2f} s old (timeout {self.costmap_timeout} s)")
        s = cm.cell_of(*start)
        g = cm.cell_of(*goal)
        if not cm.in_bounds(s):
            return PlanResult(PlanCode.START_INVALID, f"start ({start[0]:.2f}, {start[1]:.2f}) is off the map")
        if not cm.in_bounds(g):
            return PlanResult(PlanCode.GOAL_OFF_MAP, f"goal ({goal[0]:.2f}, {goal[1]:.2f}) is off the map")
        why = cm.classify_blocked(g)
        if why is not None:
            return PlanResult(why[0], f"goal ({goal[0]:.2f}, {goal[1]:.2f}) is {why[1]}")
        if cm.keepout_at(*s):
            return PlanResult(PlanCode.START_IN_KEEPOUT, "start is inside a keep-out zone")
        if cm.static_lethal[s] or cm.local_lethal[s]:
            return PlanResult(PlanCode.START_INVALID, "start is inside an obstacle")

        passable = cm.passable
        restore = None
        if not passable[s]:
            # The robot is closer to an obstacle than its radius (e.g. a new obstacle appeared
            # beside it): let it leave through the cells around it that are not lethal.
            rr, cc = cm._disk(s, cm.r_cells + 1.0)
            free = ~(cm.static_lethal[rr, cc] | cm.local_lethal[rr, cc] | cm.keepout_at(rr, cc))
            rr, cc = rr[free], cc[free]
            restore = (rr, cc, passable[rr, cc].copy())
            passable[rr, cc] = 1
        try:
            found = None
            expansions = 0
            if (mode == "smooth" and cm.coarse_passable is not None
                    and cm.map.data.size >= self.coarse_min_cells):
                found, expansions = self._corridor_search(passable, s, g)
            if found is not None:
                cells, cost = found
            else:
                cells, cost, exp = search.astar(passable, s, g, cm.penalty, cm.workspace)
                expansions += exp
            if cells is not None and mode == "smooth":
                cells = search.smooth_path(passable, cells, cm.penalty, self.smooth_tolerance)
        finally:
            if restore is not None:
                passable[restore[0], restore[1]] = restore[2]
        if cells is None:
            return PlanResult(PlanCode.NO_PATH, f"no path from ({start[0]:.2f}, {start[1]:.2f}) to "
                              f"({goal[0]:.2f}, {goal[1]:.2f})", expansions=expansions)
        x, y = cm.map.cell_to_world(cells[:, 1], cells[:, 0])
        pts = np.stack([x, y], axis=1)
        # The exact start and goal replace the centres of their cells.
        pts[0] = start
        if len(pts) > 1:
            pts[-1] = goal
        else:
            pts = np.array([start, goal], dtype=np.float64)
        length = search.polyline_length(pts)
        return PlanResult(PlanCode.SUCCESS, f"path of {length:.2f} m, {len(pts)} poses",
                          points=pts, length=length, cost=cost * cm.map.resolution, expansions=expansions)
