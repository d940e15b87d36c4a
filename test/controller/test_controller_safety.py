"""The controller fails closed, over real DDS with real node processes: no motion without a valid
policy or with a stale one, keep-out zones and refused paths at the last stage, plans handed over
latched (and a stale latched plan refused after a restart), a pause that survives restarts of the
listener and the controller, and parameter sets that fail whole when they cannot be applied."""
from __future__ import annotations

import time

import pytest
from geometry_msgs.msg import Point32, Polygon, Twist
from nav_msgs.msg import Path
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters

from depai.msg import KeepOutZone, NavigationStatus
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

from test_controller_node import Feeder, PolicyFeed, _path, _policy

STOPPED = NavigationStatus.STOPPED


def _zone(zid, x0, x1, y0=-1.0, y1=1.0):
    pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return KeepOutZone(id=zid, polygon=Polygon(points=[Point32(x=float(x), y=float(y)) for x, y in pts]))


def _quiet(cmds, seconds):
    n = len(cmds.messages)
    time.sleep(seconds)
    after = cmds.messages[n:]
    assert after, "the controller published nothing"
    assert all(m.linear.x == 0.0 and m.angular.z == 0.0 for m in after)


def test_no_motion_without_a_valid_policy_and_a_stale_policy_stops(start_node, ros_node):
    controller = start_node("controller", parameters={"policy_timeout": 1.5})
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
    feeder = Feeder(ros_node)
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    plan_pub.publish(_path())
    st = status.wait_for(lambda s: s.reason == "no valid policy", timeout=15)
    assert st.state == STOPPED and st.policy_version == 0 and st.policy_source == ""
    _quiet(cmds, 0.5)
    # An invalid policy is no policy.
    feed = PolicyFeed(ros_node, _policy(max_speed=float("nan")))
    controller.wait_for_log("invalid policy v1 from test: max_speed")
    _quiet(cmds, 0.5)
    assert status.messages[-1].reason == "no valid policy"
    # A valid one: it drives, and says under which policy.
    feed.publish(_policy(max_speed=0.4, version=2))
    st = status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING, timeout=10)
    assert (st.policy_version, st.policy_source) == (2, "test")
    cmds.wait_for(lambda m: m.linear.x > 0.05, timeout=5)
    assert max(m.linear.x for m in cmds.messages) <= 0.4 + 1e-6
    # The listener dies (no more heartbeats): stale after policy_timeout, then it holds still.
    feed.beating = False
    t0 = time.monotonic()
    st = status.wait_for(lambda s: s.reason.startswith("policy stale"), timeout=10)
    assert time.monotonic() - t0 <= 1.5 + 1.0 and st.policy_version == 0
    _quiet(cmds, 0.5)
    # Heartbeats again: it moves again.
    feed.beating = True
    status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING, timeout=10)
    feeder.timer.cancel()


def test_zones_and_paths_are_enforced_by_the_controller_itself(start_node, ros_node):
    controller = start_node("controller", parameters={"robot_radius": 0.3})
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
    feeder = Feeder(ros_node)
    policy = _policy(max_speed=0.5)
    policy.keep_out_zones = [_zone("dock", 0.45, 1.5)]
    PolicyFeed(ros_node, policy)
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    ros_node.wait_for_subscribers(plan_pub)
    plan_pub.publish(_path())  # straight through the zone, as a buggy planner might send
    st = status.wait_for(lambda s: s.reason.startswith("keep-out zone 'dock'"), timeout=15)
    assert st.state == STOPPED
    _quiet(cmds, 0.5)
    # A path that does not start at the robot is refused.
    plan_pub.publish(_path(x0=-2.0))
    st = status.wait_for(lambda s: s.reason.startswith("path refused: path starts 2.00 m"), timeout=10)
    assert st.state == STOPPED
    _quiet(cmds, 0.3)
    # A path in another frame is refused.
    other = _path()
    other.header.frame_id = "odom"
    plan_pub.publish(other)
    status.wait_for(lambda s: "path frame 'odom'" in s.reason, timeout=10)
    controller.wait_for_log("path refused")
    feeder.timer.cancel()


def test_a_plan_published_before_the_controller_is_not_lost_and_a_stale_one_is_refused(start_node, ros_node):
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    plan_pub.publish(_path())  # the planner's plan, before any controller exists
    feeder = Feeder(ros_node)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    controller = start_node("controller")
    feed = PolicyFeed(ros_node)
    st = status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING, timeout=15)
    assert st.policy_source == "test"
    # The robot drives on; the controller restarts; the latched plan (from where the robot was)
    # arrives again and must not be followed from here.
    controller.process.kill()
    controller.wait_exit()
    feeder.odom.pose.pose.position.x = 3.0
    feeder.odom.pose.pose.position.y = 1.0
    start_node("controller")
    st = status.wait_for(lambda s: s.reason.startswith("path refused: path starts"), timeout=15)
    assert st.state == STOPPED and "3.16 m" in st.reason
    feed.timer.cancel()
    feeder.timer.cancel()


POLICY = """max_speed: 0.4
paused: {paused}
keep_out_zones: []
min_task_price: 0
spending_cap: 0
...
"""


def test_the_robot_keeps_working_through_a_short_listener_restart_and_a_pause_survives_restarts(
        start_node, ros_node, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY.format(paused="false"))
    listener_params = {"policy_file": str(policy_file), "heartbeat_period": 0.3, "watch_period": 0.2}
    listener = start_node("dao_listener", parameters=listener_params)
    controller = start_node("controller", parameters={"policy_timeout": 8.0})
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    feeder = Feeder(ros_node)
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    plan_pub.publish(_path())
    st = status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING, timeout=20)
    first_source = st.policy_source
    assert first_source.startswith(f"file:{policy_file}@") and st.policy_version == 1

    # kill -9 of the listener and a restart: the robot keeps following under the policy it has;
    # the new run is a new source identity whose v1 is accepted (not "older than v1").
    listener.process.kill()
    listener.wait_exit()
    n = len(status.messages)
    listener = start_node("dao_listener", parameters=listener_params)
    st = status.wait_for(lambda s: s.policy_source not in ("", first_source), timeout=20)
    assert st.state == NavigationStatus.FOLLOWING and st.policy_version == 1
    assert all(s.state == NavigationStatus.FOLLOWING for s in status.messages[n:]), \
        {s.reason for s in status.messages[n:]}
    controller.wait_for_log("its versions start a new sequence")

    # Pause, then kill -9 both; the controller comes back first (no listener: no policy), then
    # the listener: the pause is still in force.
    policy_file.write_text(POLICY.format(paused="true"))
    status.wait_for(lambda s: s.reason == "fleet paused", timeout=10)
    listener.process.kill()
    controller.process.kill()
    listener.wait_exit()
    controller.wait_exit()
    n = len(status.messages)
    controller = start_node("controller", parameters={"policy_timeout": 8.0})
    status.wait_for(lambda s: any(s is m for m in status.messages[n:]) and s.reason == "no valid policy", timeout=20)
    start_node("dao_listener", parameters=listener_params)
    st = status.wait_for(lambda s: any(s is m for m in status.messages[n:]) and s.reason == "fleet paused", timeout=20)
    assert st.state == STOPPED and st.policy_version == 1
    assert all(s.state != NavigationStatus.FOLLOWING for s in status.messages[n:])
    feeder.timer.cancel()


def _call(probe, client, request, timeout=10.0):
    """Parameter get/set requests are idempotent: resent until one copy is answered."""
    return probe.call(client.srv_type, client.srv_name, request, timeout=timeout)


def _set(probe, node_name, name, value):
    client = probe.node.create_client(SetParameters, f"/{node_name}/set_parameters")
    if isinstance(value, str):
        pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    else:
        pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
    return _call(probe, client, SetParameters.Request(parameters=[ParameterMsg(name=name, value=pv)])).results[0]


def _get(probe, node_name, name):
    client = probe.node.create_client(GetParameters, f"/{node_name}/get_parameters")
    v = _call(probe, client, GetParameters.Request(names=[name])).values[0]
    return v.string_value if v.type == ParameterType.PARAMETER_STRING else v.double_value


def test_parameter_sets_over_dds_take_effect_or_fail_with_the_reason(start_node, ros_node, shared_data, tmp_path):
    """What `ros2 param set` does: the SetParameters service of the running node."""
    import numpy as np

    from depai_nodes.planner.mapio import load_map

    mask_yaml = shared_data / "maps" / "depot_speed.yaml"
    mask = load_map(mask_yaml)
    r, c = np.argwhere(mask.data == 50)[len(np.argwhere(mask.data == 50)) // 2]
    x, y = (float(v) for v in mask.cell_to_world(c, r))
    start_node("controller", parameters={"speed_mask_yaml": str(mask_yaml), "require_costmap": False})
    PolicyFeed(ros_node)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    feeder = Feeder(ros_node, costmap=False)
    feeder.odom.pose.pose.position.x, feeder.odom.pose.pose.position.y = x, y
    path = _path(x0=x)
    for p in path.poses:
        p.pose.position.y = y
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    plan_pub.publish(path)
    status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING and s.speed_limit == pytest.approx(0.25), timeout=15)

    # A mask that does not load: the set fails with the reason; the old mask stays in force.
    broken = tmp_path / "broken.yaml"
    broken.write_text("image: nowhere.pgm\nresolution: 0.05\norigin: [0, 0, 0]\n")
    result = _set(ros_node, "controller", "speed_mask_yaml", str(broken))
    assert not result.successful and "speed_mask_yaml" in result.reason
    assert _get(ros_node, "controller", "speed_mask_yaml") == str(mask_yaml)
    n = len(status.messages)
    time.sleep(0.5)
    assert all(s.speed_limit == pytest.approx(0.25) for s in status.messages[n:] if s.state == NavigationStatus.FOLLOWING)
    # A read-only parameter is refused by rcl itself.
    result = _set(ros_node, "controller", "frame_id", "odom")
    assert not result.successful and "read-only" in result.reason
    # A good change takes effect: clearing the mask lifts its limit (desired 0.5 < policy 1.0).
    result = _set(ros_node, "controller", "speed_mask_yaml", "")
    assert result.successful
    status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING and s.speed_limit == pytest.approx(0.5), timeout=5)
    feeder.timer.cancel()


def test_listener_parameters_over_dds(start_node, ros_node, tmp_path):
    good = tmp_path / "policy.yaml"
    good.write_text(POLICY.format(paused="false"))
    listener = start_node("dao_listener", parameters={"policy_file": str(good)})
    listener.wait_for_log("policy v1")
    truncated = tmp_path / "truncated.yaml"
    truncated.write_text(POLICY.format(paused="false")[:-5])
    result = _set(ros_node, "dao_listener", "policy_file", str(truncated))
    assert not result.successful and "policy_file" in result.reason and "end-of-document" in result.reason
    assert _get(ros_node, "dao_listener", "policy_file") == str(good)
    result = _set(ros_node, "dao_listener", "source", "chain")
    assert not result.successful and "read-only" in result.reason
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.format(paused="true"))
    assert _set(ros_node, "dao_listener", "policy_file", str(other)).successful
    listener.wait_for_log("paused=True")
