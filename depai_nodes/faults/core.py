"""Invariants of a run, checked from what was recorded: ROS-free, so they are unit-tested alone.

A fault-injection run (``harness.py``) records a ``Trace``: every robot's odometry (the
simulator's ground truth), every policy message seen on /fleet/policy, the node graph sampled
periodically, and the timeline of injected faults with their recoveries. The checks below turn
the safety invariants of the fleet into assertions over that trace:

* **no motion without a valid policy** — while no live source backs the policy (the listener
  dead or frozen, its source unreachable) a robot may coast only for ``policy_timeout`` plus a
  stopping margin; after that its speed must be (near) zero until a policy is published again;
* **a pause holds** — from a pause's arrival (plus the stopping margin) until it is lifted;
* **the speed limit holds** — never faster than the policy in force (after the margin);
* **no footprint in a keep-out zone** — the robot's disc never overlaps a zone in force;
* **no duplicate node** — no fully qualified node name twice in any graph sample;
* **no motion on a stale policy** — the policy stream itself: after a gap in it longer than
  ``policy_timeout`` (a source whose heartbeat stopped: a dead chain, a frozen listener) no robot
  moves later than ``policy_timeout`` + the margin after the last message, until the next one.

And over the chain's state and the telemetry folders, read at the end of a chain-backed run:

* **no payment executed twice** — each TaskMarket task paid (``TaskPaid``) and settled
  (``TaskCompleted`` / ``TaskRefunded``) at most once, never both; each wallet request id (a
  transfer, a task posting) executed at most once: every such transaction on chain is the one
  the wallet's ledger records for exactly one request id;
* **no batch lost** — after a drain window every sealed batch's sidecar says ``anchored`` and
  the DataRegistry record under its machine and batch id has the sidecar's root and count (a
  sidecar saying anchored whose record is missing on chain is a loss).

Each check returns a list of ``Violation``; an empty list means the invariant held.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from depai_nodes.common.polygon import signed_distance as polygon_signed_distance

__all__ = ["OdomSample", "PolicySample", "Fault", "Trace", "Violation", "Window",
           "disc_overlaps_polygon", "signed_distance", "check_no_motion_without_policy", "check_pause", "check_speed_limit",
           "check_keep_out", "check_duplicate_nodes", "check_stale_policy", "check_all",
           "TaskEvent", "SealedBatch", "AnchoredRecord", "check_payments_once", "check_executed_once",
           "check_batches_anchored", "check_chain"]


@dataclass(frozen=True)
class OdomSample:
    t: float                      # monotonic receive time, s
    robot: str
    x: float
    y: float
    speed: float                  # |linear velocity|, m/s (ground truth from the simulator)


@dataclass(frozen=True)
class PolicySample:
    t: float
    version: int
    source: str
    paused: bool
    max_speed: float
    zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()


@dataclass
class Fault:
    """One injected fault: ``kind`` (e.g. 'kill', 'freeze', 'chain-kill', 'corrupt-policy'),
    ``target`` (a node label or 'chain'), when it was injected and, once seen, when the system
    was back (``recovered_at``); ``unbacked`` says the policy had no live source in between."""

    kind: str
    target: str
    t: float
    unbacked: bool = False
    recovered_at: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Violation:
    invariant: str
    t: float
    robot: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} at t={self.t:.2f}s ({self.robot}): {self.detail}"


@dataclass
class Trace:
    odom: list[OdomSample] = field(default_factory=list)
    policy: list[PolicySample] = field(default_factory=list)
    graph: list[tuple[float, list[str]]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    start: float = 0.0
    end: float = math.inf

    def policy_at(self, t: float) -> PolicySample | None:
        """The last policy message received at or before ``t``."""
        i = bisect.bisect_right(self._policy_times(), t)
        return self.policy[i - 1] if i else None

    def policies_between(self, t0: float, t1: float) -> list[PolicySample]:
        """Policy messages received in (t0, t1]."""
        times = self._policy_times()
        return self.policy[bisect.bisect_right(times, t0):bisect.bisect_right(times, t1)]

    def _policy_times(self) -> list[float]:
        if getattr(self, "_times_n", -1) != len(self.policy):
            self._times = [p.t for p in self.policy]
            self._times_n = len(self.policy)
        return self._times

    def unbacked_windows(self) -> list[Window]:
        """Intervals in which the policy had no live source: from a fault that cut it until the
        first policy message received after the fault (or the end of the run)."""
        out = []
        for f in self.faults:
            if not f.unbacked:
                continue
            back = next((p.t for p in self.policy if p.t > f.t), None)
            if f.recovered_at is not None:
                back = f.recovered_at if back is None else max(back, f.recovered_at)
            out.append(Window(f.t, back if back is not None else self.end))
        return out


# The recorder is one more DDS subscriber, in a process of its own: under load it hears a policy
# message (the one that ends a stale or paused window) later than the controllers do (0.85 s seen
# in an 11-minute soak on a loaded 2-core machine: the controller resumed on the new listener's
# policy, the recorder's copy came after). A window is held until this long before the recorder
# heard its end; detection inside the window is unchanged.
OBSERVATION_LAG_S = 1.5


def _speed_violations(trace: Trace, windows: list[Window], margin: float, eps: float, name: str,
                      why: str) -> list[Violation]:
    out = []
    for w in windows:
        hold = Window(w.start + margin, w.end - OBSERVATION_LAG_S if w.end < trace.end else w.end)
        if hold.end <= hold.start:
            continue
        worst: dict[str, OdomSample] = {}
        for s in trace.odom:
            if s.t in hold and s.speed > eps and (s.robot not in worst or s.speed > worst[s.robot].speed):
                worst[s.robot] = s
        for robot, s in worst.items():
            out.append(Violation(name, s.t, robot, f"moving at {s.speed:.3f} m/s {s.t - w.start:.2f} s after {why}"))
    return out


def check_no_motion_without_policy(trace: Trace, policy_timeout: float, stop_margin: float = 1.0,
                                   eps: float = 0.05) -> list[Violation]:
    """No robot moves (beyond ``eps``) later than ``policy_timeout + stop_margin`` after its
    policy lost its live source, nor before the first policy of the run."""
    windows = trace.unbacked_windows()
    first = trace.policy[0].t if trace.policy else trace.end
    windows.append(Window(trace.start, first))
    out = _speed_violations(trace, windows[:-1], policy_timeout + stop_margin, eps, "no-motion-without-policy",
                            "the policy lost its source")
    # Before any policy existed: no grace at all (nothing was ever allowed), but odometry of a robot
    # still coasting from a previous run is not ours; the first stop_margin is excused.
    out += _speed_violations(trace, windows[-1:], stop_margin, eps, "no-motion-without-policy",
                             "the start with no policy")
    return out


def _pause_windows(trace: Trace) -> list[Window]:
    out, start = [], None
    for p in trace.policy:
        if p.paused and start is None:
            start = p.t
        elif not p.paused and start is not None:
            out.append(Window(start, p.t))
            start = None
    if start is not None:
        out.append(Window(start, trace.end))
    return out


def check_pause(trace: Trace, stop_margin: float = 1.0, eps: float = 0.05) -> list[Violation]:
    return _speed_violations(trace, _pause_windows(trace), stop_margin, eps, "pause", "the fleet paused")


def check_speed_limit(trace: Trace, margin: float = 1.0, tolerance: float = 0.05) -> list[Violation]:
    """Never faster than the policy's max_speed; after a lowered limit the robot has ``margin``
    seconds to brake (the limit at t is the loosest one in force during [t - margin, t])."""
    out: dict[str, Violation] = {}
    for s in trace.odom:
        if s.robot in out:
            continue
        in_force = [p for p in (trace.policy_at(s.t - margin),) if p is not None]
        in_force += trace.policies_between(s.t - margin, s.t)
        if not in_force:
            continue
        limit = max(p.max_speed for p in in_force)
        if s.speed > limit + tolerance:
            out[s.robot] = Violation("speed-limit", s.t, s.robot, f"{s.speed:.3f} m/s above the limit {limit:.3f} m/s")
    return list(out.values())


def signed_distance(x: float, y: float, polygon) -> float:
    """Distance from (x, y) to the polygon's boundary, negative inside (common.polygon's)."""
    return float(polygon_signed_distance(polygon, np.array([x], dtype=np.float64), np.array([y], dtype=np.float64))[0])


def disc_overlaps_polygon(x: float, y: float, radius: float, polygon) -> bool:
    """Does the disc of ``radius`` around (x, y) reach into the polygon's interior?"""
    return signed_distance(x, y, polygon) < radius


def check_keep_out(trace: Trace, robot_radius: float, margin: float = 1.0, slack: float = 0.02,
                   eps: float = 0.05) -> list[Violation]:
    """No footprint inside a zone in force. A robot whose footprint already overlapped a zone when
    the zone arrived (voted over it) is excused while it holds still or moves out — never deeper;
    ``margin`` seconds after a zone's arrival it is a violation for any other robot to overlap it."""
    out: dict[tuple[str, str], Violation] = {}
    since: dict[str, float] = {}
    for p in trace.policy:
        for zid, _ in p.zones:
            since.setdefault(zid, p.t)
    excused: dict[tuple[str, str], float] = {}  # (robot, zone) -> last signed distance
    for s in trace.odom:
        p = trace.policy_at(s.t)
        if p is None:
            continue
        for zid, poly in p.zones:
            key = (s.robot, zid)
            if key in out:
                continue
            sd = signed_distance(s.x, s.y, poly)
            if sd >= robot_radius - slack:
                excused.pop(key, None)
                continue
            if key not in excused and s.t - since.get(zid, p.t) <= margin:
                excused[key] = sd  # the zone arrived over (or next to) the robot
                continue
            if key in excused:
                deeper = sd < excused[key] - 0.01
                if not deeper or s.speed <= eps:
                    excused[key] = max(sd, excused[key]) if not deeper else excused[key]
                    continue
            out[key] = Violation("keep-out", s.t, s.robot,
                                 f"footprint at ({s.x:.2f}, {s.y:.2f}) overlaps zone {zid!r} by {robot_radius - sd:.2f} m")
    return list(out.values())


def check_duplicate_nodes(trace: Trace) -> list[Violation]:
    out = []
    seen: set[str] = set()
    for t, names in trace.graph:
        counts: dict[str, int] = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        for n, c in counts.items():
            if c > 1 and n not in seen:
                seen.add(n)
                out.append(Violation("duplicate-node", t, "-", f"{n} runs {c} times"))
    return out


def check_stale_policy(trace: Trace, policy_timeout: float, stop_margin: float = 1.0,
                       eps: float = 0.05) -> list[Violation]:
    """The policy stream seen on /fleet/policy: every gap between two messages (or after the last
    one) longer than ``policy_timeout`` is time in which the controllers' policy went stale; from
    the last message + ``policy_timeout`` + ``stop_margin`` until the next message no robot may
    move. Needs no knowledge of the fault: it holds for any source whose heartbeat stopped (a
    chain that died, a listener frozen or killed) - the heartbeat is 1 s, the timeout 5 s."""
    times = [p.t for p in trace.policy] + [trace.end]
    windows = [Window(a + policy_timeout, b) for a, b in zip(times, times[1:]) if b - a > policy_timeout]
    return _speed_violations(trace, windows, stop_margin, eps, "no-motion-without-policy",
                             "the policy went stale (no message for policy_timeout)")


def check_all(trace: Trace, *, policy_timeout: float, robot_radius: float, stop_margin: float = 1.0) -> list[Violation]:
    return (check_no_motion_without_policy(trace, policy_timeout, stop_margin) + check_pause(trace, stop_margin)
            + check_speed_limit(trace, stop_margin) + check_keep_out(trace, robot_radius, stop_margin)
            + check_duplicate_nodes(trace) + check_stale_policy(trace, policy_timeout, stop_margin))


# ---------------------------------------------------------------------------- chain state

@dataclass(frozen=True)
class TaskEvent:
    """One TaskMarket event as read from the chain's logs."""

    task_id: int
    event: str            # TaskPosted | TaskAccepted | TaskCompleted | TaskPaid | TaskRefunded | TaskCancelled | ...
    block: int
    tx: str
    machine: str = ""     # the machine (accepted, completed) or payee (paid)
    amount: int = 0


_SETTLED = ("TaskCompleted", "TaskRefunded", "TaskCancelled")


def check_payments_once(events: list[TaskEvent]) -> list[Violation]:
    """Each task paid at most once and settled at most once: one ``TaskPaid``, one of
    ``TaskCompleted`` / ``TaskRefunded`` / ``TaskCancelled``, and a paid task never refunded."""
    out = []
    by_task: dict[int, list[TaskEvent]] = {}
    for e in events:
        by_task.setdefault(e.task_id, []).append(e)
    for task_id, evs in sorted(by_task.items()):
        paid = [e for e in evs if e.event == "TaskPaid"]
        settled = [e for e in evs if e.event in _SETTLED]
        refunded = [e for e in evs if e.event == "TaskRefunded"]
        if len(paid) > 1:
            out.append(Violation("payment-once", 0.0, "-", f"task {task_id} paid {len(paid)} times (blocks "
                                 f"{', '.join(str(e.block) for e in paid)}; {sum(e.amount for e in paid)} in all)"))
        if len(settled) > 1:
            out.append(Violation("payment-once", 0.0, "-", f"task {task_id} settled {len(settled)} times: "
                                 + ", ".join(f"{e.event} in block {e.block}" for e in settled)))
        if paid and refunded:
            out.append(Violation("payment-once", 0.0, "-", f"task {task_id} paid (block {paid[0].block}) and refunded "
                                 f"(block {refunded[0].block})"))
    return out


def check_executed_once(what: str, executed: dict[str, str], ledger: dict[str, str]) -> list[Violation]:
    """Each wallet request executed at most once. ``executed``: tx hash -> description of every
    such transaction the chain holds from the wallet's account (its task postings, its
    transfers); ``ledger``: request id -> the tx hash the wallet's ledger recorded for it. A
    transaction on chain that is no request's recorded one was executed beside the ledger (a
    retry sent again, a second execution); two request ids naming one transaction is a ledger
    that counts one execution twice."""
    out = []
    recorded: dict[str, list[str]] = {}
    for rid, tx in ledger.items():
        if tx:
            recorded.setdefault(tx.lower(), []).append(rid)
    for tx, desc in sorted(executed.items()):
        rids = recorded.get(tx.lower(), [])
        if not rids:
            out.append(Violation("request-once", 0.0, "-", f"{what}: {desc} (tx {tx}) is no request's in the wallet's ledger"))
        elif len(rids) > 1:
            out.append(Violation("request-once", 0.0, "-", f"{what}: tx {tx} recorded for requests {', '.join(sorted(rids))}"))
    return out


@dataclass(frozen=True)
class SealedBatch:
    """A telemetry batch folder as its sidecar (anchor.json) describes it."""

    folder: str
    state: str            # recording | pending | anchored | failed
    batch_id: str = ""
    root: str = ""
    messages: int = 0
    machine: str = ""
    sealed_ns: int = 0
    error: str = ""


@dataclass(frozen=True)
class AnchoredRecord:
    """DataRegistry's record of one batch (``getBatch``): its root and message count."""

    root: str
    count: int


def check_batches_anchored(batches: list[SealedBatch], records: dict[tuple[str, str], AnchoredRecord | None], *,
                           now_ns: int, grace_s: float) -> list[Violation]:
    """No batch lost: every batch sealed more than ``grace_s`` before ``now_ns`` is anchored, and
    the chain's record (``records[(machine.lower(), batch_id)]``, None when the registry has none)
    has its root and count. The open batch (``recording``) is not sealed yet and is skipped."""
    out = []
    for b in batches:
        if b.state == "recording":
            continue
        where = f"batch {b.batch_id or '?'} ({b.folder})"
        if b.state != "anchored":
            if b.state == "pending" and now_ns - b.sealed_ns < grace_s * 1e9:
                continue
            age = (now_ns - b.sealed_ns) / 1e9 if b.sealed_ns else float("nan")
            out.append(Violation("batch-lost", 0.0, b.machine or "-",
                                 f"{where} still {b.state} {age:.0f} s after sealing" + (f": {b.error}" if b.error else "")))
            continue
        rec = records.get((b.machine.lower(), b.batch_id.lower()))
        if rec is None:
            out.append(Violation("batch-lost", 0.0, b.machine or "-", f"{where} says anchored but DataRegistry has no record of it"))
        elif rec.root.lower() != b.root.lower() or rec.count != b.messages:
            out.append(Violation("batch-lost", 0.0, b.machine or "-", f"{where}: DataRegistry holds root {rec.root} count "
                                 f"{rec.count}, the sidecar root {b.root} count {b.messages}"))
    return out


def check_chain(events: list[TaskEvent], batches: list[SealedBatch], records: dict[tuple[str, str], AnchoredRecord | None],
                *, now_ns: int, grace_s: float, executions: list[tuple[str, dict[str, str], dict[str, str]]] = ()
                ) -> list[Violation]:
    """Every chain-state invariant; ``executions``: (what, executed, ledger) per wallet."""
    out = check_payments_once(events) + check_batches_anchored(batches, records, now_ns=now_ns, grace_s=grace_s)
    for what, executed, ledger in executions:
        out += check_executed_once(what, executed, ledger)
    return out
