"""Market mode's decisions without ROS: scoring, choosing, the life of one task (accept, drive,
record, prove, complete), races, deadlines, pauses, keep-out zones voted over the goal, a chain
that is down, and resuming after a restart."""

import math

import pytest

from depai_nodes.agent.core import AgentPhase, PatrolAgent
from depai_nodes.agent.market import (
    MarketAgent,
    MarketConfig,
    MarketPhase,
    MarketPolicy,
    MarketTask,
    in_polygon,
    score,
)

ME = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20
T = 1_700_000_000  # chain time
CFG = MarketConfig(speed=0.5, cost_per_m=10, cost_per_s=1, overhead_s=10.0, deadline_margin_s=5.0, retry_period=1.0,
                   max_retry_period=8.0, proof_poll_s=0.5, record_timeout_s=3.0, dry_run_ttl_s=30.0)
POLICY = MarketPolicy(paused=False, min_task_price=100, version=1)


def posted(agent, tid, reward=1000, deadline=T + 600, x=2.0, y=1.0, station=""):
    agent.on_event("TaskPosted", {"taskId": tid, "reward": reward, "deadline": deadline, "x": x, "y": y, "yaw": 0.0,
                                  "tolerance": 0.3, "station": station})


def agent_with(*tasks, policy=POLICY, cfg=CFG):
    a = MarketAgent(cfg)
    a.machine = ME
    a.on_policy(policy)
    for t in tasks:
        posted(a, **t)
    return a


def evaluate_all(a, now, answers):
    """Answer every dry run the agent asks for: answers[task_id] = (result, length, message)."""
    asked = []
    while (t := a.dry_run_wanted(now)) is not None:
        asked.append(t.task_id)
        res, length, msg = answers[t.task_id]
        a.on_dry_run(t.task_id, res, length, msg, now)
    return asked


def drive_and_arrive(a, now):
    """Play planner and controller for the driving agent: plan, follow, arrive."""
    a.on_navigation("IDLE", now, "", 0.0)
    wp = a.goal_to_request(now)
    assert wp is not None
    a.on_plan((wp.x, wp.y), now)
    a.on_plan_result("SUCCESS", now, 3.0, 0.15)
    a.on_navigation("FOLLOWING", now + 0.1, "", 3.0)
    return a.on_navigation("ARRIVED", now + 0.2, "", 0.0)


def test_score_weighs_reward_against_the_trip_and_the_deadline():
    t = MarketTask(1, reward=1000, deadline=T + 600)
    s = score(t, 10.0, T, POLICY, CFG)  # 20 s drive + 10 s overhead: cost 10*10 + 30
    assert s.ok and s.cost == pytest.approx(130) and s.value == pytest.approx(870) and s.eta_s == pytest.approx(30)
    assert not score(t, 10.0, T + 570, POLICY, CFG).ok  # 30 s + 5 s margin do not fit in 30 s
    assert "cannot arrive in time" in score(t, 10.0, T + 570, POLICY, CFG).why
    assert score(t, 10.0, T + 565, POLICY, CFG).ok
    assert "not worth it" in score(MarketTask(1, reward=130, deadline=T + 600), 10.0, T, POLICY, CFG).why
    assert "minimum price" in score(MarketTask(1, reward=99, deadline=T + 600), 0.0, T, POLICY, CFG).why
    assert "paused" in score(t, 1.0, T, MarketPolicy(paused=True), CFG).why
    assert "not open" in score(MarketTask(1, reward=1000, deadline=T + 600, status="Accepted"), 1.0, T, POLICY, CFG).why
    assert not score(t, math.inf, T, POLICY, CFG).ok


def test_in_polygon_with_a_margin():
    sq = [(0, 0), (2, 0), (2, 2), (0, 2)]
    assert in_polygon(1, 1, sq) and not in_polygon(2.2, 1, sq)
    assert in_polygon(2.2, 1, sq, margin=0.3) and not in_polygon(2.4, 1, sq, margin=0.3)


def test_the_best_task_is_accepted_driven_proven_and_paid_then_the_robot_parks():
    cfg = MarketConfig(**{**CFG.__dict__, "park": (-1.0, -1.0, 0.0)})
    a = agent_with({"tid": 1, "reward": 500}, {"tid": 2, "reward": 900}, {"tid": 3, "reward": 5000, "deadline": T + 15},
                   cfg=cfg)
    asked = evaluate_all(a, 0.0, {1: ("SUCCESS", 4.0, ""), 2: ("SUCCESS", 20.0, ""), 3: ("SUCCESS", 2.0, "")})
    assert sorted(asked) == [1, 2, 3]
    # 3 pays most but cannot be reached before its deadline; 2 (900 - 250) beats 1 (500 - 58)
    t, s = a.best(T, 0.0)
    assert t.task_id == 2 and s.value == pytest.approx(900 - 250)
    line = a.take(t, s, 0.0)
    assert "accepting task 2" in line and a.phase == MarketPhase.ACCEPTING
    assert a.best(T, 0.0) is None  # one at a time
    assert "accepted task 2" in a.on_accept("SUCCESS", "", "", False, 1.0)
    assert a.phase == MarketPhase.DRIVING
    assert "arrived at task 2" in drive_and_arrive(a, 2.0)
    assert a.phase == MarketPhase.RECORDING and a.record_wanted(3.0, (2.1, 1.1)).task_id == 2
    a.on_recorded(3.0)
    assert a.phase == MarketPhase.PROVING
    assert a.proof_wanted(3.1) is None  # polled every proof_poll_s
    assert a.proof_wanted(3.6).task_id == 2
    assert a.on_proof("PENDING", {}, 3.6) is None and a.phase == MarketPhase.PROVING
    proof = {"batch_id": "ab" * 16, "x_mm": 2000, "y_mm": 1000, "yaw_mrad": 0, "time": T + 60, "proof": ["0x" + "11" * 32]}
    assert a.proof_wanted(3.7) is None  # next poll at 4.1 ...
    a.on_batch_anchored(3.8)            # ... but telemetry reports a batch anchored: ask at once
    assert a.proof_wanted(3.8) is not None
    assert a.proof_wanted(4.2) is None  # polled again from then on
    assert a.proof_wanted(4.3) is not None
    assert "anchored in batch" in a.on_proof("ANCHORED", proof, 4.2)
    task, p = a.complete_wanted(4.2)
    assert task.task_id == 2 and p == proof
    assert a.complete_wanted(4.3) is None  # in flight
    # the chain is down: retried with backoff, the proof kept
    assert "trying again in 1 s" in a.on_complete("CHAIN_UNAVAILABLE", "RpcError", "", "0", False, 5.0)
    assert a.complete_wanted(5.5) is None and a.complete_wanted(6.0) is not None
    assert "trying again in 2 s" in a.on_complete("TIMEOUT", "", "", "0", False, 6.0)
    assert a.complete_wanted(8.0) is not None
    # the arrival is a second ahead of the chain's latest block: refused for now, asked again
    assert "trying again in 4 s" in a.on_complete("REVERTED", "ReportFromFuture", "", "0", False, 8.0)
    assert a.complete_wanted(11.0) is None and a.complete_wanted(12.0) is not None
    line = a.on_complete("SUCCESS", "", "", "900", False, 13.0)
    assert "completed task 2" in line and "paid 900" in line
    assert a.paid == [(2, 900)] and a.phase == MarketPhase.IDLE and a.current is None
    # idle: it leaves the station for its parking pose
    a.on_navigation("IDLE", 14.0, "", 0.0)
    wp = a.goal_to_request(14.0)
    assert (wp.x, wp.y) == (-1.0, -1.0)
    # every trip cost changed with the move: asked again before the next choice
    assert a.dry_run_wanted(14.0) is not None
    # a refusal for good ends the task with the reason
    b = agent_with({"tid": 1})
    evaluate_all(b, 0.0, {1: ("SUCCESS", 2.0, "")})
    b.take(*b.best(T, 0.0), 0.0)
    b.on_accept("SUCCESS", "", "", False, 0.1)
    drive_and_arrive(b, 0.2)
    b.on_recorded(1.0)
    b.on_proof("ANCHORED", proof, 1.5)
    b.complete_wanted(1.5)
    line = b.on_complete("REVERTED", "ArrivalTooFar", "3 m off", "0", False, 2.0)
    assert "completing task 1 at (2.00, 1.00) was refused: REVERTED ArrivalTooFar (3 m off)" in line and b.phase == MarketPhase.IDLE


def test_goals_that_can_never_be_reached_are_never_accepted_and_logged_once():
    a = agent_with({"tid": 1}, {"tid": 2}, {"tid": 3}, {"tid": 4}, {"tid": 5})
    lines = {}
    now = 0.0
    while (t := a.dry_run_wanted(now)) is not None:
        res = {1: ("GOAL_OFF_MAP", "goal off the map"), 2: ("GOAL_IN_OBSTACLE", "goal (2, 1) is inside an obstacle"),
               3: ("GOAL_IN_KEEPOUT", "inside a keep-out zone"),
               4: ("GOAL_IN_OBSTACLE", "inside an obstacle (a transient obstacle: local costmap only)"),
               5: ("NO_PATH", "no path")}[t.task_id]
        lines[t.task_id] = a.on_dry_run(t.task_id, res[0], math.inf, res[1], now)
    assert "never taking task 1" in lines[1] and "GOAL_OFF_MAP" in lines[1]
    assert "never taking task 2" in lines[2] and "inside an obstacle" in lines[2]
    assert "keep-out zone covers it" in lines[3]
    assert "for now" in lines[4] and "for now" in lines[5]  # another robot at the goal / no path now: later
    assert a.best(T, 0.0) is None
    # much later (cached answers expired): 1 and 2 are never asked again; 3 waits for a policy change
    assert evaluate_all(a, 100.0, {3: ("GOAL_IN_KEEPOUT", 0, ""), 4: ("SUCCESS", 2.0, ""), 5: ("SUCCESS", 3.0, "")}) == [3, 4, 5]
    assert a.best(T, 100.0)[0].task_id == 4
    a.on_policy(MarketPolicy(min_task_price=100, version=2))  # the zone was lifted
    assert a.dry_run_wanted(100.0).task_id == 3


def test_a_lost_race_moves_on_at_once_and_nothing_is_accepted_twice():
    a = agent_with({"tid": 1, "reward": 900}, {"tid": 2, "reward": 800})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, ""), 2: ("SUCCESS", 2.0, "")})
    t, s = a.best(T, 0.0)
    a.take(t, s, 0.0)
    line = a.on_accept("REVERTED", "TaskNotOpen", "another machine", False, 0.5)
    assert "lost the race for task 1" in line and a.lost_races == 1 and a.phase == MarketPhase.IDLE
    # at once, no pause: the next best
    assert a.best(T, 0.5)[0].task_id == 2
    # meanwhile the event of the other machine's acceptance arrives: task 1 stays taken
    a.on_event("TaskAccepted", {"taskId": 1, "machine": OTHER})
    assert a.tasks[1].status == "Accepted"
    assert a.on_tick(0.5, T) is None  # not ours: nothing to take up
    # a retryable answer waits (backoff) instead of spinning
    t, s = a.best(T, 0.5)
    a.take(t, s, 0.5)
    assert "trying again in 1 s" in a.on_accept("BUSY", "", "", False, 0.6)
    assert a.best(T, 1.0) is None and a.best(T, 1.7)[0].task_id == 2
    # refused for this task (the wallet's policy): not again for a while
    a.take(*a.best(T, 1.7), 1.7)
    assert "did not accept task 2" in a.on_accept("REJECTED_BY_POLICY", "PolicyRefused", "reward too low", False, 1.8)
    assert a.best(T, 2.0) is None


def test_a_machine_whose_stake_is_not_there_yet_asks_again_for_the_same_task():
    """At start-up the agent may see tasks before the identity node's registration and stake
    are mined: CollateralTooLow / NotRegistered are about the machine, not the task."""
    a = agent_with({"tid": 1, "reward": 900})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    line = a.on_accept("REJECTED_BY_POLICY", "CollateralTooLow", "stake 0 does not cover 1 task(s)", False, 0.1)
    assert "could not accept task 1 " in line and "stake 0 does not cover" in line and "trying again in 1 s" in line
    assert a.best(T, 0.5) is None and a.best(T, 1.2)[0].task_id == 1  # backoff, then the same task
    a.take(*a.best(T, 1.2), 1.2)
    assert "trying again in 2 s" in a.on_accept("REVERTED", "NotRegistered", "", False, 1.3)
    a.take(*a.best(T, 3.4), 3.4)
    assert "accepted task 1" in a.on_accept("SUCCESS", "", "", False, 3.5)


def test_deadline_about_to_pass_while_driving_gives_up_with_the_reason():
    a = agent_with({"tid": 1, "deadline": T + 100})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 4.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    a.on_navigation("IDLE", 0.2, "", 0.0)
    wp = a.goal_to_request(0.2)
    a.on_plan((wp.x, wp.y), 0.2)
    a.on_plan_result("SUCCESS", 0.2, 20.0, 0.15)
    a.on_navigation("FOLLOWING", 0.3, "", 20.0)
    assert a.on_tick(1.0, T + 50) is None  # 20 m at 0.5 m/s + 10 s = 50 s: still fits
    line = a.on_tick(1.1, T + 51)
    assert "deadline of task 1 at (2.00, 1.00) is about to pass" in line and "giving up" in line
    assert a.phase == MarketPhase.IDLE and a.gave_up[0][0] == 1
    # and it is not taken again
    assert a.dry_run_wanted(100.0) is None


def test_a_fleet_pause_holds_the_task_and_stops_new_acceptances():
    a = agent_with({"tid": 1}, {"tid": 2})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, ""), 2: ("SUCCESS", 3.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    a.on_navigation("IDLE", 0.2, "", 0.0)
    wp = a.goal_to_request(0.2)
    a.on_plan((wp.x, wp.y), 0.2)
    a.on_plan_result("SUCCESS", 0.2, 2.0, 0.15)
    a.on_navigation("FOLLOWING", 0.3, "", 2.0)
    a.on_policy(MarketPolicy(paused=True, min_task_price=100, version=2))
    assert "holding at the fleet's order" in a.on_navigation("STOPPED", 0.4, "fleet paused", 2.0)
    for k in range(1, 100):  # held for 50 s (past stall_timeout): deadlines suspended, the task kept
        assert a.on_navigation("STOPPED", 0.4 + k * 0.5, "fleet paused", 2.0) is None
        assert a.on_tick(0.4 + k * 0.5, T + 10) is None
    assert a.dry_run_wanted(50.0) is None and a.best(T, 50.0) is None
    assert a.phase == MarketPhase.DRIVING and a.current.task.task_id == 1
    a.on_policy(MarketPolicy(paused=False, min_task_price=100, version=3))
    a.on_navigation("FOLLOWING", 60.0, "", 1.0)
    assert "arrived" in a.on_navigation("ARRIVED", 61.0, "", 0.0)


def test_idle_while_paused_nothing_is_evaluated_or_accepted():
    a = agent_with({"tid": 1}, policy=MarketPolicy(paused=True, min_task_price=100, version=1))
    assert a.dry_run_wanted(0.0) is None and a.best(T, 0.0) is None


def test_a_keep_out_zone_voted_over_the_goal_abandons_the_task():
    a = agent_with({"tid": 1, "x": 2.0, "y": 1.0})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    zone = ("dock-b", ((1.5, 0.5), (2.5, 0.5), (2.5, 1.5), (1.5, 1.5)))
    line = a.on_policy(MarketPolicy(min_task_price=100, zones=(zone,), version=2))
    assert "keep-out zone 'dock-b' over the goal of task 1" in line and "abandoning" in line
    assert a.phase == MarketPhase.IDLE
    # the planner's refusal of the goal (GOAL_IN_KEEPOUT on a replan) also ends the task
    b = agent_with({"tid": 1})
    evaluate_all(b, 0.0, {1: ("SUCCESS", 2.0, "")})
    b.take(*b.best(T, 0.0), 0.0)
    b.on_accept("SUCCESS", "", "", False, 0.1)
    b.on_navigation("IDLE", 0.2, "", 0.0)
    b.goal_to_request(0.2)
    line = b.on_plan_result("GOAL_IN_KEEPOUT", 0.3, math.inf, 0.15, "goal is inside a keep-out zone")
    assert "cannot be reached: GOAL_IN_KEEPOUT" in line and b.phase == MarketPhase.IDLE


def test_another_robot_standing_at_the_goal_is_waited_for_not_given_up():
    a = agent_with({"tid": 1})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    now = 0.2
    for _ in range(5):
        a.on_navigation("IDLE", now, "", 0.0)
        wp = a.goal_to_request(now)
        assert wp is not None
        a.on_plan_result("GOAL_IN_OBSTACLE", now, math.inf, 0.15, "goal is inside an obstacle (a transient obstacle: local costmap only)")
        assert a.phase == MarketPhase.DRIVING
        now = a.current.drive.retry_at
    assert "arrived at task 1" in drive_and_arrive(a, now)


def test_a_task_settled_on_chain_by_others_ends_ours():
    a = agent_with({"tid": 1})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    assert "settled on chain (Refunded)" in a.on_event("TaskRefunded", {"taskId": 1})
    assert a.phase == MarketPhase.IDLE


def test_after_a_restart_the_accepted_task_is_resumed_from_chain_events():
    a = MarketAgent(CFG)
    a.machine = ME
    a.on_policy(POLICY)
    for tid, machine in ((1, OTHER), (2, ME), (3, ME)):
        posted(a, tid)
        a.on_event("TaskAccepted", {"taskId": tid, "machine": machine})
    a.on_event("TaskCompleted", {"taskId": 3})
    posted(a, 4)
    line = a.on_synced(0.0)
    assert "resuming task 2" in line and a.phase == MarketPhase.DRIVING and a.current.resumed
    assert a.best(T, 0.0) is None  # nothing else is accepted meanwhile
    assert "arrived at task 2" in drive_and_arrive(a, 1.0)
    # nothing of this machine's: nothing resumed
    b = MarketAgent(CFG)
    b.machine = ME
    posted(b, 1)
    b.on_event("TaskAccepted", {"taskId": 1, "machine": OTHER})
    assert b.on_synced(0.0) is None and b.phase == MarketPhase.IDLE


def test_an_arrival_record_that_stays_unknown_is_recorded_again_and_a_deadline_ends_proving():
    a = agent_with({"tid": 1, "deadline": T + 100})
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    drive_and_arrive(a, 0.2)
    a.on_recorded(1.0)
    assert a.on_proof("UNKNOWN", {"reason": "no record"}, 2.0) is None  # give telemetry time
    assert "recording it again" in a.on_proof("UNKNOWN", {"reason": "no record"}, 4.5)
    assert a.record_wanted(4.5, (2.0, 1.0)) is not None
    a.on_recorded(4.6)
    assert "deadline of task 1 at (2.00, 1.00) passed while proving" in a.on_tick(5.0, T + 101)
    # a record telemetry never gets anchored (e.g. the wallet refuses its batch for good): bounded
    b = agent_with({"tid": 1})
    evaluate_all(b, 0.0, {1: ("SUCCESS", 2.0, "")})
    b.take(*b.best(T, 0.0), 0.0)
    b.on_accept("SUCCESS", "", "", False, 0.1)
    drive_and_arrive(b, 0.2)
    now, line = 1.0, None
    for _ in range(CFG.max_records):
        assert b.record_wanted(now, (2.0, 1.0)) is not None
        b.on_recorded(now)
        now += CFG.record_timeout_s + 0.1
        line = b.on_proof("UNKNOWN", {"reason": "refused for good"}, now)
    assert "recorded 5 times and never anchored (refused for good); giving up" in line and b.phase == MarketPhase.IDLE


def test_transient_obstacle_in_patrol_is_retried_with_backoff_then_yielded():
    p = PatrolAgent([__import__("depai_nodes.agent.core", fromlist=["Waypoint"]).Waypoint(1, 0)], loop=True,
                    retry_period=1.0, max_attempts=4)
    now = 0.0
    delays = []
    for _ in range(4):
        p.on_navigation("IDLE", now, "", 0.0)
        assert p.goal_to_request(now) is not None
        line = p.on_plan_result("GOAL_IN_OBSTACLE", now, math.inf, 0.15, "inside an obstacle (a transient obstacle: local costmap only)")
        delays.append(p.retry_at - now)
        now = p.retry_at
    assert delays[:3] == [1.0, 2.0, 3.0]  # backoff, not skipped for good
    assert "skipping it" in line and p.phase == AgentPhase.WAITING  # yielded: the patrol goes on
    # a static obstacle is skipped at once
    q = PatrolAgent([__import__("depai_nodes.agent.core", fromlist=["Waypoint"]).Waypoint(1, 0)], loop=False)
    q.on_navigation("IDLE", 0.0, "", 0.0)
    q.goal_to_request(0.0)
    assert "can never be reached" in q.on_plan_result("GOAL_IN_OBSTACLE", 0.0, math.inf, 0.15, "inside an obstacle")


def test_an_acceptance_whose_answer_was_lost_is_taken_up_from_the_chain():
    """The wallet answered TIMEOUT (or a wrong 'lost'), but the chain shows the task accepted by
    this machine: the idle agent takes it up instead of leaving it to expire."""
    a = agent_with({"tid": 1})
    a.synced = True
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    assert "trying again" in a.on_accept("TIMEOUT", "WalletTimeout", "", False, 1.0)
    a.on_event("TaskAccepted", {"taskId": 1, "machine": ME.upper().replace("0X", "0x")})
    line = a.on_tick(1.1, T)
    assert "resuming task 1" in line and a.phase == MarketPhase.DRIVING
    assert a.best(T, 5.0) is None  # nothing else is taken meanwhile


def test_the_arrival_time_is_on_the_chain_clock_and_never_before_the_acceptance():
    t = MarketTask(1, accepted_at=T + 3600)
    assert t.arrival_time(T + 3700.5, T) == T + 3700.5  # the chain runs an hour ahead (a governance time warp)
    assert t.arrival_time(T + 3500.0, T) == T + 3600  # not before its acceptance
    assert MarketTask(2).arrival_time(None, T + 1.5) == T + 1.5  # chain time unknown: the wall clock


def test_an_arrival_the_odometry_disagrees_with_is_not_recorded_the_robot_drives_again():
    a = agent_with({"tid": 1, "x": 2.0, "y": 1.0})  # tolerance 0.3 m
    evaluate_all(a, 0.0, {1: ("SUCCESS", 2.0, "")})
    a.take(*a.best(T, 0.0), 0.0)
    a.on_accept("SUCCESS", "", "", False, 0.1)
    drive_and_arrive(a, 0.2)
    assert a.record_wanted(1.0, None) is None  # no odometry yet
    assert a.record_wanted(1.0, (0.0, 0.0)) is None  # 2.2 m off: not recorded (the contract would say ArrivalTooFar)
    assert a.record_wanted(1.0 + CFG.record_timeout_s / 2, (0.0, 0.0)) is None
    line = a.record_wanted(1.2 + CFG.record_timeout_s, (0.0, 0.0))
    assert "the odometry is 2.24 m from the goal (tolerance 0.3 m)" in line and a.phase == MarketPhase.DRIVING
    assert "arrived at task 1" in drive_and_arrive(a, 10.0)
    assert a.record_wanted(11.0, (2.1, 0.9)).task_id == 1
