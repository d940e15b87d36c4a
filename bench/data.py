"""The verifiable data layer: recording, anchoring and verifying one robot's telemetry.

One robot's real topic mix (what config/stack.yaml's telemetry records): odom
(nav_msgs/Odometry) at 50 Hz and obstacles (depai/ObstacleArray, ~12 obstacles) at 10 Hz, the
CDR made by rclpy from filled-in messages, plus one typed arrival record per batch.

  record     BatchRecorder.add (leaf per message, MCAP zstd chunks) + seal (fsync, proofs, sidecars)
  anchor     each batch as soon as it is sealed -> Anchorer -> the wallet's intent code
             (wallet.core.Intents, in process: the DDS hop to the wallet node is left out) ->
             DataRegistry.anchor on a local anvil (automine); seal-to-anchored latency per batch
             from the sidecar's times; gas from the receipts
  verify     ten minutes of the robot (60 batches of 10 s): `depai verify`'s core (strict MCAP
             read with checksums, every leaf, root, anchor record, DID at the block) vs a
             straightforward re-hash in Python (mcap's reader, eth_abi.encode, eth_utils.keccak per
             message and per tree node) of the same files (file side only: no chain reads)

    ./depai bench data [--minutes M] [--batch-s S]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depai_nodes.chain.anvil import Anvil  # noqa: E402
from depai_nodes.chain.client import ChainClient  # noqa: E402
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig, KeySource  # noqa: E402
from depai_nodes.chain.deploy import deploy_all  # noqa: E402
from depai_nodes.chain.fleet import Fleet  # noqa: E402
from depai_nodes.chain.signer import demo_signer  # noqa: E402

ODOM_HZ, OBST_HZ = 50, 10


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))] if s else float("nan")


def topic_mix(seconds: float, t0: int, machine: str):
    """(topic, type, log time ns, cdr) of one robot for ``seconds``, in time order."""
    import math

    from geometry_msgs.msg import Point
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message

    from depai.msg import ArrivalRecord, Obstacle, ObstacleArray
    from depai_nodes.telemetry.leaves import ARRIVAL_TYPE

    out = []
    for k in range(int(seconds * ODOM_HZ)):
        t = t0 + k * 10**9 // ODOM_HZ
        o = Odometry()
        o.header.frame_id, o.child_frame_id = "odom", "base_link"
        o.header.stamp.sec, o.header.stamp.nanosec = t // 10**9, t % 10**9
        o.pose.pose.position.x, o.pose.pose.position.y = math.cos(k / 500) * 8, math.sin(k / 500) * 8
        o.pose.pose.orientation.z, o.pose.pose.orientation.w = math.sin(k / 1000), math.cos(k / 1000)
        o.twist.twist.linear.x = 0.8
        out.append(("/robot1/odom", "nav_msgs/msg/Odometry", t, serialize_message(o)))
        if k % (ODOM_HZ // OBST_HZ) == 0:
            a = ObstacleArray()
            a.header = o.header
            for j in range(12):
                ob = Obstacle(id=j, point_count=40 + j)
                ob.centroid = Point(x=j * 1.5, y=-j * 0.5, z=0.4)
                ob.box_min, ob.box_max = Point(x=j * 1.5 - 0.3, y=-j * 0.5 - 0.3, z=0.0), Point(x=j * 1.5 + 0.3, y=-j * 0.5 + 0.3, z=0.8)
                a.obstacles.append(ob)
            out.append(("/robot1/obstacles", "depai/msg/ObstacleArray", t + 1, serialize_message(a)))
    r = ArrivalRecord(task_id=1, machine=machine, x=1.0, y=2.0, yaw=0.0)
    r.stamp.sec = t0 // 10**9
    out.append(("/robot1/arrival", ARRIVAL_TYPE, t0 + int(seconds * 1e9) - 1, serialize_message(r)))
    return out


def record(directory: Path, minutes: float, batch_s: float, machine: str, t0: int, after_seal=None):
    from depai_nodes.telemetry.core import BatchRecorder
    from depai_nodes.telemetry.leaves import canonical

    folders, add_s, seal_s, n = [], 0.0, [], 0
    for b in range(int(minutes * 60 / batch_s)):
        msgs = topic_mix(batch_s, t0 + int(b * batch_s * 1e9), machine)
        rec = BatchRecorder(directory)
        s = time.perf_counter()
        for topic, ty, t, cdr in msgs:
            rec.add(topic, ty, t, canonical(ty, cdr))
        add_s += time.perf_counter() - s
        s = time.perf_counter()
        folders.append(rec.seal())
        seal_s.append(time.perf_counter() - s)
        n += len(msgs)
        if after_seal:
            after_seal(len(folders))
    return folders, n, add_s, seal_s


class Anchoring:
    """The node's anchoring path, one batch in flight: each batch is anchored as soon as it is
    sealed; seal-to-anchored latency from the sidecar's seal and anchor times."""

    def __init__(self, directory: Path, fleet: Fleet):
        from depai_nodes.telemetry.core import Anchorer, AnchorStatus
        from depai_nodes.wallet.core import IntentPolicy, Intents

        self.done = 0
        self.busy_s = 0.0
        intents = Intents(fleet, IntentPolicy(max_anchors_per_minute=0))
        self.fleet, self.directory = fleet, directory

        def on_status(*e):
            if e[1] == AnchorStatus.CONFIRMED:
                self.done += 1

        self.anchorer = Anchorer(directory, intents.anchor, on_status).start()

    def after_seal(self, sealed: int) -> None:
        s = time.perf_counter()
        self.anchorer.kick()
        while self.done < sealed:
            time.sleep(0.001)
        self.busy_s += time.perf_counter() - s

    def results(self):
        from depai_nodes.telemetry.core import list_batches, read_sidecar

        self.anchorer.stop()
        lat, gas = [], []
        for folder, _ in list_batches(self.directory):
            side = read_sidecar(folder)
            lat.append((side["anchored_ns"] - side["sealed_ns"]) / 1e6)
            gas.append(self.fleet.client.wait_receipt(side["tx_hash"]).gas_used)
        return self.busy_s, lat, gas


def naive_rehash(folders) -> tuple[bytes, int]:
    """The straightforward way: mcap's reader, eth_abi per message, eth_utils.keccak everywhere."""
    import eth_abi
    from eth_utils import keccak
    from mcap.reader import make_reader

    from depai_nodes.telemetry.leaves import ARRIVAL_TYPE, ArrivalRecord

    n = 0
    root = b""
    for folder in folders:
        leaves = []
        with open(next(Path(folder).glob("*.mcap")), "rb") as f:
            for schema, channel, msg in make_reader(f).iter_messages(log_time_order=False):
                if schema.name == ARRIVAL_TYPE:
                    r = ArrivalRecord.from_cdr(msg.data)
                    pre = eth_abi.encode(["bytes32", "uint256", "address", "int64", "int64", "int64", "uint64"],
                                         [r.preimage()[:32], *r.typed()])
                else:
                    pre = eth_abi.encode(["string", "uint64", "bytes"], [channel.topic, msg.log_time, msg.data])
                leaves.append(keccak(keccak(pre)))
        level = leaves
        while len(level) > 1:
            nxt = [keccak(min(a, b) + max(a, b)) for a, b in zip(level[0::2], level[1::2])]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        root = level[0]
        n += len(leaves)
    return root, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="robot telemetry to record and verify (default 10)")
    ap.add_argument("--batch-s", type=float, default=10.0, help="seconds per batch (default 10, the node's default)")
    args = ap.parse_args()

    from depai_nodes.chain.merkle import MerkleTree
    from depai_nodes.telemetry.core import leaves_of, read_batch
    from depai_nodes.verify.core import Verdict, verify_many

    work = Path(tempfile.mkdtemp(prefix="depai-bench-data-"))
    anvil = Anvil().start()
    try:
        base = ChainConfig(name="bench", rpc_url=anvil.rpc_url, chain_id=LOCAL_CHAIN_ID, key=KeySource(kind="demo"))
        cfg = deploy_all(ChainClient(base, demo_signer(0, LOCAL_CHAIN_ID)))
        fleet = Fleet(ChainClient(cfg, demo_signer(1, LOCAL_CHAIN_ID)))
        fleet.register_did(b"robot1")
        t0 = (time.time_ns() // 10**9 - int(args.minutes * 60) - 60) * 10**9
        print(f"recording and anchoring {args.minutes:g} min of one robot ({args.batch_s:g} s batches) ...",
              file=sys.stderr, flush=True)
        (work / "tlm").mkdir(parents=True)
        anchoring = Anchoring(work / "tlm", fleet)
        folders, n, add_s, seal_s = record(work / "tlm", args.minutes, args.batch_s, fleet.me, t0, anchoring.after_seal)
        wall, lat, gas = anchoring.results()
        size = sum(p.stat().st_size for f in folders for p in f.iterdir())
        raw = sum(len(m.data) for f in folders for m in read_batch(f).messages)
        print("verifying ...", file=sys.stderr, flush=True)
        s = time.perf_counter()
        ours_root, ours_n = b"", 0
        for f in folders:
            b = read_batch(f)
            ours_root = MerkleTree(leaves=leaves_of(b.messages)).root
            ours_n += len(b.messages)
        file_s = time.perf_counter() - s
        s = time.perf_counter()
        verdicts = [rep.verdict for _, rep in verify_many(folders, cfg)]  # = `depai verify <output dir>`
        full_s = time.perf_counter() - s
        s = time.perf_counter()
        naive_root, naive_n = naive_rehash(folders)
        naive_s = time.perf_counter() - s
        assert naive_root == ours_root and naive_n == ours_n == n, "the two re-hashes disagree"
        assert all(v == Verdict.VALID for v in verdicts), verdicts
    finally:
        anvil.stop()
        shutil.rmtree(work, ignore_errors=True)

    per_batch = n / len(folders)
    print()
    print(f"One robot, {args.minutes:g} min of telemetry: {n} messages (odom {ODOM_HZ} Hz, obstacles {OBST_HZ} Hz, "
          f"1 arrival record per batch) in {len(folders)} batches of {args.batch_s:g} s; "
          f"{size / 2**20:.1f} MiB on disk (MCAP zstd + proofs + sidecars; {raw / 2**20:.1f} MiB of CDR)")
    print()
    print("| stage | measure | value |")
    print("|---|---|---:|")
    print(f"| record | messages/s (leaf + MCAP write, one core) | {n / add_s:,.0f} |")
    print(f"| record | seal per batch p50 / p99 ms (footer, fsync, proofs, sidecars) | {pct([x * 1e3 for x in seal_s], 50):.1f} / {pct([x * 1e3 for x in seal_s], 99):.1f} |")
    print(f"| anchor | batches/s through the wallet's intent path, one in flight (automine) | {len(folders) / wall:.1f} |")
    print(f"| anchor | messages/s anchored (at {per_batch:.0f} messages a batch) | {n / wall:,.0f} |")
    print(f"| anchor | seal-to-anchored p50 / p99 ms | {pct(lat, 50):.1f} / {pct(lat, 99):.1f} |")
    print(f"| anchor | gas per batch (DataRegistry.anchor) p50 | {statistics.median(gas):,.0f} |")
    print(f"| anchor | gas per message | {statistics.median(gas) / per_batch:,.1f} |")
    print(f"| verify | ours, file side: messages/s | {n / file_s:,.0f} |")
    print(f"| verify | naive per-message re-hash in Python: messages/s | {n / naive_s:,.0f} |")
    print(f"| verify | ours vs naive | {naive_s / file_s:.1f}x |")
    print(f"| verify | {args.minutes:g} min of one robot, file side (s) | {file_s:.3f} |")
    print(f"| verify | {args.minutes:g} min of one robot, `depai verify <dir>` in full: + anchor record, event, DID per batch (s) | {full_s:.3f} |")
    print(f"| verify | naive, file side (s) | {naive_s:.3f} |")
    print()
    print("target: verifying ten minutes of one robot's telemetry in under a second "
          f"-> file side {'met' if file_s < 1 else 'MISSED'} ({file_s:.2f} s); in full, with the chain reads "
          f"({len(folders)} batches x 4 RPC round trips on a local anvil): {'met' if full_s < 1 else 'MISSED'} ({full_s:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
