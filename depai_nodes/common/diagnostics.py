"""/diagnostics for every node: a ROS-free core and a thin publisher.

A node builds one `Diagnostics` and registers what it knows:

- ``topic(name, expected_rate=None, stale_after=None)``: an input; the node calls ``.tick()`` on
  every message. Reported: the rate over the last ``window`` s and the age of the last message.
  Levels: never received -> WARN ("no message yet"); older than ``stale_after`` -> WARN
  ("stale: X s"); below half the expected rate -> WARN; else OK. The clock going back (a restarted
  simulator resets /clock): the samples newer than now are forgotten, the age counts from the jump,
  and the next report is WARN ("clock jumped back X s") once; then levels as above.
- ``timing(name)``: processing time of a callback (``with diag.timing("tick"):`` or ``.add(s)``),
  reported as mean and max over the window (informational: OK).
- ``check(name, fn, cache_s=0)``: a node-specific status, ``fn() -> (level, message, {key:
  value})``: wallet policy state, anchoring backlog, the policy enforced. Computed only when the
  report is published; ``cache_s`` reuses the last answer that long (a check that reads the disk).
- ``ChainHealth``: chain connectivity and block height, fed by the thread that reads the chain
  anyway (``ok(block)`` / ``failed(text)``), or by a ``ChainProbe`` thread that reads the head
  every ``period`` s for a node that has no such reads. Levels: no read yet -> WARN; a failed read
  -> WARN (retrying) until ``error_after`` s have passed without a good one -> ERROR ("unreachable");
  the last good read older than ``stale_after`` -> WARN; else OK with the block height. Its ages
  are wall-clock (monotonic): the chain and its RPC timeouts run on wall time, not on /clock.

Levels mean: OK: doing its job; WARN: degraded but safe (an input missing or slow, a retry in
progress, inactive); ERROR: not doing its job (no policy: the robot holds still; a failed
lifecycle transition; the chain unreachable beyond its timeout). Times come from ``now_s`` (the
node's ROS clock, so rates and ages follow /clock under sim time).

`NodeDiagnostics(node, diag)` publishes a ``diagnostic_msgs/DiagnosticArray`` on ``/diagnostics``
every ``period`` s (a steady timer: a paused /clock must not silence the diagnostics), one status
per entry, named ``<node fully qualified name>: <entry>``, ``hardware_id`` the node's name.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}

__all__ = ["OK", "WARN", "ERROR", "STALE", "Status", "Diagnostics", "NodeDiagnostics", "ChainHealth", "ChainProbe", "worst"]


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
        self.last: float | None = None  # the node's clock at the latest message (kept past the window)
        self._jumped = 0.0  # s the clock went back, not reported yet

    def tick(self) -> None:
        now = self._now()
        self._rebase(now)
        self._times.append(now)
        self.count += 1
        self.last = now
        self._trim(now)

    def _rebase(self, now: float) -> None:
        """The clock went back (a restarted simulator resets /clock): the samples newer than now
        are forgotten, the age counts from the jump, and the next report says so once (WARN)."""
        if self.last is None or now >= self.last:
            return
        self._jumped = self.last - now
        self.last = now
        while self._times and self._times[-1] > now:
            self._times.pop()

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def status(self, name: str) -> Status:
        now = self._now()
        self._rebase(now)
        self._trim(now)
        rate = len(self._times) / self.window
        values = {"rate_hz": f"{rate:.2f}", "messages": str(self.count)}
        if self.expected_rate:
            values["expected_hz"] = f"{self.expected_rate:g}"
        if self.count == 0:
            return Status(name, WARN, "no message yet", values)
        age = now - self.last
        values["age_s"] = f"{age:.2f}"
        if self._jumped:
            jumped, self._jumped = self._jumped, 0.0
            values["clock_jump_s"] = f"{jumped:.2f}"
            return Status(name, WARN, f"clock jumped back {jumped:.2f} s: samples after it forgotten, counting again", values)
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

    def check(self, name: str, fn: Callable[[], tuple[int, str, dict]], cache_s: float = 0.0) -> None:
        last: list = []  # [monotonic time, Status] of the last evaluation (cache_s > 0)

        def run(label: str) -> Status:
            if cache_s > 0 and last and time.monotonic() - last[0] < cache_s:
                return last[1]
            level, message, values = fn()
            out = Status(label, int(level), str(message), {str(k): str(v) for k, v in (values or {}).items()})
            if cache_s > 0:
                last[:] = [time.monotonic(), out]
            return out
        self._entries[name] = run

    def report(self) -> list[Status]:
        out = []
        for name, entry in self._entries.items():
            try:
                out.append(entry(name))
            except Exception as error:  # noqa: BLE001 - a broken check is itself a finding, not a crash
                out.append(Status(name, ERROR, f"check failed: {type(error).__name__}: {error}"))
        return out


def worst(*levels: int) -> int:
    """The most severe of OK / WARN / ERROR (STALE counts as WARN here)."""
    return max((WARN if lv == STALE else lv) for lv in levels) if levels else OK


class ChainHealth:
    """Chain connectivity as the node's own reads see it (thread-safe; wall-clock ages)."""

    def __init__(self, error_after: float = 15.0, stale_after: float | None = None,
                 clock: Callable[[], float] = time.monotonic, what: str = "chain"):
        self.error_after, self.stale_after, self._clock, self.what = error_after, stale_after, clock, what
        self._lock = threading.Lock()
        self._started = clock()
        self.block: int | None = None
        self.last_ok: float | None = None
        self.down_since: float | None = None  # first failure since the last good read
        self.error = ""
        self.failures = 0  # in a row
        self.extra: dict[str, str] = {}  # e.g. the rpc url, the chain id

    def ok(self, block: int | None = None) -> None:
        with self._lock:
            if block is not None and block >= 0:
                self.block = int(block)
            self.last_ok, self.down_since, self.error, self.failures = self._clock(), None, "", 0

    def failed(self, text: str) -> None:
        with self._lock:
            now = self._clock()
            if self.down_since is None:
                self.down_since = now
            self.error, self.failures = str(text)[:300], self.failures + 1

    def reset(self) -> None:
        """Nothing known any more (the node released its chain client)."""
        with self._lock:
            self.block = self.last_ok = self.down_since = None
            self.error, self.failures, self._started = "", 0, self._clock()

    def check(self) -> tuple[int, str, dict]:
        with self._lock:
            now = self._clock()
            values = dict(self.extra)
            values["block"] = "" if self.block is None else str(self.block)
            values["last_ok_age_s"] = "" if self.last_ok is None else f"{now - self.last_ok:.1f}"
            values["failures"] = str(self.failures)
            if self.error:
                values["error"] = self.error
                down = now - (self.down_since if self.down_since is not None else self._started)
                values["down_s"] = f"{down:.1f}"
                if down >= self.error_after:
                    return ERROR, f"{self.what} unreachable for {down:.1f} s (limit {self.error_after:g} s): {self.error}", values
                return WARN, f"{self.what} read failed, retrying ({self.failures} in a row, {down:.1f} s): {self.error}", values
            if self.last_ok is None:
                return WARN, f"no {self.what} read yet", values
            age = now - self.last_ok
            if self.stale_after is not None and age > self.stale_after:
                return WARN, f"no {self.what} read for {age:.1f} s (expected within {self.stale_after:g} s)", values
            return OK, (f"block {self.block}" if self.block is not None else f"{self.what} reachable"), values


class ChainProbe:
    """Reads the head (``read() -> block number``) every ``period`` s in a daemon thread and
    feeds ``health``; for a node whose own work does not read the chain regularly. ``read`` may
    return None (no client right now: nothing is recorded) and may raise (recorded as a failure)."""

    def __init__(self, read: Callable[[], int | None], health: ChainHealth, period: float = 2.0, name: str = "diag-chain"):
        self.read, self.health, self.period = read, health, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "ChainProbe":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                block = self.read()
            except Exception as error:  # noqa: BLE001 - an unreachable chain is the finding
                self.health.failed(f"{type(error).__name__}: {error}")
            else:
                if block is not None:
                    self.health.ok(block)
            self._stop.wait(self.period)


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
