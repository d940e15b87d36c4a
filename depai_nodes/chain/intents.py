"""What a machine's other processes may ask its wallet to sign, and what comes back.

ROS-free. The wallet is the machine's only signer; it signs *intents* (anchor this batch, make
my identity this), never raw bytes or raw transactions, so a process on the same DDS domain
cannot use it to sign arbitrary things. These records are the intents' shapes on both sides of
the `depai/AnchorBatch`, `depai/EnsureIdentity` and the market's (`AcceptTask`, `CompleteTask`,
`PostTask`) services; the result codes equal the
services' constants. Nothing here holds or touches a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import eth_abi
from eth_utils import keccak

from .errors import (
    ChainError,
    ConfigError,
    ContractRevertError,
    RpcError,
    RpcTimeoutError,
    SignerError,
    TxRejectedError,
    TxTimeoutError,
    WrongChainError,
)

__all__ = ["Result", "AnchorRequest", "IdentityRequest", "AcceptRequest", "CompleteRequest", "PostRequest", "Outcome", "outcome_from_error", "RETRYABLE", "content_batch_id"]

_ROOT_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_U64 = 2**64


def content_batch_id(root: bytes | str, message_count: int, start_time: int, end_time: int) -> str:
    """The batch id derived from a batch's content (INTERFACES item 1).

    = the first 16 bytes of keccak256(abi.encode(bytes32 root, uint64 message_count,
    uint64 start_time, uint64 end_time)) as 32 lowercase hex characters. Nobody can claim a
    batch id before its batch exists (squatting needs the root), and the wallet refuses an
    AnchorBatch whose id is not this. ``root`` is 32 bytes or 0x + 64 hex. ValueError on bad input.
    """
    if isinstance(root, str):
        if not _ROOT_RE.match(root):
            raise ValueError("root must be 32 bytes (0x + 64 hex)")
        root = bytes.fromhex(root[2:] if root[:2] in ("0x", "0X") else root)
    if not isinstance(root, (bytes, bytearray)) or len(root) != 32:
        raise ValueError("root must be 32 bytes")
    for name, v in (("message_count", message_count), ("start_time", start_time), ("end_time", end_time)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < _U64:
            raise ValueError(f"{name} must be an integer in [0, 2**64)")
    enc = eth_abi.encode(["bytes32", "uint64", "uint64", "uint64"], [bytes(root), message_count, start_time, end_time])
    return keccak(enc)[:16].hex()


class Result:
    """Result codes of the wallet's intent services (= depai/AnchorBatch, depai/EnsureIdentity)."""

    SUCCESS = 0
    INVALID_REQUEST = 1
    REJECTED_BY_POLICY = 2
    CHAIN_UNAVAILABLE = 3
    REVERTED = 4
    TIMEOUT = 5
    BUSY = 6
    WALLET_UNAVAILABLE = 7

    NAMES = {0: "SUCCESS", 1: "INVALID_REQUEST", 2: "REJECTED_BY_POLICY", 3: "CHAIN_UNAVAILABLE", 4: "REVERTED",
             5: "TIMEOUT", 6: "BUSY", 7: "WALLET_UNAVAILABLE"}


# Worth asking again later as is; the others need a different request (or a different policy).
RETRYABLE = frozenset({Result.CHAIN_UNAVAILABLE, Result.TIMEOUT, Result.BUSY, Result.WALLET_UNAVAILABLE})


@dataclass(frozen=True)
class AnchorRequest:
    """Anchor a batch's Merkle root. Only a description of the batch: the wallet builds and
    signs the EIP-712 message itself, with the machine's own address."""

    batch_id: str
    root: str  # 0x + 64 hex
    message_count: int
    start_time: int
    end_time: int
    uri: str = ""


@dataclass(frozen=True)
class IdentityRequest:
    """Make the machine's DID attribute ``machine_name`` and (stake > 0) hold ``stake`` in the market."""

    machine_name: str
    stake: str = "0"  # decimal token base units


# ---- the market's intents (depai/AcceptTask, CompleteTask, PostTask); answered with a MarketOutcome
@dataclass(frozen=True)
class AcceptRequest:
    """Accept open task ``task_id`` (decimal) for this machine."""

    task_id: str


@dataclass(frozen=True)
class CompleteRequest:
    """Report this machine's arrival for ``task_id``: the arrival record (millimetres, milliradians,
    unix time) and its inclusion proof in anchored batch ``batch_id``."""

    task_id: str
    batch_id: str
    x_mm: int
    y_mm: int
    yaw_mrad: int
    time: int
    proof: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostRequest:
    """Post (and escrow ``reward``, decimal token base units) a delivery task to a station;
    ``request_id`` makes the post idempotent: asked again, the wallet answers from its ledger."""

    request_id: str
    station: str
    x: float
    y: float
    yaw: float
    tolerance: float
    deadline: int  # unix chain time
    reward: str


@dataclass
class Outcome:
    """What the wallet did with an intent (never key material)."""

    result: int
    machine: str = ""
    tx_hash: str = ""
    block_number: int = 0
    error: str = ""
    reason: str = ""
    already_anchored: bool = False
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result == Result.SUCCESS

    @property
    def retryable(self) -> bool:
        return self.result in RETRYABLE

    def describe(self) -> str:
        """One line for logs and TxStatus.error: code, typed error name, reason."""
        name = Result.NAMES.get(self.result, str(self.result))
        detail = f"{self.error}: {self.reason}" if self.error else self.reason
        return f"{name}: {detail}" if detail else name


def outcome_from_error(e: ChainError, machine: str = "") -> Outcome:
    """Map a bridge error to a result code; the message is the error's own (keys never in it)."""
    tx = getattr(e, "tx_hash", "") or ""
    if isinstance(e, ContractRevertError):
        return Outcome(Result.REVERTED, machine, tx, error=e.error or "ContractRevertError", reason=e.reason)
    if isinstance(e, TxTimeoutError):
        return Outcome(Result.TIMEOUT, machine, tx, error=type(e).__name__, reason=str(e))
    if isinstance(e, RpcTimeoutError):
        return Outcome(Result.TIMEOUT, machine, tx, error=type(e).__name__, reason=str(e))
    if isinstance(e, (RpcError, WrongChainError, TxRejectedError)):
        return Outcome(Result.CHAIN_UNAVAILABLE, machine, tx, error=type(e).__name__, reason=str(e))
    if isinstance(e, (SignerError, ConfigError)):
        return Outcome(Result.REJECTED_BY_POLICY, machine, tx, error=type(e).__name__, reason=str(e))
    return Outcome(Result.CHAIN_UNAVAILABLE, machine, tx, error=type(e).__name__, reason=str(e))
