"""Telemetry batches: record ROS messages, seal them into files, anchor their Merkle roots.

ROS-free. A batch is a file of length-prefixed records (topic, receive time, the message's CDR
bytes as it came off the wire); its Merkle root over the records is anchored in DataRegistry,
signed (EIP-712) by the machine's wallet: this module holds no key. The ``Anchorer`` hands each
batch's description (id, root, count, time range, URI) to an ``anchor_fn`` — in the node, the
wallet's ``wallet/anchor_batch`` service — and acts on the result code. Anyone holding the file
can later prove on chain that one record was part of it (``prove`` + ``DataRegistry.verifyMessage``).

Nothing is lost: each sealed batch gets a JSON sidecar with its state (``pending`` ->
``anchored`` or ``failed``). A batch leaves ``pending`` only when the wallet confirms it anchored
(``already_anchored`` too: an earlier attempt landed) or refuses it for good (invalid, policy,
revert). Retryable answers (wallet or chain unavailable, timeout, busy) are retried a bounded
number of times with exponential backoff; a batch still pending then, at shutdown or after a
crash stays on disk and is picked up again by ``resume`` (at start and periodically).
"""

from __future__ import annotations

import json
import os
import queue
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from depai_nodes.chain.intents import AnchorRequest, Outcome, Result
from depai_nodes.chain.merkle import MerkleTree

__all__ = ["encode_record", "decode_record", "BatchBuffer", "SealedBatch", "write_batch", "read_batch", "prove",
           "Anchorer", "AnchorStatus", "TelemetryError", "MAGIC", "anchor_request"]

MAGIC = b"DPAIBAT1"


class TelemetryError(Exception):
    """A batch file is unreadable or malformed."""


def encode_record(topic: str, stamp_ns: int, payload: bytes) -> bytes:
    t = topic.encode()
    return struct.pack("<H", len(t)) + t + struct.pack("<Q", stamp_ns) + bytes(payload)


def decode_record(record: bytes) -> tuple[str, int, bytes]:
    (n,) = struct.unpack_from("<H", record, 0)
    topic = record[2:2 + n].decode()
    (stamp,) = struct.unpack_from("<Q", record, 2 + n)
    return topic, stamp, record[10 + n:]


@dataclass
class SealedBatch:
    batch_id: str
    records: list[bytes]
    start_ns: int
    end_ns: int
    path: Path | None = None

    @property
    def tree(self) -> MerkleTree:
        return MerkleTree(self.records)


class BatchBuffer:
    """Collects records until ``period_s`` elapsed since the first one or ``max_messages``."""

    def __init__(self, period_s: float, max_messages: int):
        self.period_ns = int(period_s * 1e9)
        self.max_messages = max_messages
        self.records: list[bytes] = []
        self.start_ns = 0
        self.end_ns = 0

    def add(self, topic: str, stamp_ns: int, payload: bytes) -> None:
        if not self.records:
            self.start_ns = stamp_ns
        self.records.append(encode_record(topic, stamp_ns, payload))
        self.end_ns = max(self.end_ns, stamp_ns)

    def due(self, now_ns: int) -> bool:
        return bool(self.records) and (len(self.records) >= self.max_messages or now_ns - self.start_ns >= self.period_ns)

    def seal(self, batch_id: str) -> SealedBatch:
        b = SealedBatch(batch_id, self.records, self.start_ns, self.end_ns)
        self.records, self.start_ns, self.end_ns = [], 0, 0
        return b


def write_batch(directory: Path, batch: SealedBatch, machine: str) -> Path:
    """Write the batch file and its ``pending`` sidecar (atomically: tmp + rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{batch.batch_id}.dpb"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<IQQ", len(batch.records), batch.start_ns, batch.end_ns))
        for r in batch.records:
            f.write(struct.pack("<I", len(r)) + r)
    os.replace(tmp, path)
    batch.path = path
    _write_sidecar(path, {"batch_id": batch.batch_id, "machine": machine, "state": "pending",
                          "root": "0x" + batch.tree.root.hex(), "messages": len(batch.records),
                          "start_ns": batch.start_ns, "end_ns": batch.end_ns, "attempts": 0})
    return path


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _write_sidecar(path: Path, info: dict) -> None:
    tmp = _sidecar(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, _sidecar(path))


def read_sidecar(path: Path) -> dict:
    return json.loads(_sidecar(path).read_text())


def read_batch(path: Path) -> SealedBatch:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise TelemetryError(f"cannot read batch {path}: {e.strerror}") from None
    if raw[:8] != MAGIC:
        raise TelemetryError(f"{path}: not a DePAI telemetry batch")
    try:
        count, start, end = struct.unpack_from("<IQQ", raw, 8)
        off, records = 8 + 20, []
        for _ in range(count):
            (n,) = struct.unpack_from("<I", raw, off)
            records.append(raw[off + 4:off + 4 + n])
            off += 4 + n
    except struct.error:
        raise TelemetryError(f"{path}: truncated") from None
    if off != len(raw) or any(len(r) < 10 for r in records):
        raise TelemetryError(f"{path}: malformed records")
    return SealedBatch(Path(path).stem, records, start, end, Path(path))


def prove(path: Path, index: int) -> tuple[bytes, list[bytes], bytes]:
    """(record, Merkle proof, root) for record ``index`` of a batch file."""
    b = read_batch(path)
    tree = b.tree
    return b.records[index], tree.proof(index), tree.root


class AnchorStatus:
    PENDING, SUBMITTED, CONFIRMED, REVERTED, FAILED = 0, 1, 2, 3, 4  # = depai/TxStatus constants


@dataclass
class _Job:
    path: Path
    attempts: int = 0
    not_before: float = 0.0


def anchor_request(batch: SealedBatch, uri: str) -> AnchorRequest:
    """What the wallet is asked to sign for a batch: whole seconds covering its time range."""
    return AnchorRequest(batch_id=batch.batch_id, root="0x" + batch.tree.root.hex(), message_count=len(batch.records),
                         start_time=batch.start_ns // 10**9, end_time=(batch.end_ns + 10**9 - 1) // 10**9, uri=uri)


@dataclass
class Anchorer:
    """Anchors sealed batch files from a worker thread through ``anchor_fn(AnchorRequest) ->
    Outcome`` (the wallet). ``on_status(batch_id, status, tx_hash, block, error)`` reports
    progress. Bounded retries with exponential backoff for retryable outcomes."""

    anchor_fn: Callable[[AnchorRequest], Outcome]
    on_status: Callable[[str, int, str, int, str], None]
    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    uri_prefix: str = "file://"
    _q: "queue.Queue[_Job | None]" = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _queued: set = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "Anchorer":
        self._thread = threading.Thread(target=self._run, name="anchorer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._q.put(None)
        if self._thread:
            self._thread.join(timeout_s)

    def submit(self, path: Path) -> bool:
        """Queue a batch file unless it is queued already; True when queued now."""
        key = str(Path(path).resolve())
        with self._lock:
            if key in self._queued:
                return False
            self._queued.add(key)
        self._q.put(_Job(Path(path)))
        return True

    def resume(self, directory: Path) -> int:
        """Queue every batch in ``directory`` whose sidecar still says pending (and that is not
        queued already); returns how many were queued."""
        n = 0
        for side in sorted(Path(directory).glob("*.json")):
            try:
                if json.loads(side.read_text()).get("state") == "pending" and self.submit(side.with_suffix(".dpb")):
                    n += 1
            except (OSError, ValueError):
                continue
        return n

    def idle(self) -> bool:
        return self._q.unfinished_tasks == 0

    def _done(self, job: _Job) -> None:
        with self._lock:
            self._queued.discard(str(job.path.resolve()))

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._q.get()
            try:
                if job is None:
                    return
                wait = job.not_before - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                if not self._anchor(job):
                    self._done(job)
            finally:
                self._q.task_done()

    def _anchor(self, job: _Job) -> bool:
        """One attempt; True when the job was queued again for a retry."""
        try:
            batch = read_batch(job.path)
            info = read_sidecar(job.path)
        except (TelemetryError, OSError, ValueError) as e:
            self.on_status(job.path.stem, AnchorStatus.FAILED, "", 0, f"TelemetryError: {e}")
            return False
        if info.get("state") != "pending":
            return False  # anchored (or refused) since it was queued
        req = anchor_request(batch, f"{self.uri_prefix}{job.path.resolve()}")
        job.attempts += 1
        info["attempts"] = info.get("attempts", 0) + 1
        self.on_status(batch.batch_id, AnchorStatus.PENDING, "", 0, "")
        try:
            out = self.anchor_fn(req)
        except Exception as e:  # noqa: BLE001 - a transport bug must not kill the worker; the batch stays pending
            out = Outcome(Result.WALLET_UNAVAILABLE, error=type(e).__name__, reason=str(e))
        if out.machine:
            info["machine"] = out.machine
        if out.tx_hash:
            info["tx_hash"] = out.tx_hash
        if out.ok:
            info.update(state="anchored", block=out.block_number, already_anchored=out.already_anchored)
            info.pop("error", None)
            _write_sidecar(job.path, info)
            self.on_status(batch.batch_id, AnchorStatus.CONFIRMED, out.tx_hash, out.block_number, "")
            return False
        if not out.retryable:  # the wallet refused this batch for good: recorded, never silently dropped
            info.update(state="failed", error=out.describe())
            _write_sidecar(job.path, info)
            status = AnchorStatus.REVERTED if out.result == Result.REVERTED else AnchorStatus.FAILED
            self.on_status(batch.batch_id, status, out.tx_hash, 0, out.describe())
            return False
        info["error"] = out.describe()
        _write_sidecar(job.path, info)
        if job.attempts >= self.max_attempts:
            self.on_status(batch.batch_id, AnchorStatus.FAILED, out.tx_hash, 0,
                           f"{out.describe()} (gave up after {job.attempts} attempts; still pending on disk)")
            return False
        self.on_status(batch.batch_id, AnchorStatus.FAILED, out.tx_hash, 0,
                       f"{out.describe()} (attempt {job.attempts}/{self.max_attempts}, retrying)")
        job.not_before = time.monotonic() + min(self.max_backoff_s, self.backoff_s * 2 ** (job.attempts - 1))
        self._q.put(job)
        return True
