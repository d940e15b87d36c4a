"""ROS wiring of the machine identity: have the wallet ensure the DID (and stake), publish standing.

This node holds no key. A worker thread (so the executor never blocks) learns the machine's
address from the wallet's latched `wallet/account`, asks the wallet over `wallet/ensure_identity`
to write the DID attribute and market stake it wants (the wallet checks them against its
policy, e.g. `max_stake`, and signs), then re-reads the machine's standing every `period` s
through a read-only chain client. A missing wallet or an unreachable chain is reported in the
message's `error` and retried at the next period; a request the wallet refuses (policy, invalid,
revert) is reported and not repeated until a parameter changes.

Which chain: the genesis is checked every period (``ChainWatch``). After a chain reset the
config is re-read and the identity ensured again; so it is when the chain no longer shows the
DID attribute or the stake (e.g. restored from a state file older than that write). An outage
is logged once when it starts and once when it ends, not every period.
"""

from __future__ import annotations

import queue
import sys
import threading

from pydantic import Field
from rclpy.node import Node

from depai.msg import MachineIdentity
from depai_nodes.common.lifecycle import ManagedNode
from depai_nodes.common.params import READ_ONLY, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from .core import IdentityState, read_identity


class IdentityParams(ParamsModel):
    machine_name: str = Field("", max_length=2560, description="DID attribute value; empty: the node's namespace", json_schema_extra=READ_ONLY)
    stake: str = Field("0", pattern=r"^[0-9]{1,78}$", description="TaskMarket stake to hold, token base units (0: do not register)")
    ensure: bool = Field(True, description="ask the wallet to write the DID attribute / stake when missing (False: only read)")
    period: float = Field(10.0, ge=0.5, le=3600.0, description="s between re-reads of the on-chain standing")
    chain_config: str = Field("", description="chain config (read-only use); empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json", json_schema_extra=READ_ONLY)
    wallet_timeout: float = Field(90.0, ge=1.0, le=3600.0, description="s to wait for the wallet's answer to a request")


class IdentityNode(ManagedNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("identity", **kwargs)
        self.params = declare_params(self, IdentityParams, on_change=self._on_params)
        from depai_nodes.wallet.proxy import WalletProxy

        self.config = self.client = None  # configure_managed: the chain config, read-only
        self.wallet = WalletProxy(self)
        self.name = self.params.machine_name or (self.get_namespace().strip("/") or self.get_name())
        self.pub = self.create_publisher(MachineIdentity, "identity", LATCHED_QOS)
        self.inbox: queue.Queue = queue.Queue()
        from depai_nodes.common.logthrottle import CauseThrottle

        self.throttle = CauseThrottle(60.0)
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.reensure = threading.Event()
        self.worker: threading.Thread | None = None
        self.timer = self.create_timer(0.1, self._drain)
        self._diagnostics()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py), beside `lifecycle`: `chain` (the worker's reads
        every `period`: WARN a failed read, retrying; ERROR unreachable for max(15 s, 2 periods);
        OK with the block height) and `did` (the standing last published: WARN not running yet, no
        wallet account, the DID attribute or stake not (yet) what is wanted, or the wallet's
        refusal; OK: DID `machine_name` valid, with stake and balance)."""
        from depai_nodes.common.diagnostics import OK, WARN, ChainHealth

        p = self.params
        self.chain_health = ChainHealth(error_after=max(15.0, 2 * p.period), stale_after=3 * p.period + 10.0)
        self._reported = None  # (IdentityState | None, address, error) last published

        def did():
            if self.worker is None:
                return WARN, "not active: the identity is not checked", {"name": self.name}
            if self._reported is None:
                return WARN, "no standing read yet", {"name": self.name}
            state, address, error = self._reported
            values = {"name": self.name, "address": address, "stake_wanted": self.params.stake}
            if state is None:
                return WARN, error or "no standing", values
            values.update(did_valid=state.did_valid, machine_name=state.machine_name, stake=state.stake,
                          market_registered=state.market_registered, token_balance=state.token_balance, block=state.block_number)
            if error:
                return WARN, error[:300], values
            if state.machine_name != self.name or not state.did_valid:
                return WARN, f"DID attribute {self.name!r} not on the chain yet" + ("" if self.params.ensure else " (ensure off)"), values
            if int(self.params.stake) > state.stake:
                return WARN, f"stake {state.stake} below the {self.params.stake} wanted", values
            return OK, f"DID {self.name!r} valid, stake {state.stake}, balance {state.token_balance}", values

        self.diagnostics.diag.check("chain", lambda: self.chain_health.check() if self.worker is not None
                                    else (WARN, "not active: the chain is not read", {}))
        self.diagnostics.diag.check("did", did)

    # ---- lifecycle (common/lifecycle.py): configure reads the chain config (read-only client);
    # activate starts the worker (asks the wallet, reads the chain); deactivate stops it after the
    # request in flight; cleanup drops the client.
    def configure_managed(self) -> None:
        from depai_nodes.chain.wiring import load_node_chain

        self.config, self.client = load_node_chain(self.params)  # read-only: no key in this process
        self.get_logger().info(f"identity {self.name} on {self.config.name} (chain {self.config.chain_id}); "
                               "the wallet signs, this node holds no key")

    def activate_managed(self) -> None:
        self.chain_health.reset()
        self.chain_health.extra["rpc_url"] = self.config.rpc_url
        self._reported = None
        self.stop_event = threading.Event()
        self.worker = threading.Thread(target=self._work, name="identity", daemon=True)
        self.worker.start()

    def deactivate_managed(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.worker is not None:
            self.worker.join(self.params.wallet_timeout + 5.0)
            self.worker = None
        self.wake.clear()

    def cleanup_managed(self) -> None:
        self.config = self.client = None

    def _on_params(self, params: IdentityParams) -> None:
        self.params = params
        self.reensure.set()
        self.wake.set()

    def _work(self) -> None:
        try:
            self._work_loop()
        except Exception as e:  # noqa: BLE001 - logged; the runner ends the process (exit 1) on a dead thread
            self.inbox.put(("log", f"identity worker failed: {type(e).__name__}: {e}"))
            raise

    def _work_loop(self) -> None:
        from depai_nodes.chain.config import default_config_path
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.fleet import Fleet
        from depai_nodes.chain.intents import IdentityRequest
        from depai_nodes.chain.watch import ChainWatch
        from depai_nodes.common.logthrottle import Outage

        fleet = None
        ensured = not self.params.ensure
        refused = ""  # the wallet refused the request as is: not repeated until a parameter changes
        watch = ChainWatch(self.config, self.params.chain_config or default_config_path(), period_s=0.0)
        self.outage = Outage(f"identity: chain ({self.config.rpc_url})")
        while not self.stop_event.is_set():
            if self.reensure.is_set():
                self.reensure.clear()
                ensured, refused = not self.params.ensure, ""
            error, state = "", None
            address = self.wallet.address
            if not address:
                error = "WalletUnavailable: no machine account on wallet/account yet (is the wallet node running?)"
            else:
                if not ensured and not refused:
                    out = self.wallet.ensure_identity(IdentityRequest(self.name, self.params.stake), self.params.wallet_timeout)
                    if out.ok:
                        ensured = True
                        for step in out.steps:
                            self.inbox.put(("log", f"wallet: {step}"))
                    elif out.retryable:
                        error = out.describe()
                    else:
                        refused = out.describe()
                        self.inbox.put(("log", f"the wallet refused the identity request: {refused}"))
                try:
                    change = watch.check(self.client)
                    if change is not None and change.rewound:
                        self.inbox.put(("warn", f"{change.describe()}: re-checking the identity"))
                        change = None  # the read below sees whether the DID is still there
                    if change is not None:  # a reset: the new chain knows nothing of this machine yet
                        self.client.adopt(change.config)
                        self.config = change.config
                        fleet = None
                        ensured, refused = not self.params.ensure, ""
                        self.inbox.put(("warn", f"{change.describe()}: ensuring the identity again"))
                    if fleet is None or fleet.me != address:
                        self.client.verify_chain()
                        fleet = Fleet(self.client, address)
                    state = read_identity(fleet)
                    self.chain_health.ok(state.block_number)
                    line = self.outage.recovered()
                    if line:
                        self.inbox.put(("log", line))
                    if ensured and self.params.ensure and (state.machine_name != self.name or (
                            int(self.params.stake) > 0 and state.stake < int(self.params.stake))):
                        ensured = False  # the chain lost what was written (restored from an older state?)
                        self.inbox.put(("warn", f"the chain no longer shows DID {self.name!r} / stake {self.params.stake}: "
                                                "asking the wallet again"))
                        self.wake.set()
                except ChainError as e:
                    self.chain_health.failed(f"{type(e).__name__}: {e}")
                    error = error or f"{type(e).__name__}: {e}"
                    line = self.outage.failed(error)
                    if line:
                        self.inbox.put(("warn", line))
            self.inbox.put(("state", state, address, error or refused))
            self.wake.wait(self.params.period)
            self.wake.clear()

    def _drain(self) -> None:
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if item[0] == "log":
                self.get_logger().info(item[1])
                continue
            if item[0] == "warn":
                self.get_logger().warning(item[1])
                continue
            _, state, address, error = item
            self._publish(state, address, error)

    def _publish(self, state: IdentityState | None, address: str, error: str) -> None:
        self._reported = (state, address, error)
        msg = MachineIdentity()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.address = address
        msg.chain_id = self.config.chain_id if self.config is not None else 0  # cleaned up: a late report
        msg.error = error
        if state is not None:
            msg.did_registry = state.did_registry
            msg.machine_name = state.machine_name
            msg.did_valid = state.did_valid
            msg.market_registered = state.market_registered
            msg.stake = str(state.stake)
            msg.token_balance = str(state.token_balance)
            msg.native_balance = str(state.native_balance)
            msg.active_tasks = state.active_tasks
            msg.block_number = state.block_number
        else:
            ok, suppressed = self.throttle.check(error.split(":", 1)[0])  # per cause, with a count
            if ok:
                self.get_logger().warning(f"{error}; retrying every {self.params.period:g} s"
                                          + (f" ({suppressed} more since the last report)" if suppressed else ""))
        self.pub.publish(msg)

    def destroy_node(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.worker is not None:
            self.worker.join(5.0)
        super().destroy_node()


def main(args=None) -> int:
    return run_node(IdentityNode, args)


if __name__ == "__main__":
    sys.exit(main())
