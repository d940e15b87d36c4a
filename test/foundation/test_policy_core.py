"""Fleet policy as data, and the monitor's ROS-free helpers."""

import pytest

from depai_nodes.dao_listener.core import Policy, PolicyError, load_policy_file, policy_from_msg, policy_to_msg
from depai_nodes.monitor.core import RateStats, parse_topic_spec


def test_policy_file_round_trips_through_the_ros_message(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("max_speed: 0.5\npaused: true\nmin_task_price: 340282366920938463463374607431768211456\n"
                    "keep_out_zones: [{id: dock, polygon: [[0, 0], [1, 0], [1, 1]]}]\n")
    policy = load_policy_file(path)
    msg = policy_to_msg(policy, version=3, source="file:x", frame_id="map")
    assert msg.version == 3 and msg.paused and msg.min_task_price == str(2**128)
    assert policy_from_msg(msg) == policy


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("max_speed: -1", "max_speed"),
        ("max_speed: .nan", "max_speed"),
        ("keep_out_zones: [{id: a, polygon: [[0, 0], [1, 1]]}]", "polygon"),
        ("keep_out_zones: [{id: a, polygon: [[0, 0], [1, .inf], [2, 2]]}]", "finite"),
        ("keep_out_zones: [{id: a, polygon: [[0,0],[1,0],[1,1]]}, {id: a, polygon: [[0,0],[1,0],[1,1]]}]", "unique"),
        ("speed_limit: 2", "speed_limit"),
        ("min_task_price: -5", "min_task_price"),
        ("keep_out_zones: [{id: %s, polygon: [[0, 0], [1, 0], [1, 1]]}]" % ("z" * 33), "id"),  # > bytes32
        ("max_speed: [", "not valid YAML"),
    ],
)
def test_invalid_policy_files_name_the_field(tmp_path, text, needle):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=needle):
        load_policy_file(path)


def test_missing_policy_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(tmp_path / "absent.yaml")


def test_default_policy_is_permissive_but_bounded():
    assert Policy().paused is False and 0 < Policy().max_speed <= 20


def test_topic_specs_parse_and_reject_garbage():
    spec = parse_topic_spec("/fleet/policy depai/msg/FleetPolicy latched")
    assert (spec.topic, spec.type_name, spec.qos) == ("/fleet/policy", "depai/msg/FleetPolicy", "latched")
    assert parse_topic_spec("points sensor_msgs/msg/PointCloud2").qos == "reliable"
    with pytest.raises(ValueError):
        parse_topic_spec("points PointCloud2")


def test_rate_is_measured_over_the_window():
    stats = RateStats(window_s=2.0)
    for i in range(21):
        stats.add(10.0 + i * 0.1)  # 10 Hz for 2 s
    assert stats.rate(12.0) == pytest.approx(10.0, rel=0.01)
    assert stats.rate(20.0) == 0.0 and stats.total == 21


def test_navigation_status_summary_names_the_state_and_reason():
    from depai.msg import NavigationStatus

    from depai_nodes.monitor.core import summarize

    msg = NavigationStatus(state=NavigationStatus.STOPPED, reason="fleet paused", progress=0.5, distance_remaining=3.0)
    assert summarize(msg).startswith("STOPPED (fleet paused) progress=50% remaining=3.0 m")
