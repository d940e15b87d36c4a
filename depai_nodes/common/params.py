"""Typed, validated ROS 2 parameters from a pydantic model.

Every DePAI node describes its parameters once, as a pydantic model. `declare_params` turns that
model into declared ROS parameters (with descriptors, so `ros2 param describe` shows the
description and range), validates what the launch file or YAML gave, and keeps validating every
run-time change: a bad `ros2 param set` is refused with a reason that names the parameter, and
the node's state never sees an invalid value. Unknown parameters given to a node are an error too,
because a misspelt parameter silently falling back to its default is a classic robot bug.

The model is the single source of truth: defaults, ranges and docs live in one place, and the
ROS-free core receives the validated model instance, never raw parameters.

A change is applied whole or refused whole, and no set reports success without taking effect:

- a field the node cannot change at run time is declared read-only
  (``Field(..., json_schema_extra=READ_ONLY)``), so rcl itself refuses ``ros2 param set`` on it;
- ``on_change(new_model)`` runs inside the set request, before the value is stored: when it
  raises ``ParameterError`` (say, a new map file does not load) the set fails with that reason and
  both the parameter and the node keep their old values. An ``on_change`` must therefore prepare
  everything that can fail first and commit only when nothing can fail any more.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

__all__ = ["READ_ONLY", "ParamsModel", "ParameterError", "declare_params", "ros_parameter_type"]

# json_schema_extra of a field that is fixed after start-up: `ros2 param set` is refused by rcl.
READ_ONLY = {"read_only": True}

# Parameters that rclpy or the launch system set on every node; never "unknown".
_IMPLICIT_PARAMETERS = {"use_sim_time", "start_type_description_service"}

M = TypeVar("M", bound="ParamsModel")


class ParamsModel(BaseModel):
    """Base class for a node's parameters: flat fields, unknown names rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ParameterError(ValueError):
    """A parameter value (or name) is invalid. `parameter` names the offending parameter."""

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"parameter '{parameter}': {reason}")

    @classmethod
    def from_validation(cls, error: ValidationError, fields: list[str] | None = None) -> ParameterError:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first.get("loc", ()))
        reason = first.get("msg", "invalid value")
        if not name:
            # A cross-field rule (model validator) has no location: name the first parameter
            # its message mentions, so the error still points at something to fix.
            positions = {f: m.start() for f in (fields or []) if (m := re.search(rf"\b{re.escape(f)}\b", reason))}
            name = min(positions, key=positions.get) if positions else "<parameters>"
        if len(error.errors()) > 1:
            others = sorted({str(e["loc"][0]) for e in error.errors()[1:] if e.get("loc")} - {name})
            if others:
                reason += f" (also invalid: {', '.join(others)})"
        return cls(name, reason)


def _parameter_types() -> dict[Any, Any]:
    from rclpy.parameter import Parameter

    T = Parameter.Type
    return {
        bool: T.BOOL,
        int: T.INTEGER,
        float: T.DOUBLE,
        str: T.STRING,
        list[bool]: T.BOOL_ARRAY,
        list[int]: T.INTEGER_ARRAY,
        list[float]: T.DOUBLE_ARRAY,
        list[str]: T.STRING_ARRAY,
    }


def ros_parameter_type(field: FieldInfo):
    """The rclpy `Parameter.Type` that carries a model field (Literal[...] of str maps to STRING)."""
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        kinds = {type(v) for v in typing.get_args(annotation)}
        if len(kinds) == 1:
            annotation = kinds.pop()
    types = _parameter_types()
    if annotation not in types:
        raise TypeError(f"unsupported parameter annotation {annotation!r}; use bool, int, float, str or a list of them")
    return types[annotation]


def _bounds(field: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for meta in field.metadata:
        if isinstance(meta, (annotated_types.Ge, annotated_types.Gt)):
            low = float(getattr(meta, "ge", getattr(meta, "gt", None)))
        elif isinstance(meta, (annotated_types.Le, annotated_types.Lt)):
            high = float(getattr(meta, "le", getattr(meta, "lt", None)))
    return low, high


def _descriptor(name: str, field: FieldInfo):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.parameter import Parameter

    ptype = ros_parameter_type(field)
    descriptor = ParameterDescriptor(name=name, type=ptype.value, description=field.description or "")
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    descriptor.read_only = bool(extra.get("read_only", False))
    low, high = _bounds(field)
    constraints = []
    if low is not None:
        constraints.append(f">= {low:g}" if any(isinstance(m, annotated_types.Ge) for m in field.metadata) else f"> {low:g}")
    if high is not None:
        constraints.append(f"<= {high:g}" if any(isinstance(m, annotated_types.Le) for m in field.metadata) else f"< {high:g}")
    if typing.get_origin(field.annotation) is typing.Literal:
        constraints.append("one of " + ", ".join(repr(v) for v in typing.get_args(field.annotation)))
    descriptor.additional_constraints = "; ".join(constraints)
    # Inclusive ranges are enforced by rcl itself as well; exclusive ones only by pydantic.
    both_inclusive = any(isinstance(m, annotated_types.Ge) for m in field.metadata) and any(
        isinstance(m, annotated_types.Le) for m in field.metadata
    )
    if low is not None and high is not None and both_inclusive:
        if ptype == Parameter.Type.DOUBLE and math.isfinite(low) and math.isfinite(high):
            descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
        elif ptype == Parameter.Type.INTEGER:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    return descriptor


def _widen_integer_override(overrides: dict, name: str, ptype: int) -> None:
    """A parameter file's `period: 6` for a float parameter is 6.0, not a type error: YAML writes
    whole numbers without a point, and rcl refuses an INTEGER value for a DOUBLE parameter (so does
    a list of whole numbers for a list of floats). Only widening, never the other way."""
    from rclpy.parameter import Parameter

    given = overrides.get(name)
    if given is None:
        return
    if ptype == Parameter.Type.DOUBLE.value and given.type_ == Parameter.Type.INTEGER:
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(given.value))
    elif ptype == Parameter.Type.DOUBLE_ARRAY.value and given.type_ == Parameter.Type.INTEGER_ARRAY:
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in given.value])


def declare_params(node, model: type[M], on_change: Callable[[M], None] | None = None) -> M:
    """Declare `model`'s fields as parameters of `node`, validate them, and return the model.

    Raises ParameterError naming the parameter when a given value is invalid or a parameter the
    model does not know was given to the node. After start-up, changes are validated against the
    whole model (so cross-field rules hold too); valid ones call `on_change(new_model)` before they
    are stored, and a ParameterError (or any other exception) from it fails the set with the reason.
    """
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    known = set(model.model_fields)
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    unknown = sorted(
        name for name in overrides if name not in known and name not in _IMPLICIT_PARAMETERS
        and not name.startswith("qos_overrides.") and not node.has_parameter(name)  # e.g. a ManagedNode's autostart
    )
    if unknown:
        raise ParameterError(unknown[0], f"unknown parameter for node '{node.get_name()}'; known: {', '.join(sorted(known))}")

    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        descriptor = _descriptor(name, field)
        _widen_integer_override(overrides, name, descriptor.type)
        default = field.get_default(call_default_factory=True)
        # rcl refuses every set of a read-only parameter, the typed empty list below included:
        # a list is declared writable and made read-only once it holds its value.
        declared = descriptor
        if isinstance(default, list) and descriptor.read_only:
            from copy import deepcopy

            declared = deepcopy(descriptor)
            declared.read_only = False
        try:
            if isinstance(default, list) and not default:
                # rclpy cannot infer an element type from an empty list: declare the type only.
                ptype = Parameter.Type(descriptor.type)
                param = node.declare_parameter(name, ptype, declared)
                if param.type_ == Parameter.Type.NOT_SET:
                    # Give it a typed empty value so `ros2 param get` works.
                    node.set_parameters([Parameter(name, ptype, [])])
                    value = []
                else:
                    value = param.value
            else:
                param = node.declare_parameter(name, default, declared)
                value = param.value
                if param.type_ == Parameter.Type.NOT_SET and isinstance(default, list):
                    # A parameter file's `[]` carries no element type: it is the empty list.
                    node.set_parameters([Parameter(name, Parameter.Type(descriptor.type), [])])
                    value = []
            if declared is not descriptor:
                node.set_descriptor(name, descriptor)
        except InvalidParameterTypeException as exc:
            raise ParameterError(name, f"wrong type: {exc}") from None
        except InvalidParameterValueException as exc:
            raise ParameterError(name, f"out of range: {exc}") from None
        values[name] = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value
    try:
        current = model(**values)
    except ValidationError as exc:
        raise ParameterError.from_validation(exc, list(model.model_fields)) from None

    state = {"params": current}

    def validate(changed: list[Parameter]) -> SetParametersResult:
        ours = [p for p in changed if p.name in known]
        # The only callback rclpy runs after this one (ours is inserted first) is the time
        # source's, which refuses a non-bool use_sim_time: refuse it here, before on_change acts.
        if any(p.name == "use_sim_time" and p.type_ != Parameter.Type.BOOL for p in changed):
            return SetParametersResult(successful=False, reason="parameter 'use_sim_time' must be a bool")
        if not ours:
            return SetParametersResult(successful=True)
        merged = state["params"].model_dump()
        for p in ours:
            merged[p.name] = list(p.value) if isinstance(p.value, (list, tuple)) else p.value
        try:
            pending = model(**merged)
        except ValidationError as exc:
            error = ParameterError.from_validation(exc, list(known))
            node.get_logger().warning(f"rejected parameter change: {error}")
            return SetParametersResult(successful=False, reason=str(error))
        if on_change is not None and pending != state["params"]:
            # Applied here, inside the request, so a change the node cannot make fails the set
            # (rcl has checked types, ranges and read-only before calling us; it stores the
            # values only after a successful return).
            try:
                on_change(pending)
            except ParameterError as error:
                node.get_logger().warning(f"rejected parameter change: {error}")
                return SetParametersResult(successful=False, reason=str(error))
            except Exception as exc:  # noqa: BLE001 - a set must end with a result, never a crash
                error = ParameterError(ours[0].name, f"could not be applied: {type(exc).__name__}: {exc}")
                node.get_logger().error(f"rejected parameter change: {error}")
                return SetParametersResult(successful=False, reason=str(error))
        state["params"] = pending
        node.get_logger().info("parameters updated: " + ", ".join(f"{p.name}={p.value!r}" for p in ours))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(validate)
    return current
