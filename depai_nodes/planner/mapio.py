"""ROS map_server maps (YAML + image) read into occupancy grids, ROS-free.

Follows the map_server conventions exactly so that a map (or a Nav2 filter mask) gives the
same cell values here as from `nav2_map_server`:

* ``shade`` is the pixel value scaled to [0, 1] (colour images: mean of the colour channels);
  ``occ = shade`` when ``negate`` is set, else ``1 - shade`` (dark pixels are occupied).
* ``trinary``: ``occ > occupied_thresh`` -> 100, ``occ < free_thresh`` -> 0, else -1 (unknown).
* ``scale``:  as trinary at the ends, between the thresholds
  ``rint((occ - free_thresh) / (occupied_thresh - free_thresh) * 100)``; a pixel that is not
  fully opaque is unknown. Nav2 speed masks use this mode.
* ``raw``: ``round(shade * 255)`` when it lies in [0, 100], else unknown.
* The image's top row is the grid's last row: grid row 0 is the bottom of the image (y grows
  up, REP-103), and ``origin`` is the pose of the lower-left pixel's corner (x, y, yaw).

The reader handles binary and ASCII PGM itself (8 and 16 bit) and everything else through
OpenCV. Every failure is a :class:`MapLoadError` naming the file and the reason.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import yaml

from depai_nodes.common.yamlfile import safe_load_unique

from .errors import MapLoadError

FREE = 0
OCCUPIED = 100
UNKNOWN = -1

MODES = ("trinary", "scale", "raw")


@dataclass
class OccupancyMap:
    """An occupancy grid in ``nav_msgs/OccupancyGrid`` layout.

    ``data[row, col]`` with row 0 at the bottom (smallest y in the grid frame), values
    0..100 or -1. ``origin`` is the lower-left corner of cell (0, 0) in ``frame_id``.
    """

    data: np.ndarray
    resolution: float
    origin_x: float = 0.0
    origin_y: float = 0.0
    origin_yaw: float = 0.0
    frame_id: str = "map"
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 2 or data.size == 0:
            raise MapLoadError(f"map data must be a non-empty 2-D grid, got shape {data.shape}")
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise MapLoadError(f"map resolution must be a positive number, got {self.resolution}")
        for name in ("origin_x", "origin_y", "origin_yaw"):
            if not math.isfinite(getattr(self, name)):
                raise MapLoadError(f"map {name} must be finite, got {getattr(self, name)}")
        self.data = data.astype(np.int8, copy=False)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def world_to_grid(self, x, y):
        """Continuous grid coordinates (col, row) in cell units of world points (vectorised).

        Cell (c, r) covers [c, c+1) x [r, r+1); its centre is (c + 0.5, r + 0.5).
        """
        x = np.asarray(x, dtype=np.float64) - self.origin_x
        y = np.asarray(y, dtype=np.float64) - self.origin_y
        if self.origin_yaw != 0.0:
            c, s = math.cos(self.origin_yaw), math.sin(self.origin_yaw)
            x, y = c * x + s * y, -s * x + c * y
        return x / self.resolution, y / self.resolution

    def world_to_cell(self, x, y):
        """Integer (col, row) of the cells holding world points; may lie off the grid."""
        gx, gy = self.world_to_grid(x, y)
        return np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)

    def cell_to_world(self, col, row):
        """World coordinates of cell centres (vectorised; accepts fractional cells)."""
        gx = (np.asarray(col, dtype=np.float64) + 0.5) * self.resolution
        gy = (np.asarray(row, dtype=np.float64) + 0.5) * self.resolution
        if self.origin_yaw != 0.0:
            c, s = math.cos(self.origin_yaw), math.sin(self.origin_yaw)
            gx, gy = c * gx - s * gy, s * gx + c * gy
        return gx + self.origin_x, gy + self.origin_y

    def in_bounds(self, col, row):
        col = np.asarray(col)
        row = np.asarray(row)
        return (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)


# ----------------------------------------------------------------------------- images


def _read_pgm(path: str) -> tuple[np.ndarray, int]:
    """Binary (P5) or ASCII (P2) PGM -> (array top row first, maxval)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 2 or blob[:2] not in (b"P5", b"P2"):
        raise MapLoadError(f"{path}: not a PGM file (magic {blob[:2]!r})")
    magic = blob[:2]
    # Header: magic, width, height, maxval separated by whitespace; '#' comments to end of line.
    fields: list[int] = []
    i = 2
    n = len(blob)
    while len(fields) < 3:
        while i < n and blob[i : i + 1].isspace():
            i += 1
        if i >= n:
            raise MapLoadError(f"{path}: truncated PGM header")
        if blob[i : i + 1] == b"#":
            while i < n and blob[i : i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        j = i
        while j < n and not blob[j : j + 1].isspace() and blob[j : j + 1] != b"#":
            j += 1
        token = blob[i:j]
        if not token.isdigit():
            raise MapLoadError(f"{path}: bad PGM header token {token[:20]!r}")
        fields.append(int(token))
        i = j
    width, height, maxval = fields
    if width <= 0 or height <= 0:
        raise MapLoadError(f"{path}: empty image ({width}x{height})")
    if not 0 < maxval < 65536:
        raise MapLoadError(f"{path}: PGM maxval {maxval} out of range 1..65535")
    count = width * height
    if magic == b"P5":
        i += 1  # exactly one whitespace byte after maxval
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        need = count * dtype.itemsize
        if n - i < need:
            raise MapLoadError(f"{path}: PGM data truncated ({n - i} of {need} bytes)")
        img = np.frombuffer(blob, dtype=dtype, count=count, offset=i).reshape(height, width)
    else:
        body = blob[i:].split()
        if len(body) < count:
            raise MapLoadError(f"{path}: PGM data truncated ({len(body)} of {count} values)")
        try:
            img = np.array([int(t) for t in body[:count]], dtype=np.int64).reshape(height, width)
        except ValueError as exc:
            raise MapLoadError(f"{path}: bad ASCII PGM value ({exc})") from None
    if int(img.max()) > maxval:
        raise MapLoadError(f"{path}: pixel value above maxval {maxval}")
    return img.astype(np.float64), maxval


def read_image_shade(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Image -> (shade in [0, 1], opaque mask), both top row first."""
    if not os.path.isfile(path):
        raise MapLoadError(f"map image not found: {path}")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic in (b"P5", b"P2"):
        img, maxval = _read_pgm(path)
        return img / maxval, np.ones(img.shape, dtype=bool)
    import cv2  # only for non-PGM images

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise MapLoadError(f"{path}: cannot decode image (unsupported or corrupt file)")
    if img.size == 0:
        raise MapLoadError(f"{path}: empty image")
    maxval = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
    img = img.astype(np.float64)
    if img.ndim == 2:
        return img / maxval, np.ones(img.shape, dtype=bool)
    channels = img.shape[2]
    if channels == 4:
        opaque = img[:, :, 3] >= maxval
        return img[:, :, :3].mean(axis=2) / maxval, opaque
    if channels == 2:  # gray + alpha
        return img[:, :, 0] / maxval, img[:, :, 1] >= maxval
    return img.mean(axis=2) / maxval, np.ones(img.shape[:2], dtype=bool)


def shade_to_occupancy(
    shade: np.ndarray,
    opaque: np.ndarray,
    mode: str,
    negate: bool,
    occupied_thresh: float,
    free_thresh: float,
) -> np.ndarray:
    """map_server's per-pixel conversion (see module doc); input and output top row first."""
    if mode not in MODES:
        raise MapLoadError(f"unknown map mode '{mode}' (expected one of {', '.join(MODES)})")
    out = np.full(shade.shape, UNKNOWN, dtype=np.int8)
    if mode == "raw":
        value = np.round(shade * 255.0)
        ok = (value >= FREE) & (value <= OCCUPIED)
        out[ok] = value[ok].astype(np.int8)
        return out
    occ = shade if negate else 1.0 - shade
    occupied = occ > occupied_thresh
    free = occ < free_thresh
    out[occupied] = OCCUPIED
    out[free] = FREE
    if mode == "scale":
        mid = ~occupied & ~free
        span = occupied_thresh - free_thresh
        out[mid] = np.rint((occ[mid] - free_thresh) / span * 100.0).astype(np.int8)
        out[~opaque] = UNKNOWN
    return out


# ----------------------------------------------------------------------------- YAML


def _number(meta: dict, key: str, path: str, default=None) -> float:
    if key not in meta:
        if default is None:
            raise MapLoadError(f"{path}: missing required key '{key}'")
        return float(default)
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MapLoadError(f"{path}: '{key}' must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise MapLoadError(f"{path}: '{key}' must be finite, got {value!r}")
    return float(value)


def load_map(yaml_path: str, frame_id: str = "map") -> OccupancyMap:
    """Load a map_server map (YAML + image). Raises :class:`MapLoadError` with the reason."""
    yaml_path = os.fspath(yaml_path)
    if not os.path.isfile(yaml_path):
        raise MapLoadError(f"map YAML not found: {yaml_path}")
    try:
        with open(yaml_path, encoding="utf-8") as f:
            meta = safe_load_unique(f.read())  # a key given twice is an error, not "last one wins"
    except yaml.YAMLError as exc:
        raise MapLoadError(f"{yaml_path}: malformed YAML ({exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise MapLoadError(f"{yaml_path}: not a text file") from None
    if not isinstance(meta, dict):
        raise MapLoadError(f"{yaml_path}: expected a mapping of map keys, got {type(meta).__name__}")

    image = meta.get("image")
    if not isinstance(image, str) or not image.strip():
        raise MapLoadError(f"{yaml_path}: missing or empty 'image'")
    if not os.path.isabs(image):
        image = os.path.join(os.path.dirname(os.path.abspath(yaml_path)), image)

    resolution = _number(meta, "resolution", yaml_path)
    if resolution <= 0:
        raise MapLoadError(f"{yaml_path}: 'resolution' must be > 0, got {resolution}")

    origin = meta.get("origin")
    if (
        not isinstance(origin, (list, tuple))
        or len(origin) != 3
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in origin)
        or not all(math.isfinite(float(v)) for v in origin)
    ):
        raise MapLoadError(f"{yaml_path}: 'origin' must be [x, y, yaw] of finite numbers, got {origin!r}")

    mode = meta.get("mode", "trinary")
    if mode not in MODES:
        raise MapLoadError(f"{yaml_path}: unknown 'mode' {mode!r} (expected one of {', '.join(MODES)})")

    negate = meta.get("negate", 0)
    if negate not in (0, 1, True, False):
        raise MapLoadError(f"{yaml_path}: 'negate' must be 0 or 1, got {negate!r}")

    occupied_thresh = _number(meta, "occupied_thresh", yaml_path, 0.65)
    free_thresh = _number(meta, "free_thresh", yaml_path, 0.196)
    if mode != "raw":
        if not (0.0 <= free_thresh <= 1.0 and 0.0 <= occupied_thresh <= 1.0):
            raise MapLoadError(f"{yaml_path}: thresholds must lie in [0, 1]")
        if not free_thresh < occupied_thresh:
            raise MapLoadError(
                f"{yaml_path}: free_thresh ({free_thresh}) must be below occupied_thresh ({occupied_thresh})"
            )

    shade, opaque = read_image_shade(image)
    grid = shade_to_occupancy(shade, opaque, mode, bool(negate), occupied_thresh, free_thresh)
    return OccupancyMap(
        data=np.ascontiguousarray(grid[::-1]),  # image top row -> last grid row
        resolution=resolution,
        origin_x=float(origin[0]),
        origin_y=float(origin[1]),
        origin_yaw=float(origin[2]),
        frame_id=frame_id,
        source=yaml_path,
        extra={"mode": mode, "negate": bool(negate), "image": image},
    )


def load_map_or_world(path, frame_id: str = "map") -> OccupancyMap:
    """A map_server YAML, or an SDF world (``*.sdf``) rasterised by :mod:`.world_map`."""
    if os.fspath(path).endswith(".sdf"):
        from .world_map import world_to_map

        m = world_to_map(path)
        m.frame_id = frame_id
        return m
    return load_map(path, frame_id)
