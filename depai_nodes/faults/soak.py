"""Faults injected at random into a running stack, the invariants checked over the whole run.

``run_soak`` brings the stack up with `depai launch` (a file policy, one or more robots
patrolling), then, until ``duration_s`` has passed, picks a fault at random every few seconds,
injects it into the real processes, waits for the system to recover (the robot moving again
under a valid policy, or the right thing having happened) and records everything. At the end
the trace is checked against every invariant of ``core.check_all`` and a table is returned:
per fault kind, how many were injected, how many recovered, and the violations (which must
be zero).

Fault kinds:

===================  ==========================================================================
kill:<node>          ``kill -9`` of that node's process; the supervisor respawns it
freeze:dao_listener  ``SIGSTOP`` of the listener for longer than the policy timeout, then ``SIGCONT``
policy:empty         the policy file emptied (what a failed non-atomic save leaves), then restored
policy:truncated     the policy file cut in half, then restored
policy:duplicate     a key given twice, then restored
pause                a valid edit that pauses the fleet, held a few seconds, then lifted
===================  ==========================================================================
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .core import Trace, Violation, check_all
from .harness import Recorder, StackRun, wait_until

__all__ = ["SoakConfig", "SoakResult", "run_soak", "format_table", "LIGHT_SIM"]

# A lighter LiDAR than the shipped 128 x 1024 so a 2-core machine runs several robots plus the
# faults' restarts in real time; everything else is the shipped stack.
LIGHT_SIM = ["--set", "simulator.lidar_beams=32", "--set", "simulator.lidar_horizontal=512"]


@dataclass
class SoakConfig:
    duration_s: float = 120.0
    robots: list[str] = field(default_factory=lambda: ["robot1"])
    seed: int = 1
    gap_s: tuple[float, float] = (4.0, 8.0)       # pause between a recovery and the next fault
    recover_timeout_s: float = 45.0
    kinds: list[str] | None = None                 # default: all
    sequence: list[str] | None = None              # inject exactly these, in order (duration ignored)
    extra_args: list[str] = field(default_factory=list)
    # Time a robot gets, beyond the controller's policy_timeout, to be standing still: a control
    # period, braking (0.8 m/s at 1.5 m/s^2: 0.55 s) and scheduling slack on a loaded 2-core box.
    stop_margin: float = 2.5


@dataclass
class KindCount:
    injected: int = 0
    recovered: int = 0
    times: list[float] = field(default_factory=list)


@dataclass
class SoakResult:
    counts: dict[str, KindCount]
    violations: list[Violation]
    trace: Trace
    log_tail: str
    policy_timeout: float
    sim_seconds: float

    @property
    def ok(self) -> bool:
        return not self.violations and all(c.recovered == c.injected for c in self.counts.values())


def _kinds(robots: list[str]) -> list[str]:
    per_robot = [f"kill:{r}/{n}" for r in robots[:1] for n in ("controller", "planner", "perception", "agent")]
    return ["kill:dao_listener", "freeze:dao_listener", "kill:simulator", "kill:status", "policy:empty", "policy:truncated",
            "policy:duplicate", "pause", *per_robot]


def _edit_policy(path: Path, kind: str, good: str) -> None:
    if kind == "policy:empty":
        text = ""
    elif kind == "policy:truncated":
        text = good[: len(good) // 2]
    elif kind == "policy:duplicate":
        text = "max_speed: 5.0\n" + good
    elif kind == "pause":
        text = good.replace("paused: false", "paused: true")
    else:
        text = good
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # each edit lands whole; the listener sees one version or the other


def run_soak(config: SoakConfig, workdir: Path, domain: int, *, stack: Path, policy_template: Path,
             on_event=None) -> SoakResult:
    """Run the soak; ``on_event(text)`` hears progress (one line per fault)."""
    say = on_event or (lambda _text: None)
    rng = random.Random(config.seed)
    workdir.mkdir(parents=True, exist_ok=True)
    policy = workdir / "policy.yaml"
    good = policy_template.read_text()
    policy.write_text(good)
    args = ["--stack", str(stack), "--robots", ",".join(config.robots), "--no-chain", *LIGHT_SIM,
            "--set", f"dao_listener.policy_file={policy}", "--set", "dao_listener.watch_period=0.2",
            *config.extra_args]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    recorder = Recorder(domain, config.robots)
    run = StackRun(workdir / "launch.log", args=args, env=env)
    counts: dict[str, KindCount] = {}
    kinds = config.kinds or _kinds(config.robots)
    lead = config.robots[0]
    policy_timeout = controller_param(stack, "policy_timeout", config.extra_args)
    sim_start = None
    try:
        try:
            wait_until(lambda: recorder.moving(lead), 120, what=f"{lead} driving")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; the launch log ends:\n{run.log()[-4000:]}") from None
        sim_start = time.monotonic()
        sim0 = recorder.sim_time
        end = time.monotonic() + config.duration_s
        planned = list(config.sequence) if config.sequence is not None else None
        while (planned is None and time.monotonic() < end) or planned:
            kind = planned.pop(0) if planned is not None else rng.choice(kinds)
            c = counts.setdefault(kind, KindCount())
            c.injected += 1
            t0 = time.monotonic()
            say(f"t={t0 - sim_start:6.1f}s inject {kind}")
            try:
                _inject(kind, run, recorder, policy, good, lead, policy_timeout, rng)
                wait_until(lambda: recorder.moving(lead) and run.process.poll() is None, config.recover_timeout_s,
                           what=f"{lead} driving again after {kind}")
                c.recovered += 1
                c.times.append(time.monotonic() - t0)
            except TimeoutError as e:
                say(f"  not recovered: {e}")
                policy.write_text(good)
            time.sleep(rng.uniform(*config.gap_s))
    finally:
        trace = recorder.snapshot()
        code = run.stop()
        recorder.close()
    radius = 0.3
    violations = check_all(trace, policy_timeout=policy_timeout, robot_radius=radius, stop_margin=config.stop_margin)
    if code != 0:
        violations.append(Violation("clean-exit", time.monotonic(), "-", f"depai launch exited with {code}"))
    sim = (recorder.sim_time - sim0) if sim_start else 0.0
    return SoakResult(counts, violations, trace, run.log()[-3000:], policy_timeout, sim)


def controller_param(stack: Path, name: str, extra_args: list[str] = ()) -> float:
    """A controller parameter as `depai launch` would resolve it: a --set in ``extra_args``, the
    stack file, or the parameter model's default."""
    import yaml

    from depai_nodes.bringup.stack import load_stack
    from depai_nodes.controller.node import ControllerParams

    args = list(extra_args)
    for i, a in enumerate(args[:-1]):
        if a == "--set" and args[i + 1].startswith(f"controller.{name}="):
            return float(yaml.safe_load(args[i + 1].split("=", 1)[1]))
    for node in load_stack(stack).nodes:
        if node.name == "controller" and name in node.parameters:
            return float(node.parameters[name])
    return float(ControllerParams.model_fields[name].default)


def _inject(kind: str, run: StackRun, rec: Recorder, policy: Path, good: str, lead: str, policy_timeout: float,
            rng: random.Random) -> None:
    what, _, target = kind.partition(":")
    if what == "kill":
        rec.fault("kill", target, unbacked=(target == "dao_listener"))
        old = run.signal(target, signal.SIGKILL)
        run.restarted(target, old, timeout=40)
    elif what == "freeze":
        f = rec.fault("freeze", target, unbacked=True)
        run.signal(target, signal.SIGSTOP)
        time.sleep(policy_timeout + 3.0 + rng.uniform(1.5, 3.0))  # past the stop margin: the robot must stand
        # the robot must be standing still by now
        run.signal(target, signal.SIGCONT)
        f.recovered_at = time.monotonic()
    elif what == "policy":
        rec.fault("corrupt-policy", target, unbacked=False)
        _edit_policy(policy, kind, good)
        time.sleep(rng.uniform(1.0, 3.0))
        _edit_policy(policy, "restore", good)
    elif what == "pause":
        rec.fault("pause", "policy", unbacked=False)
        before = time.monotonic()
        _edit_policy(policy, "pause", good)
        wait_until(lambda: any(p.paused for p in rec.policies_since(before)), 10, what="the pause published")
        time.sleep(rng.uniform(2.0, 4.0))
        _edit_policy(policy, "restore", good)
    else:
        raise ValueError(f"unknown fault kind {kind!r}")


def format_table(result: SoakResult) -> str:
    rows = [("fault", "injected", "recovered", "recovery p50 s", "max s")]
    for kind in sorted(result.counts):
        c = result.counts[kind]
        ts = sorted(c.times)
        p50 = f"{ts[len(ts) // 2]:.1f}" if ts else "-"
        mx = f"{ts[-1]:.1f}" if ts else "-"
        rows.append((kind, str(c.injected), str(c.recovered), p50, mx))
    total_i = sum(c.injected for c in result.counts.values())
    total_r = sum(c.recovered for c in result.counts.values())
    rows.append(("total", str(total_i), str(total_r), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    by_inv: dict[str, int] = {}
    for v in result.violations:
        by_inv[v.invariant] = by_inv.get(v.invariant, 0) + 1
    lines.append("")
    lines.append(f"run: {result.sim_seconds:.0f} simulated s with faults, {len(result.trace.odom)} odometry samples, "
                 f"{len(result.trace.policy)} policy messages, {len(result.trace.graph)} process-table samples")
    inv = ["no-motion-without-policy", "pause", "speed-limit", "keep-out", "duplicate-node", "clean-exit"]
    lines.append("violations: " + ", ".join(f"{k}={by_inv.get(k, 0)}" for k in inv))
    for v in result.violations[:20]:
        lines.append(f"  {v}")
    return "\n".join(lines)
