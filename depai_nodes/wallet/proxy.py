"""The caller's side of the wallet: how other nodes ask the machine's wallet to sign intents.

ROS wiring shared by the identity and telemetry nodes (and any future node that needs an on-chain
action): learns the machine's address from the wallet's latched `wallet/account`, and calls
`wallet/anchor_batch` / `wallet/ensure_identity`. Calls block and are meant for a node's worker
thread (the node's executor delivers the answer meanwhile); every call returns an ``Outcome``,
with WALLET_UNAVAILABLE when no wallet serves the service and TIMEOUT when it did not answer in
time (the request may still complete: intents are idempotent, asking again is safe).
"""

from __future__ import annotations

import threading

from depai.msg import MachineAccount
from depai.srv import AnchorBatch, EnsureIdentity
from depai_nodes.chain.intents import AnchorRequest, IdentityRequest, Outcome, Result
from depai_nodes.common.qos import LATCHED_QOS

__all__ = ["WalletProxy"]


class WalletProxy:
    def __init__(self, node, *, discovery_timeout_s: float = 2.0):
        self.node = node
        self.discovery_timeout_s = discovery_timeout_s
        self.account: MachineAccount | None = None
        self._account_event = threading.Event()
        node.create_subscription(MachineAccount, "wallet/account", self._on_account, LATCHED_QOS)
        self._anchor = node.create_client(AnchorBatch, "wallet/anchor_batch")
        self._ensure = node.create_client(EnsureIdentity, "wallet/ensure_identity")

    def _on_account(self, msg: MachineAccount) -> None:
        self.account = msg
        self._account_event.set()

    @property
    def address(self) -> str:
        """The machine's address as its wallet announced it; "" until then."""
        return self.account.address if self.account is not None else ""

    def wait_address(self, timeout_s: float) -> str:
        self._account_event.wait(timeout_s)
        return self.address

    def _call(self, client, request, timeout_s: float) -> object | Outcome:
        if not client.wait_for_service(timeout_sec=min(self.discovery_timeout_s, timeout_s)):
            return Outcome(Result.WALLET_UNAVAILABLE, self.address, error="WalletUnavailable",
                           reason=f"no wallet serves {client.service_name}")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s) or future.result() is None:
            client.remove_pending_request(future)
            return Outcome(Result.TIMEOUT, self.address, error="WalletTimeout",
                           reason=f"{client.service_name} gave no answer within {timeout_s:g} s (it may still complete)")
        return future.result()

    def anchor(self, req: AnchorRequest, timeout_s: float) -> Outcome:
        r = AnchorBatch.Request(batch_id=req.batch_id, root=req.root, message_count=req.message_count,
                                start_time=req.start_time, end_time=req.end_time, uri=req.uri)
        resp = self._call(self._anchor, r, timeout_s)
        if isinstance(resp, Outcome):
            return resp
        return Outcome(resp.result, resp.machine, resp.tx_hash, resp.block_number, resp.error, resp.reason, resp.already_anchored)

    def ensure_identity(self, req: IdentityRequest, timeout_s: float) -> Outcome:
        resp = self._call(self._ensure, EnsureIdentity.Request(machine_name=req.machine_name, stake=req.stake), timeout_s)
        if isinstance(resp, Outcome):
            return resp
        return Outcome(resp.result, resp.machine, resp.tx_hash, error=resp.error, reason=resp.reason, steps=list(resp.steps))
