"""`depai data`: the public data sets the tests and benchmarks read.

    depai data                  where data is read from, and whether every file is intact
    depai data fetch [--to DIR] [--set NAME ...]
                                a pinned, checksummed copy from upstream into the cache (or DIR)
    depai data path             print the data directory (for scripts)

`DEPAI_DATA=DIR` points at a local copy instead; without it `../shared/data` beside the repository
is used when present, else the cache (`DEPAI_DATA_CACHE`, default ~/.cache/depai/data).
"""

from __future__ import annotations

import sys
from pathlib import Path

from depai_nodes.data.core import DataError, cache_dir, data_root, fetch, load_manifest, problems


def _status(args) -> int:
    manifest = load_manifest()
    root, why = data_root()
    bad = dict((f.path, reason) for f, reason in problems(root, manifest))
    print(f"data: {root} ({why})")
    for dataset in manifest.datasets:
        broken = [f for f in dataset.files if f.path in bad]
        state = "ok" if not broken else f"{len(broken)} of {len(dataset.files)} not usable"
        print(f"  {dataset.name:<14} {len(dataset.files):>2} files  {dataset.licence:<13} {state}")
        for f in broken:
            print(f"      {f.path}: {bad[f.path]}")
    if bad:
        print("get it with `./depai data fetch`, or point DEPAI_DATA at a local copy", file=sys.stderr)
        return 1
    return 0


def _fetch(args) -> int:
    manifest = load_manifest()
    dest = Path(args.to) if args.to else cache_dir()
    try:
        fetched, kept = fetch(manifest, dest, only=args.set or None, log=lambda line: print(f"[depai data] {line}", flush=True))
    except DataError as error:
        print(f"depai data: {error}", file=sys.stderr)
        return 1
    print(f"[depai data] {dest}: {fetched} fetched, {kept} already there and intact")
    root, why = data_root()
    if root.resolve() != dest.resolve():
        print(f"[depai data] note: tests read {root} ({why}); set DEPAI_DATA={dest} to use this copy")
    return 0


def _path(args) -> int:
    print(data_root()[0])
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="the public data sets the tests use: status, fetch",
                              description=__doc__.split("\n\n")[0])
    p.set_defaults(func=_status)
    sub = p.add_subparsers(dest="data_command")
    sub.add_parser("status", help="where data is read from; every file checked").set_defaults(func=_status)
    f = sub.add_parser("fetch", help="download a pinned, checksummed copy from upstream")
    f.add_argument("--to", default="", help="directory to fill (default: the cache)")
    f.add_argument("--set", action="append", default=[], metavar="NAME", help="only this data set (repeatable)")
    f.set_defaults(func=_fetch)
    sub.add_parser("path", help="print the data directory").set_defaults(func=_path)
