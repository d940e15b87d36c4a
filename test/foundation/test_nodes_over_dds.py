"""Real node processes exchanging project messages over DDS."""

import time

import pytest

from depai.msg import FleetPolicy
from depai_nodes.common.qos import LATCHED_QOS

POLICY = """max_speed: {speed}
paused: {paused}
keep_out_zones:
  - id: dock
    polygon: [[4.0, 1.0], [6.0, 1.0], [6.0, 3.0]]
min_task_price: 0
spending_cap: 0
...
"""


def test_policy_reaches_a_late_joiner_and_follows_file_edits(ros_node, start_node, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY.format(speed=0.8, paused="false"))
    node = start_node("dao_listener", parameters={"policy_file": str(policy_file), "watch_period": 0.2})
    node.wait_for_log("policy v1")

    # Subscribe only after it published: transient-local QoS must still deliver the policy.
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    first = inbox.wait_for(timeout=15)
    assert first.version == 1 and first.max_speed == pytest.approx(0.8) and not first.paused
    assert [(p.x, p.y) for p in first.keep_out_zones[0].polygon.points] == [(4.0, 1.0), (6.0, 1.0), (6.0, 3.0)]
    assert first.header.frame_id == "map"

    time.sleep(0.05)  # a new mtime even on coarse-grained file systems
    policy_file.write_text(POLICY.format(speed=0.3, paused="true"))
    second = inbox.wait_for(lambda m: m.version == 2, timeout=10)
    assert second.paused and second.max_speed == pytest.approx(0.3)

    # An invalid edit is refused: the robots keep the last valid policy and the log says why.
    policy_file.write_text(POLICY.format(speed=-4, paused="false"))
    log = node.wait_for_log("keeping policy v2")
    assert "max_speed" in log
    assert all(m.version <= 2 for m in inbox.messages)
    assert node.process.poll() is None


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"watch_period": -1.0}, "watch_period"),
        ({"policy_file": "/nonexistent/policy.yaml"}, "policy_file"),
        ({"watch_perod": 1.0}, "watch_perod"),
    ],
)
def test_invalid_configuration_exits_with_code_2_naming_the_parameter(start_node, parameters, named):
    node = start_node("dao_listener", parameters=parameters)
    assert node.wait_exit(timeout=20) == 2
    log = node.log()
    assert "invalid configuration" in log and f"parameter '{named}'" in log
    assert "Traceback" not in log


def test_sigterm_stops_a_node_cleanly(start_node):
    node = start_node("monitor", parameters={"period": 0.5})
    node.wait_for_log("what flows", timeout=20)
    node.process.terminate()
    assert node.wait_exit(timeout=10) == 0
