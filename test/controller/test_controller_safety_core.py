"""The controller's last stage, ROS-free: which policy it may move under, keep-out zones against the
footprint along the commanded arc (closed loop: a robot driven by the follower never overlaps a
zone), refused paths, and the final clamp."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from depai_nodes.common.polygon import signed_distance
from depai_nodes.controller.core import Command, ControllerConfig, NavState, PathFollower
from depai_nodes.controller.safety import PolicyTracker, ZoneGuard, last_stage, path_problem

SQUARE = np.array([[2.0, -1.0], [3.0, -1.0], [3.0, 1.0], [2.0, 1.0]])


def fleet_policy(version=1, source="file:p@1", max_speed=1.0, paused=False, frame="map", zones=(), price="0"):
    """A stand-in with the fields of depai/FleetPolicy (the tracker reads attributes only)."""
    zone_msgs = [SimpleNamespace(id=zid, polygon=SimpleNamespace(points=[SimpleNamespace(x=x, y=y) for x, y in pts]))
                 for zid, pts in zones]
    return SimpleNamespace(header=SimpleNamespace(frame_id=frame), version=version, source=source, max_speed=max_speed,
                           paused=paused, keep_out_zones=zone_msgs, min_task_price=price, spending_cap="0")


def test_signed_distance_is_negative_inside_and_exact_outside():
    d = signed_distance(SQUARE, [2.5, 0.0, 2.5, 4.0], [0.0, 0.0, 3.0, 2.0])
    assert d == pytest.approx([-0.5, 2.0, 2.0, math.hypot(1.0, 1.0)])


def test_no_valid_policy_no_motion_and_stale_policies_hold():
    t = PolicyTracker("map")
    assert t.hold_reason(0.0, 5.0) == "no valid policy"
    for bad, needle in [
        (fleet_policy(max_speed=float("nan")), "max_speed"),
        (fleet_policy(max_speed=25.0), "max_speed"),
        (fleet_policy(zones=[("dock", [(0, 0), (1, 1), (2, 2)])]), "degenerate"),
        (fleet_policy(frame="odom"), "frame 'odom'"),
        (fleet_policy(source=""), "source"),
        (fleet_policy(price="-"), "token amount"),
    ]:
        offer = t.offer(bad, 0.0)
        assert not offer.accepted and needle in offer.reason
        assert t.hold_reason(0.0, 5.0) == "no valid policy"
    assert t.offer(fleet_policy(version=4), 1.0).accepted
    assert t.hold_reason(5.9, 5.0) is None
    assert t.hold_reason(6.3, 5.0) == "policy stale (5.3 s old)"
    assert t.enforced(6.3, 5.0) is None
    # A heartbeat (same version, same content) refreshes it.
    offer = t.offer(fleet_policy(version=4), 6.5)
    assert offer.accepted and not offer.changed and t.hold_reason(7.0, 5.0) is None
    # Garbage does not refresh it: it still goes stale.
    t.offer(fleet_policy(version=5, max_speed=float("inf")), 10.0)
    assert t.current.version == 4 and t.hold_reason(11.6, 5.0).startswith("policy stale")


def test_versions_compare_only_within_one_source():
    t = PolicyTracker("map")
    assert t.offer(fleet_policy(version=7, source="chain:1:0xaaa:0x1", paused=True), 0.0).accepted
    older = t.offer(fleet_policy(version=3, source="chain:1:0xaaa:0x1", paused=False), 0.1)
    assert not older.accepted and "older than v7" in older.reason and t.current.policy.paused
    clash = t.offer(fleet_policy(version=7, source="chain:1:0xaaa:0x1", paused=False), 0.2)
    assert not clash.accepted and "differs" in clash.reason and t.current.policy.paused
    # A reset chain (other genesis): a new sequence, its v1 is accepted.
    fresh = t.offer(fleet_policy(version=1, source="chain:1:0xbbb:0x1", paused=False), 0.3)
    assert fresh.accepted and fresh.new_source and t.current.version == 1 and not t.current.policy.paused


def test_a_lower_version_is_refused_only_while_the_policy_in_force_is_fresh():
    """A chain restored to an older state counts from an older version under the same identity:
    refused while the newer policy is fresh (a stale duplicate), taken once that one is stale."""
    t = PolicyTracker("map")
    src = "chain:1:0xaaa:0x1"
    assert t.offer(fleet_policy(version=9, source=src, paused=True), 0.0, 5.0).accepted
    assert not t.offer(fleet_policy(version=6, source=src), 4.0, 5.0).accepted
    assert t.hold_reason(5.5, 5.0).startswith("policy stale")
    offer = t.offer(fleet_policy(version=6, source=src), 5.5, 5.0)
    assert offer.accepted and offer.restarted and t.current.version == 6 and not t.current.policy.paused
    assert t.hold_reason(5.6, 5.0) is None
    # ... and from there the sequence is compared again.
    assert not t.offer(fleet_policy(version=5, source=src), 6.0, 5.0).accepted
    # a newer version while the one in force is fresh (a DAO decision) is an update, not a restart
    newer = t.offer(fleet_policy(version=7, source=src, paused=True), 6.5, 5.0)
    assert newer.accepted and newer.changed and not newer.restarted and not newer.new_source


def test_a_configured_source_prefix_refuses_other_sources():
    t = PolicyTracker("map", source_prefix="chain:3338:")
    assert not t.offer(fleet_policy(source="file:/tmp/p.yaml@x"), 0.0).accepted
    assert t.offer(fleet_policy(source="chain:3338:0xabc:0xdef"), 0.0).accepted


ZONES = [("dock", SQUARE)]


def test_zone_ahead_stops_and_names_the_zone():
    g = ZoneGuard(radius=0.3, horizon=1.0, min_distance=0.3)
    assert g.check((0.0, 0.0, 0.0), 0.5, 0.0, ZONES) is None          # 0.5 m of arc + 0.3 < 2.0 m
    reason = g.check((1.2, 0.0, 0.0), 0.6, 0.0, ZONES)                 # footprint would reach x = 2.1
    assert reason is not None and "keep-out zone 'dock'" in reason and "ahead" in reason
    assert g.check((1.2, 0.0, math.pi), 0.6, 0.0, ZONES) is None       # driving away
    assert g.check((1.2, 0.0, 0.0), -0.6, 0.0, ZONES) is None          # reversing away
    assert g.check((1.2, 0.0, 0.0), 0.0, 1.0, ZONES) is None           # turning in place
    assert g.check((1.2, 0.0, 0.0), 0.0, 0.0, ZONES) is None           # holding still
    # The slow minimum roll-out still looks collision_min_distance ahead.
    assert g.check((1.45, 0.0, 0.0), 0.01, 0.0, ZONES) is not None
    # An arc that curves into the zone is caught even though the heading points past it.
    assert g.check((1.5, -1.6, 0.0), 0.8, 0.0, ZONES) is None
    assert g.check((1.5, -1.6, 0.0), 0.8, 1.0, ZONES) is not None


def test_inside_a_zone_only_a_move_out_is_allowed():
    g = ZoneGuard(radius=0.3, horizon=1.0, min_distance=0.3)
    inside = (2.2, 0.0, 0.0)  # a zone voted over the robot
    assert g.inside(inside, ZONES) == ["dock"]
    assert g.check(inside, 0.3, 0.0, ZONES) is not None               # deeper
    assert g.check(inside, 0.3, 0.0, ZONES).startswith("inside keep-out zone 'dock'")
    assert g.check((2.2, 0.0, math.pi), 0.3, 0.0, ZONES) is None      # out the near side
    assert g.check((2.2, 0.0, math.pi / 2), 0.3, 0.0, ZONES) is not None  # along it, not out
    assert g.check(inside, 0.0, 1.0, ZONES) is None                    # turn to face the way out
    # Touching the edge from outside counts as inside for the footprint: leaving is fine.
    assert g.check((1.8, 0.0, math.pi), 0.3, 0.0, ZONES) is None


def _drive(path, zones, pose, steps=600, radius=0.22, limit=0.8):
    """Closed loop at 20 Hz: follower -> last stage -> unicycle; returns the poses and last command."""
    cfg = ControllerConfig(robot_radius=radius, desired_linear_vel=limit)
    follower = PathFollower(cfg)
    follower.set_path(path)
    guard = ZoneGuard(cfg.robot_radius, cfg.collision_horizon, cfg.collision_min_distance)
    dt = 0.05
    poses = [pose]
    cmd = None
    for _ in range(steps):
        cmd = follower.step(pose, dt, limit)
        cmd = last_stage(cmd, pose, zones, guard, limit, cfg.max_angular_vel,
                         max_distance=cmd.distance_remaining)
        follower.last = (cmd.linear, cmd.angular)
        x, y, th = pose
        pose = (x + cmd.linear * math.cos(th) * dt, y + cmd.linear * math.sin(th) * dt, th + cmd.angular * dt)
        poses.append(pose)
        if cmd.state in (NavState.ARRIVED,):
            break
    return np.array(poses), cmd


@pytest.mark.parametrize("y0", [0.0, 0.5, -0.9, 1.1])
def test_a_robot_following_a_path_through_a_zone_never_overlaps_it(y0):
    """The planner's path runs straight through the zone (a bug, a custom start, a stale plan):
    the footprint stops short of it, whatever the lateral offset."""
    xs = np.arange(0.0, 6.0, 0.05)
    path = np.column_stack([xs, np.full_like(xs, y0)])
    poses, cmd = _drive(path, ZONES, (0.0, y0, 0.0))
    d = signed_distance(SQUARE, poses[:, 0], poses[:, 1])
    assert d.min() >= 0.22 - 1e-9, d.min()
    assert cmd.state == NavState.STOPPED and "keep-out zone 'dock'" in cmd.reason
    assert poses[-1, 0] > 1.0  # it did drive up to the zone, it did not just refuse to move


@pytest.mark.parametrize(("gap", "arrives"), [(0.12, True), (0.06, True), (-0.05, False)])
def test_a_goal_next_to_a_zone_is_reached_and_one_overlapping_it_is_not(gap, arrives):
    """The roll-out ends where the path does: a path whose last pose leaves the footprint ``gap`` m
    clear of the zone is driven to its end; one whose last footprint would overlap it is not."""
    end = 2.0 - 0.22 - gap
    xs = np.arange(0.0, end + 1e-9, 0.05)
    xs = np.append(xs[xs < end - 1e-6], end)
    poses, cmd = _drive(np.column_stack([xs, np.zeros_like(xs)]), ZONES, (0.0, 0.0, 0.0))
    d = signed_distance(SQUARE, poses[:, 0], poses[:, 1])
    assert d.min() >= 0.22 - 1e-9
    assert (cmd.state == NavState.ARRIVED) == arrives, cmd


def test_without_zones_the_same_path_is_driven_to_the_end():
    xs = np.arange(0.0, 6.0, 0.05)
    poses, cmd = _drive(np.column_stack([xs, np.zeros_like(xs)]), [], (0.0, 0.0, 0.0))
    assert cmd.state == NavState.ARRIVED and poses[-1, 0] > 5.8


def test_last_stage_clamps_to_the_tightest_limit_and_zeroes_garbage():
    g = ZoneGuard(0.22, 1.0, 0.3)
    out = last_stage(Command(3.0, 9.0, NavState.FOLLOWING), (0.0, 0.0, 0.0), [], g, 0.4, 1.5)
    assert (out.linear, out.angular) == (0.4, 1.5)
    out = last_stage(Command(-3.0, -9.0, NavState.FOLLOWING), (0.0, 0.0, 0.0), [], g, 0.4, 1.5)
    assert (out.linear, out.angular) == (-0.4, -1.5)
    out = last_stage(Command(float("nan"), 0.1, NavState.FOLLOWING), (0.0, 0.0, 0.0), [], g, 0.4, 1.5)
    assert out.linear == 0.0
    out = last_stage(Command(0.3, 0.0, NavState.FOLLOWING), (0.0, 0.0, 0.0), [], g, 0.0, 1.5)
    assert out.linear == 0.0  # a zero limit means: do not move


def test_paths_in_another_frame_or_not_starting_at_the_robot_are_refused():
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert path_problem(pts, ["map", "map", ""], (0.1, 0.0, 0.0), "map", 0.5) is None
    assert "frame 'odom'" in path_problem(pts, ["odom"], (0.0, 0.0, 0.0), "map", 0.5)
    assert "frame ''" in path_problem(pts, [""], (0.0, 0.0, 0.0), "map", 0.5)
    assert "pose in frame 'base_link'" in path_problem(pts, ["map", "base_link"], (0.0, 0.0, 0.0), "map", 0.5)
    assert path_problem(pts, ["map"], (3.0, 4.0, 0.0), "map", 0.5) == "path starts 5.00 m from the robot (tolerance 0.50 m)"
