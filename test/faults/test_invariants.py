"""The invariant checks themselves: each must catch the violation it is named after, and pass a
trace that keeps it (so a green fault-injection run means something)."""

from depai_nodes.faults.core import (
    AnchoredRecord, Fault, OdomSample, PolicySample, SealedBatch, TaskEvent, Trace, check_all, check_batches_anchored,
    check_chain, check_duplicate_nodes, check_executed_once, check_keep_out, check_no_motion_without_policy, check_pause,
    check_payments_once, check_speed_limit, check_stale_policy, disc_overlaps_polygon, signed_distance,
)

ZONE = ("dock", ((4.0, 1.0), (6.0, 1.0), (6.0, 3.0), (4.0, 3.0)))


def policy(t, *, paused=False, max_speed=0.8, zones=(ZONE,), version=1):
    return PolicySample(t, version, "file:test", paused, max_speed, zones)


def drive(t0, t1, *, speed=0.5, x0=0.0, y0=0.0, vx=1.0, vy=0.0, robot="robot1", dt=0.1):
    n = int(round((t1 - t0) / dt))
    return [OdomSample(t0 + i * dt, robot, x0 + vx * speed * i * dt, y0 + vy * speed * i * dt, speed) for i in range(n)]


def test_geometry():
    square = ZONE[1]
    assert signed_distance(5.0, 2.0, square) == -1.0
    assert abs(signed_distance(3.0, 2.0, square) - 1.0) < 1e-9
    assert disc_overlaps_polygon(3.8, 2.0, 0.3, square)
    assert not disc_overlaps_polygon(3.6, 2.0, 0.3, square)
    assert disc_overlaps_polygon(5.0, 2.0, 0.0, square)


def test_motion_without_policy_is_caught_and_a_stop_in_time_passes():
    # The listener dies at t=10; the robot keeps driving until t=20 -> violation.
    tr = Trace(odom=drive(1, 20), policy=[policy(0.5)], faults=[Fault("kill", "dao_listener", 10.0, unbacked=True)], start=0, end=20)
    v = check_no_motion_without_policy(tr, policy_timeout=2.0, stop_margin=1.0)
    assert v and v[0].invariant == "no-motion-without-policy" and v[0].t >= 13.0
    # Same, but it stops 2.5 s after the fault and the listener is back at t=16: no violation.
    odom = drive(1, 12.5) + drive(12.5, 16, speed=0.0) + drive(16.1, 20)
    tr = Trace(odom=odom, policy=[policy(0.5), policy(16.05, version=2)], faults=[Fault("kill", "dao_listener", 10.0, unbacked=True)],
               start=0, end=20)
    assert check_no_motion_without_policy(tr, policy_timeout=2.0, stop_margin=1.0) == []


def test_motion_before_the_first_policy_is_caught():
    tr = Trace(odom=drive(0, 5), policy=[policy(4.0)], start=0, end=5)
    assert check_no_motion_without_policy(tr, policy_timeout=2.0, stop_margin=1.0)
    tr = Trace(odom=drive(0, 4, speed=0.0) + drive(4.1, 5), policy=[policy(4.0)], start=0, end=5)
    assert check_no_motion_without_policy(tr, policy_timeout=2.0, stop_margin=1.0) == []


def test_pause():
    pol = [policy(0.0), policy(5.0, paused=True, version=2), policy(9.0, version=3)]
    assert check_pause(Trace(odom=drive(0, 10), policy=pol, end=10))
    ok = drive(0, 5.5) + drive(5.5, 9.0, speed=0.0) + drive(9.0, 10)
    assert check_pause(Trace(odom=ok, policy=pol, end=10)) == []


def test_speed_limit_with_braking_margin():
    pol = [policy(0.0, max_speed=0.8), policy(5.0, max_speed=0.3, version=2)]
    too_fast = drive(0, 10, speed=0.8)
    v = check_speed_limit(Trace(odom=too_fast, policy=pol, end=10), margin=1.0)
    assert v and v[0].t >= 6.0
    ok = drive(0, 5.8, speed=0.8) + drive(5.8, 10, speed=0.3)
    assert check_speed_limit(Trace(odom=ok, policy=pol, end=10), margin=1.0) == []


def test_keep_out():
    pol = [policy(0.0)]
    # driving along y=2 from x=0 into the dock zone
    into = drive(0, 20, speed=0.5, x0=0.0, y0=2.0)
    v = check_keep_out(Trace(odom=into, policy=pol, end=20), robot_radius=0.3)
    assert v and "dock" in v[0].detail
    # stopping 0.5 m short of the zone is fine
    short = [s for s in into if s.x < 3.5]
    assert check_keep_out(Trace(odom=short, policy=pol, end=20), robot_radius=0.3) == []


def test_keep_out_voted_over_a_robot_allows_holding_and_leaving_only():
    zone_later = [policy(0.0, zones=()), policy(5.0, zones=(ZONE,), version=2)]
    inside = [OdomSample(t / 10, "robot1", 5.0, 2.0, 0.0) for t in range(0, 100)]
    assert check_keep_out(Trace(odom=inside, policy=zone_later, end=10), robot_radius=0.3) == []
    leaving = inside[:60] + drive(6.0, 10, speed=0.5, x0=5.0, y0=2.0, vx=-1.0)
    assert check_keep_out(Trace(odom=leaving, policy=zone_later, end=10), robot_radius=0.3) == []
    deeper = inside[:60] + [OdomSample(6.0 + i * 0.1, "robot1", 4.2 + 0.05 * i, 2.0, 0.5) for i in range(30)]
    deeper = [OdomSample(s.t, s.robot, 4.2, 2.0, 0.0) if s.t < 6.0 else s for s in deeper]
    assert check_keep_out(Trace(odom=deeper, policy=zone_later, end=10), robot_radius=0.3)


def test_duplicate_nodes():
    tr = Trace(graph=[(1.0, ["/robot1/wallet", "/robot1/controller"]), (2.0, ["/robot1/wallet", "/robot1/wallet"])])
    v = check_duplicate_nodes(tr)
    assert len(v) == 1 and "/robot1/wallet runs 2 times" in v[0].detail


def test_check_all_passes_a_clean_trace():
    # the listener heartbeats the policy every second
    tr = Trace(odom=drive(0.2, 5), policy=[policy(0.1 + i) for i in range(5)], graph=[(1.0, ["/a", "/b"])], end=5)
    assert check_all(tr, policy_timeout=2.0, robot_radius=0.3) == []


def heartbeat(t0, t1, period=1.0):
    return [policy(t0 + i * period) for i in range(int((t1 - t0) / period) + 1)]


def test_stale_policy_gap_is_caught_and_a_stop_in_time_passes():
    # heartbeats until t=10, none until t=25 (a dead chain): stale at 15, the robot must stand from 16
    pol = heartbeat(0, 10) + heartbeat(25, 30)
    tr = Trace(odom=drive(0.1, 30), policy=pol, end=30)
    v = check_stale_policy(tr, policy_timeout=5.0, stop_margin=1.0)
    assert v and v[0].invariant == "no-motion-without-policy" and 16.0 <= v[0].t < 25.0
    odom = drive(0.1, 15.5) + drive(15.5, 25.0, speed=0.0) + drive(25.0, 30)
    assert check_stale_policy(Trace(odom=odom, policy=pol, end=30), policy_timeout=5.0, stop_margin=1.0) == []
    # an unbroken heartbeat leaves no window: driving throughout is fine
    assert check_stale_policy(Trace(odom=drive(0.1, 30), policy=heartbeat(0, 30), end=30), 5.0, 1.0) == []
    # the gap after the last message counts too (the source never came back)
    assert check_stale_policy(Trace(odom=drive(0.1, 30), policy=heartbeat(0, 10), end=30), 5.0, 1.0)
    assert check_all(Trace(odom=drive(0.1, 30), policy=pol, end=30), policy_timeout=5.0, robot_radius=0.3)
    # the robot resumed on the policy its controller got 0.8 s before this recorder heard it: not a
    # violation (the recorder is a subscriber too, and hears it late under load) ...
    early = drive(0.1, 15.5) + drive(15.5, 24.2, speed=0.0) + drive(24.2, 30)
    assert check_stale_policy(Trace(odom=early, policy=pol, end=30), policy_timeout=5.0, stop_margin=1.0) == []
    # ... but moving 2 s before it is
    v = check_stale_policy(Trace(odom=drive(0.1, 15.5) + drive(15.5, 23.0, speed=0.0) + drive(23.0, 30), policy=pol, end=30),
                           policy_timeout=5.0, stop_margin=1.0)
    assert v and 23.0 <= v[0].t < 23.5


def ev(task, event, block, amount=0):
    return TaskEvent(task, event, block, f"0x{block:064x}", "0xabc", amount)


def test_payment_once():
    fine = [ev(1, "TaskPosted", 10), ev(1, "TaskAccepted", 11), ev(1, "TaskCompleted", 20), ev(1, "TaskPaid", 20, 5),
            ev(2, "TaskPosted", 12), ev(2, "TaskRefunded", 40)]
    assert check_payments_once(fine) == []
    twice = fine + [ev(1, "TaskPaid", 30, 5)]
    v = check_payments_once(twice)
    assert len(v) == 1 and v[0].invariant == "payment-once" and "task 1 paid 2 times" in v[0].detail and "10 in all" in v[0].detail
    v = check_payments_once(fine + [ev(1, "TaskCompleted", 31)])
    assert len(v) == 1 and "task 1 settled 2 times" in v[0].detail
    v = check_payments_once(fine + [ev(2, "TaskPaid", 41, 5)])
    assert any("task 2 paid (block 41) and refunded" in x.detail for x in v)


def test_request_executed_once():
    ledger = {"task-a-1": "0xAA", "task-a-2": "0xbb"}
    assert check_executed_once("posting", {"0xaa": "task 1", "0xBB": "task 2"}, ledger) == []
    # a second posting on chain no request accounts for: executed beside the ledger (twice)
    v = check_executed_once("posting", {"0xaa": "task 1", "0xbb": "task 2", "0xcc": "task 3"}, ledger)
    assert len(v) == 1 and v[0].invariant == "request-once" and "task 3 (tx 0xcc)" in v[0].detail
    # one transaction recorded for two request ids
    v = check_executed_once("posting", {"0xaa": "task 1"}, {"r1": "0xaa", "r2": "0xAA"})
    assert len(v) == 1 and "r1, r2" in v[0].detail
    # a request that never executed (failed, lost with a rolled-back chain) is no violation
    assert check_executed_once("posting", {}, ledger) == []


ROOT = "0x" + "11" * 32


def batch(name, state, *, sealed_s=0.0, bid=None, root=ROOT, n=10, machine="0xAbC"):
    return SealedBatch(name, state, bid or f"id-{name}", root, n, machine, int(sealed_s * 1e9))


def test_batches_anchored():
    now = 100.0
    batches = [batch("a", "anchored"), batch("b", "anchored"), batch("c", "recording")]
    records = {("0xabc", "id-a"): AnchoredRecord(ROOT, 10), ("0xabc", "id-b"): AnchoredRecord(ROOT.upper().replace("0X", "0x"), 10)}
    assert check_batches_anchored(batches, records, now_ns=int(now * 1e9), grace_s=5) == []
    # anchored on disk, gone from the chain (a restored chain lost it, never re-anchored)
    v = check_batches_anchored(batches, {("0xabc", "id-a"): AnchoredRecord(ROOT, 10), ("0xabc", "id-b"): None},
                               now_ns=int(now * 1e9), grace_s=5)
    assert len(v) == 1 and v[0].invariant == "batch-lost" and "id-b" in v[0].detail and "no record" in v[0].detail
    # a record with another root or count is not this batch
    v = check_batches_anchored(batches[:1], {("0xabc", "id-a"): AnchoredRecord("0x" + "22" * 32, 10)},
                               now_ns=int(now * 1e9), grace_s=5)
    assert len(v) == 1 and "root" in v[0].detail
    v = check_batches_anchored(batches[:1], {("0xabc", "id-a"): AnchoredRecord(ROOT, 9)}, now_ns=int(now * 1e9), grace_s=5)
    assert len(v) == 1 and "count 9" in v[0].detail
    # still pending after the drain window, or refused for good: lost; pending just sealed: within grace
    v = check_batches_anchored([batch("p", "pending", sealed_s=50), batch("f", "failed", sealed_s=50)], {},
                               now_ns=int(now * 1e9), grace_s=5)
    assert [x.detail.split(" (")[0] for x in v] == ["batch id-p", "batch id-f"]
    assert check_batches_anchored([batch("p", "pending", sealed_s=98)], {}, now_ns=int(now * 1e9), grace_s=5) == []


def test_check_chain_combines():
    events = [ev(1, "TaskPaid", 20, 5), ev(1, "TaskPaid", 21, 5)]
    v = check_chain(events, [batch("a", "anchored")], {}, now_ns=0, grace_s=1,
                    executions=[("posting", {"0xcc": "task 3"}, {})])
    assert sorted(x.invariant for x in v) == ["batch-lost", "payment-once", "request-once"]
