"""The task agent's reactions to every planner answer and controller state."""

import pytest

from depai_nodes.agent.core import AgentPhase, PatrolAgent, Waypoint, parse_waypoints

A, B, C = Waypoint(1, 0), Waypoint(2, 0), Waypoint(3, 0)


def test_waypoints_parse_and_reject_bad_input():
    assert parse_waypoints([1, 2, 0.5, 3, 4, 0]) == [Waypoint(1, 2, 0.5), Waypoint(3, 4, 0)]
    with pytest.raises(ValueError, match="triples"):
        parse_waypoints([1, 2])
    with pytest.raises(ValueError, match="finite"):
        parse_waypoints([1, float("nan"), 0])


def drive_to_arrival(agent, now):
    wp = agent.goal_to_request(now)
    assert agent.on_plan_result("SUCCESS", now, length=3.0).startswith("driving")
    agent.on_navigation("ARRIVED", now)          # stale ARRIVED from the previous goal: ignored
    assert agent.phase == AgentPhase.DRIVING
    agent.on_navigation("FOLLOWING", now + 1)
    agent.on_navigation("ARRIVED", now + 2)
    return wp


def test_patrol_visits_in_order_and_loops():
    agent = PatrolAgent([A, B], loop=True)
    assert [drive_to_arrival(agent, t) for t in (0, 10, 20)] == [A, B, A]
    assert agent.visited == 3


def test_without_loop_the_patrol_ends():
    agent = PatrolAgent([A], loop=False)
    drive_to_arrival(agent, 0)
    assert agent.phase == AgentPhase.DONE and agent.goal_to_request(100) is None


@pytest.mark.parametrize("code", ["GOAL_OFF_MAP", "GOAL_IN_OBSTACLE", "GOAL_IN_KEEPOUT", "INVALID_REQUEST"])
def test_unreachable_goals_are_skipped_not_retried(code):
    agent = PatrolAgent([A, B, C], loop=True, retry_period=1.0)
    agent.goal_to_request(0)
    assert "skipping" in agent.on_plan_result(code, 0)
    assert agent.skipped == 1 and agent.current == B
    assert agent.goal_to_request(0.5) is None       # pauses before the next request
    assert agent.goal_to_request(1.0) == B


def test_transient_refusals_retry_after_a_pause_then_give_up():
    agent = PatrolAgent([A, B], loop=True, retry_period=2.0, max_attempts=3)
    for attempt in range(1, 3):
        assert agent.goal_to_request(10 * attempt) == A
        assert "retrying" in agent.on_plan_result("MAP_NOT_READY", 10 * attempt)
        assert agent.goal_to_request(10 * attempt + 1) is None
    assert agent.goal_to_request(30) == A
    assert "refused 3 times" in agent.on_plan_result("STALE_COSTMAP", 30)
    assert agent.current == B


def test_a_lap_with_nothing_reachable_stops_instead_of_spinning():
    agent = PatrolAgent([A, B], loop=True, retry_period=0.0)
    for t in range(2):
        agent.goal_to_request(t)
        agent.on_plan_result("GOAL_IN_KEEPOUT", t)
    assert agent.phase == AgentPhase.DONE


def test_a_planner_that_does_not_answer_does_not_use_up_attempts():
    agent = PatrolAgent([A], max_attempts=1, retry_period=1.0)
    agent.goal_to_request(0)
    agent.on_request_failed(0, "timeout")
    assert agent.goal_to_request(1) == A and agent.attempts == 1


def test_a_withdrawn_plan_is_asked_for_again():
    agent = PatrolAgent([A], retry_period=1.0)
    agent.goal_to_request(0)
    agent.on_plan_result("SUCCESS", 0, length=5.0)
    agent.on_navigation("FOLLOWING", 1)
    assert agent.on_navigation("IDLE", 2) is None
    assert "new plan" in agent.on_navigation("IDLE", 2 + agent.idle_timeout)
    assert agent.goal_to_request(8) == A


def test_already_at_the_goal_counts_as_arrival():
    agent = PatrolAgent([A, B])
    agent.goal_to_request(0)
    agent.on_plan_result("SUCCESS", 0, length=0.05, tolerance=0.15)
    assert "arrived" in agent.on_navigation("ARRIVED", 0)
