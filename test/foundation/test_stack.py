"""The stack description: one file, validated, expanded per robot for both bring-up paths."""

from pathlib import Path

import pytest

from depai_nodes.bringup.stack import StackError, expand, load_stack

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def test_the_shipped_stack_is_valid_and_every_concern_exists():
    stack = load_stack(REPO / "config" / "stack.yaml")
    assert stack.nodes
    for spec in stack.nodes:
        assert (REPO / "depai_nodes" / spec.concern / "node.py").exists(), spec.concern


def test_robot_nodes_are_instantiated_per_robot_and_fleet_nodes_once(tmp_path):
    stack = load_stack(write(tmp_path, """
robots: [r1, r2]
use_sim_time: true
nodes:
  - {name: simulator, concern: simulator, scope: fleet, parameters: {use_sim_time: false}}
  - {name: policy, concern: dao_listener, scope: fleet}
  - {name: perception, concern: perception, parameters: {voxel_size: 0.2, map: "package://depai/config/x.yaml"}}
"""))
    instances = expand(stack, share_dir="/opt/share/depai", overrides={"perception": {"voxel_size": 0.3}})
    assert [i.fqn for i in instances] == ["/simulator", "/policy", "/r1/perception", "/r2/perception"]
    assert instances[2].parameters == {"voxel_size": 0.3, "map": "/opt/share/depai/config/x.yaml", "use_sim_time": True}
    assert instances[0].parameters == {"use_sim_time": False}  # the clock itself
    solo = expand(stack, robots=["solo"], only=["perception"], share_dir="/s")
    assert [i.fqn for i in solo] == ["/solo/perception"]
    # without the clock node nobody publishes /clock: wall time, or the nodes would stand still
    assert "use_sim_time" not in solo[0].parameters


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nodes: [{name: a, concern: monitor, colour: red}]", "colour"),
        ("nodes: [{name: 9a, concern: monitor}]", "valid ROS name"),
        ("robots: [r1, r1]\nnodes: [{name: a, concern: monitor}]", "unique"),
        ("nodes: [{name: a, concern: monitor, respawn_delay: -1}]", "respawn_delay"),
        ("nodes: {oops", "not valid YAML"),
        ("- just a list", "mapping"),
    ],
)
def test_invalid_stack_files_say_what_is_wrong(tmp_path, text, needle):
    with pytest.raises(StackError, match=needle):
        load_stack(write(tmp_path, text))


def test_unknown_node_names_in_overrides_are_refused(tmp_path):
    stack = load_stack(write(tmp_path, "nodes: [{name: a, concern: monitor}]"))
    with pytest.raises(StackError, match="no node named 'b'"):
        expand(stack, only=["b"])
    with pytest.raises(StackError, match="no node named 'c'"):
        expand(stack, overrides={"c": {"x": 1}})


def test_robots_placeholder_becomes_the_robot_list(tmp_path):
    stack = load_stack(write(tmp_path, """
robots: [r1, r2]
nodes:
  - {name: simulator, concern: simulator, scope: fleet, parameters: {robots: $(robots), world: w.sdf}}
"""))
    assert expand(stack)[0].parameters == {"robots": ["r1", "r2"], "world": "w.sdf"}
    assert expand(stack, robots=["solo"])[0].parameters["robots"] == ["solo"]


def test_per_robot_placeholders_and_enabling_disabled_nodes(tmp_path):
    stack = load_stack(write(tmp_path, """
robots: [r1, r2]
nodes:
  - {name: wallet, concern: wallet, enabled: false, parameters: {demo_index: $(robot_index), out: "/tmp/$(robot)/x"}}
  - {name: monitor, concern: monitor, scope: fleet, parameters: {label: $(robot_index)}}
"""))
    assert [i.fqn for i in expand(stack)] == ["/monitor"]
    instances = expand(stack, enable=["wallet"])
    assert [(i.fqn, i.parameters) for i in instances[:2]] == [
        ("/r1/wallet", {"demo_index": 1, "out": "/tmp/r1/x"}),
        ("/r2/wallet", {"demo_index": 2, "out": "/tmp/r2/x"}),
    ]
    assert instances[2].parameters == {"label": "$(robot_index)"}  # fleet nodes have no robot
    with pytest.raises(StackError, match="no node named 'walet'"):
        expand(stack, enable=["walet"])
