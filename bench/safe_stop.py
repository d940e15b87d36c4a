"""Time to a safe stop after each fault: fault injected -> the robot standing still.

The real stack (`depai launch`, the shipped stack, one robot patrolling the warehouse) with the
fault injected into its real processes while the robot drives; the stop is read from the
simulator's ground-truth odometry (speed below 0.05 m/s and staying there for 1 s). Faults:

  policy lost       the dao_listener frozen (SIGSTOP): its heartbeat stops, nothing says why
  listener killed   kill -9 of the dao_listener, respawned only after 8 s (longer than the
                    controller's policy_timeout, so the robot must stop on its own)
  chain killed      kill -9 of the local chain (anvil) under the chain-sourced listener while
                    the robot drives to a task: the listener cannot confirm the policy for
                    source_timeout and stops heartbeating (a fresh chain per injection)
  explicit pause    the reference: a valid policy edit that pauses the fleet (the e-stop path)

Side by side, the same faults with the controller's policy watchdog effectively off
(policy_timeout = 600 s, what a controller without one does): the robot drives on.

    ./depai bench safe_stop [--quick] [-n N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depai_nodes.faults.harness import Recorder, StackRun, wait_until  # noqa: E402
from depai_nodes.faults.soak import LIGHT_SIM, controller_param  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ROBOT = "robot1"
OBSERVE_S = 20.0        # how long a fault is watched for a stop (chain killed: source_timeout + policy_timeout)
VOTE_OFF = ["--vote-at", "0"]  # no DAO round mid-run: it would change the speed limit under the measurement


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def stack_with_slow_listener_respawn(path: Path) -> Path:
    data = yaml.safe_load((REPO / "config" / "stack.yaml").read_text())
    for node in data["nodes"]:
        if node["name"] == "dao_listener":
            node["respawn_delay"] = 8.0
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def time_to_stop(rec: Recorder, t0: float, observe_s: float) -> float | None:
    """Seconds from t0 to the robot standing still for 1 s, or None if it never did within observe_s."""
    deadline = t0 + observe_s
    while time.monotonic() < deadline:
        s = rec.stopped_since(ROBOT, t0)
        if s is not None and time.monotonic() - s >= 1.0:
            return s - t0
        time.sleep(0.05)
    return None


def inject(kind: str, run: StackRun, policy: Path, good: str) -> callable:
    """Inject; return the function that undoes it."""
    if kind == "policy lost":
        run.signal("dao_listener", signal.SIGSTOP)
        return lambda: run.signal("dao_listener", signal.SIGCONT)
    if kind == "listener killed":
        old = run.signal("dao_listener", signal.SIGKILL)
        return lambda: run.restarted("dao_listener", old, timeout=40)
    if kind == "explicit pause":
        tmp = policy.with_suffix(".tmp")
        tmp.write_text(good.replace("paused: false", "paused: true"))
        os.replace(tmp, policy)

        def undo():
            tmp.write_text(good)
            os.replace(tmp, policy)
        return undo
    raise ValueError(kind)


def run_series(kinds: list[str], n: int, policy_timeout: float | None, domain: int, workdir: Path) -> dict[str, list]:
    policy = workdir / "policy.yaml"
    good = (REPO / "config" / "policy.yaml").read_text()
    policy.write_text(good)
    stack = stack_with_slow_listener_respawn(workdir / "stack.yaml")
    args = ["--stack", str(stack), "--robots", ROBOT, "--no-chain", *LIGHT_SIM, "--set", f"dao_listener.policy_file={policy}",
            "--set", "dao_listener.watch_period=0.2"]
    if policy_timeout is not None:
        args += ["--set", f"controller.policy_timeout={policy_timeout}"]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    rec = Recorder(domain, [ROBOT])
    run = StackRun(workdir / f"launch-{policy_timeout}.log", args=args, env=env)
    out: dict[str, list] = {k: [] for k in kinds}
    try:
        wait_until(lambda: rec.moving(ROBOT), 120, what="robot driving")
        for i in range(n):
            for kind in kinds:
                wait_until(lambda: rec.moving(ROBOT, 0.3), 60, what=f"robot driving before '{kind}'")
                time.sleep(0.5)
                t0 = time.monotonic()
                undo = inject(kind, run, policy, good)
                out[kind].append(time_to_stop(rec, t0, OBSERVE_S if policy_timeout is None else 10.0))
                undo()
                print(f"  {kind:<16} #{i + 1}: {out[kind][-1] if out[kind][-1] is not None else 'no stop'}", flush=True)
    finally:
        run.stop()
        rec.close()
    return out


def anvil_pid(config: Path) -> int:
    import json

    return int(json.loads(config.with_name(config.name + ".anvil.pid").read_text())["pid"])


def run_chain_series(n: int, policy_timeout: float | None, domain: int, workdir: Path) -> list:
    """The chain-sourced stack (a fresh local chain each time, in `workdir`, never the user's
    .depai): a robot on a task, then kill -9 of anvil. The chain is gone for good, so every
    injection is a new launch."""
    out = []
    for i in range(n):
        run_dir = workdir / f"chain-{policy_timeout}-{i}"
        run_dir.mkdir(parents=True)
        config = run_dir / "chain.local.json"
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                   DEPAI_CHAIN_CONFIG=str(config), DEPAI_STATE_DIR=str(run_dir / "state"))
        args = ["--robots", ROBOT, "--fresh", "--chain-port", "0", *LIGHT_SIM, *VOTE_OFF]
        if policy_timeout is not None:
            args += ["--set", f"controller.policy_timeout={policy_timeout}"]
        rec = Recorder(domain, [ROBOT])
        run = StackRun(run_dir / "launch.log", args=args, env=env)
        try:
            wait_until(lambda: rec.moving(ROBOT, 0.3), 180, what="robot driving to a task")
            time.sleep(0.5)
            t0 = time.monotonic()
            os.kill(anvil_pid(config), signal.SIGKILL)
            out.append(time_to_stop(rec, t0, OBSERVE_S if policy_timeout is None else 10.0))
            print(f"  {'chain killed':<16} #{i + 1}: {out[-1] if out[-1] is not None else 'no stop'}", flush=True)
        finally:
            run.stop()
            rec.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10, help="injections per fault (default 10)")
    ap.add_argument("--quick", action="store_true", help="3 injections per fault, 1 for the baseline")
    a = ap.parse_args()
    n = 3 if a.quick else a.n
    n_base = 1 if a.quick else 2
    from depai_nodes.common.domains import acquire_domain

    wanted = os.environ.get("ROS_DOMAIN_ID")
    domain, _lock = acquire_domain(int(wanted) if wanted else None)  # held for the whole bench
    kinds = ["policy lost", "listener killed", "explicit pause"]
    timeout = controller_param(REPO / "config" / "stack.yaml", "policy_timeout")
    with tempfile.TemporaryDirectory(prefix="depai-safe-stop-") as tmp:
        print(f"ours: controller policy_timeout {timeout:g} s, {n} injections per fault", flush=True)
        ours = run_series(kinds, n, None, domain, Path(tmp))
        print(f"baseline: no policy watchdog (policy_timeout 600 s), {n_base} injections per fault", flush=True)
        base = run_series(kinds[:2], n_base, 600.0, domain, Path(tmp))
        n_chain = 1 if a.quick else max(1, n // 2)
        print(f"chain killed: {n_chain} launch(es) with a fresh local chain each, then the same without the watchdog", flush=True)
        ours["chain killed"] = run_chain_series(n_chain, None, domain, Path(tmp))
        base["chain killed"] = run_chain_series(1, 600.0, domain, Path(tmp))
        kinds = kinds[:2] + ["chain killed"] + kinds[2:]

    def cell(values):
        done = [v for v in values if v is not None]
        if not done:
            return "never", "never", f"0/{len(values)}"
        return f"{pct(done, 50):.2f}", f"{pct(done, 99):.2f}", f"{len(done)}/{len(values)}"

    rows = [("fault", "ours p50 s", "ours p99 s", "stopped", "no watchdog p50", "no watchdog stopped")]
    for kind in kinds:
        o50, o99, ostop = cell(ours[kind])
        b = base.get(kind)
        b50, _, bstop = cell(b) if b else ("n/a", "", "n/a")
        rows.append((kind, o50, o99, ostop, b50, bstop))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\n(stop = speed < 0.05 m/s held for 1 s, from the simulator's odometry; a fault watched for "
          f"{OBSERVE_S:g} s; the no-watchdog column watched for 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
