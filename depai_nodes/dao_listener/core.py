"""Fleet policy as data: validation, loading from a file, and conversion to the ROS message.

The policy is what a fleet's DAO governs (see chain/contracts): a speed limit, keep-out zones,
a fleet-wide pause, a minimum task price and a per-machine spending cap. Off chain (a laptop
demo, a test bench) the same policy comes from a YAML file; on chain it comes from the
FleetPolicy contract's events. Either way the robots see one typed message on /fleet/policy.

A policy file is taken whole or refused whole (``load_policy_file``): every key must be given,
the file must end with YAML's end-of-document line ``...`` (so a save cut short is refused), a
key given twice is an error, and zones must be simple polygons of non-zero area.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from depai_nodes.common.polygon import polygon_problem
from depai_nodes.common.yamlfile import load_yaml_model

__all__ = ["PolicyError", "KeepOutZone", "Policy", "load_policy_file", "dump_policy_file", "policy_to_msg", "policy_from_msg"]


class PolicyError(ValueError):
    """A policy (file or record) is invalid; the message says which field and why."""


class KeepOutZone(BaseModel):
    """A polygon in the map frame (metres) that no robot may enter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=32, description="fits the on-chain bytes32 zone id")
    polygon: list[tuple[float, float]] = Field(min_length=3, description="vertices (x, y) in metres, map frame")

    @field_validator("polygon")
    @classmethod
    def _simple(cls, vertices: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if not all(math.isfinite(x) and math.isfinite(y) for x, y in vertices):
            raise ValueError("polygon vertices must be finite numbers")
        problem = polygon_problem(vertices)
        if problem:
            raise ValueError(problem)
        return vertices


class Policy(BaseModel):
    """The fleet's rules. Token amounts are integers in base units (they can exceed 64 bits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_speed: float = Field(1.0, ge=0.0, le=20.0, description="m/s")
    paused: bool = False
    keep_out_zones: list[KeepOutZone] = Field(default_factory=list)
    min_task_price: int = Field(0, ge=0)
    spending_cap: int = Field(0, ge=0)

    @field_validator("keep_out_zones")
    @classmethod
    def _unique_ids(cls, zones: list[KeepOutZone]) -> list[KeepOutZone]:
        ids = [z.id for z in zones]
        if len(ids) != len(set(ids)):
            raise ValueError("keep-out zone ids must be unique")
        return zones


def load_policy_file(path: str | Path) -> Policy:
    """Read a policy YAML file; PolicyError names the file and the bad field.

    All or nothing: empty, truncated (no final ``...`` line), incomplete (a key missing) and
    duplicate-key files are refused, like any invalid value.
    """
    return load_yaml_model(path, Policy, PolicyError, "policy file", complete=True)


def dump_policy_file(policy: Policy) -> str:
    """The YAML text of a complete policy file (every key, ending with ``...``)."""
    import yaml

    data = policy.model_dump(mode="json")
    data["keep_out_zones"] = [{"id": z["id"], "polygon": [list(v) for v in z["polygon"]]} for z in data["keep_out_zones"]]
    return yaml.safe_dump(data, sort_keys=False, explicit_end=True)


def policy_to_msg(policy: Policy, version: int, source: str, frame_id: str, stamp=None):
    """Build a depai/FleetPolicy message (imports ROS types lazily to keep the core ROS-free)."""
    from depai.msg import FleetPolicy, KeepOutZone as KeepOutZoneMsg
    from geometry_msgs.msg import Point32, Polygon

    msg = FleetPolicy()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.version = version
    msg.max_speed = float(policy.max_speed)
    msg.paused = policy.paused
    msg.keep_out_zones = [
        KeepOutZoneMsg(id=zone.id, polygon=Polygon(points=[Point32(x=float(x), y=float(y), z=0.0) for x, y in zone.polygon]))
        for zone in policy.keep_out_zones
    ]
    msg.min_task_price = str(policy.min_task_price)
    msg.spending_cap = str(policy.spending_cap)
    msg.source = source
    return msg


def policy_from_msg(msg) -> Policy:
    """The inverse of policy_to_msg, for subscribers that want the validated model.

    Raises PolicyError (naming the field) for a message no valid policy could have produced:
    a non-finite or out-of-range speed, a degenerate zone, a token amount that is not a number.
    """
    from pydantic import ValidationError

    try:
        return Policy(
            max_speed=float(msg.max_speed),
            paused=bool(msg.paused),
            keep_out_zones=[KeepOutZone(id=z.id, polygon=[(float(p.x), float(p.y)) for p in z.polygon.points])
                            for z in msg.keep_out_zones],
            min_task_price=int(msg.min_task_price or 0),
            spending_cap=int(msg.spending_cap or 0),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise PolicyError(f"{where}: {first['msg']}") from None
    except ValueError as exc:  # int() of a token amount that is not a decimal number
        raise PolicyError(f"token amount: {exc}") from None
