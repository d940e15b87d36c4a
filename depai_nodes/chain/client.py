"""ChainClient: one endpoint, one chain id, one key, safe nonces, typed failures.

Two ways to send:

- ``transact`` (one call): estimate gas (a revert surfaces here with its decoded reason, before
  anything is signed), sign locally, send, wait for the receipt (polled after 2, 4, 8... ms up to
  every ``receipt_poll_s``, default 20 ms, not web3's fixed 100 ms) and for ``confirmations``.
- ``send_many`` (throughput): estimate all calls in one JSON-RPC batch, sign them with locally
  assigned consecutive nonces, submit every raw transaction in one batch, then poll all receipts
  in one batch per interval. A call that would revert is reported and gets no nonce; a
  transaction the node refuses leaves a nonce gap that is filled with a 0-value self-transfer so
  the transactions after it are not stuck. Every item comes back with a result or a typed error.

Nothing retries forever: every wait has a deadline, and a timeout error carries the tx hash.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from .abi import ContractABI, decode_revert, load_abi
from .backoff import Backoff
from .config import ChainConfig, checksum
from .errors import (
    ChainError,
    ChainResetError,
    ContractRevertError,
    NonceError,
    RpcResponseError,
    SignerError,
    TxRejectedError,
    TxTimeoutError,
    WrongChainError,
)
from .models import TxResult
from .rpc import RpcClient
from .signer import Signer

__all__ = ["ChainClient", "BoundContract", "Call", "SendOutcome"]

_NONCE_MSGS = ("nonce too low", "nonce too high", "already known", "replacement transaction underpriced", "invalid nonce")


def _hex(n: int) -> str:
    return hex(int(n))


def _revert_data(err: RpcResponseError) -> str | None:
    """Revert bytes from a JSON-RPC error (anvil/geth: code 3 and data; some nodes nest them)."""
    data = err.data
    if isinstance(data, dict):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        return data
    return None


def _is_revert(err: RpcResponseError) -> bool:
    msg = str(err).lower()
    return _revert_data(err) is not None or "revert" in msg or err.code == 3


@dataclass(frozen=True)
class Call:
    """One contract call to send: target contract (ABI + address), function, arguments."""

    contract: "BoundContract"
    fn: str
    args: tuple = ()
    value: int = 0
    gas: int | None = None


@dataclass
class SendOutcome:
    """Per-item result of ``send_many``: a receipt or a typed error (never silently dropped)."""

    call: Call
    tx_hash: str = ""
    result: TxResult | None = None
    error: ChainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None and self.result.status == 1


@dataclass
class _FeeCache:
    at: float = 0.0
    max_fee: int = 0
    tip: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class BoundContract:
    """A contract ABI at an address, bound to a client."""

    def __init__(self, client: "ChainClient", abi: ContractABI, address: str):
        self.client = client
        self.abi = abi
        self.address = checksum(address)
        self.name = abi.name

    def __repr__(self) -> str:
        return f"BoundContract({self.name} at {self.address})"

    def call(self, fn: str, *args, block: int | str = "latest", sender: str | None = None) -> Any:
        return self.client.call(self, fn, args, block=block, sender=sender)

    def transact(self, fn: str, *args, value: int = 0, gas: int | None = None, wait: bool = True) -> TxResult | str:
        return self.client.transact(Call(self, fn, tuple(args), value, gas), wait=wait)

    def prepare(self, fn: str, *args, value: int = 0, gas: int | None = None) -> Call:
        return Call(self, fn, tuple(args), value, gas)

    def events(self, event: str, from_block: int, to_block: int | str = "latest") -> list[dict]:
        return self.client.get_events(self, event, from_block, to_block)


class ChainClient:
    """The bridge to one EVM chain. Thread-safe; one signing key (optional for read-only use)."""

    def __init__(self, config: ChainConfig, signer: Signer | None = None, *, verify_chain: bool = True, artifacts=None):
        self.config = config
        self.signer = signer
        self.rpc = RpcClient(config.rpc_url, config.rpc_timeout_s)
        self._artifacts = artifacts
        self._nonce: int | None = None
        self._nonce_lock = threading.RLock()
        self._fees = _FeeCache()
        self._verified = False
        self._genesis: str | None = None
        # strict: single transactions take the node's pending count as their nonce (one RPC each),
        # so a chain that lost blocks (restored from an older state) or another sender of this key
        # never leaves this client signing with a nonce the node will not mine. The wallet sets it.
        self.strict_nonce = False
        self.nonce_corrections = 0
        if verify_chain:
            self.verify_chain()

    def __repr__(self) -> str:
        who = self.signer.address if self.signer else "read-only"
        return f"ChainClient({self.config.name}, chain {self.config.chain_id}, {self.config.rpc_url}, {who})"

    def close(self) -> None:
        self.rpc.close()

    # ------------------------------------------------------------------ basics

    def verify_chain(self) -> int:
        """Refuse an endpoint on another chain: signing there would send real value elsewhere.

        WrongChainError when the chain id differs; ChainResetError when the config records a
        genesis hash and the endpoint's block 0 is another one (same id, different chain: e.g.
        a local chain started fresh). Returns the chain id.
        """
        actual = int(self.rpc.call("eth_chainId"), 16)
        if actual != self.config.chain_id:
            raise WrongChainError(self.config.chain_id, actual, self.config.rpc_url)
        if self.config.genesis_hash:
            g = self.genesis_hash(refresh=True)
            if g != self.config.genesis_hash:
                self._verified = False
                raise ChainResetError(self.config.genesis_hash, g, self.config.rpc_url)
        self._verified = True
        return actual

    def genesis_hash(self, *, refresh: bool = False) -> str:
        """0x hash (lowercase) of block 0 of the chain at the endpoint: the chain's identity
        beyond its id. Cached; ``refresh`` asks the node again (a cheap check for a reset)."""
        if refresh or self._genesis is None:
            block = self.rpc.call("eth_getBlockByNumber", ["0x0", False])
            if not isinstance(block, dict) or not isinstance(block.get("hash"), str):
                raise RpcResponseError("eth_getBlockByNumber(0) returned no block", url=self.config.rpc_url, method="eth_getBlockByNumber")
            self._genesis = block["hash"].lower()
        return self._genesis

    def block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def get_block(self, block: int | str = "latest") -> dict:
        tag = _hex(block) if isinstance(block, int) else block
        return self.rpc.call("eth_getBlockByNumber", [tag, False])

    def balance(self, address: str) -> int:
        return int(self.rpc.call("eth_getBalance", [checksum(address), "latest"]), 16)

    def abi(self, name: str) -> ContractABI:
        return load_abi(name, self._artifacts)

    def contract(self, name: str, address: str | None = None) -> BoundContract:
        """Contract ``name`` (artifact) at ``address`` or at the configured address."""
        if address is None:
            address = self.config.address("DID" if name == "MachineDID" and self.config.contracts.MachineDID is None else name)
        return BoundContract(self, self.abi(name), address)

    def _require_signer(self) -> Signer:
        """The signer, after making sure (once) that the endpoint is on the configured chain."""
        if self.signer is None:
            raise SignerError("this client is read-only (no signer)")
        if not self._verified:
            self.verify_chain()
        return self.signer

    # ------------------------------------------------------------------ calls

    def call(self, contract: BoundContract, fn: str, args: Iterable = (), *, block: int | str = "latest", sender: str | None = None) -> Any:
        data = contract.abi.encode_call(fn, tuple(args))
        tx = {"to": contract.address, "data": data}
        if sender or self.signer:
            tx["from"] = checksum(sender) if sender else self.signer.address
        tag = _hex(block) if isinstance(block, int) else block
        try:
            out = self.rpc.call("eth_call", [tx, tag])
        except RpcResponseError as e:
            if _is_revert(e):
                raise self._revert(contract, fn, _revert_data(e), str(e)) from None
            raise
        if out in (None, "0x") and contract.abi.functions[fn].get("outputs"):
            raise ChainError(f"{contract.name}.{fn}: empty return data (no contract at {contract.address}?)")
        return contract.abi.decode_output(fn, out)

    def _revert(self, contract: BoundContract | None, fn: str, data: str | None, message: str, tx_hash: str = "") -> ContractRevertError:
        name, args, reason = decode_revert(data, self._artifacts)
        if not name and data is None:
            reason = message.split(":", 1)[-1].strip() or "reverted"
        return ContractRevertError(
            contract=contract.name if contract else "", function=fn, error=name, args=args, reason=reason, data=data or "", tx_hash=tx_hash
        )

    # ------------------------------------------------------------------ nonces and fees

    def _next_nonce(self, *, fresh: bool = False) -> int:
        with self._nonce_lock:
            if self._nonce is None or (fresh and self.strict_nonce):
                pending = self.pending_nonce()
                if self._nonce is not None and pending != self._nonce:
                    self.nonce_corrections += 1
                self._nonce = pending
            n = self._nonce
            self._nonce += 1
            return n

    def pending_nonce(self) -> int:
        return int(self.rpc.call("eth_getTransactionCount", [self._require_signer().address, "pending"]), 16)

    def resync_nonce(self) -> int:
        """Forget the local nonce and take the node's pending count (after a rejected send)."""
        with self._nonce_lock:
            self._nonce = self.pending_nonce()
            return self._nonce

    def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): 2x the latest base fee plus the tip, cached 1 s."""
        f = self._fees
        with f.lock:
            if time.monotonic() - f.at > 1.0:
                replies = self.rpc.batch([("eth_getBlockByNumber", ["latest", False]), ("eth_maxPriorityFeePerGas", [])])
                block = replies[0].result or {}
                base = int(block.get("baseFeePerGas", "0x0"), 16)
                tip = int(replies[1].result, 16) if replies[1].ok and replies[1].result else 10**9
                f.tip, f.max_fee, f.at = tip, 2 * base + tip, time.monotonic()
            return f.max_fee, f.tip

    def _tx_dict(self, call: Call, nonce: int, gas: int) -> dict:
        max_fee, tip = self.fees()
        return {
            "type": 2,
            "chainId": self.config.chain_id,
            "nonce": nonce,
            "to": call.contract.address,
            "value": call.value,
            "data": call.contract.abi.encode_call(call.fn, call.args),
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }

    def _estimate_params(self, call: Call) -> list:
        return [
            {
                "from": self._require_signer().address,
                "to": call.contract.address,
                "data": call.contract.abi.encode_call(call.fn, call.args),
                "value": _hex(call.value),
            }
        ]

    def estimate_gas(self, call: Call) -> int:
        try:
            est = int(self.rpc.call("eth_estimateGas", self._estimate_params(call)), 16)
        except RpcResponseError as e:
            if _is_revert(e):
                raise self._revert(call.contract, call.fn, _revert_data(e), str(e)) from None
            raise
        return int(est * self.config.gas_multiplier)

    def adopt(self, config: ChainConfig) -> None:
        """Work on ``config`` from now on (after a chain reset: new genesis, maybe new addresses);
        the local nonce and the chain checks start over."""
        with self._nonce_lock:
            self.config = config
            self._nonce = None
            self._genesis = None
            self._verified = False
            self._fees.at = 0.0

    # ------------------------------------------------------------------ sign first, send later

    @property
    def nonce_lock(self) -> threading.RLock:
        """Hold it from ``sign_call`` to ``send_raw`` so no other transaction takes a nonce in between."""
        return self._nonce_lock

    def sign_call(self, call: Call, gas: int | None = None) -> tuple[str, str, int]:
        """(raw signed tx, its hash, its nonce) for ``call``, not sent. For callers that must
        record the hash durably before sending (the wallet's at-most-once ledger)."""
        signer = self._require_signer()
        gas = gas or call.gas or self.estimate_gas(call)
        with self._nonce_lock:
            nonce = self._next_nonce(fresh=True)
            raw, tx_hash = signer.sign_transaction(self._tx_dict(call, nonce, gas))
            return raw, tx_hash, nonce

    def send_raw(self, raw: str, tx_hash: str = "") -> str:
        """Submit a signed transaction. TxRejectedError when the node refuses it (the nonce is
        re-read), Rpc*Error when the answer is unknown (the local nonce is dropped)."""
        with self._nonce_lock:
            try:
                self.rpc.call("eth_sendRawTransaction", [raw])
            except RpcResponseError as e:
                if "already known" in str(e).lower():
                    return tx_hash  # the same transaction is already in the pool
                try:
                    self.resync_nonce()
                except ChainError:
                    self._nonce = None
                raise TxRejectedError(f"node refused the transaction: {e}", tx_hash=tx_hash) from None
            except ChainError:
                self._nonce = None
                raise
        return tx_hash

    def lookup_tx(self, tx_hash: str) -> tuple[str, TxResult | None]:
        """("mined", receipt) | ("pending", None): known to the node, not mined | ("unknown", None)."""
        r = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        if r and r.get("blockNumber"):
            return "mined", self._receipt_model(r)
        return ("pending", None) if self.rpc.call("eth_getTransactionByHash", [tx_hash]) else ("unknown", None)

    def confirmed_nonce(self, address: str | None = None) -> int:
        """Transactions of ``address`` (default: the signer) in mined blocks."""
        who = checksum(address) if address else self._require_signer().address
        return int(self.rpc.call("eth_getTransactionCount", [who, "latest"]), 16)

    # ------------------------------------------------------------------ single transaction

    def transact(self, call: Call, *, wait: bool = True, timeout_s: float | None = None) -> TxResult | str:
        """Send one contract call; returns the TxResult (or the hash when ``wait`` is False).

        Raises ContractRevertError (estimation or mined revert, with the decoded reason),
        TxRejectedError, TxTimeoutError (carries the hash), Rpc*Error.
        """
        signer = self._require_signer()
        gas = call.gas or self.estimate_gas(call)
        with self._nonce_lock:
            nonce = self._next_nonce(fresh=True)
            raw, tx_hash = signer.sign_transaction(self._tx_dict(call, nonce, gas))
            try:
                self.rpc.call("eth_sendRawTransaction", [raw])
            except RpcResponseError as e:
                self.resync_nonce()
                if _is_revert(e):
                    raise self._revert(call.contract, call.fn, _revert_data(e), str(e)) from None
                raise TxRejectedError(f"{call.contract.name}.{call.fn}: node refused the transaction: {e}", tx_hash=tx_hash) from None
            except ChainError:
                # unknown whether the node got it: take the node's view next time
                self._nonce = None
                raise
        if not wait:
            return tx_hash
        result = self.wait_receipt(tx_hash, timeout_s=timeout_s)
        if result.status != 1:
            raise self._mined_revert(call, result)
        return result

    def _mined_revert(self, call: Call, result: TxResult) -> ContractRevertError:
        """Replay a reverted transaction as a call (same sender, target, data, value) on the
        state before its block, to recover the revert reason."""
        data, message = None, "reverted"
        try:
            sent = self.rpc.call("eth_getTransactionByHash", [result.tx_hash]) or {}
            tx = {k: sent[k] for k in ("from", "to", "input", "value", "gas") if sent.get(k) is not None}
            if "input" in tx:
                tx["data"] = tx.pop("input")
            self.rpc.call("eth_call", [tx, _hex(max(result.block_number - 1, 0))])
            message = "reverted (state changed before it was mined; replay succeeds)"
        except RpcResponseError as e:
            data, message = _revert_data(e), str(e)
        return self._revert(call.contract, call.fn, data, message, tx_hash=result.tx_hash)

    @staticmethod
    def _receipt_model(r: dict) -> TxResult:
        return TxResult(
            tx_hash=r["transactionHash"],
            block_number=int(r["blockNumber"], 16),
            block_hash=r["blockHash"],
            status=int(r.get("status", "0x1"), 16),
            gas_used=int(r["gasUsed"], 16),
            effective_gas_price=int(r.get("effectiveGasPrice", "0x0"), 16),
            contract_address=r.get("contractAddress"),
            logs=r.get("logs", []),
        )

    def wait_receipt(self, tx_hash: str, *, timeout_s: float | None = None, confirmations: int | None = None) -> TxResult:
        return self.wait_receipts([tx_hash], timeout_s=timeout_s, confirmations=confirmations)[tx_hash]

    def wait_receipts(self, hashes: list[str], *, timeout_s: float | None = None, confirmations: int | None = None, raise_on_timeout: bool = True) -> dict[str, TxResult]:
        """Receipts for all ``hashes`` (one batch request per poll), each ``confirmations`` deep.

        With ``raise_on_timeout`` False, hashes still pending at the deadline are simply absent.
        A receipt whose block was reorganised away is dropped and waited for again.
        """
        timeout = self.config.receipt_timeout_s if timeout_s is None else timeout_s
        depth = self.config.confirmations if confirmations is None else confirmations
        deadline = time.monotonic() + timeout
        pending = list(dict.fromkeys(hashes))
        got: dict[str, TxResult] = {}
        # short first sleeps (2, 4, 8 ms...) up to the poll interval: a local or fast chain
        # answers within milliseconds, a slow one costs only a few extra early polls. Bounded
        # (doubled and clamped, never 2**n), and never past the deadline.
        backoff = Backoff(min(0.002, self.config.receipt_poll_s), self.config.receipt_poll_s)
        while True:
            if pending:
                replies = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in pending])
                still = []
                for h, rep in zip(pending, replies):
                    if rep.ok and rep.result and rep.result.get("blockNumber"):
                        got[h] = self._receipt_model(rep.result)
                    else:
                        still.append(h)
                pending = still
            if not pending and depth > 0:
                head = self.block_number()
                shallow = [h for h, r in got.items() if head < r.block_number + depth]
                if not shallow:
                    # reorg check: the receipts must still be in the blocks we saw
                    again = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in got])
                    moved = [h for h, rep in zip(list(got), again) if not (rep.ok and rep.result and rep.result.get("blockHash") == got[h].block_hash)]
                    for h in moved:
                        del got[h]
                    pending = moved
                    if not moved:
                        return got
            elif not pending:
                return got
            if time.monotonic() >= deadline:
                if raise_on_timeout:
                    missing = pending or [h for h in got if h not in pending]
                    raise TxTimeoutError(missing[0], timeout, confirmations=depth)
                return {h: r for h, r in got.items() if h not in pending}
            backoff.sleep(deadline)

    # ------------------------------------------------------------------ batch path

    def send_many(self, calls: list[Call], *, wait: bool = True, timeout_s: float | None = None) -> list[SendOutcome]:
        """Throughput path: batch-estimate, sign with local nonces, batch-send, batch-poll."""
        signer = self._require_signer()
        outcomes = [SendOutcome(call=c) for c in calls]
        if not calls:
            return outcomes
        # 1. gas: one batch of estimates; a reverting call is reported now and gets no nonce
        need = [i for i, c in enumerate(calls) if c.gas is None]
        gas: dict[int, int] = {i: c.gas for i, c in enumerate(calls) if c.gas is not None}
        if need:
            replies = self.rpc.batch([("eth_estimateGas", self._estimate_params(calls[i])) for i in need])
            for i, rep in zip(need, replies):
                if rep.ok:
                    gas[i] = int(int(rep.result, 16) * self.config.gas_multiplier)
                else:
                    err = RpcResponseError(rep.error.get("message", "estimate failed"), code=rep.error.get("code"), data=rep.error.get("data"))
                    c = calls[i]
                    outcomes[i].error = (
                        self._revert(c.contract, c.fn, _revert_data(err), str(err)) if _is_revert(err) else err
                    )
        todo = [i for i in range(len(calls)) if outcomes[i].error is None]
        # 2. sign with consecutive nonces and 3. send all in one batch
        with self._nonce_lock:
            signed = []
            for i in todo:
                nonce = self._next_nonce()
                raw, h = signer.sign_transaction(self._tx_dict(calls[i], nonce, gas[i]))
                outcomes[i].tx_hash = h
                signed.append((i, nonce, raw))
            try:
                replies = self.rpc.batch([("eth_sendRawTransaction", [raw]) for _, _, raw in signed])
            except ChainError:
                self._nonce = None  # unknown what the node accepted: re-read next time
                raise
            gaps = []
            for (i, nonce, _), rep in zip(signed, replies):
                if not rep.ok:
                    msg = rep.error.get("message", "rejected")
                    outcomes[i].error = TxRejectedError(f"{calls[i].contract.name}.{calls[i].fn}: node refused: {msg}", tx_hash=outcomes[i].tx_hash)
                    outcomes[i].tx_hash = ""
                    gaps.append(nonce)
            if gaps:
                self._fill_gaps(gaps, max(n for _, n, _ in signed))
        if not wait:
            return outcomes
        sent = [o.tx_hash for o in outcomes if o.tx_hash]
        receipts = self.wait_receipts(sent, timeout_s=timeout_s, raise_on_timeout=False)
        timeout = self.config.receipt_timeout_s if timeout_s is None else timeout_s
        for o in outcomes:
            if not o.tx_hash:
                continue
            r = receipts.get(o.tx_hash)
            if r is None:
                o.error = TxTimeoutError(o.tx_hash, timeout)
            else:
                o.result = r
                if r.status != 1:
                    o.error = self._mined_revert(o.call, r)
        return outcomes

    def _fill_gaps(self, nonces: list[int], highest: int) -> None:
        """A refused transaction leaves its nonce unused; later ones would wait forever behind it.
        Fill each gap below the highest sent nonce with a 0-value self-transfer."""
        signer = self._require_signer()
        max_fee, tip = self.fees()
        fillers = []
        for n in sorted(nonces):
            if n >= highest:
                continue
            raw, _ = signer.sign_transaction({"type": 2, "chainId": self.config.chain_id, "nonce": n, "to": signer.address,
                                              "value": 0, "data": "0x", "gas": 21000, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip})
            fillers.append(raw)
        if fillers:
            replies = self.rpc.batch([("eth_sendRawTransaction", [raw]) for raw in fillers])
            if not all(r.ok for r in replies):
                self._nonce = None
                raise NonceError("could not fill nonce gaps left by refused transactions; nonce re-read from the node")
        self.resync_nonce()

    # ------------------------------------------------------------------ deploy and logs

    def deploy(self, name: str, *args, gas: int | None = None) -> BoundContract:
        """Deploy artifact ``name`` with constructor ``args``; waits for the receipt."""
        signer = self._require_signer()
        abi = self.abi(name)
        data = abi.encode_deploy(args)
        if gas is None:
            try:
                gas = int(int(self.rpc.call("eth_estimateGas", [{"from": signer.address, "data": data}]), 16) * self.config.gas_multiplier)
            except RpcResponseError as e:
                if _is_revert(e):
                    name_, _, reason = decode_revert(_revert_data(e), self._artifacts)
                    raise ContractRevertError(contract=name, function="constructor", error=name_, args={}, reason=reason) from None
                raise
        max_fee, tip = self.fees()
        with self._nonce_lock:
            nonce = self._next_nonce()
            raw, h = signer.sign_transaction({"type": 2, "chainId": self.config.chain_id, "nonce": nonce, "value": 0, "data": data,
                                              "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip})
            try:
                self.rpc.call("eth_sendRawTransaction", [raw])
            except RpcResponseError as e:
                self.resync_nonce()
                raise TxRejectedError(f"deploy {name}: node refused: {e}", tx_hash=h) from None
        r = self.wait_receipt(h)
        if r.status != 1 or not r.contract_address:
            raise ContractRevertError(contract=name, function="constructor", error="", args={}, reason="deployment reverted", tx_hash=h)
        return BoundContract(self, abi, r.contract_address)

    def get_logs(self, address: str | list[str], topics: list | None, from_block: int, to_block: int | str = "latest") -> list[dict]:
        """eth_getLogs paged by ``log_page_blocks`` (nodes cap the range a query may span)."""
        end = self.block_number() if to_block == "latest" else int(to_block)
        page = self.config.log_page_blocks
        out: list[dict] = []
        start = from_block
        while start <= end:
            stop = min(start + page - 1, end)
            flt = {"address": address, "fromBlock": _hex(start), "toBlock": _hex(stop)}
            if topics:
                flt["topics"] = topics
            out.extend(self.rpc.call("eth_getLogs", [flt]) or [])
            start = stop + 1
        return out

    def get_events(self, contract: BoundContract, event: str, from_block: int, to_block: int | str = "latest") -> list[dict]:
        logs = self.get_logs(contract.address, [contract.abi.topic(event)], from_block, to_block)
        return [d for d in (contract.abi.decode_log(l) for l in logs) if d is not None]

    # ------------------------------------------------------------------ local-chain helpers

    def rpc_local(self, method: str, params: list | None = None) -> Any:
        """anvil_/evm_ methods; refused on a real network."""
        if not self.config.is_local:
            raise ChainError(f"{method} is a local-chain (anvil) method; refused on chain {self.config.chain_id}")
        return self.rpc.call(method, params or [])

    def mine(self, blocks: int = 1, *, seconds: int = 0) -> None:
        if seconds:
            self.rpc_local("evm_increaseTime", [seconds])
        self.rpc_local("anvil_mine", [_hex(blocks)])
