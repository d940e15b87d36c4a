"""Recipes that make a data file from checksummed upstream inputs (run by `depai data fetch`).

This script runs in a tool environment of its own (not the project's), created with the
manifest's `tool` requirement, and imports nothing from depai:

    python recipes.py RECIPE OUTPUT ROLE=PATH ...

ouster_first_scan pcap=... json=...
    The first complete scan of an Ouster capture, decoded with the Ouster SDK (`ouster-sdk`):
    Cartesian points from the sensor's own XYZ lookup table (metres, sensor frame, not
    destaggered, in the SDK's column order), returns with zero range removed, written with
    `numpy.save` as a structured array of float32 `x, y, z, intensity` (intensity: the sensor's
    reflectivity channel). Reproduces ../shared/data/lidar byte for byte with ouster-sdk 1.0.1.
"""

from __future__ import annotations

import sys


def ouster_first_scan(output: str, pcap: str, json: str) -> None:
    import numpy as np
    from ouster.sdk import core, open_source

    source = open_source(pcap, meta=[json], index=False)
    info = source.sensor_info[0]
    lut = core.XYZLut(info)
    for frames in source:
        scan = frames[0]
        if scan is None:
            continue
        ranges = scan.field("RANGE").reshape(-1)
        xyz = lut(scan.field("RANGE")).reshape(-1, 3)
        reflectivity = scan.field("REFLECTIVITY").reshape(-1)
        keep = ranges > 0
        out = np.zeros(int(keep.sum()), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
        out["x"], out["y"], out["z"] = xyz[keep].T.astype(np.float32)
        out["intensity"] = reflectivity[keep].astype(np.float32)
        with open(output, "wb") as f:
            np.save(f, out)
        return
    raise SystemExit(f"{pcap}: no complete scan")


RECIPES = {"ouster_first_scan": ouster_first_scan}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in RECIPES:
        print(f"usage: recipes.py {{{','.join(RECIPES)}}} OUTPUT ROLE=PATH ...", file=sys.stderr)
        return 2
    inputs = dict(arg.split("=", 1) for arg in argv[2:])
    RECIPES[argv[0]](argv[1], **inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
