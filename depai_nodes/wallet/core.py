"""The machine's wallet: its only signer, signing intents under a policy, never raw bytes.

ROS-free. One process holds the machine's key (the wallet node); other nodes ask it for exactly
the on-chain actions they need:

- ``Wallet``: token payments. Every request is validated (address, amount), checked against the
  per-machine daily spending cap that the DAO sets in FleetPolicy (0: no cap), de-duplicated by
  request id, queued (bounded) and sent from one worker thread. Progress is reported per request.
- ``Intents``: anchoring a telemetry batch (``anchor``) and making the machine's identity what
  the identity node wants (``ensure_identity``). Each request is validated field by field and
  against ``IntentPolicy`` before anything is signed; the wallet builds the EIP-712 message
  itself with the machine's own address, so a caller can never get a signature over bytes of
  its choosing. Every answer is an ``Outcome`` with a result code and the typed error.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from depai_nodes.chain.config import checksum
from depai_nodes.chain.errors import ChainError, ContractRevertError, InvalidAddressError
from depai_nodes.chain.fleet import MACHINE_ATTRIBUTE, Fleet
from depai_nodes.chain.intents import AnchorRequest, IdentityRequest, Outcome, Result, outcome_from_error
from depai_nodes.chain.models import DataBatch, id32

__all__ = ["WalletError", "SpendingLedger", "parse_transfer", "Wallet", "Status", "IntentPolicy", "Intents",
           "ensure_identity"]

DAY_S = 86_400


class WalletError(ValueError):
    """A transfer request is invalid or not allowed (the message says why)."""


class Status:
    PENDING, SUBMITTED, CONFIRMED, REVERTED, FAILED = 0, 1, 2, 3, 4  # = depai/TxStatus constants


def parse_transfer(to: str, amount: str) -> tuple[str, int]:
    try:
        address = checksum(to)
    except InvalidAddressError as e:
        raise WalletError(f"InvalidAddressError: {e}") from None
    if not isinstance(amount, str) or not amount.isdigit() or len(amount) > 78:
        raise WalletError(f"amount must be a decimal integer of token base units, got {amount!r}")
    value = int(amount)
    if value <= 0 or value >= 2**256:
        raise WalletError(f"amount must be in 1..2**256-1, got {amount}")
    if int(address, 16) == 0:
        raise WalletError("refusing to pay the zero address (tokens would be burnt)")
    return address, value


@dataclass
class SpendingLedger:
    """What was spent per UTC day; ``reserve`` refuses what would exceed the cap (0: no cap)."""

    cap: int = 0
    spent: dict[int, int] = field(default_factory=dict)

    def reserve(self, amount: int, now_s: float | None = None) -> int:
        day = int((time.time() if now_s is None else now_s) // DAY_S)
        would = self.spent.get(day, 0) + amount
        if self.cap and would > self.cap:
            raise WalletError(f"spending cap exceeded: {would} > {self.cap} today (cap set by the fleet DAO)")
        self.spent[day] = would
        return day

    def release(self, day: int, amount: int) -> None:
        self.spent[day] = max(0, self.spent.get(day, 0) - amount)


class Wallet:
    """Queue of validated transfers, sent by one worker; ``on_status(request_id, status, tx_hash, block, error)``."""

    def __init__(self, fleet: Fleet, on_status: Callable[[str, int, str, int, str], None], *, max_queue: int = 100):
        self.fleet = fleet
        self.on_status = on_status
        self.ledger = SpendingLedger()
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wallet", daemon=True)

    def start(self) -> "Wallet":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(5.0)

    def set_cap(self, cap: int) -> None:
        with self._lock:
            self.ledger.cap = cap

    def request(self, request_id: str, to: str, amount: str) -> bool:
        """Validate and queue; False (with a FAILED status) when refused."""
        try:
            if not request_id:
                raise WalletError("empty request_id")
            with self._lock:
                if request_id in self._seen:
                    raise WalletError(f"duplicate request_id {request_id!r} (already handled)")
                address, value = parse_transfer(to, amount)
                day = self.ledger.reserve(value)
                self._seen.add(request_id)
            try:
                self._q.put_nowait((request_id, address, value, day))
            except queue.Full:
                with self._lock:
                    self.ledger.release(day, value)
                raise WalletError(f"wallet queue full ({self._q.maxsize} pending); try again later") from None
        except WalletError as e:
            self.on_status(request_id, Status.FAILED, "", 0, f"WalletError: {e}")
            return False
        self.on_status(request_id, Status.PENDING, "", 0, "")
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._q.get()
            if item is None:
                return
            request_id, address, value, day = item
            try:
                call = self.fleet.token.prepare("transfer", address, value)
                tx_hash = self.fleet.client.transact(call, wait=False)
                self.on_status(request_id, Status.SUBMITTED, tx_hash, 0, "")
                r = self.fleet.client.wait_receipt(tx_hash)
                if r.status != 1:
                    raise self.fleet.client._mined_revert(call, r)
                self.on_status(request_id, Status.CONFIRMED, tx_hash, r.block_number, "")
            except ChainError as e:
                with self._lock:
                    self.ledger.release(day, value)  # not spent after all
                status = Status.REVERTED if type(e).__name__ == "ContractRevertError" else Status.FAILED
                self.on_status(request_id, status, getattr(e, "tx_hash", ""), 0, f"{type(e).__name__}: {e}")


# ---------------------------------------------------------------------------- intents

class IntentPolicy(BaseModel):
    """What the wallet agrees to sign for other processes (its node parameters set these)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_stake: int = Field(0, ge=0, description="most TaskMarket stake the wallet locks on request; 0: staking refused")
    max_anchors_per_minute: int = Field(120, ge=0, description="anchor requests signed per rolling minute; 0: no limit")
    max_uri_bytes: int = Field(512, ge=1, le=512, description="longest batch URI accepted")
    max_batch_messages: int = Field(10_000_000, ge=1, description="largest batch (leaves) accepted")
    max_clock_skew_s: int = Field(300, ge=0, description="a batch may end at most this far in the future")
    max_name_bytes: int = Field(2560, ge=1, le=2560, description="longest DID attribute value accepted")


def _invalid(error: str, reason: str, machine: str) -> Outcome:
    return Outcome(Result.INVALID_REQUEST, machine, error=error, reason=reason)


def _decimal(value: str, what: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 78:
        raise WalletError(f"{what} must be a decimal integer of token base units, got {value!r}")
    n = int(value)
    if n >= 2**256:
        raise WalletError(f"{what} must be below 2**256")
    return n


def ensure_identity(fleet: Fleet, name: str, stake: int = 0, validity_blocks: int = 0) -> tuple[list[str], str]:
    """Create or fix the DID attribute and (stake > 0) the market registration/stake.

    Returns (what was done, hash of the last transaction or ""). Idempotent: nothing is sent
    when the chain already says what is asked. The stake is only ever topped up."""
    done, last = [], ""
    value = name.encode()
    try:
        current = fleet.attribute(fleet.me, MACHINE_ATTRIBUTE)["value"]
    except ContractRevertError as e:
        if e.error != "AttributeNotFound":
            raise
        current = None
    if current is None:
        last = fleet.did.transact("addAttribute", fleet.me, MACHINE_ATTRIBUTE, value, validity_blocks).tx_hash
        done.append(f"added DID attribute depai:machine={name}")
    elif current != value:
        last = fleet.did.transact("updateAttribute", fleet.me, MACHINE_ATTRIBUTE, value, validity_blocks).tx_hash
        done.append(f"updated DID attribute depai:machine={name}")
    if stake > 0:
        info = fleet.machine_info()
        if not info.registered:
            last = fleet.register_machine(stake).tx_hash
            done.append(f"registered in the TaskMarket with stake {stake}")
        elif info.stake < stake:
            fleet.approve(stake - info.stake)
            last = fleet.market.transact("addStake", stake - info.stake).tx_hash
            done.append(f"topped the stake up to {stake}")
    return done, last


class Intents:
    """The wallet's intent handlers: validate, apply the policy, sign with the machine key, send.

    Thread-safe; callers get an ``Outcome`` for every request, never an exception (a bug in a
    handler is the only thing that raises)."""

    def __init__(self, fleet: Fleet, policy: IntentPolicy | None = None, *, clock=time.time):
        self.fleet = fleet
        self.policy = policy or IntentPolicy()
        self._clock = clock
        self._recent: list[float] = []
        self._lock = threading.Lock()

    @property
    def machine(self) -> str:
        return self.fleet.me

    def set_policy(self, policy: IntentPolicy) -> None:
        with self._lock:
            self.policy = policy

    # ------------------------------------------------------------------ anchoring

    def check_anchor(self, req: AnchorRequest) -> tuple[DataBatch | None, Outcome | None]:
        """(the batch to sign, None) or (None, the refusal)."""
        me, p = self.machine, self.policy
        try:
            bid = id32(req.batch_id)
        except (ValueError, AttributeError):
            return None, _invalid("InvalidBatchId", f"batch_id must be 1..32 bytes of UTF-8, got {req.batch_id!r:.80}", me)
        if not req.batch_id.isprintable():
            return None, _invalid("InvalidBatchId", "batch_id must be printable text", me)
        root = req.root or ""
        try:
            raw_root = bytes.fromhex(root[2:]) if root.startswith("0x") and len(root) == 66 else b""
        except ValueError:
            raw_root = b""
        if len(raw_root) != 32:
            return None, _invalid("InvalidRoot", f"root must be 0x + 64 hex digits, got {root!r:.80}", me)
        if raw_root == bytes(32):
            return None, _invalid("InvalidRoot", "root is all zero (an empty tree is not a batch)", me)
        if req.message_count < 1:
            return None, _invalid("InvalidMessageCount", "message_count must be >= 1", me)
        if req.message_count > p.max_batch_messages:
            return None, Outcome(Result.REJECTED_BY_POLICY, me, error="PolicyRefused",
                                 reason=f"message_count {req.message_count} above the wallet's max_batch_messages {p.max_batch_messages}")
        if req.end_time < req.start_time:
            return None, _invalid("InvalidTimeRange", f"end_time {req.end_time} before start_time {req.start_time}", me)
        if req.end_time >= 2**64 or req.start_time < 0:
            return None, _invalid("InvalidTimeRange", "times must be unix seconds in 0..2**64-1", me)
        now = self._clock()
        if req.end_time > now + p.max_clock_skew_s:
            return None, Outcome(Result.REJECTED_BY_POLICY, me, error="PolicyRefused",
                                 reason=f"end_time {req.end_time} is {req.end_time - int(now)} s in the future (max_clock_skew_s {p.max_clock_skew_s})")
        if not req.uri.isprintable():
            return None, _invalid("InvalidUri", "uri must be printable text", me)
        if len(req.uri.encode()) > p.max_uri_bytes:
            return None, Outcome(Result.REJECTED_BY_POLICY, me, error="PolicyRefused",
                                 reason=f"uri of {len(req.uri.encode())} bytes above the wallet's max_uri_bytes {p.max_uri_bytes}")
        try:
            batch = DataBatch(machine=me, batch_id=bid, root=raw_root, message_count=req.message_count,
                              start_time=req.start_time, end_time=req.end_time, uri=req.uri)
        except ValidationError as e:
            return None, _invalid("InvalidRequest", e.errors()[0].get("msg", "invalid batch"), me)
        return batch, None

    def _take_rate_slot(self) -> bool:
        limit = self.policy.max_anchors_per_minute
        if not limit:
            return True
        now = self._clock()
        with self._lock:
            self._recent = [t for t in self._recent if now - t < 60.0]
            if len(self._recent) >= limit:
                return False
            self._recent.append(now)
            return True

    def anchor(self, req: AnchorRequest) -> Outcome:
        """Sign the batch (EIP-712, machine = this wallet's account) and anchor it in DataRegistry.

        A ``BatchExists`` revert with the same root on chain means an earlier attempt landed:
        SUCCESS with ``already_anchored``. With another root it is REVERTED (never overwritten)."""
        batch, refusal = self.check_anchor(req)
        if refusal is not None:
            return refusal
        me = self.machine
        if not self._take_rate_slot():
            return Outcome(Result.BUSY, me, error="RateLimited",
                           reason=f"more than {self.policy.max_anchors_per_minute} anchors in the last minute; retry later")
        try:
            r = self.fleet.anchor(batch)
            return Outcome(Result.SUCCESS, me, r.tx_hash, r.block_number)
        except ContractRevertError as e:
            if e.error == "BatchExists":
                try:
                    rec = self.fleet.batch_record(me, batch.batch_id)
                except ChainError as e2:
                    return outcome_from_error(e2, me)
                if rec.root == batch.root:
                    return Outcome(Result.SUCCESS, me, e.tx_hash, rec.anchored_at_block, already_anchored=True)
                return Outcome(Result.REVERTED, me, e.tx_hash, error="BatchExists",
                               reason=f"batch {req.batch_id!r} is already anchored with another root 0x{rec.root.hex()}")
            return outcome_from_error(e, me)
        except ChainError as e:
            return outcome_from_error(e, me)

    # ------------------------------------------------------------------ identity

    def ensure_identity(self, req: IdentityRequest) -> Outcome:
        """DID attribute = ``machine_name``; with stake > 0, registered holding >= stake (<= max_stake)."""
        me, p = self.machine, self.policy
        name = req.machine_name
        if not name or not name.isprintable():
            return _invalid("InvalidName", "machine_name must be non-empty printable text", me)
        if len(name.encode()) > p.max_name_bytes:
            return _invalid("InvalidName", f"machine_name longer than {p.max_name_bytes} bytes", me)
        try:
            stake = _decimal(req.stake, "stake")
        except WalletError as e:
            return _invalid("InvalidStake", str(e), me)
        if stake > p.max_stake:
            return Outcome(Result.REJECTED_BY_POLICY, me, error="PolicyRefused",
                           reason=f"stake {stake} above the wallet's max_stake {p.max_stake}"
                                  + (" (staking is off: set the wallet's max_stake)" if p.max_stake == 0 else ""))
        try:
            steps, last = ensure_identity(self.fleet, name, stake)
        except ChainError as e:
            return outcome_from_error(e, me)
        return Outcome(Result.SUCCESS, me, last, steps=steps)
