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
from typing import Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from depai_nodes.chain.config import checksum
from depai_nodes.chain.errors import ChainError, ContractRevertError, InvalidAddressError, TxRejectedError
from depai_nodes.chain.fleet import MACHINE_ATTRIBUTE, Fleet
from depai_nodes.chain.intents import AnchorRequest, IdentityRequest, Outcome, Result, content_batch_id, outcome_from_error
from depai_nodes.chain.models import DataBatch, id32
from depai_nodes.common.logthrottle import Outage

from .state import CONFIRMED, FAILED, PENDING, REVERTED, SUBMITTED, WalletState, WalletStateError

__all__ = ["WalletError", "parse_transfer", "Wallet", "Status", "IntentPolicy", "Intents", "ensure_identity",
           "WalletState", "WalletStateError"]


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


class Wallet:
    """Payments: validated, allow-listed, capped, durable, sent by one worker that never dies.

    ``on_status(request_id, status, tx_hash, block, error)`` reports progress. ``state`` is the
    durable ledger (``WalletState``): a request id is executed at most once, across restarts;
    the daily spend survives restarts, so the cap holds. Every request ends with a status; no
    exception leaves the worker except ``WalletStateError`` (the ledger cannot be written: the
    process must end, exit code 1, and be restarted rather than pay without memory).

    ``allowed_payees``: who may be paid at all (EIP-55 addresses). Empty: every transfer is
    refused; the transfer topic is open to any DDS peer, so without this a stranger could make
    the robot pay anyone (up to the cap).
    """

    def __init__(self, fleet: Fleet, on_status: Callable[[str, int, str, int, str], None], *, state: WalletState | None = None,
                 max_queue: int = 100, allowed_payees: Iterable[str] = (), on_log: Callable[[str, str], None] | None = None,
                 maintain_period_s: float = 2.0, watch=None, on_chain_change: Callable[[Fleet], None] | None = None):
        self.fleet = fleet
        self._lock = threading.Lock()
        self.on_status = on_status
        self.on_log = on_log or (lambda level, text: None)
        self.state = state if state is not None else WalletState(None, fleet.me)
        self.cap: int | None = self.state.cap  # None: no cap known yet -> transfers refused (fail closed)
        self.allowed: frozenset[str] = frozenset()
        self.set_payees(allowed_payees)
        self.maintain_period_s = maintain_period_s
        self.watch = watch
        self.on_chain_change = on_chain_change
        self.outage = Outage("wallet: chain")
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wallet", daemon=True)
        for rid, _ in self.state.open_requests(PENDING):  # accepted before a restart, never signed: resume
            if self._q.full():
                self.state.update(rid, FAILED, error="WalletRestarted: queue full at start; not sent")
            else:
                self._q.put_nowait(rid)

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

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def set_cap(self, cap: int) -> None:
        """The daily cap (0: none), remembered in the ledger so a restarted wallet starts capped."""
        with self._lock:
            self.cap = cap
        self.state.set_cap(cap)

    def set_payees(self, payees: Iterable[str]) -> None:
        """Replace the allow-list (WalletError naming the bad entry; the old list stays then)."""
        out = set()
        for p in payees:
            try:
                out.add(checksum(p))
            except InvalidAddressError as e:
                raise WalletError(f"allowed_payees: {e}") from None
        with self._lock:
            self.allowed = frozenset(out)

    def request(self, request_id: str, to: str, amount: str) -> bool:
        """Validate, record durably, queue; False (with a status) when refused or already known."""
        try:
            if not request_id or len(request_id) > 128 or not request_id.isprintable():
                raise WalletError("request_id must be 1..128 printable characters")
            known = self.state.get(request_id)
            if known is not None:
                self._report_known(request_id, known)
                return False
            address, value = parse_transfer(to, amount)
            with self._lock:
                if address not in self.allowed:
                    raise WalletError(f"PayeeNotAllowed: {address} is not in the wallet's allowed_payees"
                                      + (" (empty: transfers are off)" if not self.allowed else ""))
                if self.cap is None:
                    raise WalletError("NoSpendingCap: no fleet policy (spending cap) received yet; transfers wait for it")
                if self._q.full():
                    raise WalletError(f"wallet queue full ({self._q.maxsize} pending); try again later")
                ok, why, _ = self.state.accept(request_id, address, value, self.cap)
                if not ok:
                    raise WalletError(why)
                self._q.put_nowait(request_id)
        except WalletError as e:
            self.on_status(request_id, Status.FAILED, "", 0, f"WalletError: {e}")
            return False
        self.on_status(request_id, Status.PENDING, "", 0, "")
        return True

    def _report_known(self, rid: str, r: dict) -> None:
        """A request id seen before (this run or an earlier one): say what became of it, do nothing."""
        st = r["state"]
        code = {PENDING: Status.PENDING, SUBMITTED: Status.SUBMITTED, CONFIRMED: Status.CONFIRMED,
                REVERTED: Status.REVERTED, FAILED: Status.FAILED}[st]
        self.on_status(rid, code, r.get("tx_hash", ""), int(r.get("block", 0)),
                       f"DuplicateRequest: request_id {rid!r} was already handled ({st}); a request id is executed at most once")

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=self.maintain_period_s)
            except queue.Empty:
                item = ""
            if item is None:
                return
            try:
                if item:
                    self._execute(item)
                self._maintain()
            except WalletStateError:
                raise  # fatal: the process ends (runner: exit 1) and is restarted
            except Exception as e:  # a bug must not kill the worker: the request ends, the thread lives on
                self.on_log("error", f"internal error on request {item!r}: {type(e).__name__}: {e}")
                if item:
                    r = self.state.get(item)
                    if r is not None and r["state"] == PENDING:
                        self.state.update(item, FAILED, error=f"InternalError: {type(e).__name__}")
                        self.on_status(item, Status.FAILED, "", 0, f"InternalError: {type(e).__name__}: {e}")
                self._resync()

    def _resync(self) -> None:
        try:
            self.fleet.client.resync_nonce()
        except ChainError:
            self.fleet.client._nonce = None  # re-read at the next transaction

    def _chain_failed(self, e: ChainError) -> None:
        if self.watch is not None:
            self.watch._next = 0.0  # on errors, check which chain this is at once (a reset shows as errors first)
        line = self.outage.failed(f"{type(e).__name__}: {e}")
        if line:
            self.on_log("warning", line)

    def _chain_ok(self) -> None:
        line = self.outage.recovered()
        if line:
            self.on_log("info", line)

    def _execute(self, rid: str) -> None:
        r = self.state.get(rid)
        if r is None or r["state"] != PENDING:
            return
        fleet = self.fleet
        client = fleet.client
        call = fleet.token.prepare("transfer", r["to"], int(r["amount"]))
        try:
            genesis = client.genesis_hash()
            gas = client.estimate_gas(call)  # a revert shows here, before anything is signed
        except ContractRevertError as e:
            self.state.update(rid, REVERTED, error=f"ContractRevertError: {e}")
            self.on_status(rid, Status.REVERTED, "", 0, f"ContractRevertError: {e}")
            return
        except ChainError as e:  # nothing signed: definitely not paid
            self.state.update(rid, FAILED, error=f"{type(e).__name__}: {e}")
            self.on_status(rid, Status.FAILED, "", 0, f"{type(e).__name__}: {e}")
            self._chain_failed(e)
            self._resync()
            return
        with client.nonce_lock:
            try:
                raw, tx_hash, nonce = client.sign_call(call, gas)
            except ChainError as e:
                self.state.update(rid, FAILED, error=f"{type(e).__name__}: {e}")
                self.on_status(rid, Status.FAILED, "", 0, f"{type(e).__name__}: {e}")
                self._resync()
                return
            # on disk before it leaves: after a crash this request is resolved by this hash
            self.state.update(rid, SUBMITTED, tx_hash=tx_hash, nonce=nonce, raw=raw, genesis=genesis)
            try:
                client.send_raw(raw, tx_hash)
            except TxRejectedError as e:
                self._refused(rid, tx_hash, nonce, e)
                return
            except ChainError as e:  # unknown whether the node got it: the resolver finds out
                self.on_status(rid, Status.SUBMITTED, tx_hash, 0,
                               f"{type(e).__name__}: {e}; unknown whether it was received: resolved by its tx hash")
                self._chain_failed(e)
                return
        self.on_status(rid, Status.SUBMITTED, tx_hash, 0, "")
        try:
            rec = client.wait_receipt(tx_hash)
        except ChainError as e:
            self.on_status(rid, Status.SUBMITTED, tx_hash, 0,
                           f"{type(e).__name__}: {e}; still tracked by its tx hash (CONFIRMED or REVERTED follows when it is mined)")
            self._resync()
            return
        self._chain_ok()
        self._finish(rid, call, rec)

    def _refused(self, rid: str, tx_hash: str, nonce: int, e: ChainError) -> None:
        try:
            kind, rec = self.fleet.client.lookup_tx(tx_hash)
        except ChainError:
            kind, rec = "?", None
        if kind == "unknown":  # refused and not in the pool: it cannot be mined
            self.state.update(rid, FAILED, error=f"TxRejectedError: {e}")
            self.on_status(rid, Status.FAILED, tx_hash, 0, f"TxRejectedError: {e}")
        elif kind == "mined":
            self._finish(rid, None, rec)
        self._resync()

    def _finish(self, rid: str, call, rec) -> None:
        if rec.status == 1:
            self.state.update(rid, CONFIRMED, block=rec.block_number, raw="")
            self.on_status(rid, Status.CONFIRMED, rec.tx_hash, rec.block_number, "")
            return
        r = self.state.get(rid) or {}
        if call is None:
            call = self.fleet.token.prepare("transfer", r.get("to"), int(r.get("amount", 0)))
        try:
            err = f"ContractRevertError: {self.fleet.client._mined_revert(call, rec)}"
        except ChainError as e:
            err = f"ContractRevertError: reverted ({type(e).__name__} while decoding)"
        self.state.update(rid, REVERTED, block=rec.block_number, error=err, raw="")
        self.on_status(rid, Status.REVERTED, rec.tx_hash, rec.block_number, err)

    # ------------------------------------------------------------------ maintenance (idle worker)

    def _maintain(self) -> None:
        """Chain identity check (due periodically) and the in-flight requests resolved by hash."""
        client = self.fleet.client
        try:
            if self.watch is not None and self.watch.due():
                change = self.watch.check(client)
                if change is not None:
                    self._adopt(change)
            for rid, r in self.state.open_requests(SUBMITTED):
                self._resolve(rid, r)
        except ChainError as e:
            self._chain_failed(e)
            return
        self._chain_ok()

    def _adopt(self, change) -> None:
        client = self.fleet.client
        if change.rewound:
            self._resync()
            self.on_log("warning", f"{change.describe()}: nonce re-synchronised ({client._nonce})")
            return
        client.adopt(change.config)
        self.fleet = Fleet(client)
        if self.on_chain_change is not None:
            self.on_chain_change(self.fleet)
        self._resync()
        self.on_log("warning", f"{change.describe()}: nonce re-synchronised ({client._nonce}); requests sent on the old chain are failed")

    def _resolve(self, rid: str, r: dict) -> None:
        client = self.fleet.client
        h = r.get("tx_hash", "")
        if r.get("genesis") and r["genesis"] != client.genesis_hash():
            self.state.update(rid, FAILED, error="ChainReset: sent on a chain that is gone", raw="")
            self.on_status(rid, Status.FAILED, h, 0, "ChainReset: it was sent on a chain that has since been reset")
            return
        kind, rec = client.lookup_tx(h)
        if kind == "mined":
            self._finish(rid, None, rec)
            self.on_log("info", f"request {rid!r}: resolved by its tx hash {h}: {'CONFIRMED' if rec.status == 1 else 'REVERTED'} "
                                f"in block {rec.block_number}")
        elif kind == "unknown":
            if client.confirmed_nonce() > int(r.get("nonce", -1)):
                self.state.update(rid, FAILED, error="TxDropped: its nonce was used by another transaction", raw="")
                self.on_status(rid, Status.FAILED, h, 0, "TxDropped: never mined, its nonce was used by another transaction")
                self._resync()
            elif r.get("raw"):
                try:  # the very same signed transaction (same nonce): it can be mined at most once
                    client.send_raw(r["raw"], h)
                    self.on_log("info", f"request {rid}: re-sent the same signed transaction {h} (the node did not have it)")
                except TxRejectedError as e:
                    self._refused(rid, h, int(r.get("nonce", -1)), e)


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
    machine_name: str = Field("", max_length=2560, description="the only DID name the wallet sets (its robot's); empty: identity requests refused")


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
        root = req.root if isinstance(req.root, str) else ""
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
        if req.message_count >= 2**64:
            return None, _invalid("InvalidMessageCount", "message_count must fit uint64", me)
        expected = content_batch_id(raw_root, req.message_count, req.start_time, req.end_time)
        if req.batch_id != expected:
            # content-derived ids: nobody can take a batch's id before the batch exists (squatting)
            return None, _invalid("BatchIdMismatch", f"batch_id must be content_batch_id(root, message_count, start_time, "
                                                     f"end_time) = {expected}, got {req.batch_id!r:.80}", me)
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
            self._resync()
            return outcome_from_error(e, me)

    def _resync(self) -> None:
        """After any failure the nonce is taken from the node again (a lost or refused send)."""
        try:
            self.fleet.client.resync_nonce()
        except ChainError:
            self.fleet.client._nonce = None

    # ------------------------------------------------------------------ identity

    def ensure_identity(self, req: IdentityRequest) -> Outcome:
        """DID attribute = ``machine_name``; with stake > 0, registered holding >= stake (<= max_stake)."""
        me, p = self.machine, self.policy
        name = req.machine_name
        if not name or not name.isprintable():
            return _invalid("InvalidName", "machine_name must be non-empty printable text", me)
        if len(name.encode()) > p.max_name_bytes:
            return _invalid("InvalidName", f"machine_name longer than {p.max_name_bytes} bytes", me)
        if name != p.machine_name:
            # the wallet sets only its own robot's name: a stranger cannot rename the machine
            return Outcome(Result.REJECTED_BY_POLICY, me, error="NotMyName",
                           reason=f"machine_name {name!r:.80} is not this wallet's machine_name {p.machine_name!r}"
                                  + (" (none configured: set the wallet's machine_name)" if not p.machine_name else ""))
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
            self._resync()
            return outcome_from_error(e, me)
        return Outcome(Result.SUCCESS, me, last, steps=steps)
