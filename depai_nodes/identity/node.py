"""ROS wiring of the machine identity: have the wallet ensure the DID (and stake), publish standing.

This node holds no key. A worker thread (so the executor never blocks) learns the machine's
address from the wallet's latched `wallet/account`, asks the wallet over `wallet/ensure_identity`
to write the DID attribute and market stake it wants (the wallet checks them against its
policy, e.g. `max_stake`, and signs), then re-reads the machine's standing every `period` s
through a read-only chain client. A missing wallet or an unreachable chain is reported in the
message's `error` and retried at the next period; a request the wallet refuses (policy, invalid,
revert) is reported and not repeated until a parameter changes.
"""

from __future__ import annotations

import queue
import sys
import threading

from pydantic import Field
from rclpy.node import Node

from depai.msg import MachineIdentity
from depai_nodes.common.params import ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from .core import IdentityState, read_identity


class IdentityParams(ParamsModel):
    machine_name: str = Field("", max_length=2560, description="DID attribute value; empty: the node's namespace")
    stake: str = Field("0", pattern=r"^[0-9]{1,78}$", description="TaskMarket stake to hold, token base units (0: do not register)")
    ensure: bool = Field(True, description="ask the wallet to write the DID attribute / stake when missing (False: only read)")
    period: float = Field(10.0, ge=0.5, le=3600.0, description="s between re-reads of the on-chain standing")
    chain_config: str = Field("", description="chain config (read-only use); empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json")
    wallet_timeout: float = Field(90.0, ge=1.0, le=3600.0, description="s to wait for the wallet's answer to a request")


class IdentityNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("identity", **kwargs)
        self.params = declare_params(self, IdentityParams, on_change=self._on_params)
        from depai_nodes.chain.wiring import load_node_chain
        from depai_nodes.wallet.proxy import WalletProxy

        self.config, self.client = load_node_chain(self.params)  # read-only: no key in this process
        self.wallet = WalletProxy(self)
        self.name = self.params.machine_name or (self.get_namespace().strip("/") or self.get_name())
        self.pub = self.create_publisher(MachineIdentity, "identity", LATCHED_QOS)
        self.inbox: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.reensure = threading.Event()
        self.worker = threading.Thread(target=self._work, name="identity", daemon=True)
        self.worker.start()
        self.timer = self.create_timer(0.1, self._drain)
        self.get_logger().info(f"identity {self.name} on {self.config.name} (chain {self.config.chain_id}); "
                               "the wallet signs, this node holds no key")

    def _on_params(self, params: IdentityParams) -> None:
        self.params = params
        self.reensure.set()
        self.wake.set()

    def _work(self) -> None:
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.fleet import Fleet
        from depai_nodes.chain.intents import IdentityRequest

        fleet = None
        ensured = not self.params.ensure
        refused = ""  # the wallet refused the request as is: not repeated until a parameter changes
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
                    if fleet is None or fleet.me != address:
                        self.client.verify_chain()
                        fleet = Fleet(self.client, address)
                    state = read_identity(fleet)
                except ChainError as e:
                    error = error or f"{type(e).__name__}: {e}"
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
            _, state, address, error = item
            self._publish(state, address, error)

    def _publish(self, state: IdentityState | None, address: str, error: str) -> None:
        msg = MachineIdentity()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.address = address
        msg.chain_id = self.config.chain_id
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
            self.get_logger().warning(f"{error}; retrying in {self.params.period:g} s")
        self.pub.publish(msg)

    def destroy_node(self) -> None:
        self.stop_event.set()
        self.wake.set()
        self.worker.join(5.0)
        super().destroy_node()


def main(args=None) -> int:
    return run_node(IdentityNode, args)


if __name__ == "__main__":
    sys.exit(main())
