"""Managed nodes over the real lifecycle_msgs services, and the lifecycle manager (issue 11, item 3).

Real node processes on a real DDS domain: the test's probe calls `<node>/get_state` and
`<node>/change_state` as `ros2 lifecycle` does (test/ros2cli runs the upstream CLI itself)."""
import time

from depai.msg import FleetPolicy
from lifecycle_msgs.srv import ChangeState, GetState

from depai_nodes.common.qos import LATCHED_QOS

CONFIGURE, ACTIVATE, DEACTIVATE, CLEANUP = 1, 3, 4, 2


def get_state(probe, node):
    return probe.call(GetState, f"{node}/get_state", GetState.Request(), timeout=20.0).current_state.label


def change_state(probe, node, transition):
    """Sent once (a transition must not run twice); get_state first, so this probe has matched
    the node's services (resent until answered) before the one transition request goes out."""
    get_state(probe, node)
    request = ChangeState.Request()
    request.transition.id = transition
    return probe.call(ChangeState, f"{node}/change_state", request, timeout=20.0, resend_after=None).success


def _wait_state(probe, node, label, timeout=30.0):
    deadline = time.monotonic() + timeout
    while (state := get_state(probe, node)) != label:
        assert time.monotonic() < deadline, f"{node} is {state}, not {label}"
        time.sleep(0.2)


def test_transitions_over_the_services_gate_the_policy(ros_node, start_node, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("max_speed: 0.5\npaused: false\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n")
    node = start_node("dao_listener", parameters={"policy_file": str(policy), "heartbeat_period": 0.2, "autostart": False})
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    assert get_state(ros_node, "/dao_listener") == "unconfigured"
    time.sleep(1.0)
    assert inbox.messages == []  # unconfigured: publishes nothing
    assert change_state(ros_node, "/dao_listener", ACTIVATE) is False  # not a transition from unconfigured
    assert change_state(ros_node, "/dao_listener", CONFIGURE) is True
    assert get_state(ros_node, "/dao_listener") == "inactive"
    time.sleep(0.6)
    assert inbox.messages == []  # configured (policy read), not active: still nothing
    assert change_state(ros_node, "/dao_listener", ACTIVATE) is True
    first = inbox.wait_for(timeout=10)
    assert abs(first.max_speed - 0.5) < 1e-6 and first.version == 1
    assert change_state(ros_node, "/dao_listener", DEACTIVATE) is True
    time.sleep(0.5)
    n = len(inbox.messages)
    time.sleep(1.0)
    assert len(inbox.messages) == n  # inactive: the heartbeat stopped (robots hold still after policy_timeout)
    assert change_state(ros_node, "/dao_listener", ACTIVATE) is True
    again = inbox.wait_for(lambda m: inbox.messages.index(m) >= n, timeout=10)
    assert again.version == first.version and again.source == first.source  # nothing lost: same policy, same sequence
    assert change_state(ros_node, "/dao_listener", DEACTIVATE) and change_state(ros_node, "/dao_listener", CLEANUP)
    assert get_state(ros_node, "/dao_listener") == "unconfigured"
    assert node.process.poll() is None  # a lifecycle round trip, no crash
    assert "deactivated" in node.log() and "cleanup" in node.log()


def test_manager_brings_nodes_up_in_order_and_again_after_a_respawn(ros_node, start_node, tmp_path):
    params = {"heartbeat_period": 0.2, "autostart": False}
    listener = start_node("dao_listener", parameters=params)
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    manager = start_node("lifecycle_manager", parameters={"fleet_nodes": ["dao_listener"], "check_period": 0.5})
    inbox.wait_for(timeout=30)
    assert get_state(ros_node, "/dao_listener") == "active"
    manager.wait_for_log("all 1 managed node(s) active", timeout=20)
    # The supervisor respawns a crashed node: it comes back unconfigured; the manager brings it up.
    listener.process.kill()
    listener.wait_exit()
    start_node("dao_listener", parameters=params)
    manager.wait_for_log("/dao_listener: active (brought up 2 times)", timeout=30)
    _wait_state(ros_node, "/dao_listener", "active")


def test_manager_reports_a_node_that_fails_to_configure(ros_node, start_node, tmp_path):
    missing = tmp_path / "no-such-chain.json"
    identity = start_node("identity", parameters={"chain_config": str(missing), "autostart": False})
    manager = start_node("lifecycle_manager", parameters={"fleet_nodes": ["identity"], "check_period": 0.5})
    log = manager.wait_for_log("/identity: configure failed", timeout=30)
    assert "[ERROR]" in log.split("/identity: configure failed")[0].rsplit("\n", 1)[-1]
    assert get_state(ros_node, "/identity") == "unconfigured"  # it stays where it was, still serving its services
    assert identity.process.poll() is None and manager.process.poll() is None
    assert str(missing) in identity.wait_for_log("configure failed")  # the node's own log says why
    time.sleep(1.5)
    assert manager.log().count("/identity: configure failed") == 1  # retried, reported once


def test_autostart_failure_is_a_configuration_error(start_node, tmp_path):
    node = start_node("identity", parameters={"chain_config": str(tmp_path / "missing.json")})
    assert node.wait_exit() == 2
    assert "configure failed" in node.log() and "Traceback" not in node.log()
