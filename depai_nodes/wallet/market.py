"""The wallet's TaskMarket intents: accept a task, complete it with a proof of arrival, post one.

ROS-free. Like the other intents (core.Intents) each request is validated field by field and
against a policy before anything is signed, and the wallet builds what it signs itself:

- ``accept``: the task is read on chain first (open, deadline ahead, reward >= the fleet's
  minimum price, not already ours: SUCCESS ``already_done``); the machine's collateral must
  cover it (stake >= (tasks held + 1) * minStake) and at most ``max_active_tasks`` are held;
- ``complete``: the task must be this machine's and accepted; the arrival record's leaf is
  rebuilt from the fields and the proof checked against the root THIS machine anchored for
  that batch before the wallet signs the EIP-712 report (so it only ever signs what the
  machine already committed to in its own telemetry); a task already completed by this machine
  is SUCCESS ``already_done`` (never paid twice: the contract settles a task once);
- ``post`` (a requester's wallet): goal, tolerance (<= the DAO's cap), deadline window, reward
  (>= the fleet's minimum, <= ``max_reward``) and a total ``post_budget``; the reward also counts
  against the DAO's daily spending cap in the wallet's durable ledger (shared with payments).
  ``request_id`` is posted at most once, across restarts: the signed postTask is on disk before it
  is sent, and a request id seen again is resolved from the ledger (by its tx hash), never
  signed anew.

Every call sent is checked against an allow-list of (contract, function) pairs; every answer is
a ``MarketOutcome`` with a result code (= the .srv constants) and a typed error, never an exception.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from depai_nodes.chain.config import checksum
from depai_nodes.chain.errors import ChainError, ContractRevertError, TxRejectedError
from depai_nodes.chain.fleet import Fleet, station_id
from depai_nodes.chain.intents import AcceptRequest, CompleteRequest, Outcome, PostRequest, Result, outcome_from_error
from depai_nodes.chain.merkle import verify
from depai_nodes.chain.models import TaskReport, TaskStatus, id32, to_mm

from .state import CONFIRMED, FAILED, PENDING, REVERTED, SUBMITTED, WalletState

__all__ = ["MarketPolicy", "MarketIntents", "MarketOutcome", "AcceptRequest", "CompleteRequest", "PostRequest",
           "ALLOWED_CALLS"]

# What these intents may ever send: (contract name in the chain config, function).
ALLOWED_CALLS = frozenset({("TaskMarket", "acceptTask"), ("TaskMarket", "completeTask"), ("TaskMarket", "postTask"),
                           ("FleetToken", "approve")})
_U64 = 2**64
_I64 = 2**63
MAX_PROOF = 64  # hashes: a tree of 2**64 leaves


@dataclass
class MarketOutcome(Outcome):
    already_done: bool = False
    task_id: str = ""
    reward: str = "0"


class MarketPolicy(BaseModel):
    """What the wallet agrees to do in the market for other processes (its node parameters)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_accepts_per_minute: int = Field(30, ge=0, description="acceptTask requests signed per rolling minute; 0: no limit")
    max_completes_per_minute: int = Field(30, ge=0, description="completeTask requests signed per rolling minute; 0: no limit")
    max_posts_per_minute: int = Field(10, ge=0, description="postTask requests signed per rolling minute; 0: no limit")
    max_active_tasks: int = Field(1, ge=0, description="tasks this machine holds at once at most; 0: accepting refused")
    post_budget: int = Field(0, ge=0, description="total reward this wallet escrows in posts, base units; 0: posting refused")
    max_reward: int = Field(0, ge=0, description="largest reward of one post; 0: only the budget limits it")
    min_deadline_s: int = Field(30, ge=0, description="a post's deadline at least this far ahead of chain time")
    max_deadline_s: int = Field(7 * 86_400, ge=1, description="and at most this far")


def _kind(result: int, me: str, error: str, reason: str, **kw) -> MarketOutcome:
    return MarketOutcome(result, me, error=error, reason=reason, **kw)


def _invalid(error: str, reason: str, me: str) -> MarketOutcome:
    return _kind(Result.INVALID_REQUEST, me, error, reason)


def _refused(error: str, reason: str, me: str) -> MarketOutcome:
    return _kind(Result.REJECTED_BY_POLICY, me, error, reason)


def _from_error(e: ChainError, me: str, **kw) -> MarketOutcome:
    o = outcome_from_error(e, me)
    return MarketOutcome(o.result, o.machine, o.tx_hash, o.block_number, o.error, o.reason, **kw)


def _task_id(text: str, me: str) -> tuple[int, MarketOutcome | None]:
    if not isinstance(text, str) or not text.isdigit() or len(text) > 20 or not 1 <= int(text) < _U64:
        return 0, _invalid("InvalidTaskId", f"task_id must be a decimal integer in 1..2**64-1, got {text!r:.40}", me)
    return int(text), None


class _Rate:
    def __init__(self) -> None:
        self._times: list[float] = []

    def take(self, limit: int, now: float) -> bool:
        if not limit:
            return True
        self._times = [t for t in self._times if now - t < 60.0]
        if len(self._times) >= limit:
            return False
        self._times.append(now)
        return True


class MarketIntents:
    """Thread-safe (one lock: one market intent at a time). ``state``: the wallet's ledger;
    ``cap()``: the DAO's daily spending cap as the wallet knows it (None: not known yet)."""

    def __init__(self, fleet: Fleet, policy: MarketPolicy | None = None, *, state: WalletState | None = None,
                 cap=lambda: 0, clock=time.time):
        self.fleet = fleet
        self.policy = policy or MarketPolicy()
        self.state = state if state is not None else WalletState(None, fleet.me)
        self._cap = cap
        self._clock = clock
        self._lock = threading.Lock()
        self._rates = {"accept": _Rate(), "complete": _Rate(), "post": _Rate()}

    @property
    def machine(self) -> str:
        return self.fleet.me

    def set_policy(self, policy: MarketPolicy) -> None:
        self.policy = policy

    def _busy(self, what: str, limit: int) -> MarketOutcome | None:
        if self._rates[what].take(limit, self._clock()):
            return None
        return _kind(Result.BUSY, self.machine, "RateLimited", f"more than {limit} {what} requests in the last minute; retry later")

    def _checked(self, call):
        """The allow-list: a call to anything but the configured market/token functions is refused."""
        name = next((n for n, c in (("TaskMarket", self.fleet.market), ("FleetToken", self.fleet.token))
                     if c.address == call.contract.address), None)
        if (name, call.fn) not in ALLOWED_CALLS:
            raise PermissionError(f"{call.fn} on {call.contract.address} is not an allowed market call")
        return call

    def _send(self, call):
        return self.fleet.client.transact(self._checked(call))

    def _resync(self) -> None:
        try:
            self.fleet.client.resync_nonce()
        except ChainError:
            self.fleet.client._nonce = None

    def _chain_time(self) -> int:
        return int(self.fleet.client.get_block("latest")["timestamp"], 16)

    # ------------------------------------------------------------------ accept

    def accept(self, req: AcceptRequest) -> MarketOutcome:
        with self._lock:
            return self._accept(req)

    def _accept(self, req: AcceptRequest) -> MarketOutcome:
        me, p = self.machine, self.policy
        tid, bad = _task_id(req.task_id, me)
        if bad:
            return bad
        out = dict(task_id=str(tid))
        try:
            t = self.fleet.task(tid)
            if t.machine == me and t.status in (TaskStatus.ACCEPTED, TaskStatus.COMPLETED):
                return MarketOutcome(Result.SUCCESS, me, already_done=True, reason=f"task {tid} is already this machine's "
                                     f"({t.status_name})", **out)
            if t.status != TaskStatus.OPEN:
                return _kind(Result.REVERTED, me, "TaskNotOpen", f"task {tid} is {t.status_name}"
                             + (f" (taken by {t.machine})" if t.machine else ""), **out)
            now = self._chain_time()
            if now > t.deadline:
                return _kind(Result.REVERTED, me, "DeadlinePassed", f"task {tid}'s deadline {t.deadline} has passed (chain time {now})", **out)
            snap = self.fleet.policy()
            if t.reward < snap.min_task_price:
                return _refused("PolicyRefused", f"reward {t.reward} below the fleet's minimum task price {snap.min_task_price}", me)
            info = self.fleet.machine_info()
            if info.active_tasks >= p.max_active_tasks:
                return _refused("PolicyRefused", f"this machine holds {info.active_tasks} task(s); the wallet's max_active_tasks "
                                f"is {p.max_active_tasks}", me)
            collateral = self.fleet.market.call("minStake")
            need = (info.active_tasks + 1) * collateral
            if info.stake < need:
                return _refused("CollateralTooLow", f"stake {info.stake} does not cover {info.active_tasks + 1} task(s) "
                                f"({need} needed)", me)
        except ContractRevertError as e:
            return _from_error(e, me, **out)  # TaskNotFound
        except ChainError as e:
            return _from_error(e, me, **out)
        busy = self._busy("accept", p.max_accepts_per_minute)
        if busy:
            return busy
        try:
            r = self._send(self.fleet.market.prepare("acceptTask", tid))
            return MarketOutcome(Result.SUCCESS, me, r.tx_hash, r.block_number, **out)
        except ContractRevertError as e:
            try:  # lost the race, or our own earlier attempt landed meanwhile
                t = self.fleet.task(tid)
                if t.machine == me and t.status == TaskStatus.ACCEPTED:
                    return MarketOutcome(Result.SUCCESS, me, e.tx_hash, already_done=True, **out)
            except ChainError:
                pass
            return _from_error(e, me, **out)
        except ChainError as e:
            self._resync()
            return _from_error(e, me, **out)

    # ------------------------------------------------------------------ complete

    def complete(self, req: CompleteRequest) -> MarketOutcome:
        with self._lock:
            return self._complete(req)

    def _check_complete(self, req: CompleteRequest) -> tuple[tuple | None, MarketOutcome | None]:
        me = self.machine
        tid, bad = _task_id(req.task_id, me)
        if bad:
            return None, bad
        try:
            bid = id32(req.batch_id)
        except (ValueError, AttributeError):
            return None, _invalid("InvalidBatchId", f"batch_id must be 1..32 bytes of UTF-8, got {req.batch_id!r:.80}", me)
        if not req.batch_id.isprintable():
            return None, _invalid("InvalidBatchId", "batch_id must be printable text", me)
        for name in ("x_mm", "y_mm", "yaw_mrad"):
            v = getattr(req, name)
            if isinstance(v, bool) or not isinstance(v, int) or not -_I64 <= v < _I64:
                return None, _invalid("InvalidPose", f"{name} must be an int64", me)
        if isinstance(req.time, bool) or not isinstance(req.time, int) or not 0 <= req.time < _U64:
            return None, _invalid("InvalidTime", "time must be unix seconds in 0..2**64-1", me)
        if len(req.proof) > MAX_PROOF:
            return None, _invalid("InvalidProof", f"a proof has at most {MAX_PROOF} hashes, got {len(req.proof)}", me)
        proof = []
        for h in req.proof:
            try:
                raw = bytes.fromhex(h[2:]) if isinstance(h, str) and h.startswith("0x") and len(h) == 66 else b""
            except ValueError:
                raw = b""
            if len(raw) != 32:
                return None, _invalid("InvalidProof", f"proof entries must be 0x + 64 hex digits, got {h!r:.80}", me)
            proof.append(raw)
        report = TaskReport(task_id=tid, machine=me, batch_id=bid, x_mm=req.x_mm, y_mm=req.y_mm, yaw_mrad=req.yaw_mrad,
                            time=req.time)
        return (tid, report, proof), None

    def _complete(self, req: CompleteRequest) -> MarketOutcome:
        me, p = self.machine, self.policy
        checked, bad = self._check_complete(req)
        if bad:
            return bad
        tid, report, proof = checked
        out = dict(task_id=str(tid))
        try:
            t = self.fleet.task(tid)
            if t.machine != me:
                # a stranger asking this wallet to settle someone else's task (or an open one)
                return _refused("NotMyTask", f"task {tid} is not this machine's" + (f" (it is {t.machine}'s)" if t.machine else
                                f" ({t.status_name})"), me)
            if t.status == TaskStatus.COMPLETED:
                return MarketOutcome(Result.SUCCESS, me, already_done=True, reward=str(t.reward),
                                     reason=f"task {tid} was already completed (batch {t.batch_id.hex()})", **out)
            if t.status != TaskStatus.ACCEPTED:
                return _kind(Result.REVERTED, me, "TaskNotAccepted", f"task {tid} is {t.status_name}", **out)
            root = self.fleet.data.call("batchRoot", me, report.batch_id)["root"]
            if root == bytes(32):
                return _invalid("BatchNotAnchored", f"batch {req.batch_id!r} is not anchored by this machine", me)
            if not verify(report.leaf(), proof, root):
                return _invalid("ProofMismatch", "the arrival record's leaf and proof do not lead to the root this machine "
                                f"anchored for batch {req.batch_id!r}", me)
        except ChainError as e:
            return _from_error(e, me, **out)
        busy = self._busy("complete", p.max_completes_per_minute)
        if busy:
            return busy
        try:
            sig = self.fleet.sign_report(report)
            r = self._send(self.fleet.complete_call(report, proof, sig))
        except ContractRevertError as e:
            try:  # an earlier attempt of ours (a TIMEOUT answer) landed meanwhile
                t = self.fleet.task(tid)
                if t.machine == me and t.status == TaskStatus.COMPLETED:
                    return MarketOutcome(Result.SUCCESS, me, e.tx_hash, already_done=True, reward=str(t.reward), **out)
            except ChainError:
                pass
            return _from_error(e, me, **out)
        except ChainError as e:
            self._resync()
            return _from_error(e, me, **out)
        paid, slashed = "0", None
        for raw in r.logs:
            ev = self.fleet.market.abi.decode_log(raw)
            if ev and ev["event"] == "TaskCompleted":
                paid = str(ev["reward"])
            elif ev and ev["event"] == "MachineSlashed":
                slashed = ev
        if slashed is not None:  # mined, but the arrival proved a violation: not a success
            reason = slashed["reason"].rstrip(b"\0").decode(errors="replace")
            return MarketOutcome(Result.REVERTED, me, r.tx_hash, r.block_number, error="MachineSlashed",
                                 reason=f"the arrival proved a violation ({reason}): {slashed['amount']} of the stake slashed", **out)
        return MarketOutcome(Result.SUCCESS, me, r.tx_hash, r.block_number, reward=paid, **out)

    # ------------------------------------------------------------------ post

    def post(self, req: PostRequest) -> MarketOutcome:
        with self._lock:
            return self._post(req)

    def _check_post(self, req: PostRequest) -> tuple[int | None, MarketOutcome | None]:
        me, p = self.machine, self.policy
        rid = req.request_id
        if not isinstance(rid, str) or not 1 <= len(rid) <= 64 or not rid.isprintable():
            return None, _invalid("InvalidRequestId", "request_id must be 1..64 printable characters", me)
        if not isinstance(req.station, str) or not req.station.isprintable() or len(req.station.encode()) > 32:
            return None, _invalid("InvalidStation", "station must be printable text of at most 32 bytes of UTF-8", me)
        for name in ("x", "y", "yaw", "tolerance"):
            v = getattr(req, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 1e9:
                return None, _invalid("InvalidPose", f"{name} must be a finite number (m / rad), got {v!r:.40}", me)
        if abs(to_mm(req.yaw)) > 3142:
            return None, _invalid("InvalidPose", f"yaw must be in [-pi, pi], got {req.yaw}", me)
        if to_mm(req.tolerance) < 1:
            return None, _invalid("InvalidTolerance", f"tolerance must be at least 1 mm, got {req.tolerance} m", me)
        if not isinstance(req.reward, str) or not req.reward.isdigit() or len(req.reward) > 78 or int(req.reward) >= 2**256:
            return None, _invalid("InvalidReward", f"reward must be a decimal integer of token base units, got {req.reward!r:.80}", me)
        reward = int(req.reward)
        if reward == 0:
            return None, _invalid("InvalidReward", "reward must be > 0", me)
        if p.max_reward and reward > p.max_reward:
            return None, _refused("PolicyRefused", f"reward {reward} above the wallet's max_reward {p.max_reward}", me)
        if isinstance(req.deadline, bool) or not isinstance(req.deadline, int) or not 0 < req.deadline < _U64:
            return None, _invalid("InvalidDeadline", "deadline must be unix seconds in 1..2**64-1", me)
        return reward, None

    def _post(self, req: PostRequest) -> MarketOutcome:
        me, p = self.machine, self.policy
        reward, bad = self._check_post(req)
        if bad:
            return bad
        key = f"post:{req.request_id}"
        known = self.state.get(key)
        if known is not None and known.get("kind") != "post":
            return _invalid("InvalidRequestId", f"request_id {req.request_id!r} is taken by another kind of request", me)
        if known is not None and known["state"] == FAILED:
            self.state.forget(key)  # definitely not posted (never signed, or dropped): it may be asked again
            known = None
        if known is not None:
            return self._known_post(key, known)
        if not p.post_budget:
            return _refused("PolicyRefused", "posting is off (the wallet's post_budget is 0)", me)
        used = self.state.committed("post")
        if used + reward > p.post_budget:
            return _refused("BudgetExceeded", f"{used} + {reward} above the wallet's post_budget {p.post_budget}", me)
        cap = self._cap()
        if cap is None:
            # not ready, not a verdict on the request: the same request is asked again (a starting
            # wallet hears the fleet policy a moment after its services are up)
            return _kind(Result.WALLET_UNAVAILABLE, me, "NoSpendingCap",
                         "no fleet policy (spending cap) received yet; posts wait for it: ask again")
        try:
            now = self._chain_time()
            if req.deadline < now + p.min_deadline_s or req.deadline > now + p.max_deadline_s:
                return _refused("PolicyRefused", f"deadline {req.deadline} outside chain time {now} + "
                                f"[{p.min_deadline_s}, {p.max_deadline_s}] s", me)
            max_tol = self.fleet.max_arrival_tolerance()
            if req.tolerance > max_tol:
                return _refused("ToleranceAboveCap", f"tolerance {req.tolerance} m above the DAO's cap {max_tol} m", me)
            min_price = self.fleet.policy().min_task_price
            if reward < min_price:
                return _refused("RewardBelowMinimum", f"reward {reward} below the fleet's minimum task price {min_price}", me)
            call = self._checked(self.fleet.post_task_call(req.x, req.y, req.yaw, req.deadline, reward,
                                                           tolerance=req.tolerance, station=req.station))
        except ChainError as e:
            return _from_error(e, me)
        busy = self._busy("post", p.max_posts_per_minute)
        if busy:
            return busy
        ok, why, _ = self.state.accept(key, self.fleet.market.address, reward, cap, kind="post")
        if not ok:
            return _refused("SpendingCapExceeded" if "cap" in why else "PolicyRefused", why, me)
        client = self.fleet.client
        try:
            # the market pulls a post's reward from its poster only (transferFrom(msg.sender)), so an
            # allowance up to the rest of the budget is safe and saves one transaction per post
            if self.fleet.token.call("allowance", me, self.fleet.market.address) < reward:
                self._send(self.fleet.token.prepare("approve", self.fleet.market.address, max(reward, p.post_budget - used)))
            gas = client.estimate_gas(call)  # a revert shows here, before the post is signed
        except ChainError as e:
            self.state.update(key, FAILED, error=f"{type(e).__name__}: {e}")
            self._resync()
            return _from_error(e, me)
        with client.nonce_lock:
            try:
                raw, tx_hash, nonce = client.sign_call(call, gas)
            except ChainError as e:
                self.state.update(key, FAILED, error=f"{type(e).__name__}: {e}")
                self._resync()
                return _from_error(e, me)
            # on disk before it leaves: after a crash this post is resolved by this hash, never signed again
            self.state.update(key, SUBMITTED, tx_hash=tx_hash, nonce=nonce, raw=raw, genesis=client.genesis_hash())
            try:
                client.send_raw(raw, tx_hash)
            except TxRejectedError as e:
                try:
                    kind, _ = client.lookup_tx(tx_hash)
                except ChainError:
                    kind = "?"
                if kind == "unknown":  # refused and not in the pool: it cannot be mined
                    self.state.update(key, FAILED, error=f"TxRejectedError: {e}", raw="")
                    self._resync()
                    return _from_error(e, me)
                if kind == "?":
                    return _from_error(e, me)
            except ChainError as e:  # unknown whether the node got it: asking again resolves it by the hash
                return _from_error(e, me)
        return self._await_post(key, tx_hash)

    def _await_post(self, key: str, tx_hash: str, known: bool = False) -> MarketOutcome:
        me = self.machine
        try:
            rec = self.fleet.client.wait_receipt(tx_hash)
        except ChainError as e:
            return _from_error(e, me)  # TIMEOUT (tx hash set): asking again resolves it by the hash
        return self._finish_post(key, rec, known)

    def _finish_post(self, key: str, rec, known: bool = False) -> MarketOutcome:
        """``known``: resolving a request id seen before (nothing newly signed: already_done)."""
        me = self.machine
        if rec.status == 1:
            tid = self.fleet.task_id_of(rec)
            self.state.update(key, CONFIRMED, block=rec.block_number, task_id=str(tid), raw="")
            return MarketOutcome(Result.SUCCESS, me, rec.tx_hash, rec.block_number, task_id=str(tid), already_done=known)
        err = f"postTask reverted in block {rec.block_number}"
        self.state.update(key, REVERTED, block=rec.block_number, error=err, raw="")
        return MarketOutcome(Result.REVERTED, me, rec.tx_hash, rec.block_number, error="ContractRevertError", reason=err)

    def _known_post(self, key: str, r: dict) -> MarketOutcome:
        """A request id seen before (this run or an earlier one): what became of it, resolved by its hash."""
        me, st, h = self.machine, r["state"], r.get("tx_hash", "")
        if st == CONFIRMED:
            return MarketOutcome(Result.SUCCESS, me, h, int(r.get("block", 0)), already_done=True, task_id=r.get("task_id", ""),
                                 reason="posted before under this request_id")
        if st == REVERTED:
            return MarketOutcome(Result.REVERTED, me, h, int(r.get("block", 0)), error="DuplicateRequest",
                                 reason=f"request_id already handled: its postTask reverted ({r.get('error', '')})"[:300])
        client = self.fleet.client
        try:
            if r.get("genesis") and r["genesis"] != client.genesis_hash():
                self.state.update(key, FAILED, error="ChainReset: sent on a chain that is gone", raw="")
                return _kind(Result.CHAIN_UNAVAILABLE, me, "ChainReset", "this post was sent on a chain that has since been reset")
            kind, rec = client.lookup_tx(h) if h else ("unknown", None)
            if kind == "mined":
                return self._finish_post(key, rec, True)
            if kind == "pending":
                return self._await_post(key, h, True)
            if st == PENDING or client.confirmed_nonce() > int(r.get("nonce", -1)):
                # never signed (a crash between ledger and signing), or its nonce went to another tx
                self.state.update(key, FAILED, error="TxDropped: never mined", raw="")
                return _kind(Result.CHAIN_UNAVAILABLE, me, "TxDropped", "the post was never mined; ask again with this request_id")
            if r.get("raw"):
                client.send_raw(r["raw"], h)  # the very same signed post (same nonce): mined at most once
                return self._await_post(key, h, True)
        except ChainError as e:
            return _from_error(e, me)
        return _kind(Result.CHAIN_UNAVAILABLE, me, "Unresolved", "the post's transaction is unknown; ask again later")
