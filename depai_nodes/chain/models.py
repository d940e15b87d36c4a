"""pydantic models of every on-chain record the bridge reads or writes.

Units: on chain, positions are integer millimetres, angles milliradians, speeds mm/s (so the
contracts stay in integers); these models expose SI floats (REP-103: metres, radians, m/s) and
convert at the boundary. Token amounts are Python ints in base units (they exceed 64 bits).
"""

from __future__ import annotations

import enum
import math
from typing import Annotated

import eth_abi
from eth_utils import keccak
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from .config import checksum

__all__ = [
    "to_mm",
    "from_mm",
    "id32",
    "id_str",
    "TxResult",
    "Attribute",
    "KeepOutZone",
    "PolicySnapshot",
    "TaskStatus",
    "TaskInfo",
    "Task",
    "ARRIVAL_TYPEHASH",
    "MachineInfo",
    "TaskReport",
    "DataBatch",
    "BatchRecord",
]


def to_mm(metres: float) -> int:
    if not math.isfinite(metres):
        raise ValueError(f"not a finite number: {metres}")
    return int(round(metres * 1000.0))


def from_mm(mm: int) -> float:
    return mm / 1000.0


def id32(value: str | bytes) -> bytes:
    """An identifier as bytes32: ASCII/UTF-8 text right-padded with zeros (at most 32 bytes)."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if not raw or len(raw) > 32:
        raise ValueError(f"identifier must be 1..32 bytes, got {len(raw)}")
    return raw.ljust(32, b"\0")


def id_str(value: bytes) -> str:
    """Inverse of id32 for text ids; hex for binary ones."""
    body = value.rstrip(b"\0")
    try:
        text = body.decode()
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "0x" + value.hex()


# An address field normalised to its EIP-55 checksum form (malformed input is a validation error).
ChecksumAddress = Annotated[str, AfterValidator(lambda v: checksum(v))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TxResult(_Model):
    """A mined transaction."""

    tx_hash: str
    block_number: int
    block_hash: str
    status: int = Field(description="1 success, 0 reverted")
    gas_used: int
    effective_gas_price: int = 0
    contract_address: str | None = None
    logs: list[dict] = Field(default_factory=list, description="raw logs (decode with ContractABI.decode_log)")


class Attribute(_Model):
    """A DID attribute (peaq DID precompile ABI)."""

    name: bytes
    value: bytes
    validity: int = Field(description="last block at which it is valid (2**32-1: forever)")
    created: int = Field(description="unix seconds of the last write")


class KeepOutZone(_Model):
    id: str
    polygon: list[tuple[float, float]] = Field(min_length=3, description="(x, y) metres, map frame")


class PolicySnapshot(_Model):
    """FleetPolicy as read at one block."""

    version: int
    updated_at_block: int
    max_speed: float = Field(description="m/s")
    paused: bool
    min_task_price: int
    spending_cap: int
    keep_out_zones: list[KeepOutZone]
    block_number: int = Field(0, description="block the snapshot was read at")
    address: str = ""

    @classmethod
    def from_chain(cls, raw: dict, *, block_number: int = 0, address: str = "") -> "PolicySnapshot":
        zones = [
            KeepOutZone(id=id_str(z["id"]), polygon=[(from_mm(x), from_mm(y)) for x, y in zip(z["xs"], z["ys"])])
            for z in raw["zones_"]
        ]
        return cls(
            version=raw["version_"],
            updated_at_block=raw["updatedAtBlock_"],
            max_speed=raw["maxSpeed_"] / 1000.0,
            paused=raw["paused_"],
            min_task_price=raw["minTaskPrice_"],
            spending_cap=raw["spendingCap_"],
            keep_out_zones=zones,
            block_number=block_number,
            address=address,
        )


class TaskStatus(enum.IntEnum):
    NONE = 0
    OPEN = 1
    ACCEPTED = 2
    COMPLETED = 3
    REFUNDED = 4
    CANCELLED = 5
    SLASHED = 6


def station_label(value: bytes) -> str:
    """A bytes32 station label as text ("" when none; hex when it is not UTF-8 text)."""
    body = bytes(value).rstrip(b"\0")
    if not body:
        return ""
    try:
        text = body.decode()
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "0x" + bytes(value).hex()


class TaskInfo(_Model):
    """A TaskMarket task as read from the chain (SI units: m, rad; times unix s; amounts base units)."""

    id: int
    requester: str
    machine: str | None = Field(description="the machine that accepted it (None while open)")
    reward: int
    deadline: int
    goal_x: float
    goal_y: float
    goal_yaw: float
    tolerance: float = Field(description="arrival tolerance, m")
    station: str = Field(description="station label ('' when none)")
    status: TaskStatus
    accepted_at: int = 0
    batch_id: bytes = bytes(32)

    @property
    def task_id(self) -> int:
        return self.id

    @property
    def status_name(self) -> str:
        """'Open', 'Accepted', 'Completed', 'Refunded', 'Cancelled', 'Slashed'."""
        return self.status.name.capitalize()

    @classmethod
    def from_chain(cls, task_id: int, raw: dict) -> "TaskInfo":
        machine = raw["machine"]
        return cls(
            id=task_id,
            requester=raw["requester"],
            machine=None if int(machine, 16) == 0 else machine,
            reward=raw["reward"],
            deadline=raw["deadline"],
            goal_x=from_mm(raw["goalX"]),
            goal_y=from_mm(raw["goalY"]),
            goal_yaw=raw["goalYaw"] / 1000.0,
            tolerance=from_mm(raw["toleranceMm"]),
            station=station_label(raw["station"]),
            status=TaskStatus(raw["status"]),
            accepted_at=raw["acceptedAt"],
            batch_id=raw["batchId"],
        )


Task = TaskInfo  # the old name


class MachineInfo(_Model):
    registered: bool
    active_tasks: int
    stake: int


ARRIVAL_TYPEHASH = keccak(b"ArrivalRecord(uint256 taskId,address machine,int64 x,int64 y,int64 yaw,uint64 time)")
_I64 = dict(ge=-(2**63), lt=2**63)


class TaskReport(_Model):
    """What a machine signs (EIP-712) to claim a task done: its arrival record, in the integer
    units of telemetry's arrival leaf (mm, mm, mrad, unix s), and the batch holding that record."""

    task_id: int = Field(ge=1, lt=2**256)
    machine: ChecksumAddress
    batch_id: bytes = Field(min_length=32, max_length=32)
    x_mm: int = Field(**_I64)
    y_mm: int = Field(**_I64)
    yaw_mrad: int = Field(**_I64)
    time: int = Field(ge=0, lt=2**64, description="unix s of the arrival")

    def typed_message(self) -> dict:
        return {
            "taskId": self.task_id,
            "machine": self.machine,
            "batchId": self.batch_id,
            "x": self.x_mm,
            "y": self.y_mm,
            "yaw": self.yaw_mrad,
            "time": self.time,
        }

    def as_tuple(self) -> tuple:
        return (self.task_id, self.machine, self.batch_id, self.x_mm, self.y_mm, self.yaw_mrad, self.time)

    def leaf_preimage(self) -> bytes:
        """abi.encode(ARRIVAL_TYPEHASH, taskId, machine, x, y, yaw, time): telemetry's typed leaf."""
        return eth_abi.encode(["bytes32", "uint256", "address", "int64", "int64", "int64", "uint64"],
                              [ARRIVAL_TYPEHASH, self.task_id, self.machine, self.x_mm, self.y_mm, self.yaw_mrad, self.time])

    def leaf(self) -> bytes:
        """The Merkle leaf (keccak256(keccak256(preimage)), OpenZeppelin's double hash)."""
        return keccak(keccak(self.leaf_preimage()))


class DataBatch(_Model):
    """A telemetry batch to anchor: its Merkle root and metadata, signed by the machine."""

    machine: ChecksumAddress
    batch_id: bytes = Field(min_length=32, max_length=32)
    root: bytes = Field(min_length=32, max_length=32)
    message_count: int = Field(ge=1, lt=2**64)
    start_time: int = Field(ge=0, lt=2**64)
    end_time: int = Field(ge=0, lt=2**64)
    uri: str = Field("", max_length=512)

    def typed_message(self) -> dict:
        return {
            "machine": self.machine,
            "batchId": self.batch_id,
            "root": self.root,
            "messageCount": self.message_count,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "uri": self.uri,
        }

    def as_tuple(self) -> tuple:
        return (self.machine, self.batch_id, self.root, self.message_count, self.start_time, self.end_time, self.uri)


class BatchRecord(_Model):
    machine: str
    batch_id: bytes
    root: bytes
    message_count: int
    start_time: int
    end_time: int
    anchored_at_block: int
    anchored_at_time: int = Field(0, description="unix s of the anchoring block")
    submitter: str
    uri: str
