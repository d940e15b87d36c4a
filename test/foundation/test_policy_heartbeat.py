"""The dao_listener re-publishes its policy as a heartbeat (same version, fresh stamp), keeps doing
so with the last valid policy while the file is broken, and each run is its own source identity."""
import time

from depai.msg import FleetPolicy
from depai_nodes.common.qos import LATCHED_QOS

POLICY = "max_speed: {speed}\npaused: false\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n"


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_heartbeat_keeps_the_last_valid_policy_fresh(ros_node, start_node, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY.format(speed=0.7))
    params = {"policy_file": str(policy_file), "heartbeat_period": 0.25, "watch_period": 0.1}
    node = start_node("dao_listener", parameters=params)
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    first = inbox.wait_for(timeout=20)
    time.sleep(1.5)
    beats = [m for m in inbox.messages if m.version == first.version]
    assert len(beats) >= 4, len(beats)
    stamps = [_stamp(m) for m in beats]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 0.7
    assert {m.source for m in beats} == {first.source} and first.source.startswith(f"file:{policy_file}@")

    # A truncated save: refused; the heartbeat goes on with the last valid policy.
    policy_file.write_text(POLICY.format(speed=0.2)[:-4])
    node.wait_for_log("end-of-document")
    n = len(inbox.messages)
    time.sleep(1.0)
    later = inbox.messages[n:]
    assert len(later) >= 2 and all(m.version == first.version and abs(m.max_speed - 0.7) < 1e-6 for m in later)

    # A restarted listener is a new source identity (so robots do not ignore its v1 as older).
    node.process.kill()
    node.wait_exit()
    policy_file.write_text(POLICY.format(speed=0.7))
    start_node("dao_listener", parameters=params)
    again = inbox.wait_for(lambda m: m.source != first.source, timeout=20)
    assert again.version == 1 and again.source.startswith(f"file:{policy_file}@")
