"""Test helper: an occupancy map (map_server PGM + YAML) rasterised from an SDF world's collision
shapes, so the planner can plan in the simulator's world. Shapes that lie entirely below
``min_z`` (drivable) or above ``max_z`` (overhead) are left out; terrain models too."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depai_nodes.simulator.sdf import load_world


def rasterize_world(sdf: Path, out_dir: Path, resolution=0.05, min_z=0.08, max_z=0.6, margin=1.0) -> Path:
    world = load_world(sdf)
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
    out_dir.mkdir(parents=True, exist_ok=True)
    pgm = out_dir / f"{world.name}.pgm"
    pgm.write_bytes(f"P5\n{W} {H}\n255\n".encode() + img.tobytes())
    yaml = out_dir / f"{world.name}.yaml"
    yaml.write_text(f"image: {pgm.name}\nmode: trinary\nresolution: {resolution}\norigin: [{lo[0]}, {lo[1]}, 0.0]\n"
                    "negate: 0\noccupied_thresh: 0.65\nfree_thresh: 0.196\n")
    return yaml
