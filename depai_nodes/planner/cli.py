"""`depai plan`: plan on a map file from the command line, no ROS needed.

    depai plan ../shared/data/maps/depot.yaml --start 2 2 --goal 26 12 [--mode optimal]
        [--keepout-mask depot_keepout.yaml] [--keepout "10,5 12,5 12,7 10,7"] [--png out.png]

Prints the result code, the reason, length and planning time; exit code 0 on SUCCESS, 1 for a
refused plan (the code says why), 2 when the map or a keep-out polygon cannot be used.
"""
from __future__ import annotations

import argparse
import sys


def _polygon(text: str):
    try:
        pts = [tuple(float(v) for v in p.split(",")) for p in text.split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad polygon '{text}': expected 'x,y x,y x,y ...'") from None
    if len(pts) < 3 or any(len(p) != 2 for p in pts):
        raise argparse.ArgumentTypeError(f"bad polygon '{text}': needs >= 3 'x,y' vertices")
    return pts


def _run(args) -> int:
    import numpy as np

    from .core import CostmapConfig, GlobalCostmap, Planner
    from .errors import PlannerError
    from .mapio import load_map, load_map_or_world

    try:
        m = load_map_or_world(args.map)
        mask = load_map(args.keepout_mask) if args.keepout_mask else None
        cm = GlobalCostmap(m, CostmapConfig(robot_radius=args.robot_radius,
                                            inflation_radius=max(args.inflation_radius, args.robot_radius),
                                            allow_unknown=args.allow_unknown), mask)
        if args.keepout:
            cm.set_keepout_polygons([np.array(p) for p in args.keepout])
    except (PlannerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = Planner(cm).plan(tuple(args.start), tuple(args.goal), args.mode)
    print(f"{res.code.name}: {res.message} ({res.planning_time * 1e3:.1f} ms, {res.expansions} expansions)")
    if res.ok and args.png:
        import cv2

        img = np.full(m.data.shape + (3,), 255, np.uint8)
        img[m.data < 0] = (200, 200, 200)
        img[cm.passable == 0] = (180, 180, 255)
        img[m.data >= 65] = (0, 0, 0)
        img[cm.keepout] = (60, 60, 200)
        gx, gy = m.world_to_grid(res.points[:, 0], res.points[:, 1])
        pts = np.stack([gx - 0.5, gy - 0.5], axis=1)
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], False, (0, 160, 0), 1, cv2.LINE_AA, 4)
        cv2.imwrite(args.png, img[::-1])
        print(f"wrote {args.png}")
    return 0 if res.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="plan a path on a map_server map (no ROS needed)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("map", help="map_server YAML, or an SDF world (*.sdf) to rasterise")
    p.add_argument("--start", nargs=2, type=float, required=True, metavar=("X", "Y"))
    p.add_argument("--goal", nargs=2, type=float, required=True, metavar=("X", "Y"))
    p.add_argument("--mode", choices=("optimal", "smooth"), default="smooth")
    p.add_argument("--keepout-mask", help="Nav2 keep-out filter mask YAML")
    p.add_argument("--keepout", action="append", type=_polygon, metavar="'x,y x,y x,y ...'",
                   help="a keep-out polygon in map coordinates (repeatable)")
    p.add_argument("--robot-radius", type=float, default=0.22)
    p.add_argument("--inflation-radius", type=float, default=0.55)
    p.add_argument("--allow-unknown", action="store_true")
    p.add_argument("--png", help="write the map with the path to this PNG")
    p.set_defaults(func=_run)
