"""Fleet policy as data, and the monitor's ROS-free helpers."""

from pathlib import Path

import pytest

from depai_nodes.dao_listener.core import (Policy, PolicyError, dump_policy_file, load_policy_file, policy_from_msg,
                                           policy_to_msg)
from depai_nodes.monitor.core import RateStats, parse_topic_spec


REPO = Path(__file__).resolve().parents[2]


def complete(**fields) -> str:
    """A complete policy file (every key, ending with '...') with some values replaced (YAML text)."""
    values = {"max_speed": "0.5", "paused": "false", "keep_out_zones": "[]", "min_task_price": "0", "spending_cap": "0"}
    values.update(fields)
    return "".join(f"{k}: {v}\n" for k, v in values.items()) + "...\n"


def test_policy_file_round_trips_through_the_ros_message(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(complete(paused="true", min_task_price="340282366920938463463374607431768211456",
                             keep_out_zones="[{id: dock, polygon: [[0, 0], [1, 0], [1, 1]]}]"))
    policy = load_policy_file(path)
    msg = policy_to_msg(policy, version=3, source="file:x", frame_id="map")
    assert msg.version == 3 and msg.paused and msg.min_task_price == str(2**128)
    assert policy_from_msg(msg) == policy
    # What dump_policy_file writes is a complete file again.
    path.write_text(dump_policy_file(policy))
    assert load_policy_file(path) == policy


def test_the_shipped_policy_file_is_complete():
    policy = load_policy_file(REPO / "config" / "policy.yaml")
    assert [z.id for z in policy.keep_out_zones] == ["loading-dock"]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"max_speed": "-1"}, "max_speed"),
        ({"max_speed": ".nan"}, "max_speed"),
        ({"keep_out_zones": "[{id: a, polygon: [[0, 0], [1, 1]]}]"}, "polygon"),
        ({"keep_out_zones": "[{id: a, polygon: [[0, 0], [1, .inf], [2, 2]]}]"}, "finite"),
        ({"keep_out_zones": "[{id: a, polygon: [[0,0],[1,0],[1,1]]}, {id: a, polygon: [[0,0],[1,0],[1,1]]}]"}, "unique"),
        ({"keep_out_zones": "[{id: a, polygon: [[0, 0], [1, 1], [2, 2]]}]"}, "degenerate"),       # all on a line
        ({"keep_out_zones": "[{id: a, polygon: [[0, 0], [0, 0], [0, 0], [0, 0]]}]"}, "degenerate"),  # one point
        ({"keep_out_zones": "[{id: a, polygon: [[0, 0], [3, 2], [3, 0], [0, 1]]}]"}, "cross"),     # a bow tie
        ({"speed_limit": "2"}, "speed_limit"),
        ({"min_task_price": "-5"}, "min_task_price"),
        ({"keep_out_zones": "[{id: %s, polygon: [[0, 0], [1, 0], [1, 1]]}]" % ("z" * 33)}, "id"),  # > bytes32
        ({"max_speed": "["}, "not valid YAML"),
    ],
)
def test_invalid_policy_files_name_the_field(tmp_path, fields, needle):
    path = tmp_path / "p.yaml"
    path.write_text(complete(**fields))
    with pytest.raises(PolicyError, match=needle):
        load_policy_file(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("\n  \n# only a comment\n", "empty"),
        (complete().replace("paused: false\n", ""), "missing paused"),
        (complete().replace("...\n", ""), "end-of-document"),
        (complete() + "max_speed: 3\n", "not valid YAML|end-of-document"),
        (complete().replace("paused: false\n", "paused: false\nmax_speed: 3\n"), "duplicate key 'max_speed'"),
        (complete(keep_out_zones="[{id: a, id: b, polygon: [[0, 0], [1, 0], [1, 1]]}]"), "duplicate key 'id'"),
    ],
)
def test_empty_incomplete_truncated_and_duplicate_key_files_are_refused(tmp_path, text, needle):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=needle):
        load_policy_file(path)


def test_every_truncation_of_the_shipped_policy_file_is_refused(tmp_path):
    """What a non-atomic save can leave behind: each prefix of the real file, cut at every byte."""
    full = (REPO / "config" / "policy.yaml").read_bytes()
    whole = load_policy_file(REPO / "config" / "policy.yaml")
    path = tmp_path / "p.yaml"
    accepted = []
    for n in range(len(full)):
        path.write_bytes(full[:n])
        try:
            policy = load_policy_file(path)
        except PolicyError:
            continue
        accepted.append(n)
        assert policy == whole  # only the file minus its final newline may load, and it is whole
    assert accepted == [len(full) - 1]


def test_missing_policy_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(tmp_path / "absent.yaml")


def test_policy_messages_nobody_valid_could_send_are_refused():
    from depai.msg import FleetPolicy, KeepOutZone as ZoneMsg
    from geometry_msgs.msg import Point32, Polygon

    def zone(*pts):
        return ZoneMsg(id="z", polygon=Polygon(points=[Point32(x=float(x), y=float(y)) for x, y in pts]))

    for bad, needle in [
        (FleetPolicy(max_speed=float("nan")), "max_speed"),
        (FleetPolicy(max_speed=float("inf")), "max_speed"),
        (FleetPolicy(max_speed=1.0, keep_out_zones=[zone((0, 0), (1, 1), (2, 2))]), "degenerate"),
        (FleetPolicy(max_speed=1.0, keep_out_zones=[zone((0, 0), (1, 0))]), "polygon"),
        (FleetPolicy(max_speed=1.0, min_task_price="lots"), "token amount"),
    ]:
        with pytest.raises(PolicyError, match=needle):
            policy_from_msg(bad)


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
