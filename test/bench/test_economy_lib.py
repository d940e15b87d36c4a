"""bench/economy_lib.py: events matched to tasks, the posting-to-payout breakdown, gas, the table
(synthetic event lists; the benchmark itself runs the real stack and is not run in CI)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from economy_lib import Arrival, ChainEvent, format_table, match_tasks, pct, summarize  # noqa: E402

R1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
R2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
REQ = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
B1 = b"b1".ljust(32, b"\0")
B2 = b"b2".ljust(32, b"\0")
B3 = b"b3".ljust(32, b"\0")


def ev(kind, t, tx, gas=0, **kw):
    return ChainEvent(kind, t, tx, gas, **kw)


def two_tasks():
    """Task 1 by robot1 (anchored in B1), task 2 by robot2 (B2); robot1 also anchors a regular
    batch B3 (no task); task 3 is posted and accepted but never completed."""
    events = [
        ev("Approval", 0.5, "0xap", 46_000, machine=REQ),
        ev("TaskPosted", 1.0, "0xp1", 200_000, task_id=1),
        ev("TaskPosted", 2.0, "0xp2", 180_000, task_id=2),
        ev("TaskAccepted", 3.0, "0xa1", 90_000, task_id=1, machine=R1),
        ev("TaskAccepted", 2.5, "0xa2", 91_000, task_id=2, machine=R2),
        ev("BatchAnchored", 5.0, "0xb3", 150_000, machine=R1, batch_id=B3),
        ev("BatchAnchored", 14.0, "0xb1", 160_000, machine=R1, batch_id=B1),
        # robot2 anchors B1's id too: another machine's batch of the same name must not match task 1
        ev("BatchAnchored", 12.0, "0xb1x", 170_000, machine=R2, batch_id=B1),
        ev("BatchAnchored", 21.0, "0xb2", 161_000, machine=R2, batch_id=B2),
        ev("TaskCompleted", 16.0, "0xc1", 120_000, task_id=1, machine=R1, batch_id=B1),
        ev("TaskPaid", 16.0, "0xc1", 120_000, task_id=1),
        ev("TaskCompleted", 24.0, "0xc2", 121_000, task_id=2, machine=R2, batch_id=B2),
        ev("TaskPosted", 30.0, "0xp3", 180_000, task_id=3),
        ev("TaskAccepted", 31.0, "0xa3", 90_000, task_id=3, machine=R1),
    ]
    arrivals = [
        Arrival(1, R1, 11.0), Arrival(1, R1, 13.0),   # recorded again: the first one counts
        Arrival(2, R1, 9.0),                          # another machine's record for task 2: ignored
        Arrival(2, R2, 18.0),
        Arrival(3, R1, 40.0),
    ]
    return events, arrivals


def test_breakdown_matches_each_completed_task_to_its_machine_and_batch():
    timings, notes = match_tasks(*two_tasks())
    assert notes == []
    assert [t.task_id for t in timings] == [1, 2]
    t1, t2 = timings
    assert t1.steps == {"accept": 2.0, "drive": 8.0, "anchor": 3.0, "complete": 2.0}
    assert t1.total == 15.0 and sum(t1.steps.values()) == t1.total
    assert t1.gas == 90_000 + 160_000 + 120_000        # robot1's own B1 anchor, not robot2's
    assert t2.steps == {"accept": 0.5, "drive": 15.5, "anchor": 3.0, "complete": 3.0}
    assert t2.gas == 91_000 + 161_000 + 121_000


def test_events_out_of_order_and_seen_twice_give_the_same_result():
    events, arrivals = two_tasks()
    dup = events[::-1] + [ev("TaskCompleted", 17.0, "0xc1", 120_000, task_id=1, machine=R1, batch_id=B1)]
    again, notes = match_tasks(dup, arrivals[::-1])
    first, _ = match_tasks(events, arrivals)
    assert notes == []
    assert [(t.task_id, t.steps, t.gas) for t in again] == [(t.task_id, t.steps, t.gas) for t in first]


def test_missing_pieces_are_noted_not_invented():
    events, arrivals = two_tasks()
    events = [e for e in events if e.tx_hash != "0xb2"]        # task 2's anchoring not seen
    arrivals = [a for a in arrivals if a.task_id != 1]          # task 1's arrival not seen
    events.append(ev("TaskCompleted", 50.0, "0xc9", 1, task_id=9, machine=R1, batch_id=B3))  # never posted here
    timings, notes = match_tasks(events, arrivals)
    assert [t.task_id for t in timings] == [1, 2]
    t1, t2 = timings
    assert t1.steps == {"accept": 2.0, "drive": None, "anchor": None, "complete": 2.0}
    assert t2.steps == {"accept": 0.5, "drive": 15.5, "anchor": None, "complete": None}
    assert t2.gas == 91_000 + 121_000  # no anchor gas known
    assert any("task 1" in n and "arrival" in n for n in notes)
    assert any("task 2" in n and "anchoring" in n for n in notes)
    assert any("task 9" in n and "TaskPosted" in n for n in notes)


def test_an_arrival_seen_after_the_anchoring_is_clamped_to_it():
    events, arrivals = two_tasks()
    arrivals = [Arrival(1, R1, 14.5)] + [a for a in arrivals if a.task_id != 1]
    t1 = match_tasks(events, arrivals)[0][0]
    assert t1.steps["anchor"] == 0.0 and t1.steps["drive"] == 11.0
    assert sum(t1.steps.values()) == t1.total


def test_a_completion_by_another_machine_than_the_acceptor_is_not_timed():
    events = [ev("TaskPosted", 1.0, "0xp1", task_id=1), ev("TaskAccepted", 2.0, "0xa1", task_id=1, machine=R1),
              ev("TaskCompleted", 9.0, "0xc1", task_id=1, machine=R2, batch_id=B1)]
    timings, notes = match_tasks(events, [])
    assert timings == [] and "no TaskAccepted" in notes[0]


def test_summary_rates_percentiles_and_gas():
    events, arrivals = two_tasks()
    timings, _ = match_tasks(events, arrivals)
    s = summarize("ours", timings, events, robots=2, sim_minutes=0.5, requester=REQ)
    assert s.completed == 2 and s.posted == 3
    assert s.per_sim_minute_per_robot == pytest.approx(2.0)
    assert s.total == [15.0, 22.0]
    assert s.steps["anchor"] == [3.0, 3.0]
    assert s.gas_per_task == pytest.approx((370_000 + 373_000) / 2)
    assert s.gas_parts == pytest.approx((90_500, 160_500, 120_500))
    assert s.gas_per_post == pytest.approx((200_000 + 180_000 + 180_000 + 46_000) / 3)
    table = format_table([s, summarize("plain web3", [], [], robots=2, sim_minutes=0.5, requester=REQ)])
    lines = table.splitlines()
    assert lines[0] == "| figure | ours | plain web3 |"
    assert "| tasks completed (of posted) | 2 (of 3) | 0 (of 0) |" in lines
    assert "| tasks / simulated minute / robot | 2.000 | 0.000 |" in lines
    assert "|   anchor p50 / p99 s | 3.00 / 3.00 | - |" in lines
    assert any(line.startswith("| gas per completed task") and line.endswith("| 371500 | - |") for line in lines)
    assert "|   of which accept / anchor / complete | 90500 / 160500 / 120500 | - |" in lines


def test_pct_nearest_rank():
    assert pct([5.0, 1.0, 3.0], 50) == 3.0
    assert pct(list(range(1, 101)), 99) == 99
    assert math.isnan(pct([], 50))
