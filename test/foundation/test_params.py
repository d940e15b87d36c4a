"""Validated parameters: declared from a pydantic model, bad values refused with the name."""

from typing import Literal

import pytest
import rclpy
from pydantic import Field, model_validator
from rclpy.parameter import Parameter

from depai_nodes.common.params import READ_ONLY, ParameterError, ParamsModel, declare_params


class Example(ParamsModel):
    voxel_size: float = Field(0.1, gt=0.0, le=5.0, description="voxel edge, m")
    min_points: int = Field(3, ge=1, le=1000)
    frames: list[str] = Field(default_factory=list)
    mode: Literal["fast", "exact"] = "fast"


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=0)
    yield ctx
    ctx.try_shutdown()


def make_node(context, name, **overrides):
    return rclpy.create_node(
        name, context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )


def test_defaults_and_overrides_are_declared_with_descriptors(context):
    node = make_node(context, "a", voxel_size=0.5)
    params = declare_params(node, Example)
    assert params == Example(voxel_size=0.5)
    descriptor = node.describe_parameter("voxel_size")
    assert descriptor.description == "voxel edge, m"
    assert "> 0" in descriptor.additional_constraints
    assert node.describe_parameter("min_points").integer_range[0].to_value == 1000
    assert list(node.get_parameter("frames").value) == []


@pytest.mark.parametrize(
    ("overrides", "bad"),
    [
        ({"voxel_size": 9.0}, "voxel_size"),          # above the model's range
        ({"voxel_size": -1.0}, "voxel_size"),         # below
        ({"voxel_size": "big"}, "voxel_size"),        # wrong type
        ({"min_points": 0}, "min_points"),            # outside the descriptor's range
        ({"mode": "slow"}, "mode"),                   # not one of the choices
        ({"voxle_size": 0.2}, "voxle_size"),          # misspelt: unknown parameter
    ],
)
def test_bad_start_up_values_raise_an_error_naming_the_parameter(context, overrides, bad):
    node = make_node(context, "b", **overrides)
    with pytest.raises(ParameterError) as info:
        declare_params(node, Example)
    assert info.value.parameter == bad
    assert bad in str(info.value)


def test_run_time_changes_are_validated_and_applied(context):
    node = make_node(context, "c")
    seen = []
    declare_params(node, Example, on_change=seen.append)

    refused = node.set_parameters([Parameter("voxel_size", value=-0.5)])[0]
    assert not refused.successful and "voxel_size" in refused.reason
    assert seen == []

    accepted = node.set_parameters([Parameter("voxel_size", value=0.25)])[0]
    assert accepted.successful
    assert seen[-1].voxel_size == 0.25

    node.set_parameters([Parameter("frames", value=["lidar_link"])])
    assert seen[-1].frames == ["lidar_link"] and seen[-1].voxel_size == 0.25


class Window(ParamsModel):
    min_range: float = Field(0.5, ge=0.0)
    max_range: float = Field(50.0, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.max_range <= self.min_range:
            raise ValueError("max_range must be greater than min_range")
        return self


def test_cross_field_errors_name_a_parameter_they_involve(context):
    node = make_node(context, "d", min_range=60.0)
    with pytest.raises(ParameterError) as info:
        declare_params(node, Window)
    assert info.value.parameter == "max_range"
    node = make_node(context, "e")
    declare_params(node, Window)
    refused = node.set_parameters([Parameter("max_range", value=0.1)])[0]
    assert not refused.successful and "parameter 'max_range'" in refused.reason


class WithDefaultList(ParamsModel):
    spawn: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])


def test_an_empty_list_from_a_parameter_file_is_the_empty_list(tmp_path):
    import yaml

    params_file = tmp_path / "p.yaml"
    params_file.write_text(yaml.safe_dump({"/f": {"ros__parameters": {"spawn": []}}}))
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=0, args=["--ros-args", "--params-file", str(params_file)])
    try:
        node = rclpy.create_node("f", context=ctx)
        assert declare_params(node, WithDefaultList).spawn == []
        assert list(node.get_parameter("spawn").value) == []
    finally:
        ctx.try_shutdown()


class Applied(ParamsModel):
    map_file: str = Field("good.yaml")
    gain: float = Field(1.0, gt=0.0)
    world: str = Field("warehouse", json_schema_extra=READ_ONLY)


def test_a_change_the_node_cannot_apply_fails_the_set_and_changes_nothing(context):
    """No set reports success without taking effect: on_change's ParameterError fails the set."""
    node = make_node(context, "g")
    applied = []

    def on_change(new: Applied) -> None:
        if new.map_file.startswith("bad"):
            raise ParameterError("map_file", f"cannot load {new.map_file}")
        applied.append(new)

    declare_params(node, Applied, on_change=on_change)
    refused = node.set_parameters([Parameter("map_file", value="bad.yaml")])[0]
    assert not refused.successful and "cannot load bad.yaml" in refused.reason
    assert node.get_parameter("map_file").value == "good.yaml" and applied == []
    # An atomic set with one unappliable value leaves the others untouched as well.
    refused = node.set_parameters_atomically([Parameter("gain", value=2.0), Parameter("map_file", value="bad2.yaml")])
    assert not refused.successful and node.get_parameter("gain").value == 1.0 and applied == []
    # The state behind the callback is still the old one: the next good change builds on it.
    assert node.set_parameters([Parameter("gain", value=3.0)])[0].successful
    assert applied[-1] == Applied(gain=3.0) and node.get_parameter("gain").value == 3.0


def test_an_exception_in_on_change_is_a_failed_set_not_a_crash(context):
    node = make_node(context, "h")

    def on_change(new: Applied) -> None:
        raise RuntimeError("disk on fire")

    declare_params(node, Applied, on_change=on_change)
    refused = node.set_parameters([Parameter("gain", value=2.0)])[0]
    assert not refused.successful and "disk on fire" in refused.reason and "gain" in refused.reason
    assert node.get_parameter("gain").value == 1.0


def test_read_only_fields_are_refused_at_run_time_but_set_at_start(context):
    node = make_node(context, "i", world="depot")
    seen = []
    params = declare_params(node, Applied, on_change=seen.append)
    assert params.world == "depot" and node.describe_parameter("world").read_only
    refused = node.set_parameters([Parameter("world", value="yard")])[0]
    assert not refused.successful and "read-only" in refused.reason
    assert node.get_parameter("world").value == "depot" and seen == []


class Floats(ParamsModel):
    period: float = Field(1.5, gt=0.0)
    pose: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    count: int = Field(3, ge=0)


def test_whole_numbers_in_a_parameter_file_are_floats_for_float_parameters(tmp_path):
    """`period: 6` (YAML writes it without a point) sets a float parameter to 6.0; an integer
    parameter still refuses 2.5."""
    import yaml

    params_file = tmp_path / "p.yaml"
    params_file.write_text(yaml.safe_dump({"/g": {"ros__parameters": {"period": 6, "pose": [1, 2, 3], "count": 4}}}))
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=0, args=["--ros-args", "--params-file", str(params_file)])
    try:
        node = rclpy.create_node("g", context=ctx)
        got = declare_params(node, Floats)
        assert (got.period, got.pose, got.count) == (6.0, [1.0, 2.0, 3.0], 4)
        assert node.get_parameter("period").type_ == Parameter.Type.DOUBLE
        bad = rclpy.create_node("h", context=ctx, parameter_overrides=[Parameter("count", value=2.5)])
        with pytest.raises(ParameterError) as info:
            declare_params(bad, Floats)
        assert info.value.parameter == "count"
    finally:
        ctx.try_shutdown()
