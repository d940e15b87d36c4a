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

Chain mode (``SoakConfig(chain=True)``, `depai soak --chain`): the shipped stack on a fresh local
chain of its own in the run's folder (``--fresh --chain-port 0``, ``--vote-at 0``: no DAO round
changes the policy under the faults; ``DEPAI_CHAIN_CONFIG`` / ``DEPAI_STATE_DIR`` there, never
the user's .depai), the robots in market mode taking the requester's tasks. The policy comes
from the chain, so the file faults do not apply; added are ``kill:<robot>/wallet``,
``kill:<robot>/telemetry``, ``kill:<robot>/identity``, ``kill:requester/requester``,
``kill:<robot>/agent`` (market mode) and ``kill:dao_listener`` (chain source), and
``kill:chain``: anvil SIGKILLed, down ``chain_down_s``, then brought back as a user would
(`depai chain up --config` the launch's config: restored from the state file anvil saved every
second); no node may exit meanwhile (they ride through it). Recovery per kind is in
``_recovered``; at the end, after a drain window, the chain's state is read and checked
(``core.check_chain``: no payment twice, no request executed twice, no batch lost).
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .core import TaskEvent, Trace, Violation, check_all, check_chain
from .harness import LocalChain, Recorder, StackRun, read_sidecars, wait_until

__all__ = ["SoakConfig", "SoakResult", "run_soak", "format_table", "LIGHT_SIM", "CHAIN_SIM", "REQUESTER"]

# A lighter LiDAR than the shipped 128 x 1024 so a 2-core machine runs several robots plus the
# faults' restarts in real time; everything else is the shipped stack.
LIGHT_SIM = ["--set", "simulator.lidar_beams=32", "--set", "simulator.lidar_horizontal=512"]
# Chain mode: batches sealed every 4 s (an arrival is anchored, and a task completed, sooner) and a
# task posted every 6.5 s (the requester wallet's default limit is 10 posts a minute), so the
# economy moves within a short run.
CHAIN_SIM = ["--set", "telemetry.batch_period=4.0", "--set", "requester.period=6.5", "--set", "requester.start_delay=2.0"]
REQUESTER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # the requester's account: anvil's public demo key #9


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
    chain: bool = False            # the stack on a fresh local chain of its own, robots in market mode
    chain_down_s: float = 14.0     # kill:chain: how long anvil stays dead (past source_timeout + policy_timeout)
    drain_s: float = 60.0          # chain mode, at the end: time for every sealed batch to get anchored


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
    chain: dict = field(default_factory=dict)   # chain mode: what was read at the end (tasks, batches)

    @property
    def ok(self) -> bool:
        return not self.violations and all(c.recovered == c.injected for c in self.counts.values())


def _kinds(robots: list[str], chain: bool = False) -> list[str]:
    per_robot = [f"kill:{r}/{n}" for r in robots[:1] for n in ("controller", "planner", "perception", "agent")]
    if chain:
        per_robot += [f"kill:{r}/{n}" for r in robots[:1] for n in ("wallet", "telemetry", "identity")]
        return ["kill:dao_listener", "freeze:dao_listener", "kill:simulator", "kill:status", "kill:requester/requester",
                "kill:chain", *per_robot]
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
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    chain = None
    if config.chain:
        env.update(DEPAI_CHAIN_CONFIG=str(workdir / "chain.json"), DEPAI_STATE_DIR=str(workdir / "state"))
        args = ["--stack", str(stack), "--robots", ",".join(config.robots), "--fresh", "--chain-port", "0", "--vote-at", "0",
                *LIGHT_SIM, *CHAIN_SIM, "--set", f"telemetry.output_dir={workdir / 'telemetry'}/$(robot)", *config.extra_args]
        chain = LocalChain(workdir / "chain.json", env)
    else:
        args = ["--stack", str(stack), "--robots", ",".join(config.robots), "--no-chain", *LIGHT_SIM,
                "--set", f"dao_listener.policy_file={policy}", "--set", "dao_listener.watch_period=0.2",
                *config.extra_args]
    recorder = Recorder(domain, config.robots)
    run = StackRun(workdir / "launch.log", args=args, env=env)
    counts: dict[str, KindCount] = {}
    kinds = config.kinds or _kinds(config.robots, config.chain)
    lead = config.robots[0]
    policy_timeout = controller_param(stack, "policy_timeout", config.extra_args)
    sim_start = None
    extra: list[Violation] = []
    chain_state: dict = {}
    try:
        try:
            wait_until(lambda: recorder.moving(lead) and run.process.poll() is None, 180 if config.chain else 120,
                       what=f"{lead} driving")
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
                since = len(run.log())
                back = _inject(kind, run, recorder, policy, good, lead, policy_timeout, rng, chain, config, extra)
                wait_until(lambda: _recovered(kind, run, recorder, lead, since, back, config.chain) and run.process.poll() is None,
                           config.recover_timeout_s, what=f"{lead} driving again after {kind}" + (
                               f" ({_RECOVERY.get(kind.split(':', 1)[-1].split('/')[-1], '')})" if config.chain else ""))
                c.recovered += 1
                c.times.append(time.monotonic() - t0)
                note = recorder.trace.faults[-1].note if recorder.trace.faults else ""
                say(f"  recovered in {c.times[-1]:.1f} s" + (f"; {note}" if note else ""))
            except (TimeoutError, RuntimeError) as e:
                say(f"  not recovered: {e}")
                policy.write_text(good)
            time.sleep(rng.uniform(*config.gap_s))
        if chain is not None:
            wall = time.time() - time.monotonic()  # monotonic -> unix (the local chain's block time is unix time)
            last = max((f.t for f in recorder.snapshot().faults), default=sim_start) + wall
            chain_state = _drain_and_read(chain, workdir / "telemetry", config, say, last)
            extra += chain_state.pop("violations")
            bt = chain_state["block_time"]
            chain_state["last_fault_unix"] = last
            chain_state["paid_after_faults"] = sorted(
                {e.task_id for e in chain_state["events"] if e.event == "TaskPaid" and bt.get(e.block, 0) >= last})
            chain_state["completed_after_faults"] = sorted(
                {e.task_id for e in chain_state["events"] if e.event == "TaskCompleted" and bt.get(e.block, 0) >= last})
    finally:
        trace = recorder.snapshot()
        code = run.stop()
        recorder.close()
        if chain is not None:
            chain.stop_restored()
    radius = 0.3
    violations = check_all(trace, policy_timeout=policy_timeout, robot_radius=radius, stop_margin=config.stop_margin) + extra
    if code != 0:
        violations.append(Violation("clean-exit", time.monotonic(), "-", f"depai launch exited with {code}"))
    sim = (recorder.sim_time - sim0) if sim_start else 0.0
    return SoakResult(counts, violations, trace, run.log()[-3000:], policy_timeout, sim, chain_state)


# What "recovered" means for a chain-facing node (chain mode), besides the lead robot driving again.
_RECOVERY = {
    "wallet": "the manager reports it active again and it anchors a batch",
    "telemetry": "the manager reports it active again and a batch of it is anchored",
    "identity": "the manager reports it active again",
    "requester": "it posts a task again",
    "agent": "it accepts, resumes or completes a task again",
    "dao_listener": "the manager reports it active again and a policy is published",
    "chain": "the restored chain anchors a batch and a task is accepted or completed on it, the policy is published again",
}


def _recovered(kind: str, run: StackRun, rec: Recorder, lead: str, since: int, back: float, chain_mode: bool) -> bool:
    """Has the system recovered from ``kind``? Always: the lead robot drives again; for a node of
    the chain side also its own sign of life after ``back`` (the restart), found in the launch log
    from offset ``since`` (the injection) or in the recorded policy stream."""
    import re

    if not rec.moving(lead):
        return False
    what, _, target = kind.partition(":")
    log = run.log()[since:]
    ns, _, name = target.rpartition("/")

    def said(pattern: str) -> bool:
        return re.search(pattern, log, re.M) is not None

    if what == "kill" and name in ("wallet", "telemetry", "identity") and ns and ns != "requester":
        if not said(rf"^\[lifecycle_manager\].*/{ns}/{name}: active"):
            return False
        return name == "identity" or said(rf"^\[{ns}/wallet\].*anchored batch")
    if target == "requester/requester":
        return said(r"^\[requester/requester\].*posted task #\d+")
    if what == "kill" and name == "agent" and chain_mode:
        return said(rf"^\[{ns}/agent\].*(accepted|resuming|completed) task \d+")
    if target == "dao_listener" and what == "kill" and chain_mode:
        return said(r"^\[lifecycle_manager\].*/dao_listener: active") and bool(rec.policies_since(back))
    if target == "chain":
        return (said(rf"^\[{lead}/wallet\].*anchored batch") and said(rf"^\[{lead}/agent\].*(accepted|completed) task \d+")
                and bool(rec.policies_since(back)))
    return True


def _drain_and_read(chain: LocalChain, telemetry: Path, config: SoakConfig, say, last_fault_unix: float) -> dict:
    """After the faults: wait (at most ``drain_s``) until every batch sealed before now is
    anchored and a task was completed after the last fault (the economy goes on), then read
    the chain and the folders and check the chain-state invariants."""
    start_ns = time.time_ns()
    dirs = [telemetry / r for r in config.robots]
    client = chain.client()
    market = client.contract("TaskMarket")
    seen = {"completed": False}

    def drained() -> bool:
        if not seen["completed"]:
            done = market.events("TaskCompleted", client.config.deploy_block)
            seen["completed"] = any(int(client.get_block(e["block_number"])["timestamp"], 16) >= last_fault_unix for e in done)
        return seen["completed"] and all(b.state == "anchored" for d in dirs for b in read_sidecars(d)
                                         if b.state != "recording" and b.sealed_ns <= start_ns)
    try:
        wait_until(drained, config.drain_s, interval=1.0, what="a task completed after the last fault and every sealed batch anchored")
    except TimeoutError as e:
        say(f"  drain: {e}")
    now_ns = time.time_ns()
    batches = [b for d in dirs for b in read_sidecars(d)]
    events = chain.task_events(client)
    records = chain.batch_records(batches, client)
    ledger = _ledger_posts(Path(chain.env["DEPAI_STATE_DIR"]), REQUESTER)
    executions = [("requester wallet posting", chain.postings(REQUESTER, client), ledger)]
    violations = check_chain(events, batches, records, now_ns=now_ns, grace_s=(now_ns - start_ns) / 1e9 + 1.0,
                             executions=executions)
    block_time = {}
    for e in events:
        if e.block not in block_time:
            block_time[e.block] = int(client.get_block(e.block)["timestamp"], 16)
    return {"violations": violations, "events": events, "batches": batches, "block_time": block_time,
            "anchored": sum(1 for b in batches if b.state == "anchored"), "sealed": sum(1 for b in batches if b.state != "recording")}


def _ledger_posts(state_dir: Path, account: str) -> dict[str, str]:
    """request id -> tx hash of every task posting the wallet's ledger (state file) records."""
    import json

    try:
        raw = json.loads((state_dir / f"wallet-{account.lower()}.json").read_text())
    except (OSError, ValueError):
        return {}
    requests = raw.get("requests") or {}
    return {rid: str(r.get("tx_hash", "")) for rid, r in requests.items() if isinstance(r, dict) and r.get("kind") == "post"}


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
            rng: random.Random, chain: LocalChain | None = None, config: SoakConfig | None = None,
            violations: list[Violation] | None = None) -> float:
    """Inject ``kind``; returns when the system may start recovering (the restart, the restore)."""
    what, _, target = kind.partition(":")
    if kind == "kill:chain":
        if chain is None:
            raise ValueError("kill:chain needs chain mode (SoakConfig(chain=True))")
        before = run.pids()
        f = rec.fault("chain-kill", "chain", unbacked=False)
        old = chain.kill()
        time.sleep(config.chain_down_s if config else 14.0)
        t_up = time.monotonic()
        done = chain.restore(run.log_path.with_name("chain-restore.log"))
        f.note = (f"anvil {old} SIGKILLed, dead {t_up - f.t:.1f} s, `depai chain up` restored it in {time.monotonic() - t_up:.1f} s"
                  f" (anvil {chain.pid()})")
        if done.returncode != 0:
            raise RuntimeError(f"`depai chain up` could not restore the chain (exit {done.returncode}; see chain-restore.log)")
        # the nodes rode through the outage: none exited and was started again meanwhile
        respawned = sorted(label for label, pid in run.pids().items() if before.get(label) != pid)
        if respawned and violations is not None:
            violations.append(Violation("ride-through", time.monotonic(), "-",
                                        f"node(s) restarted while the chain was down (anvil {old}): {', '.join(respawned)}"))
        return time.monotonic()
    if what == "kill":
        rec.fault("kill", target, unbacked=(target == "dao_listener"))
        old = run.signal(target, signal.SIGKILL)
        run.restarted(target, old, timeout=40)
        return time.monotonic()
    if what == "freeze":
        f = rec.fault("freeze", target, unbacked=True)
        run.signal(target, signal.SIGSTOP)
        time.sleep(policy_timeout + 3.0 + rng.uniform(1.5, 3.0))  # past the stop margin: the robot must stand
        # the robot must be standing still by now
        run.signal(target, signal.SIGCONT)
        f.recovered_at = time.monotonic()
        return f.recovered_at
    if what == "policy":
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
    return time.monotonic()


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
    if result.chain:
        c = result.chain
        n = {k: len({e.task_id for e in c["events"] if e.event == k})
             for k in ("TaskPosted", "TaskAccepted", "TaskCompleted", "TaskPaid", "TaskRefunded")}
        lines.append(f"chain: tasks posted {n['TaskPosted']}, accepted {n['TaskAccepted']}, completed {n['TaskCompleted']}, "
                     f"paid {n['TaskPaid']}, refunded {n['TaskRefunded']}; completed and paid after the last fault: "
                     f"{len(set(c['completed_after_faults']) & set(c['paid_after_faults']))}; "
                     f"batches sealed {c['sealed']}, anchored {c['anchored']} (checked against DataRegistry)")
        inv += ["payment-once", "request-once", "batch-lost", "ride-through"]
    lines.append("violations: " + ", ".join(f"{k}={by_inv.get(k, 0)}" for k in inv))
    for v in result.violations[:20]:
        lines.append(f"  {v}")
    return "\n".join(lines)
