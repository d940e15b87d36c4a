"""What one Merkle leaf of a telemetry batch is: ABI-encoded, so a contract can check it.

ROS-free and dependency-light (a verifier needs no ROS). Every message recorded in a batch is
one leaf, in recording order. The bytes under the leaf hash (``preimage``) are what
``DataRegistry.verifyMessage(machine, batchId, preimage, proof)`` takes; the leaf itself is
keccak256(keccak256(preimage)) (OpenZeppelin's double hash, see ``depai_nodes.chain.merkle``).

* A ROS message: ``abi.encode(string topic, uint64 logTime, bytes cdr)`` - the topic as recorded
  (``/robot1/odom``), the log time in unix nanoseconds (the MCAP message's log_time) and the
  exact CDR bytes that came off DDS. A contract can ``abi.decode`` it.
* A typed record (the task market's arrival proof, ``depai/msg/ArrivalRecord``): its fields
  ABI-encoded after a type hash, so a contract rebuilds the leaf from the fields it is given::

      abi.encode(ARRIVAL_TYPEHASH, uint256 taskId, address machine, int64 x, int64 y, int64 yaw, uint64 time)

  with x, y in millimetres, yaw in milliradians (the contracts' integer units), time in unix
  seconds, and ``ARRIVAL_TYPEHASH = keccak256("ArrivalRecord(uint256 taskId,address machine,int64 x,int64 y,int64 yaw,uint64 time)")``.
  In the MCAP file the record is an ordinary ROS 2 message, re-encoded as canonical CDR of
  ArrivalRecord.msg (zero padding: DDS serialisers leave padding bytes unset);
  a verifier decodes it, re-encodes it and requires the bytes to be identical (so no padding
  byte can change unnoticed), then builds the typed leaf.

The first word of a ROS-message preimage is the offset 0x60; a typed preimage starts with its
type hash, so the two kinds cannot be confused.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from depai_nodes.chain.merkle import keccak

__all__ = ["ARRIVAL_TYPE", "ARRIVAL_TYPEHASH", "ArrivalRecord", "LeafError", "message_preimage", "preimage", "canonical",
           "leaf_of", "ros_leaf"]

ARRIVAL_TYPE = "depai/msg/ArrivalRecord"
ARRIVAL_TYPEHASH = keccak(b"ArrivalRecord(uint256 taskId,address machine,int64 x,int64 y,int64 yaw,uint64 time)")
_CDR_LE = b"\x00\x01\x00\x00"
_U64 = 2**64
_I64 = 2**63


class LeafError(ValueError):
    """A message cannot be made into a leaf (a typed record that does not decode canonically)."""


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _padded(b: bytes) -> bytes:
    return _word(len(b)) + b + b"\0" * (-len(b) % 32)


_HEAD = _word(0x60)


def message_preimage(topic: bytes, log_time: int, cdr: bytes) -> bytes:
    """abi.encode(string topic, uint64 logTime, bytes cdr); ``topic`` already UTF-8."""
    t = _padded(topic)
    return b"".join((_HEAD, log_time.to_bytes(32, "big"), _word(0x60 + len(t)), t, _padded(cdr)))


def ros_leaf(topic: bytes, log_time: int, cdr: bytes) -> bytes:
    return keccak(keccak(message_preimage(topic, log_time, cdr)))


@dataclass(frozen=True)
class ArrivalRecord:
    """A machine reached a task's goal (pose in the map frame, SI units; time unix seconds+ns)."""

    task_id: int
    machine: str  # 0x + 40 hex (EIP-55 or lower case)
    x: float
    y: float
    yaw: float
    sec: int
    nanosec: int = 0

    def validate(self) -> "ArrivalRecord":
        if not 1 <= self.task_id < _U64:
            raise LeafError(f"task_id must be 1..2**64-1, got {self.task_id}")
        m = self.machine
        if not (isinstance(m, str) and len(m) == 42 and m[:2] in ("0x", "0X")):
            raise LeafError(f"machine must be a 0x address, got {m!r:.60}")
        try:
            bytes.fromhex(m[2:])
        except ValueError:
            raise LeafError(f"machine must be a 0x address, got {m!r:.60}") from None
        for name in ("x", "y", "yaw"):
            v = getattr(self, name)
            if not math.isfinite(v) or abs(v) * 1000 >= _I64:
                raise LeafError(f"{name} must be a finite number, got {v}")
        if not 0 <= self.sec < 2**31 or not 0 <= self.nanosec < 10**9:
            raise LeafError(f"time must be unix seconds >= 0 and nanoseconds < 1e9, got {self.sec}.{self.nanosec}")
        return self

    # ---- canonical CDR of ArrivalRecord.msg (XCDR1 little endian; offsets after the 4-byte header)
    def to_cdr(self) -> bytes:
        m = self.machine.encode()
        out = bytearray(_CDR_LE)
        out += struct.pack("<QI", self.task_id, len(m) + 1) + m + b"\0"
        out += b"\0" * (-(len(out) - 4) % 8)
        out += struct.pack("<ddd", self.x, self.y, self.yaw)
        out += struct.pack("<iI", self.sec, self.nanosec)
        return bytes(out)

    @classmethod
    def from_cdr(cls, data: bytes, *, strict: bool = True) -> "ArrivalRecord":
        """Decode; LeafError unless ``data`` is exactly the canonical encoding of a valid record
        (``strict=False``: any padding bytes, as DDS serialisers leave them, e.g. Fast-CDR's)."""
        try:
            if data[:4] != _CDR_LE:
                raise LeafError("not little-endian plain CDR")
            task_id, n = struct.unpack_from("<QI", data, 4)
            if not 1 <= n <= 64:
                raise LeafError("machine string of a bad length")
            m = data[16:16 + n - 1].decode("ascii")
            off = 16 + n
            off += -(off - 4) % 8
            x, y, yaw = struct.unpack_from("<ddd", data, off)
            sec, nanosec = struct.unpack_from("<iI", data, off + 24)
        except (struct.error, UnicodeDecodeError):
            raise LeafError("ArrivalRecord CDR is truncated or not text where text belongs") from None
        rec = cls(task_id, m, x, y, yaw, sec, nanosec).validate()
        if strict and rec.to_cdr() != bytes(data):
            raise LeafError("ArrivalRecord CDR is not canonical (padding or trailing bytes differ)")
        return rec

    def preimage(self) -> bytes:
        return b"".join((ARRIVAL_TYPEHASH, _word(self.task_id), bytes(12) + bytes.fromhex(self.machine[2:]),
                         (round(self.x * 1000) % 2**256).to_bytes(32, "big"),
                         (round(self.y * 1000) % 2**256).to_bytes(32, "big"),
                         (round(self.yaw * 1000) % 2**256).to_bytes(32, "big"), _word(self.sec)))

    def typed(self) -> tuple:
        """(taskId, machine, x mm, y mm, yaw mrad, time s): what a contract is given."""
        return (self.task_id, self.machine, round(self.x * 1000), round(self.y * 1000), round(self.yaw * 1000), self.sec)


def canonical(type_name: str, data: bytes) -> bytes:
    """What is recorded for a message: the CDR as received, except a typed record, which is
    re-encoded canonically (zero padding) so its file bytes are a function of its fields."""
    if type_name == ARRIVAL_TYPE:
        return ArrivalRecord.from_cdr(data, strict=False).to_cdr()
    return data


def preimage(type_name: str, topic: str, log_time: int, data: bytes) -> bytes:
    """The leaf preimage of one recorded message (by its ROS type name)."""
    if type_name == ARRIVAL_TYPE:
        return ArrivalRecord.from_cdr(data).preimage()
    return message_preimage(topic.encode(), log_time, data)


def leaf_of(type_name: str, topic: str, log_time: int, data: bytes) -> bytes:
    return keccak(keccak(preimage(type_name, topic, log_time, data)))
