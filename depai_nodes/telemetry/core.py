"""Telemetry batches: record ROS messages, seal them into files, anchor their Merkle roots.

ROS-free. A batch is a file of length-prefixed records (topic, receive time, the message's CDR
bytes as it came off the wire); its Merkle root over the records is signed by the machine's key
(EIP-712) and anchored in DataRegistry. Anyone holding the file can later prove on chain that
one record was part of it (``prove`` + ``DataRegistry.verifyMessage``).

Nothing is lost: each sealed batch gets a JSON sidecar with its state (``pending`` ->
``anchored`` or ``failed``). The anchorer retries a bounded number of times with backoff; a
batch still pending at shutdown (or after a crash) is picked up again at the next start.
A ``BatchExists`` revert means an earlier attempt did land: it counts as anchored.
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

from depai_nodes.chain.errors import ChainError, ContractRevertError, TxTimeoutError
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.chain.models import DataBatch, id32

__all__ = ["encode_record", "decode_record", "BatchBuffer", "SealedBatch", "write_batch", "read_batch", "prove",
           "Anchorer", "AnchorStatus", "TelemetryError", "MAGIC"]

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


@dataclass
class Anchorer:
    """Anchors sealed batch files from a worker thread; ``on_status(batch_id, status, tx_hash,
    block, error)`` reports progress. Bounded retries with exponential backoff."""

    fleet: Fleet
    on_status: Callable[[str, int, str, int, str], None]
    max_attempts: int = 5
    backoff_s: float = 1.0
    uri_prefix: str = "file://"
    _q: "queue.Queue[_Job | None]" = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "Anchorer":
        self._thread = threading.Thread(target=self._run, name="anchorer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._q.put(None)
        if self._thread:
            self._thread.join(timeout_s)

    def submit(self, path: Path) -> None:
        self._q.put(_Job(Path(path)))

    def resume(self, directory: Path) -> int:
        """Queue every batch in ``directory`` whose sidecar still says pending; returns how many."""
        n = 0
        for side in sorted(Path(directory).glob("*.json")):
            try:
                if json.loads(side.read_text()).get("state") == "pending":
                    self.submit(side.with_suffix(".dpb"))
                    n += 1
            except (OSError, ValueError):
                continue
        return n

    def idle(self) -> bool:
        return self._q.unfinished_tasks == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._q.get()
            try:
                if job is None:
                    return
                wait = job.not_before - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                self._anchor(job)
            finally:
                self._q.task_done()

    def _anchor(self, job: _Job) -> None:
        try:
            batch = read_batch(job.path)
            info = read_sidecar(job.path)
        except (TelemetryError, OSError, ValueError) as e:
            self.on_status(job.path.stem, AnchorStatus.FAILED, "", 0, f"TelemetryError: {e}")
            return
        tree = batch.tree
        data_batch = DataBatch(machine=self.fleet.me, batch_id=id32(batch.batch_id), root=tree.root,
                               message_count=len(batch.records), start_time=batch.start_ns // 10**9,
                               end_time=(batch.end_ns + 10**9 - 1) // 10**9, uri=f"{self.uri_prefix}{job.path.resolve()}")
        job.attempts += 1
        info["attempts"] = info.get("attempts", 0) + 1
        self.on_status(batch.batch_id, AnchorStatus.PENDING, "", 0, "")
        try:
            call = self.fleet.data.prepare("anchor", data_batch.as_tuple(), self.fleet.sign_batch(data_batch))
            tx_hash = self.fleet.client.transact(call, wait=False)
            self.on_status(batch.batch_id, AnchorStatus.SUBMITTED, tx_hash, 0, "")
            info.update(tx_hash=tx_hash)
            r = self.fleet.client.wait_receipt(tx_hash)
            if r.status != 1:
                raise self.fleet.client._mined_revert(call, r)
            info.update(state="anchored", block=r.block_number)
            _write_sidecar(job.path, info)
            self.on_status(batch.batch_id, AnchorStatus.CONFIRMED, tx_hash, r.block_number, "")
        except ContractRevertError as e:
            if e.error == "BatchExists":  # an earlier attempt landed (e.g. before a crash)
                info.update(state="anchored")
                _write_sidecar(job.path, info)
                self.on_status(batch.batch_id, AnchorStatus.CONFIRMED, e.tx_hash, 0, "")
            else:
                info.update(state="failed", error=str(e))
                _write_sidecar(job.path, info)
                self.on_status(batch.batch_id, AnchorStatus.REVERTED, e.tx_hash, 0, f"ContractRevertError: {e.reason}")
        except (ChainError, TxTimeoutError) as e:
            _write_sidecar(job.path, info)
            if job.attempts >= self.max_attempts:
                self.on_status(batch.batch_id, AnchorStatus.FAILED, getattr(e, "tx_hash", ""), 0,
                               f"{type(e).__name__}: {e} (gave up after {job.attempts} attempts; still pending on disk)")
                return
            self.on_status(batch.batch_id, AnchorStatus.FAILED, getattr(e, "tx_hash", ""), 0,
                           f"{type(e).__name__}: {e} (attempt {job.attempts}/{self.max_attempts}, retrying)")
            job.not_before = time.monotonic() + self.backoff_s * 2 ** (job.attempts - 1)
            self._q.put(job)
