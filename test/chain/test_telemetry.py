"""Telemetry batches: MCAP files that open as ROS 2 bags, every byte covered; Merkle roots
anchored through the wallet's intent (the key stays in the wallet) under content ids; in order
after an outage; re-anchored after a chain reset; a cut recording recovered; retention; the node
end to end (rosbags reads back what was published, the typed arrival record proven on chain)."""

import json
import os
import signal
import subprocess
import sys
import time

import eth_abi
import pytest
from chainkit import MACHINE, MACHINE2, wait_for

from depai.msg import ArrivalRecord, TxStatus
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.intents import content_batch_id
from depai_nodes.chain.merkle import MerkleTree, keccak
from depai_nodes.chain.models import id32
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.telemetry.core import (
    Anchorer,
    AnchorStatus,
    BatchRecorder,
    TelemetryError,
    leaves_of,
    list_batches,
    mcap_path,
    prove,
    prune,
    read_batch,
    read_sidecar,
    reanchor_if_reset,
    recover,
)
from depai_nodes.telemetry.leaves import (
    ARRIVAL_TYPE,
    ARRIVAL_TYPEHASH,
    ArrivalRecord as Arrival,
    LeafError,
    canonical,
    message_preimage,
)
from depai_nodes.wallet.core import IntentPolicy, Intents

T0 = 1_700_000_000_000_000_000
ODOM = "nav_msgs/msg/Odometry"


def _odom_cdr(x: float) -> bytes:
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message

    m = Odometry()
    m.header.frame_id = "odom"
    m.pose.pose.position.x = float(x)
    return serialize_message(m)


def _batch(directory, n=7, t0=T0, topic="/robot1/odom"):
    rec = BatchRecorder(directory)
    for i in range(n):
        rec.add(topic, ODOM, t0 + i * 10**8, _odom_cdr(i))
    return rec.seal()


def _rosbag_xs(folder):
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    out = {}
    with Reader(folder) as reader:
        store = get_typestore(Stores.EMPTY)
        for c in reader.connections:
            store.register(get_types_from_msg(c.msgdef.data, c.msgtype))
        for c, stamp, raw in reader.messages():
            out.setdefault(c.topic, []).append(store.deserialize_cdr(raw, c.msgtype))
    return out


def test_leaf_encodings_are_the_abi_a_contract_decodes():
    cdr = _odom_cdr(3.0)
    assert message_preimage(b"/robot1/odom", 12345, cdr) == eth_abi.encode(["string", "uint64", "bytes"],
                                                                             ["/robot1/odom", 12345, cdr])
    a = Arrival(7, "0x" + "ab" * 20, -1.2345, 2.0, 3.14159, 1_700_000_123, 5)
    assert a.preimage() == eth_abi.encode(["bytes32", "uint256", "address", "int64", "int64", "int64", "uint64"],
                                          [ARRIVAL_TYPEHASH, 7, "0x" + "ab" * 20, -1234, 2000, 3142, 1_700_000_123])
    assert ARRIVAL_TYPEHASH == keccak(b"ArrivalRecord(uint256 taskId,address machine,int64 x,int64 y,int64 yaw,uint64 time)")
    # what rclpy serialises decodes to the same record (its padding bytes are not zeroed: the
    # recorder keeps the canonical, zero-padded encoding); a file's record must be canonical
    from rclpy.serialization import deserialize_message, serialize_message

    msg = ArrivalRecord(task_id=7, machine="0x" + "ab" * 20, x=-1.2345, y=2.0, yaw=3.14159)
    msg.stamp.sec, msg.stamp.nanosec = 1_700_000_123, 5
    assert Arrival.from_cdr(serialize_message(msg), strict=False) == a == Arrival.from_cdr(a.to_cdr())
    assert canonical(ARRIVAL_TYPE, serialize_message(msg)) == a.to_cdr()
    back = deserialize_message(a.to_cdr(), ArrivalRecord)
    assert (back.task_id, back.machine, back.x, back.stamp.sec, back.stamp.nanosec) == (7, "0x" + "ab" * 20, -1.2345, 1_700_000_123, 5)
    raw = bytearray(a.to_cdr())
    raw[16 + 43] ^= 1  # a padding byte after the address string
    with pytest.raises(LeafError, match="not canonical"):
        Arrival.from_cdr(bytes(raw))
    with pytest.raises(LeafError):
        Arrival.from_cdr(a.to_cdr() + b"\0")
    with pytest.raises(LeafError, match="task_id"):
        Arrival(0, "0x" + "ab" * 20, 0, 0, 0, 1).validate()


def test_a_batch_is_a_ros2_bag_and_every_byte_counts(tmp_path):
    folder = _batch(tmp_path, n=40)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["anchor.json", "metadata.yaml", "proofs.json",
                                                               mcap_path(folder).name])
    side = read_sidecar(folder)
    b = read_batch(folder)
    root = MerkleTree(leaves=leaves_of(b.messages)).root
    assert side["state"] == "pending" and side["messages"] == 40 and side["root"] == "0x" + root.hex()
    assert side["batch_id"] == content_batch_id(root, 40, side["start_time"], side["end_time"]) == b.metadata["batch_id"]
    assert side["start_time"] == T0 // 10**9 and side["end_time"] * 10**9 >= T0 + 39 * 10**8
    # rosbags opens the folder as a ROS 2 bag: every message deserialises to what was recorded
    xs = [m.pose.pose.position.x for m in _rosbag_xs(folder)["/robot1/odom"]]
    assert xs == [float(i) for i in range(40)]
    # the file's schema carries the full definition (nested types included)
    from mcap.reader import make_reader

    with open(mcap_path(folder), "rb") as f:
        summary = make_reader(f).get_summary()
    (schema,) = summary.schemas.values()
    assert schema.encoding == "ros2msg" and schema.name == ODOM and b"MSG: geometry_msgs/Quaternion" in schema.data
    assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
    assert all(ci.compression == "zstd" for ci in summary.chunk_indexes)
    # flip any one byte: the file no longer reads as the recorded batch
    raw = mcap_path(folder).read_bytes()
    probe = tmp_path / "probe.mcap"
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= 0x20
        probe.write_bytes(bytes(bad))
        try:
            again = read_batch(probe)
        except TelemetryError:
            continue
        assert MerkleTree(leaves=leaves_of(again.messages)).root != root, f"flipping byte {pos} went unnoticed"


def test_batches_roll_by_duration_size_and_count(tmp_path):
    rec = BatchRecorder(tmp_path)
    assert not rec.due(0.0, 10**9, 10**9)  # nothing recorded: nothing to seal
    rec.add("/robot1/odom", ODOM, T0, _odom_cdr(0))
    size = rec.bytes
    assert not rec.due(60.0, 10 * size, 100) and rec.due(60.0, size, 100) and rec.due(60.0, 10 * size, 1)
    time.sleep(0.05)
    assert rec.due(0.04, 10 * size, 100)
    first = rec.seal()
    assert rec.count == 0 and rec.bytes == 0 and not rec.due(0.0, 1, 1)
    rec.add("/robot1/odom", ODOM, T0 + 10**9, _odom_cdr(1))
    second = rec.seal()
    assert first != second and read_sidecar(first)["messages"] == read_sidecar(second)["messages"] == 1


def test_a_cut_recording_is_recovered_and_sealed(tmp_path):
    rec = BatchRecorder(tmp_path, chunk_bytes=2048)
    for i in range(60):
        rec.add("/robot1/odom", ODOM, T0 + i * 10**7, _odom_cdr(i))
        if i == 29:
            rec.flush()
    folder = rec.folder
    rec.flush()
    raw = mcap_path(folder).read_bytes()
    rec.abandon()  # a process that died: no footer, the last chunk cut in the middle
    mcap_path(folder).write_bytes(raw[: len(raw) - 100])
    assert read_sidecar(folder)["state"] == "recording"
    with pytest.raises(TelemetryError, match="ends early|unreadable"):
        read_batch(folder)
    sealed, n = recover(folder)
    assert sealed == folder and 30 <= n < 60  # the chunks written before the cut, nothing invented
    side = read_sidecar(folder)
    assert side["state"] == "pending" and side["messages"] == n and side["recovered"]
    xs = [m.pose.pose.position.x for m in _rosbag_xs(folder)["/robot1/odom"]]
    assert xs == [float(i) for i in range(n)]
    # a recording that holds nothing readable is removed, not sealed as an empty batch
    rec = BatchRecorder(tmp_path)
    rec.add("/robot1/odom", ODOM, T0 + 10**12, _odom_cdr(0))
    empty = rec.folder
    rec.abandon()
    mcap_path(empty).write_bytes(mcap_path(empty).read_bytes()[:20])
    assert recover(empty) == (None, 0) and not empty.exists()


def test_anchor_then_prove_on_chain_and_a_retry_is_idempotent(chain, tmp_path):
    fleet = Fleet(chain.client(MACHINE))
    folder = _batch(tmp_path)
    events = []
    anchorer = Anchorer(tmp_path, Intents(fleet).anchor, lambda *a: events.append(a)).start()
    try:
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
        side = read_sidecar(folder)
        assert side["state"] == "anchored" and side["tx_hash"].startswith("0x") and side["machine"] == fleet.me
        assert [e[1] for e in events] == [AnchorStatus.PENDING, AnchorStatus.CONFIRMED]
        pre, proof, root = prove(folder, 5)
        bid = id32(side["batch_id"])
        rec = fleet.batch_record(fleet.me, bid)
        assert rec.root == root and rec.message_count == 7 and rec.uri == f"file://{folder.resolve()}"
        assert fleet.verify_message(fleet.me, bid, pre, proof)
        assert not fleet.verify_message(fleet.me, bid, pre + b"!", proof)
        # a crash after the tx landed but before the sidecar said so: the same content id, no second anchor
        side["state"] = "pending"
        (folder / "anchor.json").write_text(json.dumps(side))
        events.clear()
        anchorer.kick()
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
        assert read_sidecar(folder)["state"] == "anchored" and read_sidecar(folder)["already_anchored"]
        assert fleet.data.call("batchCount", fleet.me) == 1
    finally:
        anchorer.stop()


def test_a_refused_batch_is_recorded_not_retried(chain, tmp_path):
    strict = Intents(Fleet(chain.client(MACHINE)), IntentPolicy(max_uri_bytes=16))
    folder = _batch(tmp_path)
    events = []
    anchorer = Anchorer(tmp_path, strict.anchor, lambda *a: events.append(a), backoff_s=0.01).start()
    try:
        wait_for(lambda: any(e[1] == AnchorStatus.FAILED for e in events))
        wait_for(anchorer.idle)
    finally:
        anchorer.stop()
    assert [e[1] for e in events] == [AnchorStatus.PENDING, AnchorStatus.FAILED]
    assert "REJECTED_BY_POLICY: PolicyRefused: uri of" in events[-1][4]
    side = read_sidecar(folder)
    assert side["state"] == "failed" and "max_uri_bytes" in side["error"]


def test_chain_down_batches_wait_and_then_anchor_in_order(chain, tmp_path):
    dead = chain.config.model_copy(update={"rpc_url": "http://127.0.0.1:9", "rpc_timeout_s": 0.5})
    fleet = Fleet(ChainClient(dead, chain.signer(MACHINE), verify_chain=False))
    folders = [_batch(tmp_path, n=3 + i, t0=T0 + i * 10**10) for i in range(4)]
    events = []
    anchorer = Anchorer(tmp_path, Intents(fleet).anchor, lambda *a: events.append(a), max_attempts=3, backoff_s=0.05).start()
    try:
        wait_for(lambda: any("gave up after 3 attempts" in e[4] for e in events))
        wait_for(anchorer.idle)
    finally:
        anchorer.stop()
    failures = [e for e in events if e[1] == AnchorStatus.FAILED]
    # only the oldest was tried: the later ones wait behind it, so they land in order
    assert len(failures) == 3 and {e[0] for e in events} == {read_sidecar(folders[0])["batch_id"]}
    assert all("CHAIN_UNAVAILABLE: RpcUnavailableError" in e[4] for e in failures)
    assert [read_sidecar(f)["state"] for f in folders] == ["pending"] * 4 and read_sidecar(folders[0])["attempts"] == 3
    good = Fleet(chain.client(MACHINE))
    events.clear()
    anchorer = Anchorer(tmp_path, Intents(good).anchor, lambda *a: events.append(a)).start()
    try:
        wait_for(lambda: sum(e[1] == AnchorStatus.CONFIRMED for e in events) == 4, timeout_s=30)
    finally:
        anchorer.stop()
    confirmed = [e[0] for e in events if e[1] == AnchorStatus.CONFIRMED]
    assert confirmed == [read_sidecar(f)["batch_id"] for f in folders]
    logs = good.data.events("BatchAnchored", 0)
    assert [l["batchId"] for l in logs] == [id32(b) for b in confirmed]  # on chain in recording order, once each
    assert [l["messageCount"] for l in logs] == [3, 4, 5, 6]


def test_after_a_chain_reset_lost_batches_are_anchored_again(chain, tmp_path):
    fleet = Fleet(chain.client(MACHINE))
    c = chain.client()
    folders = [_batch(tmp_path, n=4, t0=T0 + i * 10**10) for i in range(2)]
    genesis = c.genesis_hash()
    events = []
    anchorer = Anchorer(tmp_path, Intents(fleet).anchor, lambda *a: events.append(a), chain_tag=lambda: genesis).start()
    try:
        wait_for(lambda: sum(e[1] == AnchorStatus.CONFIRMED for e in events) == 2)
    finally:
        anchorer.stop()
    assert all(read_sidecar(f)["genesis"] == genesis for f in folders)

    def is_anchored(machine, batch_id):
        return fleet.data.call("isAnchored", machine, id32(batch_id))

    assert reanchor_if_reset(tmp_path, genesis, is_anchored) == []  # nothing lost: nothing to do
    # a batch recorded as anchored on another chain (its genesis differs from this chain's)
    s0 = read_sidecar(folders[0])
    s0["genesis"] = "0x" + "11" * 32
    (folders[0] / "anchor.json").write_text(json.dumps(s0))
    reset = reanchor_if_reset(tmp_path, genesis, is_anchored)
    assert reset == [folders[0]] and read_sidecar(folders[0])["state"] == "pending"
    assert read_sidecar(folders[1])["state"] == "anchored"
    events.clear()
    anchorer = Anchorer(tmp_path, Intents(fleet).anchor, lambda *a: events.append(a), chain_tag=lambda: genesis).start()
    try:
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
    finally:
        anchorer.stop()
    assert read_sidecar(folders[0])["state"] == "anchored" and read_sidecar(folders[0])["genesis"] == genesis
    assert fleet.data.call("batchCount", fleet.me) == 2  # still there on this chain: no duplicate


def test_a_batch_gone_from_the_chain_is_anchored_again(chain, tmp_path):
    fleet = Fleet(chain.client(MACHINE))
    c = chain.client()
    snap = c.rpc_local("evm_snapshot")
    folder = _batch(tmp_path, n=5)
    genesis = c.genesis_hash()
    events = []
    anchorer = Anchorer(tmp_path, Intents(fleet).anchor, lambda *a: events.append(a), chain_tag=lambda: genesis).start()
    try:
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
        bid = read_sidecar(folder)["batch_id"]
        assert c.rpc_local("evm_revert", [snap])  # the chain forgets the anchor (same genesis: a rollback)
        assert not fleet.data.call("isAnchored", fleet.me, id32(bid))

        def is_anchored(machine, batch_id):
            return fleet.data.call("isAnchored", machine, id32(batch_id))

        assert reanchor_if_reset(tmp_path, genesis, is_anchored) == [folder]
    finally:
        anchorer.stop()
    events.clear()
    fresh = Fleet(chain.client(MACHINE))  # a wallet whose nonce matches the rolled-back chain
    anchorer = Anchorer(tmp_path, Intents(fresh).anchor, lambda *a: events.append(a), chain_tag=lambda: genesis).start()
    try:
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
    finally:
        anchorer.stop()
    side = read_sidecar(folder)
    assert side["state"] == "anchored" and not side["already_anchored"] and side["previous_tx"]
    assert fleet.data.call("isAnchored", fleet.me, id32(bid)) and fleet.data.call("batchCount", fleet.me) == 1
    # the same views again: nothing more to do
    assert reanchor_if_reset(tmp_path, genesis, is_anchored) == []


def test_retention_prunes_anchored_batches_oldest_first_never_pending(tmp_path):
    folders = [_batch(tmp_path, n=20, t0=T0 + i * 10**10) for i in range(6)]
    for i in (0, 1, 3, 4):  # anchored; 2 and 5 still pending
        s = read_sidecar(folders[i])
        s["state"] = "anchored"
        (folders[i] / "anchor.json").write_text(json.dumps(s))
    size = sum(p.stat().st_size for p in folders[0].iterdir())
    removed = prune(tmp_path, budget_bytes=int(size * 3.5))
    assert removed == [folders[0], folders[1], folders[3]]
    assert [f.exists() for f in folders] == [False, False, True, False, True, True]
    assert prune(tmp_path, budget_bytes=0) == [folders[4]]  # pending ones stay, whatever the budget
    assert [f for f, _ in list_batches(tmp_path)] == [folders[2], folders[5]]


# ------------------------------------------------------------------------------------ the node

def _publish_odoms(pub, xs, delay=0.01):
    from nav_msgs.msg import Odometry

    for x in xs:
        m = Odometry()
        m.header.frame_id = "odom"
        m.pose.pose.position.x = float(x)
        pub.publish(m)
        time.sleep(delay)


def test_node_records_a_bag_anchors_it_and_the_arrival_record_verifies_on_chain(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    Fleet(chain.client(MACHINE)).register_did(b"robot1")  # a registered machine (checked by depai verify below)
    out = tmp_path / "tlm"
    node = start_node("telemetry", namespace="robot1", parameters={
        "batch_period": 1.5, "output_dir": str(out), "topics": ["odom nav_msgs/msg/Odometry"], "reliable": True,
        "retry_backoff": 0.2, "max_attempts": 2, "rescan_period": 1.0, "chain_config": str(cfg)})
    status = ros_node.subscribe(TxStatus, "/robot1/anchor_status", RELIABLE_QOS)
    pub = ros_node.publisher(__import__("nav_msgs.msg", fromlist=["Odometry"]).Odometry, "/robot1/odom", RELIABLE_QOS)
    arrivals = ros_node.publisher(ArrivalRecord, "/robot1/arrival", RELIABLE_QOS)
    node.wait_for_log("recording", timeout=20)
    ros_node.wait_for_subscribers(pub)
    ros_node.wait_for_subscribers(arrivals)
    time.sleep(0.5)  # discovery settles on the subscriber's side too (a reliable first message)
    _publish_odoms(pub, range(40))
    me = chain.address(MACHINE)
    arrival = ArrivalRecord(task_id=3, machine=me, x=4.25, y=-1.5, yaw=1.0)
    arrival.stamp.sec = int(time.time())
    arrivals.publish(arrival)  # refused: no wallet has announced this machine's account yet (fail closed)
    node.wait_for_log("refused a record on /robot1/arrival: no machine account from the wallet yet")
    # no wallet yet: bounded retries, then the batch waits on disk
    gave_up = status.wait_for(lambda s: "gave up after 2 attempts" in s.error, timeout=30)
    assert gave_up.status == TxStatus.FAILED and "WALLET_UNAVAILABLE" in gave_up.error
    start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE})
    done = status.wait_for(lambda s: s.status == TxStatus.CONFIRMED and s.request_id == gave_up.request_id, timeout=30)
    assert done.tx_hash.startswith("0x") and done.block_number > 0 and done.error == ""
    folder = next(f for f, s in list_batches(out) if s and s.get("batch_id") == done.request_id)
    side = read_sidecar(folder)
    assert side["state"] == "anchored" and side["machine"] == me and side["genesis"] == chain.client().genesis_hash()
    # rosbags reads back exactly what was published, in order, nothing lost or invented
    bag = _rosbag_xs(folder)
    assert [m.pose.pose.position.x for m in bag["/robot1/odom"]] == [float(i) for i in range(40)]
    assert "/robot1/arrival" not in bag
    # with the wallet's account known: a record for this machine is recorded, others are refused
    arrivals.publish(ArrivalRecord(task_id=0, machine="nonsense"))
    node.wait_for_log("refused a record on /robot1/arrival: task_id")
    arrivals.publish(ArrivalRecord(task_id=3, machine=chain.address(MACHINE2), x=4.25, y=-1.5, yaw=1.0))
    node.wait_for_log(f"names machine {chain.address(MACHINE2)}, not this machine {me}")
    arrivals.publish(arrival)
    done = status.wait_for(lambda s: s.status == TxStatus.CONFIRMED and s.request_id != gave_up.request_id, timeout=30)
    folder = next(f for f, s in list_batches(out) if s and s.get("batch_id") == done.request_id)
    (rec,) = _rosbag_xs(folder)["/robot1/arrival"]
    assert (rec.task_id, rec.machine, rec.x, rec.y, rec.yaw) == (3, me, 4.25, -1.5, 1.0)
    # the arrival record's leaf, built from its typed fields alone, is proven by DataRegistry
    b = read_batch(folder)
    i = next(k for k, m in enumerate(b.messages) if m.type_name == ARRIVAL_TYPE)
    _, proof, _ = prove(folder, i)
    typed = eth_abi.encode(["bytes32", "uint256", "address", "int64", "int64", "int64", "uint64"],
                           [ARRIVAL_TYPEHASH, 3, me, 4250, -1500, 1000, arrival.stamp.sec])
    fleet = Fleet(chain.client(MACHINE))
    assert fleet.verify_message(me, id32(done.request_id), typed, proof)
    forged = eth_abi.encode(["bytes32", "uint256", "address", "int64", "int64", "int64", "uint64"],
                            [ARRIVAL_TYPEHASH, 3, me, 4251, -1500, 1000, arrival.stamp.sec])
    assert not fleet.verify_message(me, id32(done.request_id), forged, proof)
    assert fleet.data.call("batchCount", me) == len([1 for _, s in list_batches(out) if s and s["state"] == "anchored"])
    # a third party checks the real run's batch, and the arrival's inclusion, with `depai verify`
    p = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "verify", str(folder), "--chain", str(cfg),
                        "--topic", "/robot1/arrival", "--index", "0"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "DataRegistry.verifyMessage -> true" in p.stdout and "VALID:" in p.stdout, p.stdout + p.stderr


def test_node_killed_mid_batch_keeps_what_it_flushed(chain, tmp_path, start_node, ros_node):
    from nav_msgs.msg import Odometry

    out = tmp_path / "tlm"
    params = {"batch_period": 3600.0, "flush_period": 0.2, "output_dir": str(out), "reliable": True,
              "topics": ["odom nav_msgs/msg/Odometry"], "chain_check": False, "rescan_period": 3600.0}
    node = start_node("telemetry", namespace="robot1", parameters=params)
    pub = ros_node.publisher(Odometry, "/robot1/odom", RELIABLE_QOS)
    node.wait_for_log("recording", timeout=20)
    ros_node.wait_for_subscribers(pub)
    time.sleep(0.5)  # discovery settles on the subscriber's side too (a reliable first message)
    _publish_odoms(pub, range(50))
    time.sleep(1.0)  # several flush periods
    os.kill(node.process.pid, signal.SIGKILL)
    node.wait_exit()
    ((folder, side),) = list_batches(out)
    assert side["state"] == "recording"
    node = start_node("telemetry", namespace="robot1", parameters=params)
    log = node.wait_for_log("recording", timeout=20)
    assert f"recovered 50 message(s) of an interrupted batch {folder.name} and sealed it" in log
    side = read_sidecar(folder)
    assert side["state"] == "pending" and side["messages"] == 50 and side["recovered"]
    assert [m.pose.pose.position.x for m in _rosbag_xs(folder)["/robot1/odom"]] == [float(i) for i in range(50)]


def test_node_rolls_batches_by_size_and_prunes_anchored_ones_only(tmp_path, start_node, ros_node):
    from nav_msgs.msg import Odometry

    out = tmp_path / "tlm"
    node = start_node("telemetry", namespace="robot1", parameters={
        "batch_period": 3600.0, "max_bytes": 1024, "output_dir": str(out), "reliable": True,
        "topics": ["odom nav_msgs/msg/Odometry"], "chain_check": False, "rescan_period": 0.5, "disk_budget": 1})
    pub = ros_node.publisher(Odometry, "/robot1/odom", RELIABLE_QOS)
    node.wait_for_log("recording", timeout=20)
    ros_node.wait_for_subscribers(pub)
    time.sleep(0.5)
    _publish_odoms(pub, range(12), delay=0.02)
    size = len(_odom_cdr(0))
    per_batch = -(-1024 // size)  # sealed as soon as the batch holds max_bytes of message data
    wait_for(lambda: len(list_batches(out)) == 12 // per_batch
             and all(s and s["state"] == "pending" for _, s in list_batches(out)), timeout_s=15)
    batches = list_batches(out)
    assert [s["messages"] for _, s in batches] == [per_batch] * (12 // per_batch)
    # over the 1-byte budget, but nothing is anchored (no wallet): nothing may be pruned
    time.sleep(1.5)  # several rescans
    assert len(list_batches(out)) == 12 // per_batch and all(s["state"] == "pending" for _, s in list_batches(out))
    # the oldest marked anchored (as the anchorer would): the next rescan deletes it, and only it
    folder, side = list_batches(out)[0]
    side["state"] = "anchored"
    (folder / "anchor.json").write_text(json.dumps(side))
    node.wait_for_log("retention: deleted 1 anchored batch(es)", timeout=10)
    assert not folder.exists() and len(list_batches(out)) == 12 // per_batch - 1
