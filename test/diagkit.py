"""Helpers shared by the /diagnostics tests (test/foundation, test/chain, test/view)."""
from __future__ import annotations


class FakeClock:
    """A clock the test moves by hand (``clock.t += 3.0``); the diagnostics core reads it."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wait_status(inbox, name: str, level: int, timeout: float = 30.0, where=None):
    """The first DiagnosticStatus named ``name`` at ``level`` (and matching ``where``) on /diagnostics."""
    def matches(s) -> bool:
        return s.name == name and s.level == bytes([level]) and (where is None or where(s))

    msg = inbox.wait_for(lambda m: any(matches(s) for s in m.status), timeout=timeout)
    return next(s for s in msg.status if matches(s))


def values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}
