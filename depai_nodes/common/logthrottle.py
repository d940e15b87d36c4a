"""Logs that help: a repeated cause is logged once per period with a count, an outage twice.

Two small, ROS-free helpers that decide *whether* to log; the caller logs with its own logger.

    throttle = CauseThrottle(5.0)
    log_now, suppressed = throttle.check("chain unreachable")
    if log_now:
        logger.warning("chain unreachable" + (f" ({suppressed} more since the last report)" if suppressed else ""))

    chain = Outage("chain at http://127.0.0.1:8545")
    line = chain.failed(str(error))      # a line on the first failure of an outage, else None
    line = chain.recovered()             # "... recovered after 12.3 s, 48 failures" once, else None

Causes are throttled independently: a new cause is logged at once even while another one is
being suppressed. Both classes are thread-safe and take an injectable monotonic clock for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["CauseThrottle", "Outage", "with_count"]

Clock = Callable[[], float]


def with_count(text: str, suppressed: int) -> str:
    """`text`, followed by how many repeats were suppressed since it was last logged (if any)."""
    return f"{text} ({suppressed} more since the last report)" if suppressed else text


class CauseThrottle:
    """Log each cause at most once per `period_s`, counting what was held back in between."""

    def __init__(self, period_s: float, clock: Clock = time.monotonic, max_causes: int = 256) -> None:
        if not period_s >= 0.0:
            raise ValueError(f"period_s must be >= 0, got {period_s!r}")
        self.period_s = float(period_s)
        self._clock = clock
        self._max_causes = max_causes
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def check(self, cause: Hashable) -> tuple[bool, int]:
        """(log now?, how many were suppressed since the last logged one).

        When the answer is "log now", the count is the number of occurrences held back since this
        cause was last logged (0 the first time); when it is "not now", it is the count so far,
        including this occurrence.
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(cause)
            if last is None or now - last >= self.period_s:
                if last is None and len(self._last) >= self._max_causes:
                    self._forget_oldest()
                self._last[cause] = now
                return True, self._suppressed.pop(cause, 0)
            self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
            return False, self._suppressed[cause]

    def reset(self, cause: Hashable | None = None) -> None:
        """Forget one cause (or all): its next occurrence is logged at once."""
        with self._lock:
            if cause is None:
                self._last.clear()
                self._suppressed.clear()
            else:
                self._last.pop(cause, None)
                self._suppressed.pop(cause, None)

    def _forget_oldest(self) -> None:
        # Bounded memory when causes carry unbounded detail (e.g. an error text with a counter).
        oldest = min(self._last, key=self._last.__getitem__)
        self._last.pop(oldest)
        self._suppressed.pop(oldest, None)


class Outage:
    """Track one dependency's outage: log its start once and its end once, with the numbers.

    `remind_s` (optional) adds a "still failing" line at most that often during a long outage,
    so an operator joining late sees it without a flood.
    """

    def __init__(self, what: str, clock: Clock = time.monotonic, remind_s: float | None = None) -> None:
        self.what = what
        self._clock = clock
        self._remind_s = remind_s
        self._lock = threading.Lock()
        self._since: float | None = None
        self._last_logged = 0.0
        self.failures = 0

    @property
    def down(self) -> bool:
        """True while an outage is in progress (failed() called, recovered() not yet)."""
        return self._since is not None

    def failed(self, text: str) -> str | None:
        """Record a failure; a line to log on the first failure of an outage, else None."""
        now = self._clock()
        with self._lock:
            self.failures += 1
            if self._since is None:
                self._since = now
                self._last_logged = now
                return f"{self.what} failed: {text}"
            if self._remind_s is not None and now - self._last_logged >= self._remind_s:
                self._last_logged = now
                return f"{self.what} still failing after {now - self._since:.1f} s, {self.failures} failures: {text}"
            return None

    def recovered(self) -> str | None:
        """Record a success; a line to log once when it ends an outage, else None."""
        now = self._clock()
        with self._lock:
            if self._since is None:
                return None
            line = f"{self.what} recovered after {now - self._since:.1f} s, {self.failures} failure{'s' if self.failures != 1 else ''}"
            self._since = None
            self.failures = 0
            return line
