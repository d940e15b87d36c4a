"""Logs that help: per-cause throttling with counts; an outage logged once, and once its recovery."""

import threading

import pytest

from depai_nodes.common.logthrottle import CauseThrottle, Outage, with_count


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_repeated_cause_is_logged_once_per_period_with_the_count_held_back():
    clock = FakeClock()
    throttle = CauseThrottle(5.0, clock=clock)
    assert throttle.check("chain down") == (True, 0)
    # 4 Hz for just under one period: nothing logged, the count grows.
    seen = []
    for _ in range(19):
        clock.t += 0.25
        seen.append(throttle.check("chain down"))
    assert [log for log, _ in seen] == [False] * 19
    assert seen[-1] == (False, 19)
    clock.t += 0.25  # 5.0 s after the first line
    assert throttle.check("chain down") == (True, 19)
    clock.t += 0.1
    assert throttle.check("chain down") == (False, 1)


def test_causes_are_throttled_independently():
    clock = FakeClock()
    throttle = CauseThrottle(10.0, clock=clock)
    assert throttle.check("a") == (True, 0)
    assert throttle.check("a") == (False, 1)
    assert throttle.check("b") == (True, 0)  # another cause is not held back by the first
    assert throttle.check(("node", 3)) == (True, 0)  # any hashable cause
    assert throttle.check("b") == (False, 1)
    throttle.reset("a")
    assert throttle.check("a") == (True, 0)


def test_memory_stays_bounded_with_unbounded_causes():
    clock = FakeClock()
    throttle = CauseThrottle(60.0, clock=clock, max_causes=8)
    for i in range(100):
        clock.t += 0.01
        assert throttle.check(f"cause {i}") == (True, 0)
    assert len(throttle._last) <= 8
    # the newest ones are still remembered
    assert throttle.check("cause 99")[0] is False


def test_zero_period_logs_everything_and_negative_is_refused():
    throttle = CauseThrottle(0.0, clock=FakeClock())
    assert [throttle.check("x") for _ in range(3)] == [(True, 0)] * 3
    with pytest.raises(ValueError):
        CauseThrottle(-1.0)
    with pytest.raises(ValueError):
        CauseThrottle(float("nan"))


def test_with_count_names_the_suppressed_repeats():
    assert with_count("retrying", 0) == "retrying"
    assert with_count("retrying", 7) == "retrying (7 more since the last report)"


def test_an_outage_is_logged_at_its_start_and_at_its_end_only():
    clock = FakeClock()
    chain = Outage("chain at http://127.0.0.1:8545", clock=clock)
    assert chain.recovered() is None  # nothing to recover from
    assert not chain.down
    first = chain.failed("connection refused")
    assert first == "chain at http://127.0.0.1:8545 failed: connection refused"
    assert chain.down
    lines = []
    for _ in range(47):  # 4 Hz polls for ~12 s
        clock.t += 0.25
        lines.append(chain.failed("connection refused"))
    assert lines == [None] * 47
    clock.t += 0.25
    assert chain.recovered() == "chain at http://127.0.0.1:8545 recovered after 12.0 s, 48 failures"
    assert chain.recovered() is None
    assert not chain.down
    # A new outage starts counting afresh.
    assert chain.failed("timeout") == "chain at http://127.0.0.1:8545 failed: timeout"
    clock.t += 1.0
    assert chain.recovered() == "chain at http://127.0.0.1:8545 recovered after 1.0 s, 1 failure"


def test_a_long_outage_reminds_at_most_every_remind_s():
    clock = FakeClock()
    outage = Outage("policy source", clock=clock, remind_s=30.0)
    assert outage.failed("x") is not None
    reminders = []
    for _ in range(240):  # 60 s at 4 Hz
        clock.t += 0.25
        line = outage.failed("x")
        if line:
            reminders.append(line)
    assert reminders == ["policy source still failing after 30.0 s, 121 failures: x", "policy source still failing after 60.0 s, 241 failures: x"]


def test_concurrent_failures_log_the_start_exactly_once():
    outage = Outage("wallet")
    lines = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        for _ in range(200):
            line = outage.failed("busy")
            if line:
                lines.append(line)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lines == ["wallet failed: busy"]
    assert outage.recovered().endswith("1600 failures")
