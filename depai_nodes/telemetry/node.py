"""ROS wiring of the data layer: record topics into MCAP batches, have the wallet anchor them.

Subscribes to the configured topics as raw CDR (the bytes exactly as they came off DDS: no
deserialisation cost, and what is anchored is what was received) plus the typed `arrival`
records, writes them into the current batch (a rosbag2 folder with one MCAP file), flushes
finished chunks every `flush_period` s, seals a batch after `batch_period` s, `max_bytes` or
`max_messages`, and has the machine's wallet anchor its Merkle root in DataRegistry over
`wallet/anchor_batch`, oldest first, from a worker thread; serves `telemetry/arrival_proof` (where a
task's arrival record stands: pending, or anchored with its Merkle proof). This node holds no key. With a chain
config it also reads the chain (read-only) to notice a reset and anchor again what the chain lost.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import Field
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from depai.msg import ArrivalRecord, TxStatus
from depai.srv import ArrivalProof
from depai_nodes.common.lifecycle import ManagedNode
from depai_nodes.common.logthrottle import CauseThrottle, with_count
from depai_nodes.common.params import READ_ONLY, ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import Anchorer, BatchRecorder, TelemetryError, arrival_proof, list_batches, prune, reanchor_if_reset, recover
from .leaves import ARRIVAL_TYPE, LeafError, canonical

# Best effort subscribes to reliable and best-effort publishers alike.
_RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
_ARRIVAL_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)


class TelemetryParams(ParamsModel):
    topics: list[str] = Field(["odom nav_msgs/msg/Odometry"], min_length=1, description="'topic type' pairs to record",
                              json_schema_extra=READ_ONLY)
    batch_period: float = Field(10.0, ge=0.1, le=3600.0, description="s from a batch's first message to sealing it")
    max_bytes: int = Field(64 * 2**20, ge=1024, le=2**40, description="seal earlier at this many bytes of message data")
    max_messages: int = Field(100_000, ge=1, le=10_000_000, description="seal earlier when a batch has this many messages")
    flush_period: float = Field(1.0, ge=0.05, le=60.0, description="s between flushes of the open batch to disk (a crash loses at most this)")
    compression: Literal["zstd", "lz4"] = Field("zstd", description="MCAP chunk compression", json_schema_extra=READ_ONLY)
    output_dir: str = Field("", description="batch folders; empty: .depai/telemetry/<node namespace and name>", json_schema_extra=READ_ONLY)
    disk_budget: int = Field(2 * 2**30, ge=0, le=2**50, description="bytes of batches kept; anchored ones beyond it are deleted oldest first (0: keep all)")
    reliable: bool = Field(False, description="subscribe reliably (every message of a reliable publisher; best effort matches every publisher)", json_schema_extra=READ_ONLY)
    arrival_topic: str = Field("arrival", description="depai/ArrivalRecord records to put into the current batch (typed leaves)", json_schema_extra=READ_ONLY)
    max_attempts: int = Field(5, ge=1, le=100, description="anchoring attempts in a row before waiting for the next rescan (batches stay pending)")
    retry_backoff: float = Field(1.0, ge=0.01, le=600.0, description="s before the first retry; doubled per attempt (at most 60 s)")
    rescan_period: float = Field(60.0, ge=0.5, le=86_400.0, description="s between rescans: pending batches, chain reset, retention")
    wallet_timeout: float = Field(90.0, ge=1.0, le=3600.0, description="s to wait for the wallet's answer to one anchor request")
    chain_check: bool = Field(True, description="read the chain (no key) to notice a reset and re-anchor what it lost", json_schema_extra=READ_ONLY)
    chain_config: str = Field("", description="chain config for chain_check ('' = $DEPAI_CHAIN_CONFIG or .depai/chain.local.json)", json_schema_extra=READ_ONLY)


def _message_type(spec: str):
    try:
        topic, type_name = spec.split()
        package, _, name = type_name.split("/")
        return topic, type_name, getattr(importlib.import_module(f"{package}.msg"), name)
    except (ValueError, ImportError, AttributeError):
        raise ParameterError("topics", f"'{spec}' is not 'topic package/msg/Type' with a known type") from None


class TelemetryNode(ManagedNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("telemetry", **kwargs)
        self.params = declare_params(self, TelemetryParams, on_change=self._on_params)
        from depai_nodes.wallet.proxy import WalletProxy

        self.status_pub = self.create_publisher(TxStatus, "anchor_status", RELIABLE_QOS)
        self.wallet = WalletProxy(self)
        self.anchorer = None
        self.recorder = None
        self._entities: list = []  # what configure created (subscriptions, service, timers): cleanup destroys them
        self._diagnostics()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py), beside `lifecycle`: an input entry per recorded
        topic (WARN: nothing received yet), `recording` (the open batch; WARN: a disk error in the
        last 30 s, messages lost) and `backlog` (sealed batches not anchored yet, the oldest one's
        age (wall clock: sealed_ns), the last error; OK: none, or the one being anchored;
        WARN: inactive, no wallet account, a retry in progress, or the oldest waiting longer than
        max(30 s, 3 batch periods); ERROR: batches the wallet refused for good, never anchored).
        The backlog reads the sidecars at most every 2 s, only when the report is published."""
        from depai_nodes.common.diagnostics import ERROR, OK, WARN

        diag = self.diagnostics.diag
        self._diag_topics = {}
        self._disk_error_at = (-1e18, "")
        for spec in self.params.topics:
            topic = spec.split()[0] if spec.split() else spec
            full = self.resolve_topic_name(topic)
            self._diag_topics[full] = diag.topic(full)

        def recording():
            rec = self.recorder
            if rec is None:
                return WARN, "not configured: not recording", {}
            values = {"open_messages": rec.count, "open_bytes": rec.bytes, "dir": str(self.dir)}
            at, text = self._disk_error_at
            if time.monotonic() - at < 30.0:
                values["error"] = text
                return WARN, f"disk error, messages lost: {text}", values
            return OK, f"recording: open batch {rec.count} message(s), {rec.bytes} bytes", values

        def backlog():
            if self.recorder is None:
                return WARN, "not configured", {}
            batches = list_batches(self.dir)
            pending = [s for _, s in batches if s and s.get("state") == "pending"]
            failed = [s for _, s in batches if s and s.get("state") == "failed"]
            anchored = sum(1 for _, s in batches if s and s.get("state") == "anchored")
            oldest = min((int(s.get("sealed_ns", 0)) for s in pending), default=0)
            age = max(0.0, time.time() - oldest / 1e9) if pending else 0.0
            error = next((s["error"] for s in pending if s.get("error")), "")
            values = {"pending": len(pending), "failed": len(failed), "anchored": anchored,
                      "oldest_pending_age_s": f"{age:.1f}" if pending else "", "wallet": self.wallet.address,
                      "anchoring": self.anchorer is not None}
            if error:
                values["last_error"] = error[:200]
            if failed:
                why = str(failed[-1].get("error", ""))[:200]
                return ERROR, f"{len(failed)} batch(es) refused for good, never anchored (latest: {why})", values
            if not pending:
                return OK, f"no backlog: {anchored} batch(es) anchored", values
            n = f"{len(pending)} sealed batch(es) not anchored, oldest {age:.0f} s"
            if self.anchorer is None:
                return WARN, f"{n}: inactive, anchored after activation", values
            if not self.wallet.address:
                return WARN, f"{n}: no wallet (no machine account on wallet/account); they wait on disk", values
            if error:
                return WARN, f"{n}: retrying ({error[:160]})", values
            if age > max(30.0, 3 * self.params.batch_period):
                return WARN, f"{n}: anchoring is slow", values
            return OK, f"anchoring: {n}", values

        diag.check("recording", recording)
        diag.check("backlog", backlog, cache_s=2.0)

    # ---- lifecycle (common/lifecycle.py). configure: the parameters, the batch directory (an
    # interrupted batch recovered and sealed), recording starts (subscriptions, arrival_proof);
    # activate: anchoring starts (pending batches first, through the wallet); deactivate: anchoring
    # stops after the batch in flight, recording goes on (nothing lost: sealed batches wait on disk);
    # cleanup: the open batch is sealed, subscriptions, service and timers released.
    def activate_managed(self) -> None:
        self.anchorer = Anchorer(self.dir, lambda req: self.wallet.anchor(req, self.params.wallet_timeout), self._status,
                                 max_attempts=self.params.max_attempts, backoff_s=self.params.retry_backoff,
                                 chain_tag=self._genesis if self._chain else None, precheck=self._check_chain)
        pending = len(self.anchorer.pending())
        if pending:
            self.get_logger().info(f"anchoring {pending} pending batch(es) from {self.dir}")
        self.anchorer.start()

    def deactivate_managed(self) -> None:
        anchorer, self.anchorer = self.anchorer, None
        if anchorer is not None:
            anchorer.stop()

    def cleanup_managed(self) -> None:
        with self.lock:
            self._seal_locked()
        for entity in self._entities:
            for destroy in (self.destroy_subscription, self.destroy_service, self.destroy_timer):
                if destroy(entity):
                    break
        self._entities = []
        self.recorder = None
        self._chain = None

    def configure_managed(self) -> None:
        from depai_nodes.chain.config import repo_root

        from .msgdefs import MsgDefError, full_definition

        fq = self.get_fully_qualified_name().strip("/").replace("/", "_")
        self.dir = Path(self.params.output_dir) if self.params.output_dir else repo_root() / ".depai" / "telemetry" / fq
        specs = [_message_type(s) for s in self.params.topics]
        for _, type_name, _ in specs + [("", ARRIVAL_TYPE, None)]:
            try:
                full_definition(type_name)
            except MsgDefError as e:
                raise ParameterError("topics", str(e)) from None
        self.lock = threading.Lock()  # the open batch (subscriptions, timers)
        self.dir_lock = threading.Lock()  # retention vs the chain-reset check (anchorer thread)
        self._disk_throttle = CauseThrottle(30.0)
        self.recorder = BatchRecorder(self.dir, compression=self.params.compression)
        self._chain = None
        self._genesis_seen = ""
        self._check_all = True  # at start: the chain may have been reset while this node was down
        if self.params.chain_check:
            self._chain = self._read_only_chain()
        for folder, side in list_batches(self.dir):  # what a crash left open: keep what the file holds, seal it
            if side is None or side.get("state") == "recording":
                sealed, n = recover(folder)
                self.get_logger().warning(f"recovered {n} message(s) of an interrupted batch {folder.name}"
                                          + (" and sealed it" if sealed else " (nothing readable: removed)"))
        for topic, type_name, msg_type in specs:
            full = self.resolve_topic_name(topic)
            self._entities.append(self.create_subscription(msg_type, topic, lambda raw, t=full, ty=type_name: self._record(t, ty, raw),
                                     _ARRIVAL_QOS if self.params.reliable else _RECORD_QOS, raw=True))
        arrival = self.resolve_topic_name(self.params.arrival_topic)
        self._entities.append(self.create_subscription(ArrivalRecord, self.params.arrival_topic,
                                                       lambda raw: self._record(arrival, ARRIVAL_TYPE, raw), _ARRIVAL_QOS, raw=True))
        self._entities.append(self.create_service(ArrivalProof, "telemetry/arrival_proof", self._on_arrival_proof))
        self.timer = self.create_timer(min(0.25, self.params.batch_period / 2), self._tick)
        self.flush_timer = self.create_timer(self.params.flush_period, self._flush)
        self.rescan_timer = self.create_timer(self.params.rescan_period, self._rescan)
        self._entities += [self.timer, self.flush_timer, self.rescan_timer]
        self._prune()
        self.get_logger().info(f"recording {', '.join(self.params.topics)} and {arrival} (typed) into {self.dir}; "
                               "batches are anchored by the wallet (this node holds no key)")

    # ------------------------------------------------------------------ chain (read-only)

    def _read_only_chain(self):
        from depai_nodes.chain.client import ChainClient
        from depai_nodes.chain.config import load_config
        from depai_nodes.chain.errors import ChainError

        try:
            config = load_config(self.params.chain_config or None)
            config.address("DataRegistry")
            return ChainClient(config, None, verify_chain=False)
        except ChainError as e:
            self.get_logger().warning(f"chain_check off: {e} (batches are still anchored by the wallet)")
            return None

    def _genesis(self) -> str:
        return self._chain.genesis_hash(refresh=True)

    def _check_chain(self) -> None:
        """In the anchorer's thread before it anchors: after a chain reset, batches the chain
        lost go back to pending (logged once per reset)."""
        if self._chain is None:
            return
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.chain.models import id32

        try:
            genesis = self._genesis()
            registry = self._chain.contract("DataRegistry")

            def is_anchored(machine: str, batch_id: str) -> bool:
                return bool(registry.call("isAnchored", machine, id32(batch_id)))

            with self.dir_lock:
                reset = reanchor_if_reset(self.dir, genesis, is_anchored, check_all=self._check_all)
        except (ChainError, TelemetryError, OSError):
            # chain down (the wallet's answers say so too): once it is back, every anchored batch is
            # checked, since a chain restarted from an older state may have lost the latest anchors
            self._check_all = True
            return
        self._check_all = False
        if reset:
            self.get_logger().warning(f"chain reset detected (genesis {genesis[:12]}...): {len(reset)} anchored "
                                      "batch(es) are not on this chain any more; anchoring them again")
        self._genesis_seen = genesis

    # ------------------------------------------------------------------ recording

    def _on_params(self, params: TelemetryParams) -> None:
        self.params = params
        if self.anchorer is not None:
            self.anchorer.max_attempts = params.max_attempts
            self.anchorer.backoff_s = params.retry_backoff

    def _record(self, topic: str, type_name: str, raw: bytes) -> None:
        stats = self._diag_topics.get(topic)
        if stats is not None:
            stats.tick()
        with self.lock:
            arrival = type_name == ARRIVAL_TYPE
            try:
                data = canonical(type_name, bytes(raw))
                log_time = time.time_ns()
                if arrival:
                    # logged at the time it names (the chain's clock scale: the market checks that the
                    # batch's time range covers it), and sealed at once: one batch per arrival, since
                    # TaskMarket lets a batch be cited by one task only
                    log_time = self._check_arrival(data) or log_time
                self.recorder.add(topic, type_name, log_time, data)
            except LeafError as e:
                self.get_logger().warning(f"refused a record on {topic}: {e}")
                return
            except OSError as e:  # disk full, folder gone: this message is lost, the node lives on
                self._disk_error(f"cannot write to {self.dir}: {e.strerror or e}")
                return
            if arrival or self.recorder.bytes >= self.params.max_bytes or self.recorder.count >= self.params.max_messages:
                self._seal_locked()

    def _on_arrival_proof(self, request: ArrivalProof.Request, response: ArrivalProof.Response) -> ArrivalProof.Response:
        """Where the arrival record of a task stands, from the batches on disk and the open one."""
        with self.lock:
            open_arrivals = list(self.recorder.arrivals)
        try:
            answer = arrival_proof(self.dir, int(request.task_id), open_arrivals)
        except (OSError, TelemetryError) as e:  # the folder unreadable: say so, never a traceback
            response.result = ArrivalProof.Response.UNKNOWN
            response.reason = f"cannot read {self.dir}: {e}"
            return response
        response.result = getattr(ArrivalProof.Response, answer.result)
        response.reason = answer.reason
        if answer.result == "ANCHORED":
            r = answer.record
            response.batch_id, response.root = answer.batch_id, answer.root
            response.x_mm, response.y_mm, response.yaw_mrad, response.time = int(r["x_mm"]), int(r["y_mm"]), int(r["yaw_mrad"]), int(r["time"])
            response.proof = list(answer.proof)
            response.anchored_block = answer.anchored_block
        return response

    def _check_arrival(self, data: bytes) -> int:
        """A typed record is signed into this machine's batch: it must name this machine (fail
        closed: none is accepted before the wallet has announced the machine's account). Returns
        the time it names (unix ns; 0 when none)."""
        from .leaves import ArrivalRecord as Arrival

        rec = Arrival.from_cdr(data)
        me = self.wallet.address
        if not me:
            raise LeafError("no machine account from the wallet yet: an arrival record cannot be checked")
        if rec.machine.lower() != me.lower():
            raise LeafError(f"names machine {rec.machine}, not this machine {me}")
        return rec.sec * 10**9 + rec.nanosec

    def _tick(self) -> None:
        with self.lock:
            if self.recorder.due(self.params.batch_period, self.params.max_bytes, self.params.max_messages):
                self._seal_locked()

    def _flush(self) -> None:
        with self.lock:
            self.recorder.flush()

    def _disk_error(self, text: str) -> None:
        self._disk_error_at = (time.monotonic(), text)
        log_now, suppressed = self._disk_throttle.check(text)
        if log_now:
            self.get_logger().error(with_count(text, suppressed))

    def _seal_locked(self) -> None:
        folder_open = self.recorder.folder
        try:
            folder = self.recorder.seal(self.wallet.address)
        except OSError as e:  # the batch stays `recording` on disk: recovered at the next start
            self._disk_error(f"cannot seal {folder_open}: {e.strerror or e}; it is recovered at the next start")
            self.recorder.abandon()
            return
        if folder is None:
            return
        from .core import read_sidecar

        side = read_sidecar(folder)
        self.get_logger().info(f"sealed {folder.name}: {side['messages']} messages, batch {side['batch_id']}, "
                               f"root {side['root'][:18]}...")
        if self.anchorer is not None:  # inactive: anchored after activation
            self.anchorer.kick()

    def _rescan(self) -> None:
        if self.anchorer is not None:
            self.anchorer.kick()
        self._prune()

    def _prune(self) -> None:
        if self.params.disk_budget:
            with self.dir_lock:  # not while the chain check moves a batch back to pending
                removed = prune(self.dir, self.params.disk_budget)
            if removed:
                self.get_logger().info(f"retention: deleted {len(removed)} anchored batch(es) beyond the "
                                       f"{self.params.disk_budget} byte budget (oldest first)")

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
        if self.recorder is not None:
            with self.lock:
                self._seal_locked()  # nothing recorded is dropped at shutdown: sealed, pending on disk
        if self.anchorer is not None:
            self.anchorer.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(TelemetryNode, args)


if __name__ == "__main__":
    sys.exit(main())
