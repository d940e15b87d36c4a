"""`depai world ...`: inspect SDF worlds before simulating them.

    depai world list            the worlds shipped in worlds/
    depai world check FILE|NAME load a world as the embedded simulator does: models, shapes,
                                terrain, warnings; exit 1 with the reason if it cannot be simulated
"""

from __future__ import annotations

from collections import Counter

from .core import WORLDS_DIR, SimulatorError, resolve_world
from .sdf import SdfError, load_world


def _list(_args) -> int:
    for path in sorted(WORLDS_DIR.glob("*.sdf")):
        try:
            w = load_world(path)
            print(f"{path.stem:<12} {len(w.models):>3} models, {len(w.shapes):>3} collision shapes  {path}")
        except SdfError as error:
            print(f"{path.stem:<12} INVALID: {error}")
    return 0


def _check(args) -> int:
    try:
        path = resolve_world(args.world)
        w = load_world(path)
    except (SimulatorError, SdfError) as error:
        print(f"error: {error}")
        return 1
    kinds = Counter(s.kind for s in w.shapes)
    terrain = sorted({s.model for s in w.shapes if s.terrain})
    print(f"world '{w.name}' from {path}")
    print(f"  models: {len(w.models)}  collision shapes: {len(w.shapes)} "
          f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
    print(f"  terrain (drivable): {', '.join(terrain) if terrain else '(none: no ground_*/terrain_* model)'}")
    for warning in w.warnings:
        print(f"  warning: {warning}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("world", help="inspect SDF worlds for the embedded simulator",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="world_command", required=True)
    sub.add_parser("list", help="worlds shipped in worlds/").set_defaults(func=_list)
    c = sub.add_parser("check", help="load a world as the simulator does and report")
    c.add_argument("world", help="a name in worlds/ or a path to an .sdf file")
    c.set_defaults(func=_check)
