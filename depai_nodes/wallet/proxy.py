"""The caller's side of the wallet: how other nodes ask the machine's wallet to sign intents.

ROS wiring shared by the identity and telemetry nodes (and any future node that needs an on-chain
action): learns the machine's address from the wallet's latched `wallet/account`, and calls
`wallet/anchor_batch` / `wallet/ensure_identity`, and the market's `wallet/accept_task`,
`wallet/complete_task`, `wallet/post_task` (their clients made on first use). Calls block and are meant for a node's worker
thread (the node's executor delivers the answer meanwhile); every call returns an ``Outcome``,
with WALLET_UNAVAILABLE when no wallet serves the service and TIMEOUT when it did not answer in
time (the request may still complete: intents are idempotent, asking again is safe). An
unanswered request is sent again while the call waits (after 5 s, then 10, 20...;
common/service.py): one lost with a killed wallet is answered by its successor instead of
waiting out the timeout.
"""

from __future__ import annotations

import threading

from depai.msg import MachineAccount
from depai.srv import AnchorBatch, EnsureIdentity
from depai_nodes.chain.intents import AnchorRequest, IdentityRequest, Outcome, PostRequest, Result
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.service import ANSWERED, PendingCall

__all__ = ["WalletProxy"]


class WalletProxy:
    def __init__(self, node, *, discovery_timeout_s: float = 2.0, resend_s: float = 5.0):
        self.node = node
        self.discovery_timeout_s = discovery_timeout_s
        self.resend_s = resend_s  # an unanswered request is sent again after this, then twice as long, ...
        self.account: MachineAccount | None = None
        self._account_event = threading.Event()
        node.create_subscription(MachineAccount, "wallet/account", self._on_account, LATCHED_QOS)
        self._anchor = node.create_client(AnchorBatch, "wallet/anchor_batch")
        self._ensure = node.create_client(EnsureIdentity, "wallet/ensure_identity")
        self._market: dict | None = None

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
        """The wallet's answer to ``request``, sent again while unanswered (common/service.py: a
        wallet killed with the request in flight, or not yet matched after its respawn, drops it;
        the intents are idempotent by batch, task or request id and the wallet serves them one at
        a time, so a repeat is answered as the first was, never executed twice)."""
        if not client.wait_for_service(timeout_sec=min(self.discovery_timeout_s, timeout_s)):
            return Outcome(Result.WALLET_UNAVAILABLE, self.address, error="WalletUnavailable",
                           reason=f"no wallet serves {client.service_name}")
        call = PendingCall(client, request, timeout_s, self.resend_s)
        if call.wait() != ANSWERED:
            return Outcome(Result.TIMEOUT, self.address, error="WalletTimeout",
                           reason=f"{client.service_name} gave no answer within {timeout_s:g} s (asked {call.sends} "
                                  "time(s); it may still complete)")
        return call.result

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


    # ------------------------------------------------------------------ market (clients made on first use)

    def _market_call(self, what: str, timeout_s: float, **fields):
        """The service's Response; when no wallet answered, a Response with WALLET_UNAVAILABLE or
        TIMEOUT filled in (the intents are idempotent: asking again is safe)."""
        from depai.srv import AcceptTask, CompleteTask, PostTask

        if self._market is None:
            self._market = {"accept": (AcceptTask, self.node.create_client(AcceptTask, "wallet/accept_task")),
                            "complete": (CompleteTask, self.node.create_client(CompleteTask, "wallet/complete_task")),
                            "post": (PostTask, self.node.create_client(PostTask, "wallet/post_task"))}
        srv, client = self._market[what]
        resp = self._call(client, srv.Request(**fields), timeout_s)
        if isinstance(resp, Outcome):
            out = srv.Response()
            out.result, out.error, out.reason = resp.result, resp.error, resp.reason
            return out
        return resp

    def accept_task(self, task_id: int | str, timeout_s: float):
        """Ask the wallet to accept a TaskMarket task: a depai/AcceptTask.Response."""
        return self._market_call("accept", timeout_s, task_id=str(task_id))

    def complete_task(self, task_id: int | str, batch_id: str, x_mm: int, y_mm: int, yaw_mrad: int, time: int,
                      proof: list[str], timeout_s: float):
        """Settle a task with its arrival record and proof (telemetry/arrival_proof's answer): a
        depai/CompleteTask.Response."""
        return self._market_call("complete", timeout_s, task_id=str(task_id), batch_id=batch_id, x_mm=int(x_mm), y_mm=int(y_mm),
                                 yaw_mrad=int(yaw_mrad), time=int(time), proof=list(proof))

    def post_task(self, req: PostRequest, timeout_s: float):
        """Ask a requester's wallet to post a task: a depai/PostTask.Response."""
        return self._market_call("post", timeout_s, request_id=req.request_id, station=req.station, x=float(req.x),
                                 y=float(req.y), yaw=float(req.yaw), tolerance=float(req.tolerance),
                                 deadline=int(req.deadline), reward=str(req.reward))
