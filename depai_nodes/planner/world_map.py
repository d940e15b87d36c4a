"""Occupancy maps rasterised from SDF worlds, so the planner can plan in the simulator's world
(or a Gazebo world) without a SLAM run first.

Every collision shape of a non-terrain model (see the simulator's ground-truth convention:
``ground_*`` / ``terrain_*`` models are drivable) whose height range overlaps
``[min_z, max_z]`` (default: above the simulator's 8 cm step height, below a 0.6 m robot) is
projected onto the ground plane: boxes as the convex hull of their 8 corners, cylinders,
spheres and capsules as discs (upright shapes; tilted round shapes are approximated by
their radius). Everything else is free; a ``margin`` of free space surrounds the shapes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import MapLoadError
from .mapio import OccupancyMap


def world_to_map(sdf, resolution: float = 0.05, min_z: float = 0.08, max_z: float = 0.6,
                 margin: float = 1.0) -> OccupancyMap:
    """The world's obstacles as an :class:`OccupancyMap` (0 free, 100 occupied)."""
    img, lo, name = _raster(sdf, resolution, min_z, max_z, margin)
    data = np.where(img[::-1] == 0, 100, 0).astype(np.int8)
    return OccupancyMap(data=data, resolution=resolution, origin_x=float(lo[0]), origin_y=float(lo[1]),
                        source=str(sdf))


def rasterize_world(sdf, out_dir, resolution=0.05, min_z=0.08, max_z=0.6, margin=1.0) -> Path:
    """Write ``<world>.pgm`` + ``<world>.yaml`` (map_server format) into ``out_dir``."""
    img, lo, name = _raster(sdf, resolution, min_z, max_z, margin)
    H, W = img.shape
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pgm = out_dir / f"{name}.pgm"
    pgm.write_bytes(f"P5\n{W} {H}\n255\n".encode() + img.tobytes())
    yaml = out_dir / f"{name}.yaml"
    yaml.write_text(f"image: {pgm.name}\nmode: trinary\nresolution: {resolution}\norigin: [{lo[0]}, {lo[1]}, 0.0]\n"
                    "negate: 0\noccupied_thresh: 0.65\nfree_thresh: 0.196\n")
    return yaml


def _raster(sdf, resolution, min_z, max_z, margin):
    from depai_nodes.simulator.sdf import SdfError, load_world

    if not resolution > 0:
        raise MapLoadError(f"resolution must be > 0, got {resolution}")
    try:
        world = load_world(sdf)
    except (SdfError, OSError) as exc:
        raise MapLoadError(f"{sdf}: {exc}") from None
    shapes = [s for s in world.shapes if not s.terrain and s.kind in ("box", "cylinder", "sphere", "capsule")]
    polys, circles = [], []
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for s in shapes:
        R, t = s.pose[:3, :3], s.pose[:3, 3]
        if s.kind == "box":
            sx, sy, sz = s.params["size"]
            corners = np.array([[x, y, z] for x in (-sx / 2, sx / 2) for y in (-sy / 2, sy / 2) for z in (-sz / 2, sz / 2)])
            w = corners @ R.T + t
            if w[:, 2].max() < min_z or w[:, 2].min() > max_z:
                continue
            polys.append(w[:, :2])
            lo, hi = np.minimum(lo, w[:, :2].min(0)), np.maximum(hi, w[:, :2].max(0))
        else:
            r = float(s.params["radius"])
            half = float(s.params.get("length", 2 * r)) / 2
            if t[2] + half < min_z or t[2] - half > max_z:
                continue
            circles.append((t[:2], r))
            lo, hi = np.minimum(lo, t[:2] - r), np.maximum(hi, t[:2] + r)
    if not np.isfinite(lo).all():
        raise MapLoadError(f"{sdf}: no obstacle shapes between z {min_z} and {max_z} m")
    lo, hi = lo - margin, hi + margin
    W, H = int(np.ceil((hi[0] - lo[0]) / resolution)), int(np.ceil((hi[1] - lo[1]) / resolution))
    img = np.full((H, W), 254, np.uint8)

    def px(xy):  # world -> image pixel (x right, y down; the image's top row is max y)
        return np.stack([(xy[:, 0] - lo[0]) / resolution - 0.5, (H - 1) - ((xy[:, 1] - lo[1]) / resolution - 0.5)], axis=1)

    for p in polys:
        hull = cv2.convexHull(np.round(px(p) * 16).astype(np.int32))
        cv2.fillConvexPoly(img, hull, 0, lineType=cv2.LINE_8, shift=4)
    for c, r in circles:
        q = px(np.array([c]))[0]
        cv2.circle(img, (int(round(q[0] * 16)), int(round(q[1] * 16))), int(round(r / resolution * 16)), 0, -1, cv2.LINE_8, 4)
    return img, lo, world.name
