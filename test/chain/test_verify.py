"""`depai verify`: a third party checks a batch against the chain, no ROS running. Real files,
a real anvil, the real command in its own process; every verdict and its exit code."""

import json
import shutil
import subprocess
import sys

import pytest
from chainkit import MACHINE, MACHINE2, STRANGER, wait_for

from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.models import DataBatch, id32
from depai_nodes.telemetry.core import (
    Anchorer,
    AnchorStatus,
    BatchRecorder,
    mcap_path,
    read_batch,
    read_sidecar,
)
from depai_nodes.verify.core import Verdict, verify_batch
from depai_nodes.wallet.core import Intents

T0 = 1_700_000_000_000_000_000


def _cdr(i: int) -> bytes:
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message

    m = Odometry()
    m.pose.pose.position.x = float(i)
    return serialize_message(m)


def _record(directory, n=24, t0=T0):
    rec = BatchRecorder(directory)
    for i in range(n):
        topic = "/robot1/odom" if i % 3 else "/robot1/cmd_vel"
        rec.add(topic, "nav_msgs/msg/Odometry", t0 + i * 10**7, _cdr(i))
    return rec.seal()


def _anchor(chain, directory, who=MACHINE):
    fleet = Fleet(chain.client(who))
    events = []
    a = Anchorer(directory, Intents(fleet).anchor, lambda *e: events.append(e)).start()
    try:
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events), timeout_s=20)
    finally:
        a.stop()


def _cli(path, cfg, *extra):
    p = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "verify", str(path), "--chain", str(cfg), *extra],
                       capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert "Traceback" not in out, out
    return p.returncode, out


@pytest.fixture
def anchored(chain, tmp_path):
    Fleet(chain.client(MACHINE)).register_did(b"robot1")
    folder = _record(tmp_path / "tlm")
    _anchor(chain, tmp_path / "tlm")
    return folder, save_config(chain.config, tmp_path / "chain.json")


def _rewrite(folder, messages):
    """A forger's rewrite: a well-formed MCAP (valid checksums) naming the same batch."""
    from mcap.writer import Writer

    meta = read_batch(folder).metadata
    f = mcap_path(folder)
    with open(f, "wb") as out:
        w = Writer(out, enable_data_crcs=True)
        w.start(profile="ros2", library="forger")
        sid = w.register_schema("nav_msgs/msg/Odometry", "ros2msg", b"")
        chans = {}
        for m in messages:
            if m.topic not in chans:
                chans[m.topic] = w.register_channel(m.topic, "cdr", sid)
            w.add_message(chans[m.topic], m.log_time, m.data, m.log_time)
        w.add_metadata("depai.batch", meta)
        w.finish()


def test_a_valid_batch_on_one_screen_and_one_message_proven_on_chain(chain, anchored, tmp_path):
    folder, cfg = anchored
    side = read_sidecar(folder)
    me = chain.address(MACHINE)
    code, out = _cli(folder, cfg)
    assert code == Verdict.VALID == 0, out
    for text in (me, "DID depai:machine = 'robot1'", f"block {side['block']}", side["tx_hash"], side["batch_id"],
                 "24 messages", "VALID:"):
        assert text in out, (text, out)
    assert len(out.splitlines()) <= 24  # one screen
    code, out = _cli(folder, cfg, "--topic", "/robot1/odom", "--index", "5")
    assert code == 0 and "message 8 (/robot1/odom" in out and "DataRegistry.verifyMessage -> true" in out, out
    code, out = _cli(folder, cfg, "--show")  # and what any ROS 2 bag tool sees in it
    assert code == 0 and "as a ROS 2 bag (rosbags)" in out, out
    assert "/robot1/odom" in out and "nav_msgs/msg/Odometry" in out and "16 messages" in out and "8 messages" in out, out
    code, out = _cli(folder, cfg, "--time", str((T0 + 10 * 10**7) / 1e9 - 0.001))
    assert code == 0 and "message 10 (" in out and "-> true" in out, out
    # the .mcap alone, copied elsewhere (no sidecar): the anchor is found on chain by the batch's id
    alone = tmp_path / "elsewhere.mcap"
    shutil.copy(mcap_path(folder), alone)
    code, out = _cli(alone, cfg)
    assert code == 0 and me in out, out


def test_any_flipped_byte_is_tampered(chain, anchored):
    folder, cfg = anchored
    from depai_nodes.chain.config import load_config

    config = load_config(cfg)
    f = mcap_path(folder)
    raw = f.read_bytes()
    client = None
    for pos in list(range(0, len(raw), max(1, len(raw) // 60))) + [len(raw) - 1, len(raw) - 20]:
        bad = bytearray(raw)
        bad[pos] ^= 0x04
        f.write_bytes(bytes(bad))
        rep = verify_batch(folder, config, client=client)
        assert rep.verdict in (Verdict.TAMPERED, Verdict.NOT_ANCHORED), (pos, rep.render())
        if rep.verdict == Verdict.NOT_ANCHORED:  # only when the flip hit the batch id the file names
            assert "damaged" in rep.summary, (pos, rep.render())
    f.write_bytes(raw)
    assert verify_batch(folder, config).verdict == Verdict.VALID
    bad = bytearray(raw)
    bad[len(raw) // 2] ^= 0x04
    f.write_bytes(bytes(bad))
    code, out = _cli(folder, cfg)
    assert code == Verdict.TAMPERED == 1 and "TAMPERED" in out, out


@pytest.mark.parametrize("change, first", [("drop", 2), ("reorder", 3), ("duplicate", 6), ("alter", 9)])
def test_a_dropped_reordered_duplicated_or_altered_message_is_tampered(chain, anchored, change, first):
    folder, cfg = anchored
    msgs = read_batch(folder).messages
    if change == "drop":
        del msgs[2]
    elif change == "reorder":
        msgs[3], msgs[4] = msgs[4], msgs[3]
    elif change == "duplicate":
        msgs.insert(6, msgs[5])
    else:
        msgs[9].data = msgs[9].data[:-1] + bytes([msgs[9].data[-1] ^ 1])
    _rewrite(folder, msgs)
    code, out = _cli(folder, cfg)
    assert code == Verdict.TAMPERED, out
    assert f"first altered: message {first} " in out, out
    if change in ("drop", "duplicate"):
        assert ("23 messages in the file" if change == "drop" else "25 messages in the file") in out, out


def test_a_batch_anchored_by_another_machine_is_refused(chain, tmp_path):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    Fleet(chain.client(MACHINE)).register_did(b"robot1")
    folder = _record(tmp_path / "tlm")
    side = read_sidecar(folder)
    thief = Fleet(chain.client(STRANGER))  # copies robot1's batch and anchors it as its own
    batch = DataBatch(machine=thief.me, batch_id=id32(side["batch_id"]), root=bytes.fromhex(side["root"][2:]),
                      message_count=side["messages"], start_time=side["start_time"], end_time=side["end_time"])
    thief.anchor(batch)
    code, out = _cli(folder, cfg, "--machine", chain.address(MACHINE))
    assert code == Verdict.BAD_SIGNER == 4 and f"anchored by {thief.me}, not by {chain.address(MACHINE)}" in out, out
    code, out = _cli(folder, cfg)  # nobody named: the one who anchored it has no machine DID
    assert code == Verdict.BAD_SIGNER and "not a machine with a valid DID" in out and "no DID attribute" in out, out
    # the .mcap alone, its recorder's claim inside: robot1's, so the thief's anchor is refused
    rec = BatchRecorder(tmp_path / "claimed")
    for i in range(5):
        rec.add("/robot1/odom", "nav_msgs/msg/Odometry", T0 + 10**11 + i, _cdr(i))
    claimed = rec.seal(machine=chain.address(MACHINE))
    side = read_sidecar(claimed)
    thief.anchor(DataBatch(machine=thief.me, batch_id=id32(side["batch_id"]), root=bytes.fromhex(side["root"][2:]),
                           message_count=5, start_time=side["start_time"], end_time=side["end_time"]))
    alone = tmp_path / "alone.mcap"
    shutil.copy(mcap_path(claimed), alone)
    code, out = _cli(alone, cfg)
    assert code == Verdict.BAD_SIGNER and f"anchored by {thief.me}, not by {chain.address(MACHINE)}" in out, out


def test_the_did_must_be_valid_when_the_batch_was_anchored(chain, tmp_path):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    folder = _record(tmp_path / "tlm")
    _anchor(chain, tmp_path / "tlm", who=MACHINE2)  # anchored before MACHINE2 had its DID
    Fleet(chain.client(MACHINE2)).register_did(b"late")
    code, out = _cli(folder, cfg)
    assert code == Verdict.BAD_SIGNER and f"no DID attribute depai:machine at block {read_sidecar(folder)['block']}" in out, out


def test_an_unanchored_batch_is_not_anchored(chain, tmp_path):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    folder = _record(tmp_path / "tlm")
    code, out = _cli(folder, cfg)
    assert code == Verdict.NOT_ANCHORED == 3 and f"batch {read_sidecar(folder)['batch_id']} is not anchored" in out, out


def test_bad_input_gets_a_clear_message_and_its_exit_code(chain, anchored, tmp_path):
    folder, cfg = anchored
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"\x00garbage" * 100)
    code, out = _cli(garbage, cfg)
    assert code == Verdict.USAGE == 2 and "not an MCAP file" in out, out
    code, out = _cli(tmp_path / "missing", cfg)
    assert code == 2 and "no such file" in out, out
    code, out = _cli(folder, cfg, "--topic", "/robot1/nothing")
    assert code == 2 and "no message on topic /robot1/nothing" in out, out
    code, out = _cli(folder, cfg, "--topic", "/robot1/odom", "--index", "999")
    assert code == 2 and "out of range" in out, out
    # an anchored batch cut short: damaged, the readable part named
    cut = tmp_path / "cut"
    shutil.copytree(folder, cut)
    raw = mcap_path(folder).read_bytes()
    (cut / mcap_path(folder).name).write_bytes(raw[: len(raw) // 2])
    code, out = _cli(cut, cfg)
    assert code in (Verdict.TAMPERED, Verdict.NOT_ANCHORED) and "truncated" in out, out
    # a hostile chunk claiming 1 TiB uncompressed: refused before anything is allocated
    import struct

    hostile = tmp_path / "hostile"
    shutil.copytree(folder, hostile)
    raw = bytearray(mcap_path(folder).read_bytes())
    chunk = 8
    while raw[chunk] != 0x06:  # walk the records to the first chunk
        chunk += 9 + struct.unpack_from("<Q", raw, chunk + 1)[0]
    struct.pack_into("<Q", raw, chunk + 9 + 16, 2**40)
    (hostile / mcap_path(folder).name).write_bytes(bytes(raw))
    code, out = _cli(hostile, cfg)
    assert code == Verdict.TAMPERED and "claims 1099511627776 uncompressed bytes" in out, out
    # a sidecar from another batch
    other = _record(tmp_path / "other", t0=T0 + 10**11)
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    shutil.copy(other / "anchor.json", mixed / "anchor.json")
    code, out = _cli(mixed, cfg)
    assert code == 2 and "does not match this batch" in out, out
    # a batch id never anchored (the other batch), a wrong chain id, a chain that is not there
    code, out = _cli(other, cfg)
    assert code == 3 and "not anchored" in out, out
    wrong = save_config(chain.config.model_copy(update={"chain_id": 999}), tmp_path / "wrong.json")
    code, out = _cli(folder, wrong)
    assert code == Verdict.CHAIN == 5 and "wrong chain" in out, out
    dead = save_config(chain.config.model_copy(update={"rpc_url": "http://127.0.0.1:9", "rpc_timeout_s": 1}),
                       tmp_path / "dead.json")
    code, out = _cli(folder, dead)
    assert code == 5 and "unreachable" in out, out
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"rpc_url": 5}))
    code, out = _cli(folder, broken)
    assert code == 5 and "chain configuration" in out, out


def test_a_robots_output_directory_is_verified_batch_by_batch(chain, anchored):
    folder, cfg = anchored
    directory = folder.parent
    second = _record(directory, t0=T0 + 10**11)
    _anchor(chain, directory)
    code, out = _cli(directory, cfg)
    assert code == 0 and "2 of 2 batches valid" in out and out.count("VALID ") == 2, out
    raw = bytearray(mcap_path(second).read_bytes())
    raw[len(raw) // 3] ^= 1
    mcap_path(second).write_bytes(bytes(raw))
    code, out = _cli(directory, cfg)
    assert code == Verdict.TAMPERED and "1 of 2 batches valid" in out and f"TAMPERED     {second.name}" in out, out
