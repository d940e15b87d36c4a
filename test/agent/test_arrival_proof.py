"""telemetry's `arrival_proof` service: where a task's arrival record stands (PENDING while its
batch is open or not anchored, ANCHORED with the batch id, root, fields and a Merkle proof that
DataRegistry accepts, UNKNOWN otherwise) - the core on real files, the node as a real process
with a real wallet on a real anvil."""

import json
import time

import eth_abi
from chainkit import MACHINE, wait_for

from depai.msg import ArrivalRecord
from depai.srv import ArrivalProof
from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.merkle import verify
from depai_nodes.chain.models import id32
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.telemetry.core import BatchRecorder, PROOFS, arrival_proof, list_batches, read_sidecar, write_sidecar
from depai_nodes.telemetry.leaves import ARRIVAL_TYPE, ARRIVAL_TYPEHASH, ArrivalRecord as Arrival

ME = "0x" + "ab" * 20
T0 = 1_700_000_000_000_000_000


def _typed(task_id, machine, x, y, yaw, t) -> bytes:
    return eth_abi.encode(["bytes32", "uint256", "address", "int64", "int64", "int64", "uint64"],
                          [ARRIVAL_TYPEHASH, task_id, machine, x, y, yaw, t])


def _odom(x: float) -> bytes:
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message

    m = Odometry()
    m.pose.pose.position.x = float(x)
    return serialize_message(m)


def _record(rec: BatchRecorder, n_odom: int, arrivals: list[Arrival], t0: int) -> None:
    for i in range(n_odom):
        rec.add("/robot1/odom", "nav_msgs/msg/Odometry", t0 + i * 10**7, _odom(i))
        if i == n_odom // 2:
            for a in arrivals:
                rec.add("/robot1/arrival", ARRIVAL_TYPE, t0 + i * 10**7 + 1, a.to_cdr())


def test_core_answers_pending_anchored_unknown_from_real_batches(tmp_path):
    rec = BatchRecorder(tmp_path)
    a7 = Arrival(7, ME, 4.2504, -1.5, 1.0, 1_700_000_001)
    _record(rec, 9, [a7], T0)
    # open batch: the record is known to the recorder only
    assert arrival_proof(tmp_path, 7).result == "UNKNOWN"
    assert arrival_proof(tmp_path, 7, rec.arrivals).result == "PENDING"
    folder = rec.seal()
    side = read_sidecar(folder)
    assert side["arrivals"] == [{"index": 5, "task_id": 7, "machine": ME, "x_mm": 4250, "y_mm": -1500, "yaw_mrad": 1000,
                                 "time": 1_700_000_001}]
    pending = arrival_proof(tmp_path, 7)
    assert pending.result == "PENDING" and side["batch_id"] in pending.reason
    write_sidecar(folder, dict(side, state="anchored", block=42))
    ans = arrival_proof(tmp_path, 7)
    assert (ans.result, ans.batch_id, ans.root, ans.anchored_block) == ("ANCHORED", side["batch_id"], side["root"], 42)
    assert ans.record == {"machine": ME, "x_mm": 4250, "y_mm": -1500, "yaw_mrad": 1000, "time": 1_700_000_001}
    # the leaf rebuilt from the answer's fields alone (as the contract does) is proven against the root
    from depai_nodes.chain.merkle import keccak

    leaf = keccak(keccak(_typed(7, ME, 4250, -1500, 1000, 1_700_000_001)))
    assert verify(leaf, [bytes.fromhex(p[2:]) for p in ans.proof], bytes.fromhex(ans.root[2:]))
    assert not verify(keccak(keccak(_typed(7, ME, 4251, -1500, 1000, 1_700_000_001))),
                      [bytes.fromhex(p[2:]) for p in ans.proof], bytes.fromhex(ans.root[2:]))
    # another task, a bad id: UNKNOWN with a reason, never an exception
    assert arrival_proof(tmp_path, 8).result == "UNKNOWN"
    for bad in (0, -1, 2**64, True, "7"):
        out = arrival_proof(tmp_path, bad)
        assert out.result == "UNKNOWN" and "task_id" in out.reason
    # a later batch refused for good does not hide the anchored record; its only record -> UNKNOWN
    rec2 = BatchRecorder(tmp_path)
    _record(rec2, 3, [Arrival(7, ME, 4.25, -1.5, 1.0, 1_700_000_009), Arrival(9, ME, 1, 2, 0, 1_700_000_009)], T0 + 10**10)
    f2 = rec2.seal()
    write_sidecar(f2, dict(read_sidecar(f2), state="failed", error="REVERTED: x"))
    assert arrival_proof(tmp_path, 7).batch_id == side["batch_id"]
    gone = arrival_proof(tmp_path, 9)
    assert gone.result == "UNKNOWN" and "refused for good" in gone.reason
    # a tampered proofs.json is detected (no proof that would not verify is handed out)
    tree = json.loads((folder / PROOFS).read_text())
    tree["levels"][0][5] = "00" * 32
    (folder / PROOFS).write_text(json.dumps(tree))
    assert arrival_proof(tmp_path, 7).result == "UNKNOWN"


def test_core_reads_old_sidecars_and_recovered_batches(tmp_path):
    from depai_nodes.telemetry.core import recover

    rec = BatchRecorder(tmp_path)
    _record(rec, 6, [Arrival(3, ME, 1.0, 2.0, 0.5, 1_700_000_002)], T0)
    rec.flush()
    folder = rec.folder
    rec.abandon()  # what a killed process leaves: recovered at the next start, the arrival indexed
    recover(folder)
    assert [a["task_id"] for a in read_sidecar(folder)["arrivals"]] == [3]
    side = read_sidecar(folder)
    del side["arrivals"]  # a batch sealed before sidecars listed arrivals: the bag is read
    write_sidecar(folder, dict(side, state="anchored", block=5))
    ans = arrival_proof(tmp_path, 3)
    assert ans.result == "ANCHORED" and ans.record["x_mm"] == 1000 and ans.proof


def _ask(probe, client, task_id: int, timeout: float = 10.0):
    """A read: resent until one copy is answered."""
    return probe.call(client.srv_type, client.srv_name, ArrivalProof.Request(task_id=task_id), timeout=timeout)


def test_node_serves_arrival_proof_that_data_registry_verifies(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    me = chain.address(MACHINE)
    Fleet(chain.client(MACHINE)).register_did(b"robot1")
    out = tmp_path / "tlm"
    start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE})
    node = start_node("telemetry", namespace="robot1", parameters={
        "batch_period": 2.0, "output_dir": str(out), "reliable": True, "retry_backoff": 0.2, "rescan_period": 1.0,
        "chain_config": str(cfg)})
    client = ros_node.node.create_client(ArrivalProof, "/robot1/telemetry/arrival_proof")
    arrivals = ros_node.publisher(ArrivalRecord, "/robot1/arrival", RELIABLE_QOS)
    node.wait_for_log("recording", timeout=20)
    ros_node.wait_for_subscribers(arrivals)
    assert _ask(ros_node, client, 11).result == ArrivalProof.Response.UNKNOWN
    bad = _ask(ros_node, client, 0)
    assert bad.result == ArrivalProof.Response.UNKNOWN and "task_id" in bad.reason
    msg = ArrivalRecord(task_id=11, machine=me, x=3.0, y=-2.25, yaw=0.5)
    msg.stamp.sec = int(time.time())
    # the wallet's account must be known to telemetry first (it refuses records before): publish until recorded
    # (recorded: PENDING, or ANCHORED already when the wallet was quicker than the question)
    recorded = (ArrivalProof.Response.PENDING, ArrivalProof.Response.ANCHORED)
    wait_for(lambda: (arrivals.publish(msg), _ask(ros_node, client, 11).result in recorded)[1]
             or time.sleep(0.3), timeout_s=30)
    ans = wait_for(lambda: (r := _ask(ros_node, client, 11)).result == ArrivalProof.Response.ANCHORED and r, timeout_s=40,
                   interval_s=0.2)
    assert (ans.x_mm, ans.y_mm, ans.yaw_mrad, ans.time) == (3000, -2250, 500, msg.stamp.sec)
    folder = next(f for f, s in list_batches(out) if s and s.get("batch_id") == ans.batch_id)
    side = read_sidecar(folder)
    assert side["state"] == "anchored" and ans.root == side["root"] and ans.anchored_block == side["block"] > 0
    # on chain: DataRegistry proves the leaf rebuilt from the answer's fields under this machine's anchored batch
    fleet = Fleet(chain.client(MACHINE))
    proof = [bytes.fromhex(p[2:]) for p in ans.proof]
    assert fleet.verify_message(me, id32(ans.batch_id), _typed(11, me, ans.x_mm, ans.y_mm, ans.yaw_mrad, ans.time), proof)
    assert not fleet.verify_message(me, id32(ans.batch_id), _typed(12, me, ans.x_mm, ans.y_mm, ans.yaw_mrad, ans.time), proof)
    assert fleet.batch_record(me, id32(ans.batch_id)).root.hex() == ans.root[2:]
