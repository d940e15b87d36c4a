"""ROS wiring of the machine's wallet: the one process that holds the machine's key.

It signs three kinds of intent and nothing else:

- payments in the fleet token: depai/TokenTransfer on `wallet/transfer`, answered with
  depai/TxStatus on `wallet/tx_status` (same request_id): PENDING, SUBMITTED, then CONFIRMED or
  REVERTED / FAILED with the typed error, under the DAO's daily spending cap (`/fleet/policy`);
- `wallet/anchor_batch` (depai/AnchorBatch): anchor a telemetry batch's Merkle root;
- `wallet/ensure_identity` (depai/EnsureIdentity): the machine's DID attribute and market stake;
- the TaskMarket (market.py): `wallet/accept_task` (depai/AcceptTask), `wallet/complete_task`
  (depai/CompleteTask: the wallet builds and signs the report from the arrival record after
  checking its proof against its own anchored root) and `wallet/post_task` (depai/PostTask, a
  requester's wallet: budget, the DAO's cap, at most once per request_id across restarts).

The services are served by a second node, `<name>_intents`, in this process with its own
executor thread, so a slow chain (waiting for a receipt) never holds up the payment topics. The
machine's address is announced latched on `wallet/account` (depai/MachineAccount): other nodes
learn it there instead of loading the key.

Faults: every request ends with a status or result code and the worker and service threads live
on (an internal error is one FAILED / WALLET_UNAVAILABLE answer); only a ledger that cannot be
written ends the process (exit 1, the supervisor restarts it). The ledger and the day's spend are
in `<state_dir>/wallet-<address>.json` (0600, atomic), so restarts neither repeat a request id
nor lift the cap. The chain's genesis is checked every `chain_check_period` s: after a reset the
config is re-read, the nonce re-synchronised, and that is logged once; an outage is logged once
and so is its recovery.
"""

from __future__ import annotations

import queue
import sys
import threading

from pydantic import Field
from rclpy.node import Node

from depai.msg import FleetPolicy, MachineAccount, TokenTransfer, TxStatus
from depai.srv import AcceptTask, AnchorBatch, CompleteTask, EnsureIdentity, PostTask
from depai_nodes.common.lifecycle import ManagedNode
from depai_nodes.common.params import ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import IntentPolicy, Intents, Wallet, WalletError
from .market import AcceptRequest, CompleteRequest, MarketIntents, MarketPolicy, PostRequest

_UINT = r"^[0-9]{1,78}$"
_FIXED = {"read_only": True}


class WalletParams(ParamsModel):
    spending_cap: str = Field("0", pattern=_UINT, description="daily cap (token base units) when follow_policy is false; 0: none")
    follow_policy: bool = Field(True, description="take the cap from /fleet/policy's spending_cap (transfers wait for the first policy; the last one is remembered across restarts)")
    max_queue: int = Field(100, ge=1, le=100_000, description="transfers waiting at most; more are refused")
    chain_config: str = Field("", description="chain config; empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json", json_schema_extra=_FIXED)
    demo_index: int = Field(-1, ge=-1, le=9, description="anvil demo key index (local chain only); -1: the config's key", json_schema_extra=_FIXED)
    keystore: str = Field("", description="encrypted keystore of this machine (overrides the config's key)", json_schema_extra=_FIXED)
    machine_name: str = Field("", max_length=2560, description="the only DID name ensure_identity sets; empty: the node's namespace", json_schema_extra=_FIXED)
    allowed_payees: list[str] = Field(default_factory=list, description="addresses wallet/transfer may pay; empty: transfers refused")
    state_dir: str = Field("", description="request ledger + daily spend; empty: $DEPAI_STATE_DIR or .depai/state", json_schema_extra=_FIXED)
    chain_check_period: float = Field(5.0, ge=0.5, le=3600.0, description="s between genesis checks (chain reset detection)")
    max_stake: str = Field("0", pattern=_UINT, description="most TaskMarket stake locked on request (token base units); 0: staking refused")
    max_anchors_per_minute: int = Field(120, ge=0, le=100_000, description="anchor requests signed per rolling minute; 0: no limit")
    max_uri_bytes: int = Field(512, ge=1, le=512, description="longest batch URI accepted")
    max_clock_skew_s: int = Field(300, ge=0, le=86_400, description="a batch may end at most this many s in the future")
    max_active_tasks: int = Field(1, ge=0, le=1000, description="TaskMarket tasks this machine holds at once at most (accept_task); 0: accepting refused")
    max_accepts_per_minute: int = Field(30, ge=0, le=100_000, description="accept_task requests signed per rolling minute; 0: no limit")
    max_completes_per_minute: int = Field(30, ge=0, le=100_000, description="complete_task requests signed per rolling minute; 0: no limit")
    max_posts_per_minute: int = Field(10, ge=0, le=100_000, description="post_task requests signed per rolling minute; 0: no limit")
    post_budget: str = Field("0", pattern=_UINT, description="total reward post_task escrows over the wallet's life (token base units); 0: posting refused")
    max_reward: str = Field("0", pattern=_UINT, description="largest reward of one post (token base units); 0: only the budget limits it")
    min_deadline_s: int = Field(30, ge=0, le=86_400 * 365, description="a post's deadline at least this many s after chain time")
    max_deadline_s: int = Field(7 * 86_400, ge=1, le=86_400 * 365, description="and at most this many")


def _policy(p: WalletParams, machine_name: str) -> IntentPolicy:
    return IntentPolicy(max_stake=int(p.max_stake), max_anchors_per_minute=p.max_anchors_per_minute,
                        max_uri_bytes=p.max_uri_bytes, max_clock_skew_s=p.max_clock_skew_s, machine_name=machine_name)


def _market_policy(p: WalletParams) -> MarketPolicy:
    return MarketPolicy(max_active_tasks=p.max_active_tasks, max_accepts_per_minute=p.max_accepts_per_minute,
                        max_completes_per_minute=p.max_completes_per_minute, max_posts_per_minute=p.max_posts_per_minute,
                        post_budget=int(p.post_budget), max_reward=int(p.max_reward), min_deadline_s=p.min_deadline_s,
                        max_deadline_s=p.max_deadline_s)


def state_dir(p: WalletParams):
    import os
    from pathlib import Path

    from depai_nodes.chain.config import repo_root

    return Path(p.state_dir or os.environ.get("DEPAI_STATE_DIR") or repo_root() / ".depai" / "state")


class WalletNode(ManagedNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("wallet", **kwargs)
        self.params = declare_params(self, WalletParams, on_change=self._on_params)
        self._signing = False  # active (lifecycle): only then does any request get signed
        self.wallet = None
        self._diagnostics()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py), beside `lifecycle`: `chain` (the head read every
        2 s while configured: WARN a failed read, retrying; ERROR unreachable beyond the RPC
        timeout + 5 s; OK with the block height), `policy` (the spending cap and where it comes
        from, allowed payees, the fleet policy last seen; ERROR: no cap known, transfers refused
        (fail closed); WARN: today's spend at the cap), `ledger` (requests
        pending / submitted, the queue; WARN: the queue full, or submitted ones waiting while the
        chain is down)."""
        from depai_nodes.common.diagnostics import ERROR, OK, WARN, ChainHealth

        self.chain_health = ChainHealth()
        self._probe = None
        self._policy_seen = None  # (version, paused, source) of the last /fleet/policy
        diag = self.diagnostics.diag

        def chain():
            if getattr(self, "fleet", None) is None:
                return WARN, "not configured: no chain client", {}
            return self.chain_health.check()

        def policy():
            w = self.wallet
            if w is None:
                return WARN, "not configured", {}
            cap = w.cap
            spent = w.state.spent_today()
            seen = self._policy_seen
            values = {"cap": "" if cap is None else cap, "cap_from": "fleet policy" if self.params.follow_policy else "parameter",
                      "spent_today": spent, "allowed_payees": len(w.allowed), "signing": self._signing,
                      "policy_version": "" if seen is None else seen[0], "paused": "" if seen is None else seen[1]}
            payees = f"{len(w.allowed)} allowed payee(s)" if w.allowed else "no allowed payees (transfers off)"
            if cap is None:
                return ERROR, "no spending cap: no fleet policy received yet, every transfer is refused", values
            if cap and spent >= cap:
                return WARN, f"daily cap reached ({spent} of {cap}): transfers refused until the next UTC day", values
            paused = f"; fleet paused (policy v{seen[0]})" if seen is not None and seen[1] else ""
            return OK, f"cap {cap or 'none'} ({values['cap_from']}), spent today {spent}, {payees}{paused}", values

        def ledger():
            from depai_nodes.wallet.state import PENDING, SUBMITTED

            w = self.wallet
            if w is None:
                return WARN, "not configured", {}
            pending, submitted = len(w.state.open_requests(PENDING)), len(w.state.open_requests(SUBMITTED))
            queued, size = w._q.qsize(), w._q.maxsize
            values = {"pending": pending, "submitted": submitted, "queued": queued, "max_queue": size, "worker_alive": w.alive}
            if queued >= size:
                return WARN, f"queue full ({queued}): new transfers are refused", values
            if submitted and w.outage.down:
                return WARN, f"{submitted} submitted transfer(s) wait for the chain (resolved by tx hash when it is back)", values
            return OK, f"{pending} pending, {submitted} submitted", values

        diag.check("chain", chain)
        diag.check("policy", policy)
        diag.check("ledger", ledger, cache_s=2.0)

    def _read_head(self):
        fleet = getattr(self, "fleet", None)
        return None if fleet is None else fleet.client.block_number()

    # ---- lifecycle (common/lifecycle.py). configure: the chain config and the key (keystore or
    # demo), the ledger, the intent services (which answer WALLET_UNAVAILABLE / WalletInactive until
    # activation) and wallet/account; activate: connect, start signing; deactivate: stop signing
    # (a request being signed finishes, transfers already accepted are paid, new ones are refused
    # with a result code; nothing is lost, the ledger stays); cleanup: the key and everything else.
    def activate_managed(self) -> None:
        from depai_nodes.chain.errors import ChainError

        try:  # connecting is retried lazily: an unreachable chain is reported per request
            self.fleet.client.verify_chain()
        except ChainError as e:
            self.get_logger().error(f"chain not ready ({type(e).__name__}: {e}); requests will report the error")
        self._signing = True

    def deactivate_managed(self) -> None:
        self._signing = False

    def cleanup_managed(self) -> None:
        self._signing = False
        self._release()

    def _release(self) -> None:
        if getattr(self, "_probe", None) is not None:
            self._probe.stop()
            self._probe = None
        if getattr(self, "chain_health", None) is not None:
            self.chain_health.reset()
        if self.wallet is not None:
            self.wallet.stop()
        if getattr(self, "svc_executor", None) is not None:
            self.svc_executor.shutdown(timeout_sec=1.0)
            self.svc_thread.join(2.0)
            self.svc_node.destroy_node()
            self.svc_executor = None
        for entity in getattr(self, "_configured", ()):
            (self.destroy_publisher if hasattr(entity, "publish") else self.destroy_subscription)(entity)
        self._configured = []
        self.wallet = self.intents = self.market = self.fleet = None  # the key goes with them

    def _inactive(self):
        from depai_nodes.chain.intents import Outcome, Result

        return Outcome(Result.WALLET_UNAVAILABLE, self.fleet.me, error="WalletInactive",
                       reason=f"the wallet is {self.lifecycle_state}, not active: it signs nothing")

    def configure_managed(self) -> None:
        from depai_nodes.chain.config import default_config_path
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.fleet import Fleet
        from depai_nodes.chain.watch import ChainWatch
        from depai_nodes.chain.wiring import load_node_chain
        from depai_nodes.common.params import ParameterError

        from .state import WalletState, WalletStateError, state_path

        config, client = load_node_chain(self.params, signing=True)
        client.strict_nonce = True  # each transaction's nonce from the node: a rewound chain cannot wedge it
        signer = client.signer
        self.machine_name = self.params.machine_name or (self.get_namespace().strip("/") or self.get_name())
        self.outbox: queue.Queue = queue.Queue()
        from depai_nodes.common.logthrottle import CauseThrottle

        self.throttle = CauseThrottle(60.0)
        if getattr(self, "status_pub", None) is None:  # kept across cleanup: late statuses still go out
            self.status_pub = self.create_publisher(TxStatus, "wallet/tx_status", RELIABLE_QOS)
        self.fleet = Fleet(client)
        try:
            ledger = WalletState(state_path(state_dir(self.params), signer.address), signer.address)
        except WalletStateError as e:
            raise ParameterError("state_dir", str(e)) from None
        self.intents = Intents(self.fleet, _policy(self.params, self.machine_name))
        watch = ChainWatch(config, self.params.chain_config or default_config_path(), period_s=self.params.chain_check_period)
        try:
            self.wallet = Wallet(self.fleet, lambda *a: self.outbox.put(("status", *a)), state=ledger, max_queue=self.params.max_queue,
                                 allowed_payees=self.params.allowed_payees, on_log=lambda lvl, text: self.outbox.put(("log", lvl, text)),
                                 watch=watch, on_chain_change=self._on_chain_change)
        except WalletError as e:
            raise ParameterError("allowed_payees", str(e)) from None
        if not self.params.follow_policy:
            self.wallet.set_cap(int(self.params.spending_cap))
        self.market = MarketIntents(self.fleet, _market_policy(self.params), state=ledger, cap=lambda: self.wallet.cap)
        self.wallet.start()
        self._configured = [self.create_subscription(TokenTransfer, "wallet/transfer", self._on_request, RELIABLE_QOS),
                            self.create_subscription(FleetPolicy, "/fleet/policy", self._on_policy, LATCHED_QOS)]
        if getattr(self, "timer", None) is None:
            self.timer = self.create_timer(0.02, self._drain)

        account = MachineAccount()
        account.header.stamp = self.get_clock().now().to_msg()
        account.address, account.chain_id, account.chain_name = signer.address, config.chain_id, config.name
        account.key_kind = "demo" if signer.is_demo else ("keystore" if signer.origin.startswith("keystore:") else "config")
        self.account_pub = self.create_publisher(MachineAccount, "wallet/account", LATCHED_QOS)
        self.account_pub.publish(account)
        self._configured.append(self.account_pub)

        self._start_intent_services()
        from depai_nodes.common.diagnostics import ChainProbe

        self.chain_health.reset()
        self.chain_health.error_after = config.rpc_timeout_s + 5.0
        self.chain_health.stale_after = config.rpc_timeout_s + 6.0
        self.chain_health.extra.update(rpc_url=config.rpc_url, chain_id=str(config.chain_id))
        self._probe = ChainProbe(self._read_head, self.chain_health, period=2.0, name="wallet-diag").start()
        self.get_logger().info(f"wallet of {signer.address} ({account.key_kind} key) on {config.name} (chain {config.chain_id}), "
                               f"machine {self.machine_name!r}, {len(self.wallet.allowed)} allowed payee(s), ledger {ledger.path}")

    def _warn(self, cause, text: str) -> None:
        """Refusals and failures, throttled per cause (a stranger's flood is one line a minute, with a count)."""
        ok, suppressed = self.throttle.check(cause)
        if ok:
            self.get_logger().warning(text + (f" ({suppressed} more like it since the last report)" if suppressed else ""))

    def _on_chain_change(self, fleet) -> None:
        self.fleet = fleet
        self.intents.fleet = fleet
        self.market.fleet = fleet

    # ------------------------------------------------------------------ intent services

    def _start_intent_services(self) -> None:
        """Serve the intents from their own node and executor thread (chain waits block it only)."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        # global arguments (the launcher's __node remap, the params file) are this node's, not its own
        self.svc_node = rclpy.create_node(f"{self.get_name()}_intents", namespace=self.get_namespace(), context=self.context,
                                          use_global_arguments=False, start_parameter_services=False)
        self.svc_node.create_service(AnchorBatch, "wallet/anchor_batch", self._on_anchor)
        self.svc_node.create_service(EnsureIdentity, "wallet/ensure_identity", self._on_ensure)
        self.svc_node.create_service(AcceptTask, "wallet/accept_task", self._on_accept_task)
        self.svc_node.create_service(CompleteTask, "wallet/complete_task", self._on_complete_task)
        self.svc_node.create_service(PostTask, "wallet/post_task", self._on_post_task)
        self.svc_executor = SingleThreadedExecutor(context=self.context)
        self.svc_executor.add_node(self.svc_node)
        self.svc_thread = threading.Thread(target=self._spin_services, name="wallet-intents", daemon=True)
        self.svc_thread.start()

    def _spin_services(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.svc_executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def _internal(self, what: str, e: Exception):
        """A bug in a handler: one answer with a result code, the service thread lives on."""
        from depai_nodes.chain.intents import Outcome, Result

        self.get_logger().error(f"{what}: internal error {type(e).__name__}: {e}")
        return Outcome(Result.WALLET_UNAVAILABLE, self.fleet.me, error="InternalError", reason=f"{type(e).__name__}: {e}"[:300])

    def _on_anchor(self, request, response):
        from depai_nodes.chain.intents import AnchorRequest

        try:
            out = self._inactive() if not self._signing else self.intents.anchor(AnchorRequest(request.batch_id, request.root, request.message_count,
                                                    request.start_time, request.end_time, request.uri))
        except Exception as e:  # noqa: BLE001 - every request ends with a result code
            out = self._internal(f"anchor {request.batch_id!r}", e)
        response.result, response.machine, response.tx_hash = out.result, out.machine, out.tx_hash
        response.block_number, response.already_anchored = int(out.block_number), out.already_anchored
        response.error, response.reason = out.error, out.reason
        if out.ok:
            self.get_logger().info(f"anchored batch {request.batch_id!r} in block {out.block_number}"
                                   + (" (already anchored)" if out.already_anchored else f" ({out.tx_hash})"))
        else:
            self._warn(("anchor", out.result, out.error), f"anchor {request.batch_id!r:.40}: {out.describe()}")
        return response

    def _on_ensure(self, request, response):
        from depai_nodes.chain.intents import IdentityRequest

        try:
            out = self._inactive() if not self._signing else self.intents.ensure_identity(IdentityRequest(request.machine_name, request.stake))
        except Exception as e:  # noqa: BLE001 - every request ends with a result code
            out = self._internal(f"identity {request.machine_name!r}", e)
        response.result, response.machine, response.tx_hash = out.result, out.machine, out.tx_hash
        response.steps, response.error, response.reason = list(out.steps), out.error, out.reason
        if out.ok:
            for step in out.steps:
                self.get_logger().info(f"identity: {step}")
        else:
            self._warn(("identity", out.result, out.error), f"identity {request.machine_name!r:.40}: {out.describe()}")
        return response

    # ------------------------------------------------------------------ market

    def _market_answer(self, what: str, call, response):
        try:
            out = self._inactive() if not self._signing else call()
        except Exception as e:  # noqa: BLE001 - every request ends with a result code
            # (a ledger that cannot be written lands here too: the ledger is written before a post is
            # signed, so nothing was sent; the payment worker ends the process on the same fault)
            out = self._internal(what, e)
        response.result, response.tx_hash, response.block_number = out.result, out.tx_hash, int(out.block_number)
        response.already_done = bool(getattr(out, "already_done", False))
        response.error, response.reason = out.error, out.reason
        if out.ok:
            self.get_logger().info(f"{what}: done" + (" (already)" if response.already_done else f" in block {out.block_number} ({out.tx_hash})"))
        else:  # throttled per kind and error: a stranger's flood of refusals is one line a minute
            self._warn((what.split(" ")[0], out.result, out.error), f"{what}: {out.describe()}")
        return out

    def _on_accept_task(self, request, response):
        out = self._market_answer(f"accept task {request.task_id!r:.40}", lambda: self.market.accept(AcceptRequest(request.task_id)), response)
        response.machine = out.machine
        return response

    def _on_complete_task(self, request, response):
        req = CompleteRequest(request.task_id, request.batch_id, int(request.x_mm), int(request.y_mm), int(request.yaw_mrad),
                              int(request.time), tuple(request.proof))
        out = self._market_answer(f"complete task {request.task_id!r:.40}", lambda: self.market.complete(req), response)
        response.machine, response.reward = out.machine, getattr(out, "reward", "0") or "0"
        return response

    def _on_post_task(self, request, response):
        req = PostRequest(request.request_id, request.station, float(request.x), float(request.y), float(request.yaw),
                          float(request.tolerance), int(request.deadline), request.reward)
        out = self._market_answer(f"post {request.request_id!r:.70}", lambda: self.market.post(req), response)
        response.requester, response.task_id = out.machine, getattr(out, "task_id", "") if out.ok else ""
        return response

    # ------------------------------------------------------------------ payments

    def _on_params(self, params: WalletParams) -> None:
        from depai_nodes.common.params import ParameterError

        if self.wallet is None:  # not configured: taken at configure
            self.params = params
            return
        try:
            self.wallet.set_payees(params.allowed_payees)
        except WalletError as e:
            raise ParameterError("allowed_payees", str(e)) from None
        self.params = params
        self.intents.set_policy(_policy(params, self.machine_name))
        self.market.set_policy(_market_policy(params))
        self.wallet.watch.period_s = params.chain_check_period
        if not params.follow_policy:
            self.wallet.set_cap(int(params.spending_cap))

    def _on_policy(self, msg: FleetPolicy) -> None:
        self._policy_seen = (msg.version, msg.paused, msg.source)
        if self.params.follow_policy:
            text = msg.spending_cap or "0"
            if not (text.isdigit() and len(text) <= 78):
                self.get_logger().warning(f"fleet policy v{msg.version} from {msg.source!r}: spending_cap {text!r:.40} is not a "
                                          "decimal integer; cap unchanged")
                return
            cap = int(text)
            self.wallet.set_cap(cap)
            if cap != getattr(self, "_logged_cap", None):  # the policy's heartbeat repeats it every second
                self._logged_cap = cap
                self.get_logger().info(f"spending cap from fleet policy v{msg.version}: {cap or 'none'}")

    def _on_request(self, msg: TokenTransfer) -> None:
        if not self._signing:
            from .core import Status

            self.outbox.put(("status", msg.request_id, Status.FAILED, "", 0, f"WalletInactive: the wallet is {self.lifecycle_state}, not active"))
            return
        try:
            self.wallet.request(msg.request_id, msg.to, msg.amount)
        except Exception as e:  # noqa: BLE001 - a request ends with a status, the node lives on
            from .core import Status
            from .state import WalletStateError

            if isinstance(e, WalletStateError):
                raise
            self.get_logger().error(f"transfer {msg.request_id!r}: internal error {type(e).__name__}: {e}")
            self.outbox.put(("status", msg.request_id, Status.FAILED, "", 0, f"InternalError: {type(e).__name__}"))

    def _drain(self) -> None:
        while True:
            try:
                item = self.outbox.get_nowait()
            except queue.Empty:
                return
            if item[0] == "log":
                # one call site per severity: rclpy refuses a call site whose severity changes
                logger, level, text = self.get_logger(), item[1], item[2]
                if level == "error":
                    logger.error(text)
                elif level == "warning":
                    logger.warning(text)
                else:
                    logger.info(text)
                continue
            _, request_id, status, tx_hash, block, error = item
            out = TxStatus()
            out.header.stamp = self.get_clock().now().to_msg()
            out.request_id, out.status, out.tx_hash, out.block_number, out.error = request_id, status, tx_hash or "", int(block), error
            self.status_pub.publish(out)
            if error:
                self._warn(("transfer", status, ":".join(error.split(":")[:2])), f"transfer {request_id!r:.60}: {error}")

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(WalletNode, args)


if __name__ == "__main__":
    sys.exit(main())
