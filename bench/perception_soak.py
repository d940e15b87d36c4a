#!/usr/bin/env python3
"""Sustained-rate check: simulator + perception as real processes for one minute of sim time.

    python bench/perception_soak.py [--quick] [--seconds 60] [--beams 128 --horizontal 1024]

The simulator (warehouse world, one robot driving a slow circle so the scene changes) publishes
128 x 1024 sweeps at 10 Hz of simulated time; the perception node processes them; this script
subscribes to /clock and /robot1/obstacles. Over a window of ``--seconds`` of simulated time that
starts with the first obstacle list, it counts the sweeps the simulator published (its schedule is
exactly ``lidar_rate`` per simulated second; its own log gives the total as a cross-check) and the
distinct sweep stamps perception answered. A dropped sweep is a published stamp with no answer.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 s of sim time instead of 60")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--beams", type=int, default=128)
    ap.add_argument("--horizontal", type=int, default=1024)
    args = ap.parse_args()
    window = 10.0 if args.quick else args.seconds

    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock

    from depai.msg import ObstacleArray
    from depai_nodes.common.qos import RELIABLE_QOS

    from depai_nodes.common.domains import acquire_domain

    domain, _lock = acquire_domain()  # held until the process ends
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    tmp = Path(tempfile.mkdtemp(prefix="depai-soak-"))
    sim_log, per_log = tmp / "simulator.log", tmp / "perception.log"
    py = sys.executable
    per = subprocess.Popen([py, "-m", "depai_nodes.perception.node", "--ros-args", "-r", "__ns:=/robot1",
                            "-p", "expected_frame:=robot1/lidar_link", "-p", "sensor_height:=0.5"],
                           stdout=open(per_log, "w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    time.sleep(2.0)
    sim = subprocess.Popen([py, "-m", "depai_nodes.simulator.node", "--ros-args",
                            "-p", f"lidar_beams:={args.beams}", "-p", f"lidar_horizontal:={args.horizontal}",
                            "-p", "world:=warehouse"],
                           stdout=open(sim_log, "w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("soak_probe", context=ctx)
    state = {"clock": 0.0, "stamps": set(), "first": None}

    def on_clock(m):
        state["clock"] = m.clock.sec + m.clock.nanosec * 1e-9

    def on_obs(m):
        t = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
        if state["first"] is None:
            state["first"] = t
        state["stamps"].add(round(t, 3))

    node.create_subscription(Clock, "/clock", on_clock, RELIABLE_QOS)
    node.create_subscription(ObstacleArray, "/robot1/obstacles", on_obs, RELIABLE_QOS)
    cmd = node.create_publisher(Twist, "/robot1/cmd_vel", RELIABLE_QOS)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    twist = Twist()
    twist.linear.x, twist.angular.z = 0.3, 0.15
    wall0 = time.monotonic()
    last_cmd = 0.0
    last_report = 0.0
    try:
        while True:
            ex.spin_once(timeout_sec=0.05)
            if time.monotonic() - last_cmd > 0.1:
                cmd.publish(twist)
                last_cmd = time.monotonic()
            f = state["first"]
            if f is not None and state["clock"] >= f + window + 0.5:
                break
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                print(f"[soak] sim time {state['clock']:.1f} s, answered {len(state['stamps'])}", file=sys.stderr, flush=True)
            if time.monotonic() - wall0 > 20 * window + 60:
                print("[soak] giving up: the simulation is far slower than real time", file=sys.stderr)
                break
            if sim.poll() is not None or per.poll() is not None:
                print("[soak] a node exited early", file=sys.stderr)
                break
    finally:
        sim.send_signal(2)
        sim.wait(timeout=20)
        time.sleep(1.0)
        per.send_signal(2)
        per.wait(timeout=20)
        node.destroy_node()
        ctx.try_shutdown()
    f = state["first"]
    rate = 10.0
    published = int(round(window * rate))
    answered = len([s for s in state["stamps"] if f - 0.011 <= s < f + window - 0.05])
    sim_text, per_text = sim_log.read_text(), per_log.read_text()
    m = re.search(r"simulated ([\d.]+) s in ([\d.]+) s wall \(real-time factor ([\d.]+)\); published (\d+) sweeps", sim_text)
    q = re.search(r"processed (\d+) sweeps \(mean ([\d.]+) ms\), dropped (\d+)", per_text)
    print(f"\n## Sustained rate: simulator + perception processes, {args.beams}x{args.horizontal} sweeps at 10 Hz sim time\n")
    print("| window (sim s) | sweeps published in window | sweeps answered by perception | dropped | sim total: sim s / wall s (RTF) / sweeps | perception: processed / mean ms / rejected |")
    print("|---:|---:|---:|---:|---|---|")
    simcol = f"{m.group(1)} / {m.group(2)} ({m.group(3)}) / {m.group(4)}" if m else "(no summary in log)"
    percol = f"{q.group(1)} / {q.group(2)} / {q.group(3)}" if q else "(no summary in log)"
    print(f"| {window:.0f} | {published} | {answered} | {published - answered} | {simcol} | {percol} |")
    expected = [round(f + k / rate, 3) for k in range(published)]
    missing = [t for t in expected if not any(abs(t - s) < 0.011 for s in state["stamps"])]
    if missing:
        print(f"\nunanswered sweep stamps (sim s): {missing[:20]}{' ...' if len(missing) > 20 else ''}")
    print(f"\nlogs: {tmp}")
    return 0 if answered >= published else 1


if __name__ == "__main__":
    sys.exit(main())
