"""A small ROS-free transform buffer: the part of tf2 that DePAI needs, for where `tf2_ros` is missing.

The PyPI ROS wheels include neither `tf2_ros` nor `tf2_msgs` (setup builds `tf2_msgs` from
ros_compat/). This buffer takes the TransformStamped entries of /tf and /tf_static messages
(duck-typed: anything with `header.stamp`, `header.frame_id`, `child_frame_id` and
`transform.translation/rotation`), keeps a tree (each frame has one parent), and answers
`lookup(target, source, stamp)`: the transform that maps coordinates in `source` into `target`, at
`stamp`, interpolated between the samples around it (translation linearly, rotation by slerp);
static transforms hold at every time. Unknown frames, disconnected trees and stamps outside the
samples are a `TransformError` naming the frames and the time range, never a guess (an
`ExtrapolationError` for a stamp outside the samples, saying whether it is newer than them).

Stamps are integer nanoseconds. `stamp=None` uses the latest time all edges on the path share.
A sample older than the whole cache behind an edge's newest one means time jumped back (a
restarted simulator): the dynamic history is cleared, as tf2 does, and `jumps_back` counts it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Transform", "TransformBuffer", "TransformError", "ExtrapolationError", "TransformQueue", "stamp_ns"]


class TransformError(LookupError):
    """A transform cannot be looked up (unknown frame, no connection, time outside the samples)."""


class ExtrapolationError(TransformError):
    """The stamp lies outside an edge's samples; ``ahead``: newer than its newest sample (the
    transform may still come: a message stamped then can wait for it, as tf2_ros's MessageFilter
    holds one), else older than the cache."""

    def __init__(self, message: str, ahead: bool) -> None:
        super().__init__(message)
        self.ahead = ahead


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time (sec, nanosec) as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternion q (x, y, z, w)."""
    u, w = q[:3], q[3]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def _slerp(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    d = float(np.dot(a, b))
    if d < 0.0:  # the shorter way round
        b, d = -b, -d
    if d > 0.9995:
        q = a + f * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(min(1.0, d))
    return (math.sin((1 - f) * theta) * a + math.sin(f * theta) * b) / math.sin(theta)


@dataclass(frozen=True)
class Transform:
    """p_parent = rotation * p_child + translation (quaternion x, y, z, w)."""

    translation: np.ndarray
    rotation: np.ndarray

    @classmethod
    def identity(cls) -> Transform:
        return cls(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    @classmethod
    def from_msg(cls, transform) -> Transform:
        t, r = transform.translation, transform.rotation
        q = np.array([r.x, r.y, r.z, r.w], float)
        n = np.linalg.norm(q)
        if not math.isfinite(n) or n < 1e-9 or not all(math.isfinite(v) for v in (t.x, t.y, t.z)):
            raise TransformError("transform with a non-finite translation or a zero quaternion")
        return cls(np.array([t.x, t.y, t.z], float), q / n)

    def __mul__(self, other: Transform) -> Transform:
        """self * other: first other, then self (parent<-mid * mid<-child = parent<-child)."""
        return Transform(self.translation + _rotate(self.rotation, other.translation), _qmul(self.rotation, other.rotation))

    def inverse(self) -> Transform:
        conj = self.rotation * np.array([-1.0, -1.0, -1.0, 1.0])
        return Transform(-_rotate(conj, self.translation), conj)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points (N, 3) in the child frame, in the parent frame."""
        return _rotate(self.rotation, np.asarray(points, float)) + self.translation

    @property
    def yaw(self) -> float:
        x, y, z, w = self.rotation
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class _Edge:
    def __init__(self, parent: str, static: bool, cache_ns: int) -> None:
        self.parent = parent
        self.static = static
        self.cache_ns = cache_ns
        self.stamps: list[int] = []
        self.values: list[Transform] = []

    def add(self, stamp: int, value: Transform) -> None:
        if self.static:
            self.stamps, self.values = [stamp], [value]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            self.values[i] = value
        else:
            self.stamps.insert(i, stamp)
            self.values.insert(i, value)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - self.cache_ns)
        if cut:
            del self.stamps[:cut], self.values[:cut]

    def at(self, stamp: int, child: str) -> Transform:
        if self.static:
            return self.values[0]
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            return self.values[i]
        if i == 0 or i == len(self.stamps):
            lo, hi = self.stamps[0] / 1e9, self.stamps[-1] / 1e9
            raise ExtrapolationError(f"{self.parent} -> {child} at {stamp / 1e9:.3f} s: samples cover {lo:.3f} .. {hi:.3f} s",
                                     ahead=i == len(self.stamps))
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        a, b = self.values[i - 1], self.values[i]
        f = (stamp - t0) / (t1 - t0)
        return Transform(a.translation + f * (b.translation - a.translation), _slerp(a.rotation, b.rotation, f))


class TransformBuffer:
    def __init__(self, cache_s: float = 10.0) -> None:
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent
        self._cache_ns = int(cache_s * 1e9)
        self.jumps_back = 0  # times the dynamic history was cleared because time went back

    def clear_dynamic(self) -> None:
        """Forget every /tf sample (static transforms stay): what tf2 does on a jump back in time."""
        self._edges = {child: e for child, e in self._edges.items() if e.static}

    def add(self, parent: str, child: str, stamp: int, value: Transform, static: bool = False) -> None:
        if not parent or not child or parent == child:
            raise TransformError(f"invalid transform '{parent}' -> '{child}'")
        edge = self._edges.get(child)
        if not static and edge is not None and not edge.static and edge.stamps and stamp < edge.stamps[-1] - self._cache_ns:
            # Older than the whole cache behind this edge's newest sample: time jumped back (a
            # restarted simulator's clock starts again at zero). The history belongs to the old
            # timeline; keeping it would refuse every new stamp as "outside the samples".
            self.clear_dynamic()
            self.jumps_back += 1
            edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            if self._is_ancestor(child, parent):
                raise TransformError(f"'{parent}' -> '{child}' would close a loop in the tree")
            edge = self._edges[child] = _Edge(parent, static, self._cache_ns)
        edge.add(stamp, value)

    def add_message(self, msg, static: bool = False) -> None:
        """Every TransformStamped of a tf2_msgs/TFMessage."""
        for t in msg.transforms:
            self.add(t.header.frame_id, t.child_frame_id, stamp_ns(t.header.stamp), Transform.from_msg(t.transform), static)

    def frames(self) -> set[str]:
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def _is_ancestor(self, frame: str, of: str) -> bool:
        seen = set()
        while of in self._edges and of not in seen:
            seen.add(of)
            of = self._edges[of].parent
            if of == frame:
                return True
        return False

    def _chain(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def lookup(self, target: str, source: str, stamp: int | None = None) -> Transform:
        """target <- source at `stamp` (ns): maps coordinates in `source` into `target`."""
        known = self.frames()
        for frame in (target, source):
            if frame not in known:
                raise TransformError(f"unknown frame '{frame}' (known: {', '.join(sorted(known)) or 'none'})")
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise TransformError(f"'{source}' and '{target}' are not connected (roots {up_source[-1]}, {up_target[-1]})")
        path_s = up_source[:up_source.index(common)]
        path_t = up_target[:up_target.index(common)]
        if stamp is None:
            dynamic = [self._edges[f] for f in path_s + path_t if not self._edges[f].static]
            stamp = min((e.stamps[-1] for e in dynamic), default=0)
        common_from_source = Transform.identity()
        for frame in path_s:  # source up to common: parent <- child, composed on the left
            common_from_source = self._edges[frame].at(stamp, frame) * common_from_source
        common_from_target = Transform.identity()
        for frame in path_t:
            common_from_target = self._edges[frame].at(stamp, frame) * common_from_target
        return common_from_target.inverse() * common_from_source


class TransformQueue:
    """Messages held until the transform at their stamp has arrived (what tf2_ros's
    MessageFilter does): a sensor message often comes before the /tf sample of its own stamp.
    At most ``size`` are held (a newer one pushes the oldest out) and each for at most
    ``timeout_s`` (steady seconds, given by the caller as ``now``)."""

    def __init__(self, size: int = 4, timeout_s: float = 0.5) -> None:
        if size < 1 or not timeout_s > 0:
            raise ValueError("TransformQueue needs size >= 1 and timeout_s > 0")
        self.size, self.timeout_s = size, timeout_s
        self._held: list[tuple[Any, float]] = []

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, item: Any, now: float) -> Any | None:
        """Hold ``item``; the one pushed out to make room (dropped), if any."""
        self._held.append((item, now))
        return self._held.pop(0)[0] if len(self._held) > self.size else None

    def retry(self, place: Callable[[Any], None], now: float) -> list[tuple[Any, float, TransformError]]:
        """``place(item)`` for each held item, oldest first. One that is placed (no exception)
        leaves, and so do the older ones still held (superseded); one still ahead of the
        transforms stays until its timeout; the rest are dropped: returned as (item, seconds
        held, why)."""
        dropped: list[tuple[Any, float, TransformError]] = []
        keep: list[tuple[Any, float]] = []
        for item, since in self._held:
            try:
                place(item)
            except ExtrapolationError as exc:
                if exc.ahead and now - since < self.timeout_s:
                    keep.append((item, since))
                else:
                    dropped.append((item, now - since, exc))
                continue
            except TransformError as exc:
                dropped.append((item, now - since, exc))
                continue
            keep = []  # placed: what is older than it is superseded
        self._held = keep
        return dropped
