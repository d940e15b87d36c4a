"""ROS wiring of the machine identity: ensure the DID (and stake) on chain, publish standing.

A worker thread does the chain work (every call bounded by the chain config's timeouts) so
the executor never blocks: at start it makes sure the machine's DID attribute and market
registration exist, then re-reads the machine's standing every `period` s. An unreachable
chain is reported in the message's `error` and retried at the next period.
"""

from __future__ import annotations

import queue
import sys
import threading

from pydantic import Field
from rclpy.node import Node

from depai.msg import MachineIdentity
from depai_nodes.common.params import ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from .core import IdentityState, ensure_identity, read_identity


class IdentityParams(ParamsModel):
    machine_name: str = Field("", max_length=2560, description="DID attribute value; empty: the node's namespace")
    stake: str = Field("0", pattern=r"^[0-9]{1,78}$", description="TaskMarket stake to hold, token base units (0: do not register)")
    ensure: bool = Field(True, description="write the DID attribute / stake when missing (False: only read)")
    period: float = Field(10.0, ge=0.5, le=3600.0, description="s between re-reads of the on-chain standing")
    chain_config: str = Field("", description="chain config; empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json")
    demo_index: int = Field(-1, ge=-1, le=9, description="anvil demo key index (local chain only); -1: the config's key")
    keystore: str = Field("", description="encrypted keystore of this machine (overrides the config's key)")


class IdentityNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("identity", **kwargs)
        self.params = declare_params(self, IdentityParams, on_change=self._on_params)
        from depai_nodes.chain.config import load_config
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.signer import signer_for

        try:
            self.config = load_config(self.params.chain_config or None)
        except ChainError as e:
            raise ParameterError("chain_config", str(e)) from None
        try:
            self.signer = signer_for(self.config, demo_index=self.params.demo_index, keystore=self.params.keystore)
        except ChainError as e:
            raise ParameterError("keystore" if self.params.keystore else "demo_index", str(e)) from None
        self.name = self.params.machine_name or (self.get_namespace().strip("/") or self.get_name())
        self.pub = self.create_publisher(MachineIdentity, "identity", LATCHED_QOS)
        self.inbox: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.worker = threading.Thread(target=self._work, name="identity", daemon=True)
        self.worker.start()
        self.timer = self.create_timer(0.1, self._drain)
        self.get_logger().info(f"machine {self.signer.address} ({self.name}) on {self.config.name} (chain {self.config.chain_id})")

    def _on_params(self, params: IdentityParams) -> None:
        self.params = params
        self.wake.set()

    def _work(self) -> None:
        from depai_nodes.chain.client import ChainClient
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.fleet import Fleet

        fleet = None
        ensured = not self.params.ensure
        while not self.stop_event.is_set():
            try:
                if fleet is None:
                    fleet = Fleet(ChainClient(self.config, self.signer))
                if not ensured:
                    for step in ensure_identity(fleet, self.name, int(self.params.stake)):
                        self.inbox.put(("log", step))
                    ensured = True
                self.inbox.put(("state", read_identity(fleet), ""))
            except ChainError as e:
                self.inbox.put(("state", None, f"{type(e).__name__}: {e}"))
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
            _, state, error = item
            self._publish(state, error)

    def _publish(self, state: IdentityState | None, error: str) -> None:
        msg = MachineIdentity()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.address = self.signer.address
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
            self.get_logger().warning(f"chain: {error}; retrying in {self.params.period:g} s")
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
