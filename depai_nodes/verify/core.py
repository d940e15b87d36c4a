"""Verify a telemetry batch against the chain: a third party's check, no ROS needed.

ROS-free. From the file alone: every record is read (MCAP magic, chunk, data-section and
summary checksums), every leaf and the Merkle root are rebuilt (``depai_nodes.telemetry.leaves``).
From the chain (read-only, no key): the DataRegistry record of the batch (machine, root, count,
time range, block, transaction) and the machine's DID attribute at the anchoring block. Optional:
one message's inclusion proven by the contract itself (``DataRegistry.verifyMessage``).

The verdict is one of ``Verdict``; its value is the command's exit code.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from pathlib import Path

from depai_nodes.chain.config import ChainConfig, checksum
from depai_nodes.chain.errors import ChainError, ChainResetError, ContractRevertError, RpcError, WrongChainError
from depai_nodes.chain.intents import content_batch_id
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.telemetry.core import PROOFS, TelemetryError, _seconds, fmt_time, read_batch, read_sidecar
from depai_nodes.telemetry.leaves import LeafError, leaf_of, preimage

__all__ = ["Verdict", "Report", "verify_batch", "verify_many", "batch_folders", "worst", "MACHINE_ATTRIBUTE"]

MACHINE_ATTRIBUTE = b"depai:machine"  # = depai_nodes.chain.fleet.MACHINE_ATTRIBUTE


class Verdict(enum.IntEnum):
    VALID = 0
    TAMPERED = 1
    USAGE = 2  # bad arguments or input that is not a batch (also argparse's code)
    NOT_ANCHORED = 3
    BAD_SIGNER = 4  # anchored, but not by a machine with a valid DID (or by another machine)
    CHAIN = 5  # chain unreachable, wrong chain id, chain reset, config unusable


@dataclass
class Report:
    verdict: Verdict = Verdict.VALID
    summary: str = ""
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, text: str) -> None:
        self.lines.append((label, text))

    def done(self, verdict: Verdict, summary: str) -> "Report":
        self.verdict, self.summary = verdict, summary
        return self

    def render(self) -> str:
        out = [f"  {label:<10} {text}" for label, text in self.lines]
        out.append(f"{self.verdict.name.replace('_', ' ')}: {self.summary}")
        return "\n".join(out)


def _msg_label(i: int, m) -> str:
    return f"message {i} ({m.topic} at {fmt_time(m.log_time)})"


def verify_batch(path: Path, config: ChainConfig | None, *, machine: str | None = None, topic: str | None = None,
                 index: int | None = None, at_time: float | None = None, client=None, config_error: str = "") -> Report:
    """Check the batch at ``path`` (folder or .mcap) against the chain of ``config``."""
    rep = Report()
    path = Path(path)
    if machine:
        try:
            machine = checksum(machine)
        except ChainError as e:
            return rep.done(Verdict.USAGE, f"--machine: {e}")
    # ---------------------------------------------------------------- the file
    t0 = time.perf_counter()
    damaged = ""
    try:
        batch = read_batch(path)
    except TelemetryError as e:
        text = str(e)
        if "not an MCAP" in text and _named_batch(path):
            # a batch folder whose file lost its magic bytes: damaged, not a usage error
            from depai_nodes.telemetry.core import BatchInfo, _resolve

            folder, f = _resolve(path)
            batch = BatchInfo(folder, f, [], {}, complete=False, problem="the MCAP magic bytes were altered")
        elif "not an MCAP" in text or "no such file" in text or "no .mcap" in text or "cannot read" in text:
            return rep.done(Verdict.USAGE, text)
        else:
            batch = read_batch(path, tolerant=True)
        damaged = batch.problem
    msgs = batch.messages
    rep.add("file", f"{batch.path}")
    rep.add("content", f"{len(msgs)} message(s) on {len({m.topic for m in msgs})} topic(s)"
                       + (f", {fmt_time(batch.start_ns)} .. {fmt_time(batch.end_ns)}" if msgs else ""))
    leaves, bad_leaf = [], None
    for i, m in enumerate(msgs):
        try:
            leaves.append(leaf_of(m.type_name, m.topic, m.log_time, m.data))
        except LeafError as e:
            bad_leaf = (i, str(e))
            break
    side = {}
    if batch.folder is not None:
        try:
            side = read_sidecar(batch.folder)
        except TelemetryError:
            side = {}
    # the id the batch names: its own metadata record, unless the file is damaged (then its sidecar's)
    claimed_id = ((side.get("batch_id") or batch.metadata.get("batch_id")) if damaged
                  else (batch.metadata.get("batch_id") or side.get("batch_id"))) or ""
    if not damaged and batch.metadata.get("batch_id") and side.get("batch_id") and batch.metadata["batch_id"] != side["batch_id"]:
        return rep.done(Verdict.USAGE, f"the sidecar {batch.folder}/anchor.json does not match this batch: it names batch "
                                       f"{side['batch_id']}, the file {batch.metadata['batch_id']}")
    root = MerkleTree(leaves=leaves).root if leaves and bad_leaf is None else None
    rebuilt_ms = (time.perf_counter() - t0) * 1000
    if root is not None:
        s, e = _seconds(batch.start_ns, batch.end_ns)
        content_id = content_batch_id(root, len(leaves), s, e)
        rep.add("rebuilt", f"root 0x{root.hex()} from {len(leaves)} leaves in {rebuilt_ms:.0f} ms")
    else:
        content_id = ""
    if not claimed_id:
        if not content_id:
            return rep.done(Verdict.USAGE, f"{batch.path}: holds no readable messages and names no batch")
        claimed_id = content_id
    rep.add("batch id", claimed_id + ("" if claimed_id == content_id else "  (named by the file; its content gives "
                                      + (content_id or "nothing readable") + ")"))
    if not machine:  # the machine the batch names: its sidecar's, else the claim in the file
        machine = side.get("machine") or batch.metadata.get("machine") or None
        if machine:
            try:
                machine = checksum(machine)
            except ChainError:
                machine = None
    # ---------------------------------------------------------------- the chain
    if config is None:
        return rep.done(Verdict.CHAIN, config_error or "no chain configuration (use --chain CONFIG, or `depai chain up` for the local one)")
    try:
        from depai_nodes.chain.client import ChainClient

        c = client or ChainClient(config, None, verify_chain=False)
        if client is None:  # a shared client (many batches) was checked once by its owner
            c.verify_chain()
        registry = c.contract("DataRegistry")
        did = c.contract("MachineDID", config.did_address)
    except WrongChainError as e:
        return rep.done(Verdict.CHAIN, f"wrong chain: {e}")
    except ChainResetError as e:
        return rep.done(Verdict.CHAIN, f"{e} (the configuration belongs to a chain that is gone)")
    except RpcError as e:
        return rep.done(Verdict.CHAIN, f"chain unreachable: {e}")
    except ChainError as e:
        return rep.done(Verdict.CHAIN, f"chain configuration unusable: {e}")
    try:
        genesis = c.genesis_hash()
        rep.add("chain", f"{config.name} (chain id {config.chain_id}, genesis {genesis[:12]}...) at {config.rpc_url}")
        from depai_nodes.chain.models import id32

        bid = id32(claimed_id)
        record = _record(registry, machine, bid) if machine else None
        if record is not None:  # its event sits in the anchoring block: no scan of the chain
            found = _anchors(c, registry, bid, record["anchoredAt"], record["anchoredAt"])
        else:
            found = _anchors(c, registry, bid, config.deploy_block)
            others = [a for a in found if not machine or a["machine"] != machine]
            if machine and others:
                who = ", ".join(sorted({a["machine"] for a in others}))
                return rep.done(Verdict.BAD_SIGNER, f"batch {claimed_id} is anchored by {who}, not by {machine}, the machine "
                                                    "this batch names: refused")
            if not found:
                why = f"batch {claimed_id} is not anchored on {config.name}" + (f" by {machine}" if machine else "")
                if damaged or bad_leaf:
                    why += f"; the file is damaged too: {damaged or bad_leaf[1]}"
                return rep.done(Verdict.NOT_ANCHORED, why)
            machine = found[0]["machine"]
            record = _record(registry, machine, bid)
            if record is None:
                return rep.done(Verdict.NOT_ANCHORED, f"batch {claimed_id} is not anchored on {config.name}")
        ev = next((a for a in found if a["machine"] == machine), None)
        tx = ev["tx_hash"] if ev else "?"
        block = record["anchoredAt"]
        rep.add("anchored", f"block {block}, tx {tx}, by {machine}"
                            + (f" (relayed by {record['submitter']})" if record["submitter"].lower() != machine.lower() else ""))
        rep.add("on chain", f"root 0x{record['root'].hex()}, {record['messageCount']} messages, "
                            f"{record['startTime']}..{record['endTime']} s")
        # ------------------------------------------------------------ content against the record
        problem = _compare(rep, batch, msgs, leaves, root, record, damaged, bad_leaf, _anchored_leaves(batch, record))
        if problem:
            return rep.done(Verdict.TAMPERED, problem)
        # ------------------------------------------------------------ the signer's identity
        ok, text = _did_valid(c, did, machine, block)
        rep.add("machine", text)
        if not ok:
            return rep.done(Verdict.BAD_SIGNER, f"{machine} anchored this batch but is not a machine with a valid DID at "
                                                f"block {block}: refused")
        # ------------------------------------------------------------ one message's inclusion
        if topic is not None or index is not None or at_time is not None:
            sel = _select(msgs, topic, index, at_time)
            if isinstance(sel, str):
                return rep.done(Verdict.USAGE, sel)
            i = sel
            m = msgs[i]
            tree = MerkleTree(leaves=leaves)
            pre = preimage(m.type_name, m.topic, m.log_time, m.data)
            proof = tree.proof(i)
            included = registry.call("verifyMessage", machine, bid, pre, proof)
            rep.add("message", f"{_msg_label(i, m)}: proof of {len(proof)} hashes; DataRegistry.verifyMessage -> "
                               f"{str(included).lower()}")
            if not included:
                return rep.done(Verdict.TAMPERED, f"{_msg_label(i, m)} is not in the anchored batch")
    except ContractRevertError as e:
        return rep.done(Verdict.CHAIN, f"the registry refused a read: {e}")
    except RpcError as e:
        return rep.done(Verdict.CHAIN, f"chain unreachable: {e}")
    except ChainError as e:
        return rep.done(Verdict.CHAIN, f"chain error: {e}")
    return rep.done(Verdict.VALID, f"{len(msgs)} messages anchored by machine {machine} in block {block}, unaltered")


def _named_batch(path: Path) -> bool:
    try:
        folder = path if path.is_dir() else path.parent
        return bool(read_sidecar(folder).get("batch_id"))
    except TelemetryError:
        return False


def _record(registry, machine: str, bid: bytes) -> dict | None:
    try:
        return registry.call("getBatch", machine, bid)
    except ContractRevertError as e:
        if e.error == "BatchNotFound":
            return None
        raise


def _anchors(c, registry, bid: bytes, from_block: int, to_block: int | str = "latest") -> list[dict]:
    """BatchAnchored events for this batch id, oldest first (machine, block, tx)."""
    topic0 = registry.abi.topic("BatchAnchored")
    logs = c.get_logs(registry.address, [topic0, None, "0x" + bid.hex()], from_block, to_block)
    out = []
    for raw in logs:
        ev = registry.abi.decode_log(raw)
        if ev and not ev.get("removed"):
            out.append({"machine": checksum(ev["machine"]), "block": ev["block_number"], "tx_hash": ev["tx_hash"]})
    return out


def _anchored_leaves(batch, record) -> list[bytes] | None:
    """The leaves of the proofs sidecar when its root is the anchored root (to name the first
    altered message); None otherwise."""
    import json

    if batch.folder is None:
        return None
    try:
        proofs = json.loads((batch.folder / PROOFS).read_text())
        levels = proofs["levels"]
        if bytes.fromhex(levels[-1][0]) != record["root"]:
            return None
        leaves = [bytes.fromhex(x) for x in levels[0]]
        if MerkleTree(leaves=leaves).root != record["root"]:
            return None
        return leaves
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _compare(rep, batch, msgs, leaves, root, record, damaged, bad_leaf, anchored) -> str:
    """'' when the file is the anchored batch; else what is wrong, naming the first bad message."""
    def first_bad() -> str:
        if anchored is None:
            return ""
        for i, (a, b) in enumerate(zip(leaves, anchored)):
            if a != b:
                return f"first altered: {_msg_label(i, msgs[i])}"
        if len(leaves) != len(anchored):
            n = min(len(leaves), len(anchored))
            return (f"first altered: message {n}: " + ("missing from the file" if len(leaves) < len(anchored)
                                                        else f"{_msg_label(n, msgs[n])} was not in the anchored batch"))
        return ""

    if damaged:
        where = first_bad()
        return f"the file is damaged: {damaged}; {len(msgs)} readable message(s)" + (f"; {where}" if where else "")
    if bad_leaf:
        return f"{_msg_label(bad_leaf[0], msgs[bad_leaf[0]])} is not a valid record: {bad_leaf[1]}"
    if root == record["root"] and len(leaves) == record["messageCount"]:
        s, e = _seconds(batch.start_ns, batch.end_ns)
        if s < record["startTime"] or e > record["endTime"]:
            return f"messages lie outside the anchored time range ({s}..{e} s vs {record['startTime']}..{record['endTime']})"
        rep.add("match", f"root, {len(leaves)} messages and time range match the anchored record")
        return ""
    where = first_bad() or ("no proofs sidecar matching the anchored root, so the altered message cannot be named"
                            if anchored is None else "")
    counts = (f"{len(leaves)} messages in the file, {record['messageCount']} anchored"
              if len(leaves) != record["messageCount"] else f"{len(leaves)} messages")
    return f"the rebuilt root differs from the anchored one ({counts}); {where}"


def _did_valid(c, did, machine: str, block: int) -> tuple[bool, str]:
    """The machine's fleet attribute exists and is valid at the anchoring block."""
    at = block
    try:
        a = did.call("readAttribute", machine, MACHINE_ATTRIBUTE, block=block)
    except ContractRevertError as e:
        if e.error == "AttributeNotFound":
            return False, f"{machine}: no DID attribute {MACHINE_ATTRIBUTE.decode()} at block {block}"
        raise
    except RpcError:  # a node without that block's state (not an archive node): today's, with its validity
        a = did.call("readAttribute", machine, MACHINE_ATTRIBUTE)
        at = "latest"
    validity = a["validity"]
    if block > validity:
        return False, f"{machine}: DID attribute {MACHINE_ATTRIBUTE.decode()} expired at block {validity}"
    label = a["value"].decode(errors="replace")
    until = "forever" if validity >= 2**32 - 1 else f"until block {validity}"
    return True, f"{machine}, DID {MACHINE_ATTRIBUTE.decode()} = {label!r}, valid at block {block} ({until}; read at {at})"


def _select(msgs, topic, index, at_time) -> int | str:
    """Index in the batch of the chosen message, or a usage error text."""
    pool = [i for i, m in enumerate(msgs) if topic is None or m.topic == topic]
    if topic is not None and not pool:
        topics = ", ".join(sorted({m.topic for m in msgs}))
        return f"no message on topic {topic} in this batch (topics: {topics})"
    if at_time is not None:
        t = int(at_time * 1e9)
        after = [i for i in pool if msgs[i].log_time >= t]
        if not after:
            return f"no message{' on ' + topic if topic else ''} at or after {at_time}"
        return after[0]
    n = 0 if index is None else index
    if not 0 <= n < len(pool):
        return f"--index {n} out of range: {len(pool)} message(s){' on ' + topic if topic else ''} (0..{len(pool) - 1})"
    return pool[n]


# Which verdict a set of batches gets: the gravest finding about the data first.
_GRAVITY = [Verdict.TAMPERED, Verdict.BAD_SIGNER, Verdict.NOT_ANCHORED, Verdict.CHAIN, Verdict.USAGE, Verdict.VALID]


def worst(verdicts) -> Verdict:
    vs = set(verdicts)
    return next((v for v in _GRAVITY if v in vs), Verdict.VALID)


def batch_folders(path: Path) -> list[Path]:
    """The batch folders under a telemetry output directory (oldest first); [] when ``path`` is
    itself a batch (or not a folder)."""
    path = Path(path)
    if not path.is_dir() or any(path.glob("*.mcap")):
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*.mcap")))


def verify_many(folders: list[Path], config: ChainConfig | None, *, machine: str | None = None,
                config_error: str = "") -> list[tuple[Path, Report]]:
    """verify_batch for each folder with one chain client (its chain checked once)."""
    client = None
    if config is not None:
        from depai_nodes.chain.client import ChainClient

        try:
            client = ChainClient(config, None, verify_chain=False)
            client.verify_chain()
        except ChainError:
            client = None  # each report then says what is wrong with the chain
    return [(f, verify_batch(f, config, machine=machine, client=client, config_error=config_error)) for f in folders]
