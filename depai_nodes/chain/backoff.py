"""Bounded exponential backoff: the one way the bridge waits longer after each try.

``Backoff(first_s, max_s)`` yields first_s, 2*first_s, ... up to max_s and stays there; the
delay is kept as a float that is doubled and clamped each step, so it can never overflow (the
former ``0.002 * 2**polls`` raised OverflowError after ~1000 polls, ~22 s of receipt wait).
``sleep(deadline)`` never sleeps past a monotonic deadline.
"""

from __future__ import annotations

import time

__all__ = ["Backoff", "backoff_delay"]


def backoff_delay(first_s: float, max_s: float, attempt: int) -> float:
    """The delay before retry ``attempt`` (0-based): first_s * 2**attempt clamped to max_s, overflow-free."""
    if first_s <= 0 or max_s <= 0:
        return max(0.0, min(first_s, max_s))
    delay = first_s
    for _ in range(max(0, min(int(attempt), 1100))):
        if delay >= max_s:
            break
        delay *= 2.0
    return min(delay, max_s)


class Backoff:
    """Successive delays first_s, 2*first_s, ... capped at max_s; ``reset()`` starts over."""

    def __init__(self, first_s: float, max_s: float):
        if not (first_s > 0 and max_s >= first_s):
            raise ValueError(f"need 0 < first_s <= max_s, got {first_s}, {max_s}")
        self.first_s = float(first_s)
        self.max_s = float(max_s)
        self.current = self.first_s
        self.attempts = 0

    def next(self) -> float:
        """The delay to wait now; the following one doubles (up to max_s)."""
        d = self.current
        self.current = min(self.current * 2.0, self.max_s)
        self.attempts += 1
        return d

    def reset(self) -> None:
        self.current = self.first_s
        self.attempts = 0

    def sleep(self, deadline: float | None = None) -> float:
        """Sleep the next delay (not past ``deadline``, a time.monotonic() value); returns what was slept."""
        d = self.next()
        if deadline is not None:
            d = max(0.0, min(d, deadline - time.monotonic()))
        time.sleep(d)
        return d
