"""/diagnostics for every node: a ROS-free core and a thin publisher.

A node builds one `Diagnostics` and registers what it knows:

- ``topic(name, expected_rate=None, stale_after=None)``: an input; the node calls ``.tick()`` on
  every message. Reported: the rate over the last ``window`` s and the age of the last message.
  Levels: never received -> WARN ("no message yet"); older than ``stale_after`` -> WARN
  ("stale: X s"); below half the expected rate -> WARN; else OK.
- ``timing(name)``: processing time of a callback (``with diag.timing("tick"):`` or ``.add(s)``),
  reported as mean and max over the window (informational: OK).
- ``check(name, fn)``: a node-specific status, ``fn() -> (level, message, {key: value})``: chain
  connectivity and block height, wallet policy state, anchoring backlog, the policy enforced.

Levels mean: OK: doing its job; WARN: degraded but safe (an input missing or slow, a retry in
progress, inactive); ERROR: not doing its job (no policy: the robot holds still; a failed
lifecycle transition; the chain unreachable beyond its timeout). Times come from ``now_s`` (the
node's ROS clock, so rates and ages follow /clock under sim time).

`NodeDiagnostics(node, diag)` publishes a ``diagnostic_msgs/DiagnosticArray`` on ``/diagnostics``
every ``period`` s (a steady timer: a paused /clock must not silence the diagnostics), one status
per entry, named ``<node fully qualified name>: <entry>``, ``hardware_id`` the node's name.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}

__all__ = ["OK", "WARN", "ERROR", "STALE", "Status", "Diagnostics", "NodeDiagnostics"]


@dataclass
class Status:
    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


class TopicStats:
    def __init__(self, now_s: Callable[[], float], window: float, expected_rate: float | None, stale_after: float | None):
        self._now, self.window, self.expected_rate, self.stale_after = now_s, window, expected_rate, stale_after
        self._times: deque[float] = deque()
        self.count = 0

    def tick(self) -> None:
        now = self._now()
        self._times.append(now)
        self.count += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and (now - self._times[0] > self.window or self._times[0] > now):  # a clock that went back
            self._times.popleft()

    def status(self, name: str) -> Status:
        now = self._now()
        self._trim(now)
        rate = len(self._times) / self.window
        values = {"rate_hz": f"{rate:.2f}", "messages": str(self.count)}
        if not self._times and self.count == 0:
            return Status(name, WARN, "no message yet", values)
        last = self._times[-1] if self._times else None
        age = (now - last) if last is not None else float("inf")
        values["age_s"] = f"{age:.2f}" if last is not None else f"> {self.window:g}"
        if self.stale_after is not None and age > self.stale_after:
            return Status(name, WARN, f"stale: no message for {values['age_s']} s (limit {self.stale_after:g} s)", values)
        if self.expected_rate and rate < 0.5 * self.expected_rate:
            return Status(name, WARN, f"slow: {rate:.2f} Hz, expected {self.expected_rate:g} Hz", values)
        return Status(name, OK, f"{rate:.2f} Hz", values)


class Timing:
    def __init__(self, window_n: int = 100):
        self._samples: deque[float] = deque(maxlen=window_n)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    @contextmanager
    def measure(self):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(time.perf_counter() - start)

    def status(self, name: str) -> Status:
        if not self._samples:
            return Status(name, OK, "no calls yet", {})
        mean = sum(self._samples) / len(self._samples)
        peak = max(self._samples)
        return Status(name, OK, f"mean {mean * 1e3:.2f} ms, max {peak * 1e3:.2f} ms",
                      {"mean_ms": f"{mean * 1e3:.3f}", "max_ms": f"{peak * 1e3:.3f}", "samples": str(len(self._samples))})


class Diagnostics:
    def __init__(self, now_s: Callable[[], float] = time.monotonic, window: float = 5.0):
        self.now_s, self.window = now_s, window
        self._entries: dict[str, Callable[[str], Status]] = {}

    def topic(self, name: str, expected_rate: float | None = None, stale_after: float | None = None) -> TopicStats:
        stats = TopicStats(self.now_s, self.window, expected_rate, stale_after)
        self._entries[f"input {name}"] = stats.status
        return stats

    def timing(self, name: str) -> Timing:
        timing = Timing()
        self._entries[f"processing {name}"] = timing.status
        return timing

    def check(self, name: str, fn: Callable[[], tuple[int, str, dict]]) -> None:
        def run(label: str) -> Status:
            level, message, values = fn()
            return Status(label, int(level), str(message), {str(k): str(v) for k, v in (values or {}).items()})
        self._entries[name] = run

    def report(self) -> list[Status]:
        out = []
        for name, entry in self._entries.items():
            try:
                out.append(entry(name))
            except Exception as error:  # noqa: BLE001 - a broken check is itself a finding, not a crash
                out.append(Status(name, ERROR, f"check failed: {type(error).__name__}: {error}"))
        return out


class NodeDiagnostics:
    """Publish `diag`'s report on /diagnostics every `period` s (steady timer)."""

    def __init__(self, node, diag: Diagnostics | None = None, period: float = 1.0):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.clock import Clock, ClockType

        self.node = node
        self.diag = diag or Diagnostics(lambda: node.get_clock().now().nanoseconds * 1e-9)
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(period, self.publish, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def publish(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        fqn = self.node.get_fully_qualified_name()
        msg = DiagnosticArray()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        for status in self.diag.report():
            entry = DiagnosticStatus()
            entry.level = bytes([status.level])
            entry.name = f"{fqn}: {status.name}"
            entry.message = status.message[:500]
            entry.hardware_id = fqn
            entry.values = [KeyValue(key=k, value=v[:200]) for k, v in status.values.items()]
            msg.status.append(entry)
        self._pub.publish(msg)
