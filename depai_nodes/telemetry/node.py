"""ROS wiring of telemetry anchoring: record topics, seal batches, anchor their Merkle roots.

Subscribes to the configured topics as raw CDR (no deserialisation cost, and the anchored bytes
are exactly what was on the wire), seals a batch file every `batch_period` s (or
`max_messages`), and has the machine's wallet anchor its root in DataRegistry over the
`wallet/anchor_batch` service, from a worker thread so the executor never waits. This node
holds no key and needs no chain access: the wallet signs (after checking the request against
its policy). Progress goes out on `anchor_status`; a batch leaves `pending` on disk only when
the wallet confirms it anchored.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

from pydantic import Field
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from depai.msg import TxStatus
from depai_nodes.common.params import ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import Anchorer, BatchBuffer, write_batch

# Best effort subscribes to reliable and best-effort publishers alike.
_RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)


class TelemetryParams(ParamsModel):
    topics: list[str] = Field(["odom nav_msgs/msg/Odometry"], min_length=1, description="'topic type' pairs to record")
    batch_period: float = Field(10.0, ge=0.1, le=3600.0, description="s from a batch's first message to sealing it")
    max_messages: int = Field(10000, ge=1, le=10_000_000, description="seal earlier when a batch has this many messages")
    output_dir: str = Field("", description="batch files; empty: .depai/telemetry/<node namespace and name>")
    max_attempts: int = Field(5, ge=1, le=100, description="anchoring attempts per batch in a row before waiting for the next rescan (file stays pending)")
    retry_backoff: float = Field(1.0, ge=0.01, le=600.0, description="s before the first retry; doubled per attempt (at most 60 s)")
    rescan_period: float = Field(60.0, ge=1.0, le=86_400.0, description="s between rescans of output_dir for batches still pending")
    wallet_timeout: float = Field(90.0, ge=1.0, le=3600.0, description="s to wait for the wallet's answer to one anchor request")


def _message_type(spec: str):
    try:
        topic, type_name = spec.split()
        package, _, name = type_name.split("/")
        return topic, getattr(importlib.import_module(f"{package}.msg"), name)
    except (ValueError, ImportError, AttributeError):
        raise ParameterError("topics", f"'{spec}' is not 'topic package/msg/Type' with a known type") from None


class TelemetryNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("telemetry", **kwargs)
        self.params = declare_params(self, TelemetryParams, on_change=self._on_params)
        from depai_nodes.chain.config import repo_root
        from depai_nodes.wallet.proxy import WalletProxy

        fq = self.get_fully_qualified_name().strip("/").replace("/", "_")
        self.dir = Path(self.params.output_dir) if self.params.output_dir else repo_root() / ".depai" / "telemetry" / fq
        self.status_pub = self.create_publisher(TxStatus, "anchor_status", RELIABLE_QOS)
        self.buffer = BatchBuffer(self.params.batch_period, self.params.max_messages)
        self.seq = 0
        self.wallet = WalletProxy(self)
        self.anchorer = Anchorer(lambda req: self.wallet.anchor(req, self.params.wallet_timeout), self._status,
                                 max_attempts=self.params.max_attempts, backoff_s=self.params.retry_backoff).start()
        resumed = self.anchorer.resume(self.dir)
        if resumed:
            self.get_logger().info(f"re-anchoring {resumed} pending batch(es) from {self.dir}")
        for spec in self.params.topics:
            topic, msg_type = _message_type(spec)
            self.create_subscription(msg_type, topic, lambda raw, t=topic: self._on_raw(t, raw), _RECORD_QOS, raw=True)
        self.timer = self.create_timer(min(0.5, self.params.batch_period / 2), self._tick)
        self.rescan_timer = self.create_timer(self.params.rescan_period, self._rescan)
        self.get_logger().info(f"recording {', '.join(self.params.topics)} into {self.dir}; "
                               "batches are anchored by the wallet (this node holds no key)")

    def _on_params(self, params: TelemetryParams) -> None:
        self.params = params
        self.buffer.period_ns = int(params.batch_period * 1e9)
        self.buffer.max_messages = params.max_messages
        self.anchorer.max_attempts = params.max_attempts
        self.anchorer.backoff_s = params.retry_backoff

    def _rescan(self) -> None:
        n = self.anchorer.resume(self.dir)
        if n:
            self.get_logger().info(f"retrying {n} batch(es) still pending in {self.dir}")

    def _on_raw(self, topic: str, raw: bytes) -> None:
        self.buffer.add(topic, time.time_ns(), raw)
        if len(self.buffer.records) >= self.params.max_messages:
            self._seal()

    def _tick(self) -> None:
        if self.buffer.due(time.time_ns()):
            self._seal()

    def _seal(self) -> None:
        self.seq += 1
        batch = self.buffer.seal(f"tlm-{int(time.time())}-{os.getpid() % 10000:04d}-{self.seq:05d}")
        path = write_batch(self.dir, batch, self.wallet.address)
        self.get_logger().info(f"sealed {batch.batch_id}: {len(batch.records)} messages, root 0x{batch.tree.root.hex()[:16]}...")
        self.anchorer.submit(path)

    def _status(self, batch_id: str, status: int, tx_hash: str, block: int, error: str) -> None:
        msg = TxStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.request_id = batch_id
        msg.tx_hash = tx_hash or ""
        msg.status = status
        msg.block_number = int(block)
        msg.error = error
        self.status_pub.publish(msg)
        if error:
            self.get_logger().warning(f"anchoring {batch_id}: {error}")
        elif status == TxStatus.CONFIRMED:
            self.get_logger().info(f"anchored {batch_id} in block {block} ({tx_hash})")

    def destroy_node(self) -> None:
        if self.buffer.records:
            self._seal()  # nothing recorded is dropped at shutdown: it is sealed and stays pending
        self.anchorer.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(TelemetryNode, args)


if __name__ == "__main__":
    sys.exit(main())
