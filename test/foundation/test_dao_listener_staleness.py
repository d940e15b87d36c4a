"""INTERFACES item 6 for the file source, real processes: the listener heartbeats only while its
file is there and readable. An invalid edit keeps the last valid policy in force AND beating (the
file is the source, an operator's typo must not halt the fleet); a file that disappears stops the
heartbeat after source_timeout (logged once), so a controller goes to "policy stale"; the file
back: the heartbeat resumes (logged once) and the controller follows again."""

import time

from depai.msg import FleetPolicy, NavigationStatus
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

POLICY = "max_speed: {speed}\npaused: false\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n"


def test_heartbeat_stops_while_the_file_is_gone_and_resumes(ros_node, start_node, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY.format(speed=0.7))
    listener = start_node("dao_listener", parameters={"policy_file": str(policy_file), "heartbeat_period": 0.2,
                                                      "watch_period": 0.1, "source_timeout": 0.8})
    controller = start_node("controller", parameters={"require_costmap": False, "policy_timeout": 1.0})
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    first = inbox.wait_for(timeout=20)
    status.wait_for(lambda s: s.policy_version == first.version, timeout=20)

    policy_file.write_text("max_speed: [oops\n")  # a typo: refused, the last valid policy keeps beating
    listener.wait_for_log("keeping policy v1")
    n = len(inbox.messages)
    time.sleep(1.5)
    assert len(inbox.messages) - n >= 5 and all(m.version == first.version for m in inbox.messages[n:])
    assert "heartbeat of /fleet/policy stopped" not in listener.log()

    policy_file.unlink()  # the source is gone
    listener.wait_for_log("heartbeat of /fleet/policy stopped", timeout=5)
    time.sleep(0.3)
    n = len(inbox.messages)
    held = status.wait_for(lambda s: "policy stale" in s.reason and s.policy_version == 0, timeout=5)
    assert held.linear_velocity == 0.0
    time.sleep(0.5)
    assert len(inbox.messages) == n  # silent while the file is gone

    policy_file.write_text(POLICY.format(speed=0.6))
    back = inbox.wait_for(lambda m: abs(m.max_speed - 0.6) < 1e-6, timeout=5)
    status.wait_for(lambda s: s.policy_version == back.version, timeout=5)
    listener.wait_for_log("heartbeat of /fleet/policy resumed", timeout=5)
    log = listener.log()
    assert log.count("heartbeat of /fleet/policy stopped") == 1 and log.count("heartbeat of /fleet/policy resumed") == 1
    assert "Traceback" not in log and "Traceback" not in controller.log()
