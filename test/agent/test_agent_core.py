"""The task agent's reactions to every planner answer and controller state, and its deadlines."""

import math

import pytest

from depai_nodes.agent.core import AgentPhase, Note, PatrolAgent, Waypoint, is_fleet_hold, parse_waypoints

A, B, C = Waypoint(1, 0), Waypoint(2, 0), Waypoint(3, 0)
ELSEWHERE = (7.0, 7.0)


def xy(wp):
    return (wp.x, wp.y)


def test_waypoints_parse_and_reject_bad_input():
    assert parse_waypoints([1, 2, 0.5, 3, 4, 0]) == [Waypoint(1, 2, 0.5), Waypoint(3, 4, 0)]
    with pytest.raises(ValueError, match="triples"):
        parse_waypoints([1, 2])
    with pytest.raises(ValueError, match="finite"):
        parse_waypoints([1, float("nan"), 0])


def request(agent, now):
    """The controller is heard, the agent asks: returns the waypoint asked for."""
    agent.on_navigation("IDLE", now)
    return agent.goal_to_request(now)


def accept(agent, now, length=3.0, plan_first=True):
    """The planner publishes our path on `plan` and answers SUCCESS (in either order over DDS)."""
    wp = agent.current
    if plan_first:
        agent.on_plan(xy(wp), now)
    line = agent.on_plan_result("SUCCESS", now, length=length)
    if not plan_first:
        agent.on_plan(xy(wp), now)
    return line


def drive_to_arrival(agent, now):
    wp = request(agent, now)
    assert accept(agent, now).startswith("driving")
    agent.on_navigation("ARRIVED", now)          # stale ARRIVED from the previous goal: ignored
    assert agent.phase == AgentPhase.DRIVING
    agent.on_navigation("FOLLOWING", now + 1, distance_remaining=2.0)
    agent.on_navigation("ARRIVED", now + 2)
    return wp


def test_patrol_visits_in_order_and_loops():
    agent = PatrolAgent([A, B], loop=True)
    assert [drive_to_arrival(agent, t) for t in (0, 10, 20)] == [A, B, A]
    assert agent.visited == 3 and agent.rerequests == 0


def test_without_loop_the_patrol_ends():
    agent = PatrolAgent([A], loop=False)
    drive_to_arrival(agent, 0)
    assert agent.phase == AgentPhase.DONE and agent.goal_to_request(100) is None


@pytest.mark.parametrize("code", ["GOAL_OFF_MAP", "GOAL_IN_OBSTACLE", "GOAL_IN_KEEPOUT", "INVALID_REQUEST"])
def test_unreachable_goals_are_skipped_not_retried(code):
    agent = PatrolAgent([A, B, C], loop=True, retry_period=1.0)
    request(agent, 0)
    assert "skipping" in agent.on_plan_result(code, 0)
    assert agent.skipped == 1 and agent.current == B
    assert request(agent, 0.5) is None       # pauses before the next request
    assert request(agent, 1.0) == B


def test_transient_refusals_retry_after_a_pause_then_give_up():
    agent = PatrolAgent([A, B], loop=True, retry_period=2.0, max_attempts=3)
    for attempt in range(1, 3):
        assert request(agent, 10 * attempt) == A
        assert "retrying" in agent.on_plan_result("MAP_NOT_READY", 10 * attempt)
        assert request(agent, 10 * attempt + 1) is None
    assert request(agent, 30) == A
    assert "refused 3 times" in agent.on_plan_result("STALE_COSTMAP", 30)
    assert agent.current == B


def test_a_lap_with_nothing_reachable_stops_instead_of_spinning():
    agent = PatrolAgent([A, B], loop=True, retry_period=0.0)
    for t in range(2):
        request(agent, t)
        agent.on_plan_result("GOAL_IN_KEEPOUT", t)
    assert agent.phase == AgentPhase.DONE


def test_a_planner_that_does_not_answer_does_not_use_up_attempts():
    agent = PatrolAgent([A], max_attempts=1, retry_period=1.0)
    request(agent, 0)
    agent.on_request_failed(0, "timeout")
    assert request(agent, 1) == A and agent.attempts == 1


def test_a_withdrawn_plan_is_asked_for_again():
    agent = PatrolAgent([A], retry_period=1.0)
    request(agent, 0)
    accept(agent, 0, length=5.0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=4.0)
    for t in range(2, 7):
        agent.on_navigation("IDLE", t)
        assert agent.on_tick(t) is None
    agent.on_navigation("IDLE", 2 + agent.idle_timeout)
    line = agent.on_tick(2 + agent.idle_timeout)
    assert "new plan" in line and line.warn
    assert request(agent, 8) == A


def test_an_empty_path_on_plan_withdraws_ours_and_the_agent_asks_again():
    agent = PatrolAgent([A], retry_period=1.0)
    request(agent, 0)
    accept(agent, 0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=2.0)
    assert "withdrawn" in agent.on_plan(None, 2)
    assert agent.phase == AgentPhase.WAITING
    assert request(agent, 2.5) is None and request(agent, 3.0) == A


def test_already_at_the_goal_counts_as_arrival():
    agent = PatrolAgent([A, B])
    request(agent, 0)
    agent.on_plan_result("SUCCESS", 0, length=0.05, tolerance=0.15)
    assert "arrived" in agent.on_navigation("ARRIVED", 0)


# ---------------------------------------------------------------- no silent stalls


@pytest.mark.parametrize("plan_first", [True, False])
def test_an_accepted_plan_not_followed_in_time_is_asked_for_again(plan_first):
    # E.g. the plan was published before the controller's subscription matched, or the
    # controller was restarted and never got it: it stays IDLE.
    agent = PatrolAgent([A, B], follow_timeout=5.0)
    request(agent, 0)
    accept(agent, 0, plan_first=plan_first)
    for t in range(1, 6):
        agent.on_navigation("IDLE", t)
        assert agent.on_tick(t) is None
    agent.on_navigation("IDLE", 5.1)
    line = agent.on_tick(5.1)
    assert isinstance(line, Note) and line.warn and line.cause == "not followed"
    assert "not followed within 5 s (controller: IDLE)" in line and "asking for a new plan" in line
    assert agent.rerequests == 1 and agent.attempts == 0  # not a refusal: no attempt used up
    assert request(agent, 5.2) == A  # the same waypoint, planned again from where the robot stands


def test_a_plan_never_seen_on_the_plan_topic_is_asked_for_again():
    agent = PatrolAgent([A], follow_timeout=3.0)
    request(agent, 0)
    agent.on_plan_result("SUCCESS", 0, length=3.0)   # the path on `plan` never comes
    agent.on_navigation("FOLLOWING", 1, distance_remaining=2.0)  # not attributable to us
    agent.on_navigation("ARRIVED", 2)
    assert agent.visited == 0
    agent.on_navigation("ARRIVED", 3.5)
    assert "not seen on `plan`" in agent.on_tick(3.5)
    assert agent.phase == AgentPhase.WAITING


def test_a_path_the_controller_refuses_is_planned_again_from_here():
    agent = PatrolAgent([A], retry_period=1.0)
    request(agent, 0)
    accept(agent, 0)
    line = agent.on_navigation("STOPPED", 0.1, reason="path refused: its first pose is 0.8 m from the robot")
    assert "refused the path" in line and agent.phase == AgentPhase.WAITING
    assert request(agent, 1.1) == A


def test_no_progress_while_following_is_a_stall_with_a_deadline():
    agent = PatrolAgent([A], stall_timeout=10.0)
    request(agent, 0)
    accept(agent, 0)
    d = 8.0
    for t in range(1, 9):  # moving: no stall
        d -= 0.5
        agent.on_navigation("FOLLOWING", t, distance_remaining=d)
        assert agent.on_tick(t) is None
    for t in range(9, 19):  # stuck (e.g. "collision imminent" for ever): distance does not shrink
        agent.on_navigation("STOPPED", t, reason="collision imminent", distance_remaining=d)
        assert agent.on_tick(t) is None
    agent.on_navigation("STOPPED", 18.5, reason="collision imminent", distance_remaining=d)
    line = agent.on_tick(18.5)
    assert "no progress towards waypoint 0 for 10 s (controller: STOPPED (collision imminent))" in line
    assert agent.phase == AgentPhase.WAITING


def test_a_replan_sets_a_new_baseline_instead_of_looking_like_a_stall_or_progress():
    agent = PatrolAgent([A], stall_timeout=10.0)
    request(agent, 0)
    accept(agent, 0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=3.0)
    agent.on_plan(xy(A), 2)  # replan around an obstacle: longer
    agent.on_navigation("FOLLOWING", 2, distance_remaining=9.0)
    for t in range(3, 11):
        agent.on_navigation("FOLLOWING", t, distance_remaining=9.0 - (t - 2))
        assert agent.on_tick(t) is None
    assert agent.on_tick(20) is not None  # and still a deadline when progress stops


@pytest.mark.parametrize("reason", ["fleet paused", "no valid policy", "policy stale (7.2 s old)", "speed limit is zero"])
def test_a_fleet_hold_suspends_the_deadlines_and_is_logged(reason):
    assert is_fleet_hold(reason)
    agent = PatrolAgent([A], follow_timeout=5.0, stall_timeout=10.0)
    request(agent, 0)
    accept(agent, 0)
    line = agent.on_navigation("STOPPED", 0.5, reason=reason)
    assert "holding at the fleet's order" in line and reason in line
    for t in range(1, 120):
        assert agent.on_navigation("STOPPED", t, reason=reason) is None
        assert agent.on_tick(t) is None
    assert "hold over" in agent.on_navigation("FOLLOWING", 120, distance_remaining=2.0)
    agent.on_navigation("FOLLOWING", 121, distance_remaining=1.0)
    assert "arrived" in agent.on_navigation("ARRIVED", 122)


def test_not_a_fleet_hold():
    assert not is_fleet_hold("collision imminent") and not is_fleet_hold("odom stale") and not is_fleet_hold("")


def test_a_silent_controller_is_waited_for_then_asked_again():
    agent = PatrolAgent([A], controller_timeout=2.0)
    assert agent.goal_to_request(0) is None  # never heard: no plan nobody would follow
    request(agent, 0)
    accept(agent, 0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=2.0)
    assert agent.on_tick(2.9) is None
    line = agent.on_tick(3.1)
    assert "the controller is silent" in line and agent.phase == AgentPhase.WAITING
    assert agent.goal_to_request(5) is None  # still silent
    assert math.isinf(PatrolAgent([A]).controller_silent_for(0))
    assert request(agent, 9) == A            # heard again: ask again at once


# ---------------------------------------------------------------- whose arrival


def test_arrival_at_a_goal_someone_else_sent_is_not_ours():
    agent = PatrolAgent([A, B], retry_period=1.0)
    request(agent, 0)
    accept(agent, 0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=2.0)
    line = agent.on_plan(ELSEWHERE, 2)  # an operator's goal_pose replaced our path
    assert "preempted" in line and "(7.00, 7.00)" in line and agent.preemptions == 1
    agent.on_navigation("FOLLOWING", 3, distance_remaining=5.0)
    line = agent.on_navigation("ARRIVED", 10)
    assert agent.visited == 0 and agent.current == A
    assert "goal from elsewhere ended (ARRIVED); resuming waypoint 0" in line
    assert request(agent, 11) == A
    accept(agent, 11)
    agent.on_navigation("FOLLOWING", 12, distance_remaining=2.0)
    assert "arrived at waypoint 0" in agent.on_navigation("ARRIVED", 13)


def test_a_foreign_goal_that_ends_without_being_followed_or_is_withdrawn_resumes_ours():
    agent = PatrolAgent([A], retry_period=0.5)
    request(agent, 0)
    accept(agent, 0)
    agent.on_plan(ELSEWHERE, 1)
    assert agent.on_navigation("IDLE", 1.1) is None  # stale IDLE: the foreign path was not followed yet
    assert "resuming" in agent.on_plan(None, 2)        # it could not be planned: empty path
    assert request(agent, 2.5) == A

    accept(agent, 3)
    agent.on_plan(ELSEWHERE, 4)
    assert "resuming" in agent.on_navigation("STOPPED", 4.1, reason="path refused: wrong frame 'odom'")


def test_a_foreign_goal_that_stalls_has_a_deadline_too():
    agent = PatrolAgent([A], stall_timeout=10.0)
    request(agent, 0)
    accept(agent, 0)
    agent.on_plan(ELSEWHERE, 1)
    for t in range(2, 12):
        agent.on_navigation("FOLLOWING", t, distance_remaining=5.0)
    assert "no progress" in agent.on_tick(11.5)


def test_a_stale_foreign_path_arriving_before_ours_is_ignored():
    agent = PatrolAgent([A])
    request(agent, 0)
    agent.on_plan(ELSEWHERE, 0.01)  # published before our request was planned
    agent.on_plan(xy(A), 0.02)
    agent.on_plan_result("SUCCESS", 0.03, length=3.0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=2.0)
    assert "arrived" in agent.on_navigation("ARRIVED", 2)


def test_a_foreign_path_after_ours_while_the_answer_was_in_flight_preempts():
    agent = PatrolAgent([A])
    request(agent, 0)
    agent.on_plan(xy(A), 0.01)
    agent.on_plan(ELSEWHERE, 0.02)  # someone's goal_pose right after ours
    agent.on_plan_result("SUCCESS", 0.03, length=3.0)
    agent.on_navigation("FOLLOWING", 1, distance_remaining=5.0)
    agent.on_navigation("ARRIVED", 2)
    assert agent.visited == 0
