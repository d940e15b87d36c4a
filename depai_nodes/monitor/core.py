"""What the monitor knows without ROS: topic specs, rate statistics and one-line summaries."""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["TopicSpec", "parse_topic_spec", "RateStats", "summarize"]

_SPEC = re.compile(r"^\s*(?P<topic>[~/A-Za-z0-9_]+)\s+(?P<type>[A-Za-z0-9_]+/msg/[A-Za-z0-9_]+)(?:\s+(?P<qos>sensor|latched|reliable))?"
                   r"(?:\s+(?P<rate>[0-9]+(?:\.[0-9]*)?)\s*(?:hz|Hz)?)?\s*$")
_FORM = "topic pkg/msg/Type [sensor|latched|reliable] [expected Hz]"


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    type_name: str  # e.g. "depai/msg/FleetPolicy"
    qos: Literal["sensor", "latched", "reliable"] = "reliable"
    rate: float | None = None  # expected Hz: /diagnostics warns when it is slower or stale

    @property
    def stale_after(self) -> float | None:
        """s without a message that make the topic stale: three expected periods, at least 1 s."""
        return None if self.rate is None else max(3.0 / self.rate, 1.0)


def parse_topic_spec(text: str) -> TopicSpec:
    """Parse 'topic pkg/msg/Type [sensor|latched|reliable] [expected Hz]'; ValueError says what is wrong."""
    match = _SPEC.match(text)
    if not match:
        raise ValueError(f"'{text}' is not '{_FORM}'")
    rate = float(match["rate"]) if match["rate"] else None
    if rate is not None and not 0.0 < rate <= 10000.0:
        raise ValueError(f"'{text}': the expected rate must be in (0, 10000] Hz")
    return TopicSpec(match["topic"], match["type"], match["qos"] or "reliable", rate)


@dataclass
class RateStats:
    """Message rate over a sliding window of arrival times (seconds, monotonic)."""

    window_s: float = 5.0
    stamps: deque = field(default_factory=deque)
    total: int = 0

    def add(self, t: float) -> None:
        self.stamps.append(t)
        self.total += 1
        while self.stamps and self.stamps[0] < t - self.window_s:
            self.stamps.popleft()

    def rate(self, now: float) -> float:
        while self.stamps and self.stamps[0] < now - self.window_s:
            self.stamps.popleft()
        if len(self.stamps) < 2:
            return 0.0
        span = now - self.stamps[0]
        return (len(self.stamps) - 1) / span if span > 0 else 0.0


def summarize(msg) -> str:
    """A short human summary of a message; falls back to a truncated repr."""
    kind = type(msg).__name__
    try:
        if kind == "FleetPolicy":
            return (f"v{msg.version} max_speed={msg.max_speed:.2f} m/s paused={msg.paused} "
                    f"keep_out={len(msg.keep_out_zones)} source={msg.source}")
        if kind == "ObstacleArray":
            return f"{len(msg.obstacles)} obstacles in {msg.header.frame_id}"
        if kind == "PointCloud2":
            return f"{msg.width * msg.height} points in {msg.header.frame_id}"
        if kind == "OccupancyGrid":
            return f"{msg.info.width}x{msg.info.height} @ {msg.info.resolution:.3f} m in {msg.header.frame_id}"
        if kind == "Odometry":
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
            return f"x={p.x:.2f} y={p.y:.2f} yaw={math.degrees(yaw):.0f} deg v={msg.twist.twist.linear.x:.2f} m/s"
        if kind == "Twist":
            return f"v={msg.linear.x:.2f} m/s w={msg.angular.z:.2f} rad/s"
        if kind == "Path":
            return f"{len(msg.poses)} poses in {msg.header.frame_id}"
        if kind == "NavigationStatus":
            state = {0: "IDLE", 1: "FOLLOWING", 2: "ARRIVED", 3: "STOPPED"}.get(msg.state, str(msg.state))
            reason = f" ({msg.reason})" if msg.reason else ""
            return (f"{state}{reason} progress={100 * msg.progress:.0f}% remaining={msg.distance_remaining:.1f} m "
                    f"limit={msg.speed_limit:.2f} m/s policy=v{msg.policy_version} {msg.policy_source or '(none)'}")
        if kind == "TxStatus":
            return f"{msg.request_id} {msg.tx_hash[:10]} status={msg.status} {msg.error}"
    except AttributeError:
        pass
    text = repr(msg)
    return text if len(text) <= 100 else text[:97] + "..."
