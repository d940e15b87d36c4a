"""The requester's core: what it posts, with which ids, and what it does with each answer."""

import pytest

from depai_nodes.chain.intents import Result
from depai_nodes.common.stations import Station
from depai_nodes.chain.units import fleet as fleet_units
from depai_nodes.requester.core import Requester, RequesterParams

GENESIS = "0x" + "ab12cd34" + "0" * 56
STATIONS = [Station(id="a", x=1.0, y=0.0), Station(id="b", x=5.0, y=2.0, yaw=1.5), Station(id="c", x=-3.0, y=4.0)]
TOKEN = 10**18


def requester(**kw) -> Requester:
    params = RequesterParams(**{"period": 10.0, "retry_period": 2.0, "reward": str(5 * TOKEN), "budget": str(100 * TOKEN),
                                "deadline": 240.0, "tolerance": 0.4, **kw})
    return Requester(params, STATIONS, GENESIS)


def post_all(r: Requester, n: int, t0: float = 0.0) -> list:
    out = []
    now = t0
    for i in range(n):
        req = r.next_request(now, 1_000_000)
        assert req is not None
        r.on_result(req, now, Result.SUCCESS, task_id=str(i + 1))
        out.append(req)
        now = r.next_at
    return out


def test_posts_round_robin_with_deterministic_ids_reward_deadline_and_rate():
    r = requester()
    first = r.next_request(0.0, 1_000_000)
    assert (first.request_id, first.station, first.x, first.y, first.tolerance) == ("task-ab12cd34-1", "a", 1.0, 0.0, 0.4)
    assert first.deadline == 1_000_240 and first.reward == str(5 * TOKEN)
    line = r.on_result(first, 0.0, Result.SUCCESS, task_id="7", error="", reason="")
    assert "posted task #7 to station a" in line and "5 FLEET" in line
    assert r.next_request(9.9, 1_000_000) is None  # the rate: one per period
    second = r.next_request(10.0, 1_000_010)
    assert (second.request_id, second.station, second.yaw) == ("task-ab12cd34-2", "b", 1.5)


def test_a_restart_replays_the_same_ids_and_rebuilds_count_and_budget_from_the_ledger():
    before = requester()
    posted = post_all(before, 3)
    again = requester()  # a new process: starts from 1 again
    now = 50.0
    for i, old in enumerate(posted):
        req = again.next_request(now, 2_000_000)
        assert req is not None and req.request_id == old.request_id
        line = again.on_result(req, now, Result.SUCCESS, task_id=str(i + 1), already_done=True)
        assert "already posted" in line
        assert again.next_at == now  # a replayed answer does not wait a period
    assert (again.posted, again.spent, again.seq) == (3, 15 * TOKEN, 4)


def test_the_budget_and_max_tasks_end_posting_for_good():
    r = requester(budget=str(12 * TOKEN))
    post_all(r, 2)
    assert r.next_request(1e9, 0) is None
    assert "budget spent: 10 FLEET of 12 FLEET" in r.done_reason
    m = requester(max_tasks=1)
    post_all(m, 1)
    assert m.next_request(1e9, 0) is None and "max_tasks" in m.done_reason


def test_retryable_answers_keep_the_id_and_refusals_skip_it():
    r = requester()
    req = r.next_request(0.0, 100)
    for code in (Result.CHAIN_UNAVAILABLE, Result.TIMEOUT, Result.BUSY, Result.WALLET_UNAVAILABLE):
        line = r.on_result(req, 0.0, code, error="X", reason="y")
        assert "asking again in 2 s" in line
        assert r.next_request(1.9, 100) is None
        again = r.next_request(2.0, 100)
        assert again.request_id == req.request_id  # idempotent: the same id, never a second task
    line = r.on_result(req, 2.0, Result.REVERTED, error="RewardTooLow", reason="below the minimum")
    assert "refused: REVERTED RewardTooLow" in line
    nxt = r.next_request(12.0, 100)
    assert nxt.request_id == "task-ab12cd34-2" and r.posted == 0 and r.spent == 0


def test_stations_under_a_keep_out_zone_get_no_tasks():
    r = requester()
    lines = r.set_zones({"dock": [(4.0, 1.0), (6.0, 1.0), (6.0, 3.0), (4.0, 3.0)]})
    assert lines == ["station b lies in keep-out zone dock: no tasks there while it stands"]
    stations = [req.station for req in post_all(r, 4)]
    assert "b" not in stations and set(stations) == {"a", "c"}
    assert r.set_zones({}) == ["station b is free of keep-out zones again"]
    everywhere = requester()
    everywhere.set_zones({"all": [(-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0)]})
    assert everywhere.next_request(0.0, 0) is None and not everywhere.done_reason  # waits, does not give up


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        RequesterParams(reward="-1")
    with pytest.raises(ValueError):
        RequesterParams(stations=["a", "a"])
    with pytest.raises(ValueError):
        Requester(RequesterParams(reward="0"), STATIONS, GENESIS)
    with pytest.raises(ValueError):
        Requester(RequesterParams(), [], GENESIS)
    assert fleet_units(2_500_000_000_000_000_000) == "2.5 FLEET"
