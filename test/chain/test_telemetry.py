"""Telemetry anchoring: batch files, Merkle roots anchored through the wallet's intent (the
machine's key stays in the wallet), inclusion of a recorded ROS message proven on chain; bounded
retries that lose nothing; refusals recorded; the node end to end, starting before its wallet."""

import json
import time

import pytest
from chainkit import MACHINE, wait_for

from depai.msg import TxStatus
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.wallet.core import IntentPolicy, Intents
from depai_nodes.telemetry.core import (
    Anchorer,
    AnchorStatus,
    BatchBuffer,
    TelemetryError,
    decode_record,
    prove,
    read_batch,
    read_sidecar,
    write_batch,
)


def _sealed(tmp_path, machine, n=7, name="tlm-test-1"):
    buf = BatchBuffer(period_s=1.0, max_messages=100)
    for i in range(n):
        buf.add("odom", 1_700_000_000_000_000_000 + i * 10**8, f"payload {i}".encode())
    assert buf.due(1_700_000_000_000_000_000 + 2 * 10**9) and not buf.due(1_700_000_000_000_000_000)
    batch = buf.seal(name)
    return write_batch(tmp_path, batch, machine), batch


def test_batch_file_roundtrip_and_corruption(tmp_path):
    path, batch = _sealed(tmp_path, "0x" + "11" * 20)
    again = read_batch(path)
    assert again.records == batch.records and again.start_ns == batch.start_ns and again.end_ns == batch.end_ns
    assert decode_record(again.records[3]) == ("odom", 1_700_000_000_300_000_000, b"payload 3")
    assert read_sidecar(path)["state"] == "pending" and read_sidecar(path)["messages"] == 7
    (tmp_path / "bad.dpb").write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TelemetryError, match="truncated|malformed"):
        read_batch(tmp_path / "bad.dpb")
    (tmp_path / "alien.dpb").write_bytes(b"hello world")
    with pytest.raises(TelemetryError, match="not a DePAI"):
        read_batch(tmp_path / "alien.dpb")


def test_anchor_then_prove_on_chain_and_resume_is_idempotent(chain, tmp_path):
    fleet = Fleet(chain.client(MACHINE))
    path, batch = _sealed(tmp_path, "")  # the telemetry side need not even know the address
    events = []
    anchorer = Anchorer(Intents(fleet).anchor, lambda *a: events.append(a)).start()
    try:
        anchorer.submit(path)
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
        side = read_sidecar(path)
        assert side["state"] == "anchored" and side["tx_hash"].startswith("0x") and side["machine"] == fleet.me
        assert [e[1] for e in events] == [AnchorStatus.PENDING, AnchorStatus.CONFIRMED]  # the wallet submits and waits
        record, proof, root = prove(path, 5)
        rec = fleet.batch_record(fleet.me, fleet_id(batch.batch_id))
        assert rec.root == root and rec.message_count == 7 and rec.uri == f"file://{path.resolve()}"
        assert fleet.verify_message(fleet.me, fleet_id(batch.batch_id), record, proof)
        assert not fleet.verify_message(fleet.me, fleet_id(batch.batch_id), record + b"!", proof)
        # a crash after the tx landed but before the sidecar said so: resume counts it as anchored
        side["state"] = "pending"
        path.with_suffix(".json").write_text(json.dumps(side))
        events.clear()
        assert anchorer.resume(tmp_path) == 1
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
        assert read_sidecar(path)["state"] == "anchored" and read_sidecar(path)["already_anchored"]
        assert anchorer.resume(tmp_path) == 0  # nothing pending any more
    finally:
        anchorer.stop()


def test_a_refused_batch_is_recorded_not_retried(chain, tmp_path):
    """A batch the wallet's policy refuses is marked failed with the reason, once."""
    strict = Intents(Fleet(chain.client(MACHINE)), IntentPolicy(max_uri_bytes=16))
    path, _ = _sealed(tmp_path, "")
    events = []
    anchorer = Anchorer(strict.anchor, lambda *a: events.append(a), backoff_s=0.01).start()
    try:
        anchorer.submit(path)
        wait_for(lambda: any(e[1] == AnchorStatus.FAILED for e in events))
        wait_for(anchorer.idle)
    finally:
        anchorer.stop()
    assert [e[1] for e in events] == [AnchorStatus.PENDING, AnchorStatus.FAILED]
    assert "REJECTED_BY_POLICY: PolicyRefused: uri of" in events[-1][4]
    side = read_sidecar(path)
    assert side["state"] == "failed" and "max_uri_bytes" in side["error"]


def fleet_id(name):
    from depai_nodes.chain.models import id32

    return id32(name)


def test_chain_down_bounded_retries_and_nothing_lost(chain, tmp_path):
    dead = chain.config.model_copy(update={"rpc_url": "http://127.0.0.1:9", "rpc_timeout_s": 0.5})
    fleet = Fleet(ChainClient(dead, chain.signer(MACHINE), verify_chain=False))
    path, _ = _sealed(tmp_path, fleet.me)
    events = []
    anchorer = Anchorer(Intents(fleet).anchor, lambda *a: events.append(a), max_attempts=3, backoff_s=0.05).start()
    try:
        anchorer.submit(path)
        wait_for(lambda: any("gave up after 3 attempts" in e[4] for e in events))
    finally:
        anchorer.stop()
    failures = [e for e in events if e[1] == AnchorStatus.FAILED]
    assert len(failures) == 3 and all("CHAIN_UNAVAILABLE: RpcUnavailableError" in e[4] for e in failures)
    assert read_sidecar(path)["state"] == "pending" and read_sidecar(path)["attempts"] == 3
    # the chain is back: the next start anchors what is pending
    good = Fleet(chain.client(MACHINE))
    events.clear()
    anchorer = Anchorer(Intents(good).anchor, lambda *a: events.append(a)).start()
    try:
        assert anchorer.resume(tmp_path) == 1
        wait_for(lambda: any(e[1] == AnchorStatus.CONFIRMED for e in events))
    finally:
        anchorer.stop()
    assert read_sidecar(path)["state"] == "anchored"


def test_node_records_before_its_wallet_exists_and_anchors_once_it_does(chain, tmp_path, start_node, ros_node):
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message

    cfg = save_config(chain.config, tmp_path / "chain.json")
    out = tmp_path / "tlm"
    node = start_node("telemetry", namespace="robot1", parameters={
        "batch_period": 0.5, "output_dir": str(out), "topics": ["odom nav_msgs/msg/Odometry"],
        "retry_backoff": 0.2, "max_attempts": 2, "rescan_period": 1.0})
    status = ros_node.subscribe(TxStatus, "/robot1/anchor_status", RELIABLE_QOS)
    pub = ros_node.publisher(Odometry, "/robot1/odom", RELIABLE_QOS)
    node.wait_for_log("recording", timeout=20)
    ros_node.wait_for_subscribers(pub)
    for i in range(20):
        m = Odometry()
        m.header.frame_id = "odom"
        m.pose.pose.position.x = float(i)
        pub.publish(m)
        time.sleep(0.02)
    # no wallet yet: bounded retries, then the batch waits on disk for the next rescan
    gave_up = status.wait_for(lambda s: "gave up after 2 attempts" in s.error, timeout=30)
    assert gave_up.status == TxStatus.FAILED and "WALLET_UNAVAILABLE" in gave_up.error
    assert read_sidecar(out / f"{gave_up.request_id}.dpb")["state"] == "pending"

    start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE})
    done = status.wait_for(lambda s: s.status == TxStatus.CONFIRMED and s.request_id == gave_up.request_id, timeout=30)
    assert done.tx_hash.startswith("0x") and done.block_number > 0 and done.error == ""
    path = out / f"{done.request_id}.dpb"
    side = read_sidecar(path)
    assert side["state"] == "anchored" and side["machine"] == chain.address(MACHINE)
    batch = read_batch(path)
    topic, _, payload = decode_record(batch.records[0])
    assert topic == "odom"
    xs = [deserialize_message(decode_record(r)[2], Odometry).pose.pose.position.x for r in batch.records]
    # in publication order, nothing invented (the first few may precede DDS matching)
    assert xs == sorted(set(xs)) and set(xs) <= {float(i) for i in range(20)} and len(xs) >= 5
    fleet = Fleet(chain.client(MACHINE))
    record, proof, _ = prove(path, len(batch.records) - 1)
    assert fleet.verify_message(fleet.me, fleet_id(done.request_id), record, proof)
    assert fleet.batch_record(fleet.me, fleet_id(done.request_id)).submitter == chain.address(MACHINE)
