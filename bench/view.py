"""Does the live view slow the robots? The demo with and without `--view`, side by side.

Each run is the real demo (`./depai launch [--view] --duration D`, the shipped stack) on its own
ROS domain; runs alternate (without, with, without, with, ...) so that a machine whose load
drifts weighs on both alike. From each run's own exit lines:

  real-time factor     the simulator: "simulated X s in Y s wall (real-time factor R)"
                       (1.00: simulated time keeps up with the wall clock; below: the machine
                       cannot keep up and the simulation slows down, sweeps are never skipped)
  perception mean ms   each robot's perception: "processed N sweeps (mean M ms)"
  view CPU             the view process's CPU time / wall time, sampled just before the stop

The table shows p50 and p99 (nearest rank) across the runs of each configuration, and every
run. The view is fed by DDS like any subscriber; if the machine has spare cores it costs the
robots nothing, on a saturated one it competes for CPU like any other process.

    ./depai bench view [--runs 2] [--duration 60] [-- more depai launch arguments]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RTF = re.compile(r"simulated ([\d.]+) s in ([\d.]+) s wall \(real-time factor ([\d.]+)\)")
PERC = re.compile(r"\[(\S+)/perception\].*processed (\d+) sweeps \(mean ([\d.]+) ms\)")


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def view_cpu(root_pid: int) -> tuple[float, float] | None:
    """(CPU seconds, wall seconds) of the view node among the launch's processes."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        for p in psutil.Process(root_pid).children(recursive=True):
            if "depai_nodes.view.node" in " ".join(p.cmdline()):
                t = p.cpu_times()
                return t.user + t.system, time.time() - p.create_time()
    except psutil.Error:
        return None
    return None


def run(view: bool, duration: float, domain: int, extra: list[str]) -> dict:
    command = [str(REPO / "depai"), "launch", "--duration", f"{duration:g}", *(["--view"] if view else []), *extra]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
                            start_new_session=True)
    lines: list[str] = []
    cpu = None
    deadline = time.monotonic() + duration + 240
    import threading

    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            if view and time.monotonic() - start < duration + 60:
                cpu = view_cpu(proc.pid) or cpu
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        reader.join(timeout=10)
    text = "".join(lines)
    m = RTF.search(text)
    perception = {robot: float(ms) for robot, _, ms in PERC.findall(text)}
    sweeps = sum(int(n) for _, n, _ in PERC.findall(text))
    if not m:
        tail = "\n".join(text.splitlines()[-15:])
        raise SystemExit(f"bench view: no real-time factor line in the launch output (exit {proc.returncode}):\n{tail}")
    return {"view": view, "rtf": float(m.group(3)), "sim_s": float(m.group(1)), "wall_s": float(m.group(2)),
            "perception_ms": perception, "sweeps": sweeps, "view_cpu": (cpu[0] / cpu[1]) if cpu and cpu[1] > 0 else math.nan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench view", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per configuration")
    parser.add_argument("--duration", type=float, default=60.0, help="s of wall time per run")
    parser.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID of the runs (default: a free one)")
    parser.add_argument("launch_args", nargs="*", help="more `depai launch` arguments (after --)")
    args = parser.parse_args(argv)
    from depai_nodes.common.domains import acquire_domain

    args.domain, _lock = acquire_domain(args.domain)  # held for every run: no other DePAI run hears ours
    results = []
    for i in range(args.runs):
        for view in (False, True):
            r = run(view, args.duration, args.domain, args.launch_args)
            results.append(r)
            ms = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["perception_ms"].items()))
            print(f"run {len(results)}: {'with' if view else 'without'} --view: real-time factor {r['rtf']:.2f} "
                  f"({r['sim_s']:.1f} s simulated in {r['wall_s']:.1f} s), perception mean ms: {ms or '-'}"
                  + (f", view CPU {r['view_cpu']:.0%}" if view else ""), flush=True)
    print()
    print(f"live view cost, {args.runs} run(s) of {args.duration:g} s each, {os.cpu_count()} CPU(s)"
          f"{' ' + ' '.join(args.launch_args) if args.launch_args else ''}")
    print(f"{'':<16} {'real-time factor':>22} {'perception mean ms':>24} {'view CPU':>10}")
    print(f"{'':<16} {'p50':>10} {'p99':>11} {'p50':>11} {'p99':>12} {'p50':>10}")
    for view in (False, True):
        rs = [r for r in results if r["view"] == view]
        rtf = [r["rtf"] for r in rs]
        ms = [v for r in rs for v in r["perception_ms"].values()]
        cpu = [r["view_cpu"] for r in rs if not math.isnan(r["view_cpu"])]
        cpu_text = f"{pct(cpu, 50):.0%}" if cpu else "-"
        print(f"{'with --view' if view else 'without':<16} {pct(rtf, 50):>10.2f} {pct(rtf, 99):>11.2f} "
              f"{pct(ms, 50):>11.1f} {pct(ms, 99):>12.1f} {cpu_text:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
