#!/usr/bin/env python3
"""PointCloud2 transport between two real node processes, and the cost of building the message.

    python bench/transport.py [--quick]

1. How to hand a cloud's bytes to ``msg.data``: the generated setter is fast only for
   ``array.array('B')``; bytes, memoryview and NumPy arrays go through per-element Python.
2. Inter-process latency: a publisher process sends 131,072-point clouds (20-byte points,
   2.6 MB, as the simulator does) at 10 Hz; a subscriber process takes its receive time minus
   the header stamp (both processes read the same wall clock) and the zero-copy view cost.
   Best effort (SENSOR_QOS) and reliable (CLOUD_QOS), each on its own ROS domain, with Fast DDS's
   built-in transports and with the stack's profile (config/fastdds.xml), side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
N = 128 * 1024
PROFILE = ROOT / "config" / "fastdds.xml"


def setter_costs(reps: int) -> list[tuple[str, float]]:
    import array

    import numpy as np
    from sensor_msgs.msg import PointCloud2

    from depai_nodes.common.pointcloud2 import CloudBuffer
    from depai_nodes.simulator.core import CLOUD_DTYPE

    buf = CloudBuffer(CLOUD_DTYPE, N)
    raw = buf.data.tobytes()
    m = PointCloud2()
    out = []

    def t(label, make, n):
        ts = []
        for _ in range(n):
            v = make()
            t0 = time.perf_counter()
            m.data = v
            ts.append((time.perf_counter() - t0) * 1e3)
        out.append((label, float(np.median(ts))))

    t("array.array('B') (CloudBuffer.data)", lambda: buf.data, reps)
    t("bytes", lambda: raw, max(3, reps // 10))
    t("memoryview", lambda: memoryview(raw), 3)
    t("numpy uint8 array", lambda: np.frombuffer(raw, np.uint8), 3)
    a = array.array("B")
    t0 = time.perf_counter()
    a.frombytes(raw)
    out.append(("(for reference) array.array('B').frombytes(2.6 MB)", (time.perf_counter() - t0) * 1e3))
    return out


def publisher(domain: int, reliable: bool, seconds: float) -> None:
    import rclpy
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import PointCloud2

    from depai_nodes.common.pointcloud2 import CloudBuffer
    from depai_nodes.common.qos import SENSOR_QOS
    from depai_nodes.common.qos import CLOUD_QOS as RELIABLE_QOS
    from depai_nodes.simulator.core import CLOUD_DTYPE

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("bench_cloud_pub", context=ctx)
    pub = node.create_publisher(PointCloud2, "points", RELIABLE_QOS if reliable else SENSOR_QOS)
    buf = CloudBuffer(CLOUD_DTYPE, N)
    buf.xyz[:] = 1.0
    deadline = time.monotonic() + 10
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    sent = 0
    t_end = time.monotonic() + seconds
    next_t = time.monotonic()
    while time.monotonic() < t_end:
        now = time.time()
        msg = buf.to_msg("lidar_link", Time(sec=int(now), nanosec=int((now % 1) * 1e9)), height=128)
        pub.publish(msg)
        sent += 1
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.monotonic()))
    time.sleep(0.5)
    print(json.dumps({"sent": sent}), flush=True)
    node.destroy_node()
    ctx.try_shutdown()


def subscriber(domain: int, reliable: bool, seconds: float) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import PointCloud2

    from depai_nodes.common.pointcloud2 import cloud_to_xyz
    from depai_nodes.common.qos import SENSOR_QOS
    from depai_nodes.common.qos import CLOUD_QOS as RELIABLE_QOS

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("bench_cloud_sub", context=ctx)
    lat, conv = [], []

    def on(msg):
        t_recv = time.time()
        lat.append((t_recv - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)) * 1e3)
        t0 = time.perf_counter()
        xyz = cloud_to_xyz(msg)
        conv.append((time.perf_counter() - t0) * 1e3)
        assert xyz.shape == (N, 3)

    node.create_subscription(PointCloud2, "points", on, RELIABLE_QOS if reliable else SENSOR_QOS)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    t_end = time.monotonic() + seconds + 12
    while time.monotonic() < t_end:
        ex.spin_once(timeout_sec=0.1)
    print(json.dumps({"lat": lat, "conv": conv}), flush=True)
    node.destroy_node()
    ctx.try_shutdown()


def pct(v, q):
    import numpy as np

    return float(np.percentile(v, q)) if v else float("nan")


def fmt(value: float, digits: int) -> str:
    """A table cell: the number, or a dash when nothing was received to measure."""
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--role", choices=["pub", "sub"], help=argparse.SUPPRESS)
    ap.add_argument("--domain", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--reliable", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=20.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "pub":
        publisher(args.domain, args.reliable, args.seconds)
        return 0
    if args.role == "sub":
        subscriber(args.domain, args.reliable, args.seconds)
        return 0

    seconds = 5.0 if args.quick else 20.0
    print("## Building a PointCloud2 for 131,072 points (2.6 MB): assigning msg.data (ms, median)\n")
    print("| value given to msg.data | ms |")
    print("|---|---:|")
    for label, ms in setter_costs(20 if args.quick else 100):
        print(f"| {label} | {ms:.3f} |")

    print(f"\n## Inter-process PointCloud2 transport, 10 Hz, {seconds:.0f} s per row (two processes, {os.cpu_count()} cores)\n")
    print("Fast DDS as installed (its built-in transports: a 512 KB shared-memory segment, so a sweep goes")
    print("over UDP loopback in fragments) vs the stack's profile, config/fastdds.xml (16 MB segment).\n")
    print("| transport | QoS | sent | received | latency p50 ms | latency p99 ms | zero-copy view p50 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    base = 150 + os.getpid() % 60  # ROS domains 150..231 are unlikely to clash with tests (1..100)
    plain = {k: v for k, v in os.environ.items() if k not in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")}
    ours = dict(plain, FASTRTPS_DEFAULT_PROFILES_FILE=str(PROFILE), FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE))
    rows = [(t, env, reliable) for t, env in (("Fast DDS built-in", plain), ("config/fastdds.xml", ours)) for reliable in (False, True)]
    for i, (transport, env, reliable) in enumerate(rows):
        env = dict(env, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
        common = ["--domain", str(base + i), "--seconds", str(seconds)] + (["--reliable"] if reliable else [])
        sub = subprocess.Popen([sys.executable, __file__, "--role", "sub", *common], stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(1.0)
        pub = subprocess.run([sys.executable, __file__, "--role", "pub", *common], capture_output=True, text=True, env=env)
        out, _ = sub.communicate(timeout=seconds + 60)
        sent = json.loads(pub.stdout.strip().splitlines()[-1])["sent"]
        r = json.loads(out.strip().splitlines()[-1])
        label = "reliable, keep last 5 (CLOUD_QOS, what sim/perception use)" if reliable else "best effort, keep last 5 (SENSOR_QOS, `ros2 topic hz`)"
        cells = [fmt(pct(r["lat"], 50), 2), fmt(pct(r["lat"], 99), 2), fmt(pct(r["conv"], 50), 3)]
        print(f"| {transport} | {label} | {sent} | {len(r['lat'])} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
