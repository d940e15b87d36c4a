"""ROS wiring of the machine's wallet: pays in the fleet token on request, under the DAO's cap.

Other nodes publish depai/TokenTransfer on `wallet/transfer`; the wallet answers each with
depai/TxStatus on `wallet/tx_status` (same request_id): PENDING (validated, queued), SUBMITTED
(tx hash), then CONFIRMED (block) or REVERTED / FAILED with the typed error. The daily spending
cap comes from the fleet policy (`/fleet/policy`, spending_cap); until a policy arrives the
`spending_cap` parameter applies. The key never leaves this process.
"""

from __future__ import annotations

import queue
import sys

from pydantic import Field
from rclpy.node import Node

from depai.msg import FleetPolicy, TokenTransfer, TxStatus
from depai_nodes.common.params import ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import Wallet


class WalletParams(ParamsModel):
    spending_cap: str = Field("0", pattern=r"^[0-9]{1,78}$", description="daily cap (token base units) until /fleet/policy says otherwise; 0: none")
    follow_policy: bool = Field(True, description="take the cap from /fleet/policy's spending_cap")
    max_queue: int = Field(100, ge=1, le=100_000, description="transfers waiting at most; more are refused")
    chain_config: str = Field("", description="chain config; empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json")
    demo_index: int = Field(-1, ge=-1, le=9, description="anvil demo key index (local chain only); -1: the config's key")
    keystore: str = Field("", description="encrypted keystore of this machine (overrides the config's key)")


class WalletNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("wallet", **kwargs)
        self.params = declare_params(self, WalletParams, on_change=self._on_params)
        from depai_nodes.chain.client import ChainClient
        from depai_nodes.chain.config import load_config
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.fleet import Fleet
        from depai_nodes.chain.signer import signer_for

        try:
            config = load_config(self.params.chain_config or None)
        except ChainError as e:
            raise ParameterError("chain_config", str(e)) from None
        try:
            signer = signer_for(config, demo_index=self.params.demo_index, keystore=self.params.keystore)
        except ChainError as e:
            raise ParameterError("keystore" if self.params.keystore else "demo_index", str(e)) from None
        self.outbox: queue.Queue = queue.Queue()
        self.status_pub = self.create_publisher(TxStatus, "wallet/tx_status", RELIABLE_QOS)
        # Connecting is retried lazily: a wallet that cannot reach the chain refuses requests with the reason.
        self.fleet = Fleet(ChainClient(config, signer, verify_chain=False))
        self.wallet = Wallet(self.fleet, lambda *a: self.outbox.put(a), max_queue=self.params.max_queue)
        self.wallet.set_cap(int(self.params.spending_cap))
        try:
            self.fleet.client.verify_chain()
        except ChainError as e:
            self.get_logger().error(f"chain not reachable yet ({e}); transfers will report the error")
        self.wallet.start()
        self.create_subscription(TokenTransfer, "wallet/transfer", self._on_request, RELIABLE_QOS)
        self.create_subscription(FleetPolicy, "/fleet/policy", self._on_policy, LATCHED_QOS)
        self.timer = self.create_timer(0.02, self._drain)
        self.get_logger().info(f"wallet of {signer.address} on {config.name} (chain {config.chain_id})")

    def _on_params(self, params: WalletParams) -> None:
        self.params = params
        if not params.follow_policy:
            self.wallet.set_cap(int(params.spending_cap))

    def _on_policy(self, msg: FleetPolicy) -> None:
        if self.params.follow_policy:
            cap = int(msg.spending_cap or 0)
            self.wallet.set_cap(cap)
            self.get_logger().info(f"spending cap from fleet policy v{msg.version}: {cap or 'none'}")

    def _on_request(self, msg: TokenTransfer) -> None:
        self.wallet.request(msg.request_id, msg.to, msg.amount)

    def _drain(self) -> None:
        while True:
            try:
                request_id, status, tx_hash, block, error = self.outbox.get_nowait()
            except queue.Empty:
                return
            out = TxStatus()
            out.header.stamp = self.get_clock().now().to_msg()
            out.request_id, out.status, out.tx_hash, out.block_number, out.error = request_id, status, tx_hash or "", int(block), error
            self.status_pub.publish(out)
            if error:
                self.get_logger().warning(f"transfer {request_id}: {error}")

    def destroy_node(self) -> None:
        self.wallet.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(WalletNode, args)


if __name__ == "__main__":
    sys.exit(main())
