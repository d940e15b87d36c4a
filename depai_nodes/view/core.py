"""The live view's logic, ROS-free: our messages turned into what a viewer draws.

Everything here takes message objects duck-typed (anything with the fields of the ROS message:
tests hand in real generated messages, or plain objects) and returns plain NumPy data in the
`map` frame, which both sinks (rerun_sink.py, foxglove_sink.py) draw. Bad input (a cloud with
no x/y/z, a polygon with NaN, a grid whose data does not match its size) is a `ViewInputError`,
which the node counts and logs throttled; it never ends the view.

- `cloud_points`: a sweep downsampled to at most `max_points` finite points, moved to `map` by
  the transform of its stamp (common/tfbuffer.py), coloured by height.
- `obstacle_boxes`: perception's axis-aligned boxes (their frame) as 8-corner boxes in `map`
  (centres, half sizes and yaw: a yawed robot's box stays a box, turned).
- `footprint`: a robot's disc of `radius` at its pose, with a heading tick.
- `path_points`, `zone_outlines`, `goal_marker`, `station_markers`.
- `MapImage`: an OccupancyGrid as an RGB image (row 0 at the top = the largest y), and the
  mapping from map metres to its pixels, so the 2D view draws robots and paths over it.
- `FleetState`: what the plots show (speed, token balance, batches anchored), per robot.
- `Problems`: what the view could not draw (or place in `map`), for its /diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from depai_nodes.chain.units import TOKEN
from depai_nodes.common.pointcloud2 import CloudFormatError, cloud_to_array
from depai_nodes.common.tfbuffer import Transform, stamp_ns

__all__ = [
    "ViewInputError", "Boxes", "Cloud", "MapImage", "FleetState", "cloud_points", "obstacle_boxes", "footprint",
    "path_points", "zone_outlines", "goal_marker", "station_markers", "yaw_of", "speed_of", "height_colors",
    "robot_of_frame", "ROBOT_COLORS", "robot_color", "Problems",
]

# One colour per robot (RGB 0..255), in the order of the robots parameter.
ROBOT_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
ZONE_COLOR = (220, 30, 30)
STATION_COLOR = (30, 160, 90)
GOAL_COLOR = (250, 200, 20)


class ViewInputError(ValueError):
    """A message the view cannot draw (the reason names the field)."""


def robot_color(index: int) -> tuple[int, int, int]:
    return ROBOT_COLORS[index % len(ROBOT_COLORS)]


def robot_of_frame(frame_id: str) -> str:
    """`robot1/lidar_link` -> `robot1`; an unprefixed frame -> ''."""
    head, sep, _ = frame_id.lstrip("/").partition("/")
    return head if sep else ""


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def yaw_of(q) -> float:
    """Yaw (rad) of a quaternion-like object with x, y, z, w."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def speed_of(odom) -> float:
    """Planar speed (m/s) of a nav_msgs/Odometry's twist."""
    v = odom.twist.twist.linear
    s = math.hypot(v.x, v.y)
    if not math.isfinite(s):
        raise ViewInputError("odometry twist is not finite")
    return s


def height_colors(z: np.ndarray, z_min: float = -0.2, z_max: float = 2.5) -> np.ndarray:
    """(N, 3) uint8 colours by height: blue (low) through green to red (high)."""
    f = np.clip((np.asarray(z, float) - z_min) / (z_max - z_min), 0.0, 1.0)
    r = np.clip(2.0 * f - 0.5, 0, 1)
    g = 1.0 - np.abs(2.0 * f - 1.0)
    b = np.clip(1.0 - 2.0 * f, 0, 1)
    return (np.stack([r, g, b], axis=1) * 255).astype(np.uint8)


@dataclass(frozen=True)
class Cloud:
    points: np.ndarray   # (N, 3) float32, map frame
    colors: np.ndarray   # (N, 3) uint8
    total: int           # finite points in the sweep before downsampling


def cloud_points(msg, to_map: Transform, max_points: int = 8000) -> Cloud:
    """A PointCloud2 as at most `max_points` finite points in `map` (an even stride over the sweep)."""
    if max_points < 1:
        raise ValueError("max_points must be >= 1")
    try:
        arr = cloud_to_array(msg).reshape(-1)
    except CloudFormatError as error:
        raise ViewInputError(f"cloud: {error}") from None
    names = arr.dtype.names or ()
    if not {"x", "y", "z"} <= set(names):
        raise ViewInputError(f"cloud has no x, y, z fields (has {', '.join(names) or 'none'})")
    xyz = np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float32, copy=False)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    total = len(xyz)
    if total > max_points:
        xyz = xyz[:: math.ceil(total / max_points)]
    pts = to_map.apply(xyz.astype(float)).astype(np.float32)
    return Cloud(pts, height_colors(pts[:, 2]), total)


@dataclass(frozen=True)
class Boxes:
    centers: np.ndarray      # (N, 3) map frame
    half_sizes: np.ndarray   # (N, 3)
    yaws: np.ndarray         # (N,) rad, about map z
    ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def obstacle_boxes(msg, to_map: Transform) -> Boxes:
    """A depai/ObstacleArray (boxes in its header's frame) as boxes in `map`."""
    centers, halves, ids = [], [], []
    for ob in msg.obstacles:
        lo = np.array([ob.box_min.x, ob.box_min.y, ob.box_min.z], float)
        hi = np.array([ob.box_max.x, ob.box_max.y, ob.box_max.z], float)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or (hi < lo).any():
            raise ViewInputError(f"obstacle {ob.id}: box_min/box_max not finite or inverted")
        centers.append((lo + hi) / 2)
        halves.append(np.maximum((hi - lo) / 2, 0.01))
        ids.append(int(ob.id))
    if not ids:
        return Boxes(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), [])
    c = to_map.apply(np.array(centers))
    return Boxes(c, np.array(halves), np.full(len(ids), to_map.yaw), ids)


def footprint(x: float, y: float, yaw: float, radius: float, segments: int = 32, z: float = 0.02) -> list[np.ndarray]:
    """A disc outline (closed) and a heading tick from the centre to the rim, as 3D polylines."""
    if not _finite(x, y, yaw, radius) or radius <= 0:
        raise ViewInputError("footprint pose or radius not finite")
    a = np.linspace(0.0, 2 * math.pi, segments + 1)
    ring = np.stack([x + radius * np.cos(a), y + radius * np.sin(a), np.full_like(a, z)], axis=1)
    tick = np.array([[x, y, z], [x + radius * math.cos(yaw), y + radius * math.sin(yaw), z]])
    return [ring, tick]


def path_points(msg, z: float = 0.05) -> np.ndarray:
    """A nav_msgs/Path (map frame) as (N, 3) points; non-finite poses are dropped."""
    pts = [(p.pose.position.x, p.pose.position.y) for p in msg.poses]
    arr = np.array(pts, float).reshape(-1, 2)
    arr = arr[np.isfinite(arr).all(axis=1)]
    return np.column_stack([arr, np.full(len(arr), z)])


def zone_outlines(policy, z: float = 0.03) -> list[tuple[str, np.ndarray]]:
    """A depai/FleetPolicy's keep-out zones as (id, closed (N, 3) outline) in its frame (map)."""
    out = []
    for zone in policy.keep_out_zones:
        pts = np.array([(p.x, p.y) for p in zone.polygon.points], float).reshape(-1, 2)
        if len(pts) < 3 or not np.isfinite(pts).all():
            raise ViewInputError(f"keep-out zone '{zone.id}': fewer than 3 finite vertices")
        pts = np.vstack([pts, pts[:1]])
        out.append((zone.id, np.column_stack([pts, np.full(len(pts), z)])))
    return out


def goal_marker(pose_stamped) -> tuple[float, float] | None:
    """(x, y) of a goal PoseStamped, None when it is not finite."""
    p = pose_stamped.pose.position
    return (p.x, p.y) if _finite(p.x, p.y) else None


def station_markers(stations) -> tuple[np.ndarray, list[str]]:
    """common/stations.py Station objects as (N, 3) positions and their labels (label or id)."""
    pts = np.array([(s.x, s.y, 0.05) for s in stations], float).reshape(-1, 3)
    return pts, [s.label or s.id for s in stations]


@dataclass(frozen=True)
class MapImage:
    """An OccupancyGrid as an image. Pixel (u, v): u = column (x), v = row from the top (y down)."""

    rgb: np.ndarray        # (H, W, 3) uint8: free white-ish, occupied dark, unknown grey
    resolution: float
    origin_x: float
    origin_y: float
    frame_id: str

    @classmethod
    def from_grid(cls, grid) -> MapImage:
        info = grid.info
        w, h, res = int(info.width), int(info.height), float(info.resolution)
        if w <= 0 or h <= 0 or not (res > 0 and math.isfinite(res)):
            raise ViewInputError(f"map: bad size {w}x{h} @ {res}")
        data = np.frombuffer(bytes(grid.data) if not isinstance(grid.data, (bytes, bytearray)) else grid.data, dtype=np.int8)
        if data.size != w * h:
            raise ViewInputError(f"map: {data.size} cells for {w}x{h}")
        cells = data.reshape(h, w)[::-1]  # row 0 of the grid is the smallest y: the image's bottom
        rgb = np.full((h, w, 3), 140, np.uint8)  # unknown (-1)
        known = cells >= 0
        shade = (235 - (cells.clip(0, 100).astype(np.int32) * 200) // 100).astype(np.uint8)
        rgb[known] = shade[known][:, None]
        q = info.origin.orientation
        if abs(yaw_of(q)) > 1e-6:
            raise ViewInputError("map: a rotated origin is not supported")
        return cls(rgb, res, float(info.origin.position.x), float(info.origin.position.y), grid.header.frame_id)

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2+) map metres -> (N, 2) pixel coordinates (centre of a cell at +0.5)."""
        xy = np.asarray(xy, float).reshape(-1, np.shape(xy)[-1] if np.ndim(xy) > 1 else 2)
        u = (xy[:, 0] - self.origin_x) / self.resolution
        v = self.height - (xy[:, 1] - self.origin_y) / self.resolution
        return np.stack([u, v], axis=1)


@dataclass
class RobotSeries:
    speed: float | None = None
    balance: float | None = None    # FLEET, whole tokens (18 decimals)
    batches_anchored: int = 0
    anchored_ids: set[str] = field(default_factory=set)


class FleetState:
    """Per-robot values behind the time series panels."""

    def __init__(self) -> None:
        self.robots: dict[str, RobotSeries] = {}

    def robot(self, name: str) -> RobotSeries:
        return self.robots.setdefault(name, RobotSeries())

    def on_odom(self, robot: str, odom) -> float:
        s = speed_of(odom)
        self.robot(robot).speed = s
        return s

    def on_balance(self, robot: str, base_units: str) -> float:
        """A decimal string of token base units (MachineIdentity.token_balance) as whole tokens."""
        text = (base_units or "").strip()
        if not text.isdigit():
            raise ViewInputError(f"token balance '{text[:40]}' is not a decimal integer")
        value = int(text) / TOKEN
        self.robot(robot).balance = value
        return value

    def on_anchor_status(self, robot: str, request_id: str, confirmed: bool) -> int:
        """Counts each CONFIRMED anchoring request once (a status may repeat); returns the count."""
        r = self.robot(robot)
        if confirmed and request_id not in r.anchored_ids:
            r.anchored_ids.add(request_id)
            r.batches_anchored += 1
        return r.batches_anchored


def stamp_seconds(stamp) -> float:
    return stamp_ns(stamp) / 1e9


class Problems:
    """Messages the view could not draw, for /diagnostics: a count, the last one, and a level
    (WARN while the last one is under `recent_s` old, OK after). `now` is any monotonic clock
    (wall time: a problem's age is what the person watching sees)."""

    def __init__(self, what: str, recent_s: float = 10.0) -> None:
        self.what, self.recent_s = what, recent_s
        self.count = 0
        self.last: tuple[float, str, str] | None = None  # (time, input, error text)

    def add(self, now: float, source: str, error: Exception | str) -> None:
        self.count += 1
        self.last = (now, source, str(error))

    def check(self, now: float, extra: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        from depai_nodes.common.diagnostics import OK, WARN

        values = {"failures": str(self.count), **(extra or {})}
        if self.last is None:
            return OK, f"nothing failed to {self.what}", values
        t, source, text = self.last
        age = max(0.0, now - t)
        values.update(last_input=source, last_error=text[:200], last_age_s=f"{age:.1f}")
        if age < self.recent_s:
            return WARN, f"cannot {self.what} {source}: {text} ({self.count} failure(s), last {age:.1f} s ago)", values
        return OK, f"{self.count} failure(s), none for {age:.0f} s (last: {source}: {text})", values
