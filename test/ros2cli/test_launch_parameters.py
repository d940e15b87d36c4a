"""Stack parameters -> ROS 2 parameters (both launchers): what converts, and what fails naming node.parameter."""

from __future__ import annotations

import pytest
import yaml

from depai_nodes.bringup.stack import StackError, StackSpec, expand, ros_parameters
from depai_nodes.bringup.supervisor import write_params_file


def _stack(parameters: dict) -> StackSpec:
    return StackSpec.model_validate({
        "robots": ["robot1", "robot2"],
        "nodes": [{"name": "planner", "concern": "planner", "parameters": parameters}],
    })


def test_values_ros_can_carry_pass_through():
    params = {"flag": True, "count": 3, "rate": 2.5, "name": "map", "empty": [], "names": ["a", "b"],
              "flags": [True, False], "ints": [1, 2], "big": 2**63 - 1, "digits": "200000000000000000000"}
    assert ros_parameters("planner", params) == params


def test_ints_among_floats_become_floats_and_mappings_become_dotted_names():
    out = ros_parameters("n", {"poses": [1, 2.5, 0], "qos_overrides": {"/odom": {"publisher": {"depth": 5}}}})
    assert out == {"poses": [1.0, 2.5, 0.0], "qos_overrides./odom.publisher.depth": 5}
    assert all(isinstance(v, float) for v in out["poses"])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null"),
        (2**63, "int64"),
        (-(2**63) - 1, "int64"),
        ([1, "a"], "mixes"),
        ([True, 1], "mixes"),
        ([[1, 2], [3]], "list item"),
        ([{"a": 1}], "list item"),
        ([None], "list item"),
        (b"raw", "bytes"),
        ({}, "empty mapping"),
    ],
)
def test_unconvertible_value_names_node_and_parameter(value, reason):
    with pytest.raises(StackError) as error:
        expand(_stack({"robot_radius": value}))
    assert str(error.value).startswith("robot1/planner.robot_radius: ")  # the first instance that has it
    assert reason in str(error.value)


def test_nested_name_in_error():
    with pytest.raises(StackError, match=r"^sim\.a\.b: a null value"):
        ros_parameters("sim", {"a": {"b": None}})


def test_params_file_carries_empty_lists_and_quoted_strings(tmp_path):
    (instance, _) = expand(_stack({"spawn_poses": [], "stake": "100", "waypoints": [1, 2.0]}))
    data = yaml.safe_load(write_params_file(instance, tmp_path).read_text())
    assert data == {"/robot1/planner": {"ros__parameters": {"spawn_poses": [], "stake": "100", "waypoints": [1.0, 2.0]}}}
