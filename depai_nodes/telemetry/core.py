"""Telemetry batches: ROS 2 bags (MCAP) whose Merkle roots the machine's wallet anchors on chain.

ROS-free. A batch is a rosbag2 folder::

    <output_dir>/<name>/<name>_0.mcap   one channel per topic, ros2msg schemas (full definitions),
                                        cdr messages exactly as they came off DDS, zstd chunks
    <output_dir>/<name>/metadata.yaml   rosbag2 metadata: the folder opens as a ROS 2 bag
    <output_dir>/<name>/proofs.json     the Merkle tree (every level): a proof per message
    <output_dir>/<name>/anchor.json     state: recording -> pending -> anchored | failed

One leaf per message, in recording order (``leaves``: ABI-encoded topic, log time, CDR; typed
records such as the arrival proof ABI-encoded field by field); the root, the count and the time
range are signed by the machine's wallet (EIP-712) and anchored in DataRegistry under the
content-derived batch id (``content_batch_id``): a retry of the same batch is the same id, so
it can never be anchored twice. This module holds no key.

Durability: the recording flushes finished chunks to disk (``flush``), so a crash loses at most
what was not yet flushed; ``recover`` reads what a crashed recording holds (the MCAP reader up to
the first unreadable record) and seals it. A batch is fsynced (file, sidecars, folder) before
it is handed to the anchorer. ``Anchorer`` anchors strictly in recording order: while the oldest
pending batch cannot be anchored (chain or wallet down) the later ones wait behind it.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import shutil
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml
from mcap.exceptions import McapError
import lz4.frame
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.records import Channel, Chunk, DataEnd, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from depai_nodes.chain.intents import AnchorRequest, Outcome, Result, content_batch_id
from depai_nodes.chain.merkle import MerkleTree

from .leaves import ARRIVAL_TYPE, LeafError, leaf_of
from .msgdefs import full_definition

__all__ = ["TelemetryError", "BatchRecorder", "BatchInfo", "RecordedMessage", "read_batch", "recover", "reanchor_if_reset",
           "read_sidecar", "write_sidecar", "list_batches", "prune", "prove", "anchor_request", "Anchorer",
           "AnchorStatus", "LEAF_ENCODING", "SIDE", "PROOFS", "ArrivalAnswer", "arrival_proof", "arrival_entry"]

SIDE = "anchor.json"
PROOFS = "proofs.json"
LEAF_ENCODING = ("keccak256(keccak256(abi.encode(string topic, uint64 logTimeNs, bytes cdr))); "
                 f"{ARRIVAL_TYPE}: keccak256(keccak256(abi.encode(ARRIVAL_TYPEHASH, uint256 taskId, address machine, "
                 "int64 xMm, int64 yMm, int64 yawMrad, uint64 timeS)))")


class TelemetryError(Exception):
    """A batch is unreadable or malformed (the message says what and where)."""


class AnchorStatus:
    PENDING, SUBMITTED, CONFIRMED, REVERTED, FAILED = 0, 1, 2, 3, 4  # = depai/TxStatus constants


# ------------------------------------------------------------------------------------ files

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_sidecar(folder: Path, info: dict) -> None:
    _atomic_write(Path(folder) / SIDE, json.dumps(info, indent=1))
    _fsync_dir(Path(folder))


def read_sidecar(folder: Path) -> dict:
    try:
        info = json.loads((Path(folder) / SIDE).read_text())
    except (OSError, ValueError) as e:
        raise TelemetryError(f"{folder}: no readable {SIDE}: {e}") from None
    if not isinstance(info, dict):
        raise TelemetryError(f"{folder}/{SIDE}: not a JSON object")
    return info


def mcap_path(folder: Path) -> Path:
    return Path(folder) / f"{Path(folder).name}_0.mcap"


def _seconds(start_ns: int, end_ns: int) -> tuple[int, int]:
    """Whole unix seconds covering [start_ns, end_ns] (what the chain stores)."""
    return start_ns // 10**9, -(-end_ns // 10**9)


# ------------------------------------------------------------------------------------ recording

class BatchRecorder:
    """Records messages into the current batch folder; ``seal`` finishes it (fsynced).

    ``add`` computes each message's leaf as it is written (typed records are checked then: a
    record that cannot be a leaf is refused, LeafError, and not written)."""

    def __init__(self, directory: Path, *, compression: str = "zstd", chunk_bytes: int = 256 * 1024):
        self.directory = Path(directory)
        self.compression = CompressionType.ZSTD if compression == "zstd" else CompressionType.LZ4
        self.chunk_bytes = chunk_bytes
        self._reset()

    def _reset(self) -> None:
        self.folder: Path | None = None
        self._file = None
        self._writer: Writer | None = None
        self._channels: dict[str, int] = {}
        self._schemas: dict[str, int] = {}
        self.leaves: list[bytes] = []
        self.arrivals: list[dict] = []  # typed arrival records of this batch (arrival_entry), for arrival_proof
        self.topics: dict[str, list] = {}  # topic -> [type, count]
        self.start_ns = 0
        self.end_ns = 0
        self.bytes = 0
        self.opened_mono = 0.0

    @property
    def count(self) -> int:
        return len(self.leaves)

    def _open(self, log_time: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.fromtimestamp(log_time / 1e9, _dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        name = f"tlm_{stamp}_{log_time % 10**9:09d}"
        folder = self.directory / name
        while folder.exists():
            name += "x"
            folder = self.directory / name
        folder.mkdir()
        write_sidecar(folder, {"state": "recording", "created_ns": time.time_ns()})
        self.folder = folder
        self._file = open(mcap_path(folder), "wb")
        self._writer = Writer(self._file, chunk_size=self.chunk_bytes, compression=self.compression,
                              enable_data_crcs=True)
        self._writer.start(profile="ros2", library="depai-telemetry")
        self.opened_mono = time.monotonic()

    def _channel(self, topic: str, type_name: str) -> int:
        cid = self._channels.get(topic)
        if cid is None:
            sid = self._schemas.get(type_name)
            if sid is None:
                sid = self._writer.register_schema(type_name, "ros2msg", full_definition(type_name).encode())
                self._schemas[type_name] = sid
            cid = self._writer.register_channel(topic, "cdr", sid, {"offered_qos_profiles": ""})
            self._channels[topic] = cid
            self.topics[topic] = [type_name, 0]
        return cid

    def add(self, topic: str, type_name: str, log_time: int, data: bytes) -> None:
        leaf = leaf_of(type_name, topic, log_time, data)  # LeafError before anything is written
        if self._writer is None:
            self._open(log_time)
        cid = self._channel(topic, type_name)
        if not self.leaves:
            self.start_ns = log_time
        self.start_ns = min(self.start_ns, log_time)
        self.end_ns = max(self.end_ns, log_time)
        self._writer.add_message(cid, log_time, data, log_time, sequence=len(self.leaves))
        if type_name == ARRIVAL_TYPE:
            self.arrivals.append(arrival_entry(data, len(self.leaves)))
        self.leaves.append(leaf)
        self.topics[topic][1] += 1
        self.bytes += len(data)

    def due(self, period_s: float, max_bytes: int, max_messages: int) -> bool:
        return bool(self.leaves) and (self.bytes >= max_bytes or len(self.leaves) >= max_messages
                                      or time.monotonic() - self.opened_mono >= period_s)

    def flush(self) -> None:
        """Finish the chunk in progress and hand it to the OS (survives a kill of this process)."""
        if self._writer is not None and self.leaves:
            self._writer.flush()

    def seal(self, machine: str = "") -> Path | None:
        """Finish the batch: MCAP footer, metadata.yaml, proofs, sidecar ``pending``; all fsynced.
        ``machine``: the account expected to anchor it (written into the file as a claim that a
        verifier checks against the chain; "" when not known yet)."""
        if self._writer is None:
            return None
        folder, writer, f = self.folder, self._writer, self._file
        try:
            info = _batch_metadata(self.leaves, self.start_ns, self.end_ns)
            meta = {k: str(v) for k, v in info.items()}
            if machine:
                meta["machine"] = machine
            writer.add_metadata("depai.batch", meta)
            writer.finish()
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        topics = {t: (ty, n) for t, (ty, n) in self.topics.items()}
        leaves, start, end, arrivals = self.leaves, self.start_ns, self.end_ns, self.arrivals
        self._reset()
        _finish_folder(folder, leaves, topics, start, end, info, {"arrivals": arrivals})
        return folder

    def abandon(self) -> None:
        """Close the file as it is (tests: what a killed process leaves behind)."""
        if self._file is not None:
            self._file.close()
        self._reset()


def _batch_metadata(leaves: list[bytes], start_ns: int, end_ns: int) -> dict:
    root = MerkleTree(leaves=leaves).root
    s, e = _seconds(start_ns, end_ns)
    return {"batch_id": content_batch_id(root, len(leaves), s, e), "root": "0x" + root.hex(),
            "message_count": len(leaves), "start_time": s, "end_time": e, "start_ns": start_ns, "end_ns": end_ns,
            "leaf": LEAF_ENCODING}


def _finish_folder(folder: Path, leaves: list[bytes], topics: dict, start_ns: int, end_ns: int, info: dict,
                   extra: dict | None = None) -> None:
    tree = MerkleTree(leaves=leaves)
    name = mcap_path(folder).name
    meta = {"rosbag2_bagfile_information": {
        "version": 8, "storage_identifier": "mcap", "ros_distro": "jazzy",
        "duration": {"nanoseconds": end_ns - start_ns},
        "starting_time": {"nanoseconds_since_epoch": start_ns},
        "message_count": len(leaves),
        "topics_with_message_count": [
            {"topic_metadata": {"name": t, "type": ty, "serialization_format": "cdr", "offered_qos_profiles": "",
                                "type_description_hash": ""}, "message_count": n} for t, (ty, n) in topics.items()],
        "compression_format": "", "compression_mode": "",
        "relative_file_paths": [name],
        "files": [{"path": name, "starting_time": {"nanoseconds_since_epoch": start_ns},
                   "duration": {"nanoseconds": end_ns - start_ns}, "message_count": len(leaves)}],
        "custom_data": {"depai.batch_id": info["batch_id"], "depai.root": info["root"]},
    }}
    _atomic_write(folder / "metadata.yaml", yaml.safe_dump(meta, sort_keys=False))
    _atomic_write(folder / PROOFS, json.dumps({
        "batch_id": info["batch_id"], "root": info["root"], "message_count": len(leaves), "leaf": LEAF_ENCODING,
        "tree": "OpenZeppelin MerkleProof: sorted pairs, an odd node is carried up; levels[0] = leaves in recording order",
        "levels": [[x.hex() for x in level] for level in tree.levels]}, separators=(",", ":")))
    side = {"state": "pending", "batch_id": info["batch_id"], "root": info["root"], "messages": len(leaves),
            "start_ns": start_ns, "end_ns": end_ns, "start_time": info["start_time"], "end_time": info["end_time"],
            "attempts": 0, "sealed_ns": time.time_ns()}
    side.update(extra or {})
    write_sidecar(folder, side)


# ------------------------------------------------------------------------------------ reading

@dataclass
class RecordedMessage:
    topic: str
    type_name: str
    log_time: int
    data: bytes


@dataclass
class BatchInfo:
    folder: Path | None
    path: Path
    messages: list[RecordedMessage]
    metadata: dict = field(default_factory=dict)  # the file's depai.batch metadata record
    complete: bool = True  # False: the file ended early or a record was unreadable
    problem: str = ""  # what stopped the reading (when not complete)

    @property
    def start_ns(self) -> int:
        return min(m.log_time for m in self.messages)

    @property
    def end_ns(self) -> int:
        return max(m.log_time for m in self.messages)


def _resolve(path: Path) -> tuple[Path | None, Path]:
    path = Path(path)
    if path.is_dir():
        f = mcap_path(path)
        if not f.exists():
            found = sorted(path.glob("*.mcap"))
            if not found:
                raise TelemetryError(f"{path}: no .mcap file in this folder")
            f = found[0]
        return path, f
    if not path.exists():
        raise TelemetryError(f"{path}: no such file or folder")
    return (path.parent if (path.parent / SIDE).exists() or (path.parent / "metadata.yaml").exists() else None), path


def read_batch(path: Path, *, tolerant: bool = False) -> BatchInfo:
    """Every message of a batch (folder or .mcap), in file order.

    Strict (default): magic bytes, every chunk's CRC and the data section's CRC must check and
    the file must end with its footer, else TelemetryError naming what is wrong and after how
    many messages. ``tolerant``: return what was readable up to the first problem
    (``complete=False``, ``problem``) - recovering a recording that was cut off."""
    folder, f = _resolve(path)
    try:
        stream = open(f, "rb")
    except OSError as e:
        raise TelemetryError(f"{f}: cannot read: {e.strerror}") from None
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    messages: list[RecordedMessage] = []
    meta: dict = {}
    problem = ""
    data_ends = 0
    with stream:
        head = stream.read(8)
        if head != b"\x89MCAP0\r\n":
            raise TelemetryError(f"{f}: not an MCAP file (no MCAP magic bytes)")
        stream.seek(0)
        try:
            size = os.fstat(stream.fileno()).st_size  # no record can be larger than the file
            for rec in StreamReader(stream, validate_crcs=True, emit_chunks=True, record_size_limit=size).records:
                if isinstance(rec, Chunk):
                    _chunk_messages(rec, schemas, channels, messages)
                elif isinstance(rec, Message):
                    ch = channels.get(rec.channel_id)
                    if ch is None:
                        raise TelemetryError(f"message {len(messages)} names an unknown channel {rec.channel_id}")
                    messages.append(RecordedMessage(ch[0], ch[1], rec.log_time, rec.data))
                elif isinstance(rec, Schema):
                    schemas[rec.id] = rec.name
                elif isinstance(rec, Channel):
                    channels[rec.id] = (rec.topic, schemas.get(rec.schema_id, ""))
                elif type(rec).__name__ == "Metadata" and rec.name == "depai.batch":
                    meta = dict(rec.metadata)
                elif isinstance(rec, DataEnd):
                    data_ends += 1
                    if not rec.data_section_crc:  # our writer always writes it: a zero CRC checks nothing
                        raise TelemetryError("the data section has no checksum (data end CRC is 0)")
            if data_ends != 1:
                # the stream reader skips records it does not know: a data end whose opcode was
                # altered would leave the data section's CRC unchecked
                raise TelemetryError(f"{data_ends} data end records (one expected): the file's structure was altered")
            _check_summary_crc(f)
        except TelemetryError as e:
            problem = str(e)
        except (McapError, ValueError, EOFError, OSError, KeyError, IndexError, UnicodeDecodeError) as e:
            problem = _describe(e)
        except Exception as e:  # noqa: BLE001 - the reader on damaged bytes may raise anything; never a traceback
            problem = _describe(e)
    if problem and not tolerant:
        raise TelemetryError(f"{f}: {problem} (after {len(messages)} readable message(s))")
    return BatchInfo(folder, f, messages, meta, complete=not problem, problem=problem)


_MAX_CHUNK = 256 * 2**20
_MSG_HEAD = struct.Struct("<BQHIQQ")  # opcode, record length, channel id, sequence, log time, publish time


def _chunk_messages(chunk: Chunk, schemas: dict, channels: dict, messages: list) -> None:
    """The records of one chunk (CRC of its uncompressed bytes checked), parsed in place: the
    mcap reader's per-field stream reads cost ~3x more than the hashing this feeds."""
    if chunk.uncompressed_size > _MAX_CHUNK:  # a hostile file must not make the verifier allocate gigabytes
        raise TelemetryError(f"a chunk claims {chunk.uncompressed_size} uncompressed bytes (over {_MAX_CHUNK})")
    if chunk.compression == "zstd":
        data = zstandard.decompress(chunk.data, max_output_size=chunk.uncompressed_size)
    elif chunk.compression == "lz4":
        data = lz4.frame.decompress(chunk.data)
    elif chunk.compression == "":
        data = chunk.data
    else:
        raise TelemetryError(f"unknown chunk compression {chunk.compression!r}")
    if len(data) != chunk.uncompressed_size or (chunk.uncompressed_crc and zlib.crc32(data) != chunk.uncompressed_crc):
        raise TelemetryError("checksum mismatch in a chunk: the bytes were altered")
    view, off, end, unpack = memoryview(data), 0, len(data), _MSG_HEAD.unpack_from
    while off < end:
        if end - off < 9:
            raise TelemetryError("a chunk ends inside a record header")
        opcode = data[off]
        (length,) = struct.unpack_from("<Q", data, off + 1)
        stop = off + 9 + length
        if stop > end:
            raise TelemetryError("a chunk record runs past the end of its chunk")
        if opcode == 0x05:
            if length < 22:
                raise TelemetryError("a message record too short for its header")
            _, _, cid, _, log_time, _ = unpack(data, off)
            ch = channels.get(cid)
            if ch is None:
                raise TelemetryError(f"message {len(messages)} names an unknown channel {cid}")
            messages.append(RecordedMessage(ch[0], ch[1], log_time, bytes(view[off + 31:stop])))
        elif opcode in (0x03, 0x04):
            body = ReadDataStream(io.BytesIO(bytes(view[off + 9:stop])))
            if opcode == 0x03:
                sc = Schema.read(body)
                schemas[sc.id] = sc.name
            else:
                c = Channel.read(body)
                channels[c.id] = (c.topic, schemas.get(c.schema_id, ""))
        off = stop


def _describe(e: Exception) -> str:
    name = type(e).__name__
    if name in ("EndOfFile", "EOFError") or "end of file" in str(e).lower():
        return "the file ends early (truncated: no footer)"
    if name == "RecordLengthLimitExceeded":
        return "a record runs past the end of the file (truncated, or its length altered)"
    if name == "CRCValidationError":
        return f"checksum mismatch ({e}): the bytes were altered"
    return f"unreadable record ({name}: {str(e)[:120]})"


def _check_summary_crc(f: Path) -> None:
    """The footer's CRC over the summary section (the stream reader does not check it), and the
    data end record right before the summary."""
    with open(f, "rb") as s:
        s.seek(0, 2)
        size = s.tell()
        if size < 8 + 37:
            raise TelemetryError("the file is too short to hold a footer")
        s.seek(size - 8 - 29)  # footer record: opcode(1) len(8) summary_start(8) offset_start(8) crc(4)
        opcode, length, summary_start, _offsets, crc = struct.unpack("<BQQQI", s.read(29))
        if opcode != 0x02 or length != 20:
            raise TelemetryError("no footer record at the end of the file")
        footer_at = size - 8 - 29
        # our writer always writes a summary and its CRC: without them the summary and footer go unchecked
        if not crc or not summary_start:
            raise TelemetryError("the footer has no summary or no summary checksum: the file's structure was altered")
        if not 8 + 13 <= summary_start <= footer_at:
            raise TelemetryError("the footer points outside the file")
        s.seek(summary_start)
        body = s.read(size - 8 - 4 - summary_start)
        if zlib.crc32(body) != crc:
            raise TelemetryError("summary checksum mismatch: the file's index bytes were altered")
        # the data end record (whose CRC covers every byte before it) sits right before the
        # summary: no byte between the two CRC-checked sections goes unchecked
        s.seek(summary_start - 13)
        if s.read(9) != b"\x0f" + struct.pack("<Q", 4):
            raise TelemetryError("no data end record right before the summary: the file's structure was altered")


def leaves_of(messages: Iterable[RecordedMessage]) -> list[bytes]:
    return [leaf_of(m.type_name, m.topic, m.log_time, m.data) for m in messages]


# ------------------------------------------------------------------------------------ recovery

def recover(folder: Path) -> tuple[Path | None, int]:
    """Seal a batch whose recording was cut off (crash, kill -9, power loss): keep every message
    the file still holds, rewrite it as a complete MCAP, seal. (sealed folder or None when it held
    nothing, messages kept). The torn original is replaced only after the rewrite is fsynced."""
    folder = Path(folder)
    f = mcap_path(folder)
    try:
        b = read_batch(folder, tolerant=True) if f.exists() else None
    except TelemetryError:
        b = None
    msgs = []
    for m in (b.messages if b else []):
        try:
            leaf_of(m.type_name, m.topic, m.log_time, m.data)
            msgs.append(m)
        except LeafError:
            continue
    if not msgs:
        shutil.rmtree(folder, ignore_errors=True)
        return None, 0
    tmp = folder / (f.name + ".recovering")
    rec = BatchRecorder(folder.parent)
    with open(tmp, "wb") as out:
        w = Writer(out, chunk_size=rec.chunk_bytes, compression=rec.compression, enable_data_crcs=True)
        w.start(profile="ros2", library="depai-telemetry")
        schemas: dict[str, int] = {}
        channels: dict[str, int] = {}
        topics: dict[str, list] = {}
        for i, m in enumerate(msgs):
            if m.topic not in channels:
                if m.type_name not in schemas:
                    try:
                        text = full_definition(m.type_name).encode()
                    except LookupError:
                        text = b""
                    schemas[m.type_name] = w.register_schema(m.type_name, "ros2msg", text)
                channels[m.topic] = w.register_channel(m.topic, "cdr", schemas[m.type_name], {"offered_qos_profiles": ""})
                topics[m.topic] = [m.type_name, 0]
            w.add_message(channels[m.topic], m.log_time, m.data, m.log_time, sequence=i)
            topics[m.topic][1] += 1
        leaves = leaves_of(msgs)
        start, end = min(m.log_time for m in msgs), max(m.log_time for m in msgs)
        info = _batch_metadata(leaves, start, end)
        w.add_metadata("depai.batch", {k: str(v) for k, v in info.items()})
        w.finish()
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, f)
    arrivals = [arrival_entry(m.data, i) for i, m in enumerate(msgs) if m.type_name == ARRIVAL_TYPE]
    _finish_folder(folder, leaves, topics, start, end, info, {"recovered": True, "arrivals": arrivals})
    return folder, len(msgs)


def list_batches(directory: Path) -> list[tuple[Path, dict | None]]:
    """(folder, sidecar or None) of every batch folder, oldest first (names sort by time)."""
    out = []
    d = Path(directory)
    if not d.is_dir():
        return out
    for folder in sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("tlm_")):
        try:
            out.append((folder, read_sidecar(folder)))
        except TelemetryError:
            out.append((folder, None))
    return out


# ------------------------------------------------------------------------------------ retention

def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def prune(directory: Path, budget_bytes: int) -> list[Path]:
    """Delete anchored batches, oldest first, until everything fits ``budget_bytes``. Pending,
    recording and failed batches are never deleted (they may be all there is of that data)."""
    batches = list_batches(directory)
    sizes = {f: folder_bytes(f) for f, _ in batches}
    total = sum(sizes.values())
    removed = []
    for folder, side in batches:
        if total <= budget_bytes:
            break
        if side and side.get("state") == "anchored":
            shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]
            removed.append(folder)
    return removed


# ------------------------------------------------------------------------------------ proofs

def prove(path: Path, index: int) -> tuple[bytes, list[bytes], bytes]:
    """(leaf preimage, Merkle proof, root) of message ``index`` of a batch, for
    ``DataRegistry.verifyMessage(machine, batchId, preimage, proof)``."""
    from .leaves import preimage

    b = read_batch(path)
    m = b.messages[index]
    tree = MerkleTree(leaves=leaves_of(b.messages))
    return preimage(m.type_name, m.topic, m.log_time, m.data), tree.proof(index), tree.root


def anchor_request(side: dict, uri: str) -> AnchorRequest:
    """What the wallet is asked to sign for a sealed batch (its sidecar)."""
    return AnchorRequest(batch_id=side["batch_id"], root=side["root"], message_count=int(side["messages"]),
                         start_time=int(side["start_time"]), end_time=int(side["end_time"]), uri=uri)


# ------------------------------------------------------------------------------------ arrival proofs

def arrival_entry(data: bytes, index: int) -> dict:
    """What the sidecar keeps of one typed arrival record: its leaf index and fields (leaf units)."""
    from .leaves import ArrivalRecord as Arrival

    task_id, machine, x, y, yaw, t = Arrival.from_cdr(data).typed()
    return {"index": index, "task_id": task_id, "machine": machine, "x_mm": x, "y_mm": y, "yaw_mrad": yaw, "time": t}


@dataclass
class ArrivalAnswer:
    """Where the arrival record of one task stands (= depai/ArrivalProof): ANCHORED (with the
    batch id, root, fields and Merkle proof), PENDING (recorded; its batch open, pending or not
    anchored yet) or UNKNOWN (no record, or only in a batch the wallet refused for good)."""

    result: str
    batch_id: str = ""
    root: str = ""
    record: dict = field(default_factory=dict)
    proof: list[str] = field(default_factory=list)
    anchored_block: int = 0
    reason: str = ""


def _folder_arrivals(folder: Path, side: dict) -> list[dict]:
    found = side.get("arrivals")
    if isinstance(found, list):
        return [a for a in found if isinstance(a, dict)]
    # a batch sealed before sidecars listed their arrivals: read the bag (once per question)
    try:
        b = read_batch(folder)
    except TelemetryError:
        return []
    out = []
    for i, m in enumerate(b.messages):
        if m.type_name == ARRIVAL_TYPE:
            try:
                out.append(arrival_entry(m.data, i))
            except LeafError:
                continue
    return out


def _proof_from_file(folder: Path, index: int, root: str) -> list[str]:
    """The Merkle proof of leaf ``index`` from proofs.json (every level stored), checked against ``root``."""
    from depai_nodes.chain.merkle import verify

    try:
        tree = json.loads((Path(folder) / PROOFS).read_text())
        levels = [[bytes.fromhex(x) for x in level] for level in tree["levels"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TelemetryError(f"{folder}/{PROOFS}: unreadable: {e}") from None
    if not levels or not 0 <= index < len(levels[0]):
        raise TelemetryError(f"{folder}/{PROOFS}: no leaf {index}")
    proof, i = [], index
    for level in levels[:-1]:
        if (i ^ 1) < len(level):
            proof.append(level[i ^ 1])
        i //= 2
    if "0x" + levels[-1][0].hex() != root or not verify(levels[0][index], proof, bytes.fromhex(root[2:])):
        raise TelemetryError(f"{folder}/{PROOFS}: the proof of leaf {index} does not lead to the batch root")
    return ["0x" + p.hex() for p in proof]


def arrival_proof(directory: Path, task_id: int, open_arrivals: Iterable[dict] = ()) -> ArrivalAnswer:
    """Answer ``depai/ArrivalProof`` for ``task_id`` from the batches on disk and the open batch's
    ``open_arrivals`` (BatchRecorder.arrivals). An anchored record wins over a pending one (a
    machine that restarted may have recorded its arrival twice); the newest anchored one is given."""
    if isinstance(task_id, bool) or not isinstance(task_id, int) or not 1 <= task_id < 2**64:
        return ArrivalAnswer("UNKNOWN", reason=f"task_id must be 1..2**64-1, got {task_id!r:.40}")
    pending_reason = ""
    failed_reason = ""
    for folder, side in reversed(list_batches(directory)):
        if side is None:
            continue
        state = side.get("state")
        if state == "recording":  # what a crash left open is sealed at the next start
            continue
        for a in _folder_arrivals(folder, side):
            if a.get("task_id") != task_id:
                continue
            if state == "anchored":
                try:
                    proof = _proof_from_file(folder, int(a["index"]), side["root"])
                except (TelemetryError, KeyError, ValueError) as e:
                    failed_reason = failed_reason or str(e)
                    continue
                record = {k: a[k] for k in ("machine", "x_mm", "y_mm", "yaw_mrad", "time")}
                return ArrivalAnswer("ANCHORED", side["batch_id"], side["root"], record, proof, int(side.get("block") or 0),
                                     f"in batch {side['batch_id']} ({folder.name}), anchored in block {side.get('block')}")
            if state == "pending":
                pending_reason = pending_reason or (f"in batch {side.get('batch_id')} ({folder.name}), sealed, not anchored yet"
                                                    + (f" (last: {side['error']})" if side.get("error") else ""))
            elif state == "failed":
                failed_reason = failed_reason or f"only in batch {side.get('batch_id')}, which was refused for good: {side.get('error', '')}"
    if any(a.get("task_id") == task_id for a in open_arrivals):
        return ArrivalAnswer("PENDING", reason="in the open batch (not sealed yet)")
    if pending_reason:
        return ArrivalAnswer("PENDING", reason=pending_reason)
    return ArrivalAnswer("UNKNOWN", reason=failed_reason or f"no arrival record of task {task_id} in any batch on disk")


# ------------------------------------------------------------------------------------ anchoring

@dataclass
class Anchorer:
    """Anchors sealed batches of ``directory`` from one worker thread, oldest first, through
    ``anchor_fn(AnchorRequest) -> Outcome`` (the wallet). ``on_status(batch_id, status, tx_hash,
    block, error)`` reports progress. A retryable outcome is retried (exponential backoff) with
    the later batches waiting behind it, so batches land in order; after ``max_attempts`` in a
    row it waits for the next ``kick`` (rescan). ``chain_tag()`` (optional) names the chain the
    wallet anchors on (its genesis hash), recorded in the sidecar."""

    directory: Path
    anchor_fn: Callable[[AnchorRequest], Outcome]
    on_status: Callable[[str, int, str, int, str], None]
    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    uri_prefix: str = "file://"
    chain_tag: Callable[[], str] | None = None
    precheck: Callable[[], None] | None = None  # run before each round (the node: chain-reset check)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _busy: bool = False
    _parked: bool = False

    def start(self) -> "Anchorer":
        self._thread = threading.Thread(target=self._run, name="anchorer", daemon=True)
        self._thread.start()
        self.kick()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout_s)

    def kick(self) -> None:
        """Look for pending batches now (after a seal, a rescan, a chain that came back)."""
        self._parked = False
        self._wake.set()

    def pending(self) -> list[Path]:
        return [f for f, side in list_batches(self.directory) if side and side.get("state") == "pending"]

    def idle(self) -> bool:
        return not self._busy and (self._parked or not self.pending())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            self._busy = True
            try:
                self._drain()
            finally:
                self._busy = False

    def _drain(self) -> None:
        if self.precheck is not None:
            try:
                self.precheck()
            except Exception:  # noqa: BLE001 - a failed check must not stop anchoring
                pass
        attempts = 0
        while not self._stop.is_set():
            if attempts and self.precheck is not None:  # after a failure: the chain may have come back reset
                try:
                    self.precheck()
                except Exception:  # noqa: BLE001
                    pass
            queue = self.pending()
            if not queue:
                return
            done, retry = self._anchor(queue[0], attempts + 1)
            if done:
                attempts = 0
                continue
            attempts += 1
            if attempts >= self.max_attempts:
                self._parked = True  # until the next kick; everything stays pending on disk
                return
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempts - 1))
            if self._stop.wait(delay):
                return

    def _anchor(self, folder: Path, attempt: int) -> tuple[bool, bool]:
        """One attempt at the oldest pending batch: (settled, retryable)."""
        try:
            side = read_sidecar(folder)
            req = anchor_request(side, f"{self.uri_prefix}{Path(folder).resolve()}")
        except (TelemetryError, KeyError, ValueError, TypeError) as e:
            self.on_status(folder.name, AnchorStatus.FAILED, "", 0, f"TelemetryError: {e}")
            _mark(folder, {"state": "failed", "error": f"unreadable sidecar: {e}"})
            return True, False
        if side.get("state") != "pending":
            return True, False
        side["attempts"] = int(side.get("attempts", 0)) + 1
        self.on_status(req.batch_id, AnchorStatus.PENDING, "", 0, "")
        try:
            out = self.anchor_fn(req)
        except Exception as e:  # noqa: BLE001 - a transport bug must not kill the worker; the batch stays pending
            out = Outcome(Result.WALLET_UNAVAILABLE, error=type(e).__name__, reason=str(e))
        try:  # the sidecar as it is now (the answer can take long): never write over a state settled meanwhile
            now = read_sidecar(folder)
        except TelemetryError:
            return True, False  # deleted meanwhile
        if now.get("state") != "pending" and not out.ok:
            return True, False
        now["attempts"] = side["attempts"]
        side = now
        if out.machine:
            side["machine"] = out.machine
        if out.tx_hash:
            side["tx_hash"] = out.tx_hash
        if out.ok:
            side.update(state="anchored", block=out.block_number, already_anchored=out.already_anchored,
                        anchored_ns=time.time_ns())
            if self.chain_tag is not None:
                try:
                    side["genesis"] = self.chain_tag()
                except Exception:  # noqa: BLE001 - the tag is a convenience for reset detection
                    pass
            side.pop("error", None)
            write_sidecar(folder, side)
            self.on_status(req.batch_id, AnchorStatus.CONFIRMED, out.tx_hash, out.block_number, "")
            return True, False
        if not out.retryable:  # refused for good: recorded, never silently dropped
            side.update(state="failed", error=out.describe())
            write_sidecar(folder, side)
            status = AnchorStatus.REVERTED if out.result == Result.REVERTED else AnchorStatus.FAILED
            self.on_status(req.batch_id, status, out.tx_hash, 0, out.describe())
            return True, False
        side["error"] = out.describe()
        write_sidecar(folder, side)
        if attempt >= self.max_attempts:
            self.on_status(req.batch_id, AnchorStatus.FAILED, out.tx_hash, 0,
                           f"{out.describe()} (gave up after {attempt} attempts; still pending on disk)")
        else:
            self.on_status(req.batch_id, AnchorStatus.FAILED, out.tx_hash, 0,
                           f"{out.describe()} (attempt {attempt}/{self.max_attempts}, retrying)")
        return False, True


def _mark(folder: Path, update: dict) -> None:
    try:
        side = read_sidecar(folder)
    except TelemetryError:
        side = {}
    side.update(update)
    write_sidecar(folder, side)


def reanchor_if_reset(directory: Path, genesis: str, is_anchored: Callable[[str, str], bool] | None = None,
                      check_all: bool = False) -> list[Path]:
    """After a chain reset, put anchored batches back to pending: those recorded against another
    genesis, and (``is_anchored(machine, batch_id)``) those gone from the chain - every anchored
    one with ``check_all`` (after an outage: a chain restarted from an older state), else the
    newest, and all of them when the newest is gone. Returns the folders reset."""
    reset = []
    anchored = [(f, s) for f, s in list_batches(directory) if s and s.get("state") == "anchored"]
    for f, s in anchored:
        if s.get("genesis") and s["genesis"] != genesis:
            reset.append(f)
    if is_anchored is not None and anchored:
        # not again for a batch the wallet re-anchored on this very chain (views that disagree)
        rest = [(f, s) for f, s in anchored if f not in reset and s.get("reanchored_on") != genesis]
        if rest and (check_all or (s_machine(rest[-1][1]) and not is_anchored(s_machine(rest[-1][1]), rest[-1][1]["batch_id"]))):
            reset += [f for f, s in rest if s_machine(s) and not is_anchored(s_machine(s), s["batch_id"])]
    for f in reset:
        _mark(f, {"state": "pending", "reanchored_on": genesis, "previous_tx": read_sidecar(f).get("tx_hash", ""),
                  "attempts": 0})
    return reset


def s_machine(side: dict) -> str:
    return side.get("machine") or ""


def duration_text(ns: int) -> str:
    return f"{ns / 1e9:.3f} s" if ns < 3600 * 10**9 else f"{ns / 3.6e12:.2f} h"


def fmt_time(ns: int) -> str:
    if ns <= 0 or not math.isfinite(ns):
        return "-"
    return _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
