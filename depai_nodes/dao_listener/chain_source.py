"""The fleet policy from the chain: FleetPolicy's decisions, each applied exactly once.

ROS-free. ``ChainPolicySource`` connects read-only (no key: the listener never signs), reads the
current policy, then follows FleetPolicy's ``PolicyChanged`` events (WebSocket subscription, or
paged eth_getLogs polling as the fallback) ``confirmations`` blocks deep, and after each one
re-reads the whole policy pinned to the event's block, so a robot never sees half an update.

Exactly once (issue 12 item 3). Every PolicyChanged log is a *decision*. Before it is applied:

- it must come from the configured FleetPolicy (emitter address), which must be owned by the
  configured timelock (checked at every connect: a config pointing at a look-alike contract is
  refused, and no policy is published from it);
- its transaction must be the DAO's: the timelock's ``CallExecuted`` targeting FleetPolicy in
  the same transaction (the proposal id then comes from the Governor's ``ProposalExecuted`` in
  that transaction), or the guardian's pause (``PausedSet(true, guardian)``), or a call whose
  sender is the owner itself (only possible on a dev chain, by impersonation);
- a malformed log (wrong topics or data) is ignored with a log line; a change by anyone else
  marks the contract untrusted: nothing more is published from it and its liveness stops, so the
  robots hold still (a contract that let a stranger change the rules is not the DAO's).

Applied decisions are logged (``on_applied``, with proposal id and transaction hash) and recorded
in a cursor persisted atomically in the state directory (cursor.py): a restart applies only the
decisions after it. Reorgs: every check (``check_period_s``) verifies that the cursor's block is
still on the chain; decisions whose blocks are gone are *un-applied* (``on_unapplied``), the
policy is re-read at the new head and published (it may carry a lower version), and the stream
restarts after the last decision still on the chain. With ``confirmations`` N > 0 a reorg
shallower than N never reaches the listener at all: the change is never applied.

Liveness (INTERFACES item 6): ``last_confirmed`` (monotonic s) is updated at every successful
read of the chain (connect, each check, each decision); the node stops its heartbeat when it is
older than its ``source_timeout``.

Which chain: the source identity is "chain:<chain id>:<genesis hash, first 10 chars>:<FleetPolicy
address>" (INTERFACES item 3). After a reset (a fresh local chain, a redeploy) the config file is
read again and the policy published under the new identity as a new version sequence; a chain
that went back in time (restored from an older state file) is re-read, like a reorg. Outages
are reported once when they start and once when they end (``Outage``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from depai_nodes.chain.backoff import Backoff
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import ChainConfig, default_config_path, load_config
from depai_nodes.chain.errors import ChainError
from depai_nodes.chain.events import EventStream
from depai_nodes.chain.fleet import read_policy
from depai_nodes.chain.models import PolicySnapshot
from depai_nodes.chain.watch import ChainWatch
from depai_nodes.common.logthrottle import Outage

from .core import KeepOutZone, Policy, PolicyError
from .cursor import Cursor, Decision, cursor_path, load_cursor, save_cursor

__all__ = ["snapshot_to_policy", "ChainPolicySource", "Decision"]


def snapshot_to_policy(snap: PolicySnapshot) -> Policy:
    """On-chain FleetPolicy snapshot -> the validated Policy model the node publishes."""
    try:
        return Policy(
            max_speed=snap.max_speed,
            paused=snap.paused,
            keep_out_zones=[KeepOutZone(id=z.id, polygon=z.polygon) for z in snap.keep_out_zones],
            min_task_price=snap.min_task_price,
            spending_cap=snap.spending_cap,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise PolicyError(f"on-chain policy v{snap.version} rejected: {where}: {first['msg']}") from None


def _what(raw) -> str:
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).rstrip(b"\0").decode("utf-8", "replace") or "?"
    return str(raw)


class _Untrusted(Exception):
    """A decision that is not the DAO's (the message says whose it is)."""


class ChainPolicySource:
    """Calls ``on_policy(policy, version, source)`` for the current policy and every change.

    ``on_error(message)`` hears about trouble (the first failure of an outage, rejected or
    ignored changes, a chain reset); ``on_info(message)`` (default: ``on_error``) about
    recoveries; ``on_applied(decision)`` / ``on_unapplied(decision, why)`` about each decision
    (default: a line to ``on_info`` / ``on_error``). Callbacks run on the source's threads: hand
    the data to the ROS executor (the node uses a queue and a guard condition).
    ``config``: a ChainConfig, or a path (None: the default config path), re-read after a reset.
    ``state_dir``: where the cursor is kept (None: no cursor, nothing persisted).
    ``confirmations``: None: the config's.
    """

    def __init__(self, config: ChainConfig | str | None, on_policy: Callable[[Policy, int, str], None],
                 on_error: Callable[[str], None], *, transport: str = "auto", retry_max_s: float = 5.0,
                 check_period_s: float = 2.0, on_info: Callable[[str], None] | None = None,
                 on_applied: Callable[[Decision], None] | None = None,
                 on_unapplied: Callable[[Decision, str], None] | None = None,
                 state_dir: str | Path | None = None, confirmations: int | None = None):
        if isinstance(config, ChainConfig):
            self.config, self.config_path = config, None
        else:
            self.config_path = config or default_config_path()
            self.config = load_config(self.config_path)
        self.on_policy = on_policy
        self.on_error = on_error
        self.on_info = on_info or on_error
        self.on_applied = on_applied or (lambda d: self.on_info(f"applied policy decision {d.describe()}"))
        self.on_unapplied = on_unapplied or (lambda d, why: self.on_error(f"un-applied policy decision {d.describe()}: {why}"))
        self.transport = transport
        self.retry_max_s = retry_max_s
        self.check_period_s = check_period_s
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._confirmations = confirmations
        self.client: ChainClient | None = None
        self.stream: EventStream | None = None
        self.source = ""
        self.watch = ChainWatch(self.config, self.config_path, period_s=check_period_s)
        self.outage = Outage(f"chain policy source ({self.config.rpc_url})")
        self.resets = 0
        self.last_confirmed = -float("inf")  # monotonic s of the last successful read of the chain
        self.confirmed_block = -1
        self.untrusted = ""                   # why this contract is not followed ("" while trusted)
        self.cursor: Cursor | None = None
        self._last_version = -1
        self._receipts: dict[str, dict] = {}
        self._snaps: dict[tuple[int, str], PolicySnapshot] = {}
        self._policy_addr = ""
        self._owner = ""
        self._stop = threading.Event()
        self._trouble = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="chain-policy", daemon=True)

    @property
    def confirmations(self) -> int:
        return self.config.confirmations if self._confirmations is None else self._confirmations

    def start(self) -> "ChainPolicySource":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._trouble.set()
        self._stop_stream()
        self._thread.join(5.0)

    def _stop_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.stop()

    def _alive(self, block: int | None = None) -> None:
        if self.untrusted:
            return  # an untrusted contract confirms nothing
        self.last_confirmed = time.monotonic()
        if block is not None:
            self.confirmed_block = max(self.confirmed_block, block) if block >= 0 else block

    def _failed(self, text: str) -> None:
        line = self.outage.failed(text)
        if line:
            self.on_error(line)

    def _recovered(self) -> None:
        line = self.outage.recovered()
        if line:
            self.on_info(line)

    # ------------------------------------------------------------------ reading

    def _snapshot(self, block: int, block_hash: str = "") -> PolicySnapshot:
        key = (block, block_hash)
        snap = self._snaps.get(key) if block_hash else None
        if snap is None:
            snap = read_policy(self.client, block)
            if block_hash:
                self._snaps = {key: snap}  # one is enough: events arrive in block order
        return snap

    def _publish_snapshot(self, snap: PolicySnapshot) -> None:
        if self.untrusted:
            return
        with self._lock:
            if snap.version <= self._last_version:
                return  # already published (a duplicate or an older event)
            self._last_version = snap.version
        try:
            policy = snapshot_to_policy(snap)
        except PolicyError as e:
            self.on_error(f"{e}; keeping the last valid policy")
            return
        self.on_policy(policy, snap.version, self.source)

    def _block_hash(self, number: int) -> str | None:
        block = self.client.get_block(number)
        return block.get("hash") if block else None

    def _save(self) -> None:
        if self.state_dir is None or self.cursor is None:
            return
        try:
            save_cursor(cursor_path(self.state_dir, self.source), self.cursor)
        except OSError as e:
            self.on_error(f"cannot save the policy cursor in {self.state_dir}: {e} (a restart may log decisions again)")

    # ------------------------------------------------------------------ decisions

    def _receipt(self, tx_hash: str) -> dict:
        r = self._receipts.get(tx_hash)
        if r is None:
            r = self.client.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if not r or not r.get("blockHash"):
                raise ChainError(f"no receipt for {tx_hash} (reorganised away?)")
            if len(self._receipts) > 256:
                self._receipts.clear()
            self._receipts[tx_hash] = r
        return r

    def _prefetch(self, tx_hash: str, block: int) -> dict:
        """The receipt of ``tx_hash`` and the policy snapshot at ``block``, in one JSON-RPC batch
        (one round trip on the latency path from the execution to the robots)."""
        if tx_hash in self._receipts:
            return self._receipts[tx_hash]
        contract = self.client.contract("FleetPolicy", self._policy_addr)
        replies = self.client.rpc.batch([
            ("eth_getTransactionReceipt", [tx_hash]),
            ("eth_call", [{"to": self._policy_addr, "data": contract.abi.encode_call("snapshot", ())}, hex(block)]),
        ])
        r, snap = replies[0], replies[1]
        if not r.ok or not r.result or not r.result.get("blockHash"):
            raise ChainError(f"no receipt for {tx_hash} (reorganised away?)")
        receipt = r.result
        if int(receipt["blockNumber"], 16) != block:
            raise ChainError(f"tx {tx_hash} is in block {int(receipt['blockNumber'], 16)}, its log said {block} (a reorg?)")
        if len(self._receipts) > 256:
            self._receipts.clear()
        self._receipts[tx_hash] = receipt
        if snap.ok and snap.result not in (None, "0x"):
            try:
                raw = contract.abi.decode_output("snapshot", snap.result)
                self._snaps = {(block, receipt["blockHash"]): PolicySnapshot.from_chain(raw, block_number=block,
                                                                                     address=self._policy_addr)}
            except Exception:  # re-read the ordinary way (which reports what is wrong)
                pass
        return receipt

    def _attribute(self, ev: dict, receipt: dict) -> tuple[str, int | None]:
        """Whose decision is this? (via, proposal id) or _Untrusted."""
        cfg = self.config.contracts
        timelock = (cfg.FleetTimelock or "").lower()
        governor = (cfg.FleetGovernor or "").lower()
        tl_abi = self.client.abi("FleetTimelock")
        gov_abi = self.client.abi("FleetGovernor")
        pol_abi = self.client.abi("FleetPolicy")
        executed, proposal, guardian_pause = False, None, False
        for raw in receipt.get("logs", []):
            addr = str(raw.get("address", "")).lower()
            try:
                if addr == timelock:
                    d = tl_abi.decode_log(raw)
                    if d and d["event"] == "CallExecuted" and str(d.get("target", "")).lower() == self._policy_addr.lower():
                        executed = True
                elif addr == governor:
                    d = gov_abi.decode_log(raw)
                    if d and d["event"] == "ProposalExecuted":
                        proposal = int(d["proposalId"])
                elif addr == self._policy_addr.lower():
                    d = pol_abi.decode_log(raw)
                    if d and d["event"] == "PausedSet" and d.get("paused") is True:
                        guardian = self.client.contract("FleetPolicy", self._policy_addr).call(
                            "guardian", block=int(receipt["blockNumber"], 16))
                        guardian_pause = str(d.get("by", "")).lower() == str(guardian).lower() != ""
            except Exception:  # a log we cannot decode says nothing about who decided
                continue
        if executed:
            return ("proposal" if proposal is not None else "timelock"), proposal
        sender = str(receipt.get("from", "")).lower()
        if sender and sender == self._owner.lower():
            return "owner call", None
        if guardian_pause and _what(ev.get("what")) == "paused":
            return "guardian pause", None
        raise _Untrusted(f"sent by {receipt.get('from')} without the timelock's execution "
                         f"(owner {self._owner}) or the guardian's pause")

    def _decide(self, ev: dict) -> None:
        """Verify, apply (publish the policy at its block) and record one PolicyChanged log."""
        tx = ev.get("tx_hash") or "?"
        if self.untrusted:
            return
        if str(ev.get("address", "")).lower() != self._policy_addr.lower():
            self.on_error(f"ignored PolicyChanged from {ev.get('address')} (tx {tx}): not the configured FleetPolicy {self._policy_addr}")
            return
        version, block = ev.get("version"), ev.get("block_number")
        if not isinstance(version, int) or not isinstance(block, int) or "what" not in ev:
            self.on_error(f"ignored a malformed PolicyChanged log (tx {tx}): {dict(ev)}")
            return
        cur = self.cursor
        if cur is not None and version <= cur.version:
            return  # applied already (a duplicate delivery, or before a restart)
        receipt = self._prefetch(tx, block)
        block_hash = receipt["blockHash"]
        try:
            via, proposal = self._attribute(ev, receipt)
        except _Untrusted as e:
            self.untrusted = f"PolicyChanged v{version} in tx {tx} {e}"
            self.on_error(f"ignored policy change v{version} (tx {tx}): {e}; this FleetPolicy is not the DAO's: "
                          "nothing more is published from it (the robots hold still)")
            return
        snap = self._snapshot(block, block_hash)
        self._alive(block)
        self._publish_snapshot(snap)
        decision = Decision(version=version, what=_what(ev.get("what")), block=block, block_hash=block_hash,
                            tx_hash=tx, log_index=int(ev.get("log_index") or 0), via=via, proposal_id=proposal)
        if self.cursor is None:
            self.cursor = Cursor(self.source, block, block_hash, version)
        self.cursor.applied(decision)
        self._save()
        self.on_applied(decision)

    def _on_event(self, ev: dict) -> None:
        if ev.get("event") != "PolicyChanged":
            return
        if ev.get("removed"):
            self._trouble.set()  # a reorg: the check unwinds what it removed
            return
        try:
            with self._lock:
                self._decide(ev)
        except ChainError as e:
            self._failed(f"cannot verify policy change v{ev.get('version')} (tx {ev.get('tx_hash')}): {e}")
            self._trouble.set()

    def _on_stream_error(self, e: Exception) -> None:
        if not self.outage.down:
            self._trouble.set()  # check the chain now rather than at the next period
        self._failed(f"event stream: {e}")

    # ------------------------------------------------------------------ reorgs

    def _unwind(self, why: str) -> bool:
        """Un-apply the recorded decisions whose blocks are no longer on the chain. True if any
        block of the cursor was gone (the caller re-reads the policy and restarts the stream)."""
        cur = self.cursor
        if cur is None:
            return False
        head = self.client.block_number()
        if cur.block <= head and self._block_hash(cur.block) == cur.block_hash:
            return False
        undone: list[Decision] = []
        while cur.recent:
            d = cur.recent[-1]
            if d.block <= head and self._block_hash(d.block) == d.block_hash:
                break
            undone.append(cur.recent.pop())
        for d in undone:
            self.on_unapplied(d, why)
        if cur.recent:
            last = cur.recent[-1]
            cur.block, cur.block_hash, cur.version = last.block, last.block_hash, last.version
        else:  # re-based: the policy in force at the fork point is the new baseline
            base = min([d.block for d in undone] + [cur.block, head + 1]) - 1
            base = max(min(base, head), 0)
            cur.block, cur.block_hash = base, self._block_hash(base) or "0x"
            cur.version = self._snapshot(base).version
        with self._lock:
            self._last_version = -1  # the chain's policy now may carry a lower version
        self._save()
        return True

    # ------------------------------------------------------------------ connection

    def _connect(self) -> None:
        """(Re)connect to the chain the config names: check it, catch up, follow it."""
        self._stop_stream()
        if self.config_path is not None:
            try:  # `chain up --fresh` / a redeploy rewrites it (atomically)
                self.config = load_config(self.config_path)
            except ChainError as e:
                self._failed(f"{type(e).__name__}: {e}")
        self.client = ChainClient(self.config)  # read-only: no key; verifies chain id and genesis
        policy = self.client.contract("FleetPolicy")
        genesis = self.client.genesis_hash()
        self.watch.genesis, self.watch.config = genesis, self.config
        source = f"chain:{self.config.chain_id}:{genesis[:10]}:{policy.address}"
        if source != self.source:
            if self.source:
                self.resets += 1
                self.on_error(f"chain reset detected: policy source {self.source} -> {source} (genesis, deploy block "
                              f"{self.config.deploy_block}); re-reading the policy as a new version sequence")
            with self._lock:
                self._last_version = -1  # a new source identity starts a new version sequence
            self.source = source
            self.untrusted = ""
            self.cursor = None
            if self.state_dir is not None:
                self.cursor, why = load_cursor(cursor_path(self.state_dir, source), source)
                if why:
                    self.on_error(f"{why}; starting a new cursor (past decisions are not applied again)")
        self._policy_addr = policy.address
        self._trust_contract(policy)
        head = self.client.block_number()
        if self.untrusted:
            self.watch.head = head
            return  # nothing is read from it, nothing followed; the checks go on (a reset re-evaluates)
        self.watch.head = head
        safe = max(head - self.confirmations, 0)
        if self.cursor is not None:
            self._unwind("its block is no longer on the chain (reorganised, or an older state restored)")
            # decisions recorded up to the cursor are applied; catch up from its block on
            from_block = self.cursor.block
            for raw in sorted(self.client.get_logs(policy.address, [[policy.abi.topic("PolicyChanged")]], from_block, safe),
                              key=lambda l: (int(l["blockNumber"], 16), int(l["logIndex"], 16))):
                try:
                    ev = policy.abi.decode_log(raw)
                except Exception as e:
                    self.on_error(f"ignored a malformed PolicyChanged log (tx {raw.get('transactionHash')}): {e}")
                    continue
                if ev is not None:
                    with self._lock:
                        self._decide(ev)
                    if self.untrusted:
                        break
        snap = self._snapshot(safe)
        self._alive(safe)
        if self.cursor is None:
            bh = self._block_hash(safe) or "0x"
            self.cursor = Cursor(source, safe, bh, snap.version)
            self._save()
        self._publish_snapshot(snap)
        self.stream = EventStream(self.client, policy, self._on_event, events=["PolicyChanged"],
                                  from_block=max(safe + 1, self.cursor.block + 1), mode=self.transport,
                                  confirmations=self.confirmations, on_error=self._on_stream_error).start()

    def _trust_contract(self, policy) -> None:
        """The configured FleetPolicy must be owned by the configured timelock."""
        timelock = self.config.contracts.FleetTimelock
        try:
            owner = policy.call("owner")
        except ChainError as e:
            owner, err = "", e
        else:
            err = None
        self._owner = str(owner)
        if err is not None or not timelock or self._owner.lower() != timelock.lower():
            why = (f"FleetPolicy {policy.address} is owned by {owner or '?'}"
                   + (f" ({err})" if err else "") + f", not by the configured timelock {timelock}")
            if self.untrusted != why:
                self.on_error(f"{why}: not the DAO's policy, nothing is published from it (the robots hold still)")
            self.untrusted = why

    def _check(self) -> bool:
        """One identity/progress/reorg check; True when the source must reconnect."""
        change = self.watch.check(self.client)
        if change is not None and change.rewound:
            self.on_error(f"{change.describe()}: re-reading the policy")
            with self._lock:
                self._last_version = -1
            return True
        if change is not None:
            self.config = change.config  # reported by _connect, once
            return True
        with self._lock:
            if self._unwind("its block was removed by a chain reorganisation"):
                return True
        self._alive(self.watch.head)
        return False

    def _run(self) -> None:
        backoff = Backoff(0.5, self.retry_max_s)
        connected = False
        while not self._stop.is_set():
            try:
                if not connected:
                    self._connect()
                    connected = True
                    backoff.reset()
                    self._recovered()
                self._trouble.wait(self.check_period_s)
                self._trouble.clear()
                if self._stop.is_set():
                    return
                if self._check():
                    connected = False
                    continue
                self._recovered()
            except ChainError as e:
                # reconnect (config re-read, policy re-read at the head: nothing missed meanwhile);
                # after ChainResetError nothing is believed from that chain until the config names it
                self._failed(f"{type(e).__name__}: {e}")
                if connected:
                    self._stop_stream()
                    connected = False
                self._stop.wait(backoff.next())
