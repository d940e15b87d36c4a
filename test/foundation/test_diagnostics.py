"""/diagnostics (issue 11, item 4): the ROS-free core's levels, and real nodes over DDS publishing
levels that mean something (controller: ERROR without a policy, OK with one, WARN once it is
stale; a managed node: WARN while not active, ERROR after a failed transition, OK when active)."""
import time

from diagkit import FakeClock
from depai.msg import FleetPolicy
from diagnostic_msgs.msg import DiagnosticArray

from depai_nodes.common.diagnostics import ERROR, OK, WARN, Diagnostics
from depai_nodes.common.qos import LATCHED_QOS


def test_topic_levels_follow_the_given_clock():
    clock = FakeClock(100.0)
    diag = Diagnostics(clock, window=2.0)
    odom = diag.topic("odom", expected_rate=10.0, stale_after=0.5)
    assert diag.report()[0].level == WARN and diag.report()[0].message == "no message yet"
    for _ in range(20):
        clock.t += 0.1
        odom.tick()
    status = diag.report()[0]
    assert status.level == OK and abs(float(status.values["rate_hz"]) - 10.0) < 1.0
    clock.t += 0.3  # the clock (sim time) moves slowly: not stale yet
    assert diag.report()[0].level == OK
    clock.t += 0.5
    stale = diag.report()[0]
    assert stale.level == WARN and stale.message.startswith("stale")
    diag.check("broken", lambda: 1 / 0)
    broken = diag.report()[1]
    assert broken.level == ERROR and "ZeroDivisionError" in broken.message  # a broken check is reported, not raised


def _status(inbox, name, level, timeout=20.0):
    def match(msg):
        return any(s.name == name and s.level == bytes([level]) for s in msg.status)
    msg = inbox.wait_for(match, timeout=timeout)
    return next(s for s in msg.status if s.name == name)


def test_controller_policy_levels_over_dds(ros_node, start_node):
    start_node("controller", parameters={"policy_timeout": 1.0})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 10)
    none = _status(inbox, "/controller: policy", ERROR)
    assert "no valid policy" in none.message and "holding still" in none.message
    assert _status(inbox, "/controller: input odom", WARN).message == "no message yet"
    pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    ros_node.wait_for_subscribers(pub)
    policy = FleetPolicy(version=3, max_speed=0.5, spending_cap="0", min_task_price="0", source="test")
    policy.header.frame_id = "map"
    pub.publish(policy)
    ok = _status(inbox, "/controller: policy", OK)
    assert "v3" in ok.message and {kv.key: kv.value for kv in ok.values}["version"] == "3"
    stale = _status(inbox, "/controller: policy", WARN, timeout=10)  # not received again within policy_timeout
    assert "stale" in stale.message
    timing = _status(inbox, "/controller: processing control step", OK)
    assert "mean" in timing.message


def test_managed_node_lifecycle_levels_over_dds(ros_node, start_node, tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("max_speed: [\n")
    start_node("dao_listener", parameters={"policy_file": str(bad), "autostart": False})
    start_node("lifecycle_manager", parameters={"fleet_nodes": ["dao_listener"], "check_period": 0.5})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 10)
    failed = _status(inbox, "/dao_listener: lifecycle", ERROR, timeout=30)
    assert failed.message.startswith("unconfigured (configure:") and "policy_file" in failed.message
    bad.write_text("max_speed: 0.4\npaused: false\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n")
    active = _status(inbox, "/dao_listener: lifecycle", OK, timeout=30)  # the manager's retry configures it now
    assert active.message == "active"
    time.sleep(0.1)
