"""What `bench/economy.py` measures, ROS-free and chain-free: events matched to tasks, the
posting-to-payout breakdown, the statistics and the table (test/bench/test_economy_lib.py).

Every time here is one process's monotonic clock (seconds): when the bench's chain watcher
first saw an event on chain, or when the bench first saw a robot's arrival record.

A completed task's life, in four steps that add up to its total (posted -> paid):

  accept    TaskPosted seen -> TaskAccepted seen (the machine's decision and its accept tx)
  drive     TaskAccepted seen -> the machine's arrival record for the task
  anchor    the arrival -> BatchAnchored of the batch its TaskCompleted cites (that machine's)
  complete  BatchAnchored seen -> TaskCompleted (+ TaskPaid, the same tx) seen

Gas per completed task: its accept tx + its complete tx + the whole anchor tx of the batch it
cites (one batch per task: TaskMarket lets a batch be cited once, so the cited batch is charged
to the task in full, although in DePAI that batch also carries the robot's regular telemetry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["ChainEvent", "Arrival", "TaskTiming", "Summary", "pct", "match_tasks", "summarize", "format_table",
           "STEPS"]

STEPS = ("accept", "drive", "anchor", "complete")


@dataclass(frozen=True)
class ChainEvent:
    """One log the watcher saw: ``kind`` is the event name (TaskPosted, TaskAccepted, TaskCompleted,
    TaskPaid, BatchAnchored, Approval), ``t`` when it was first seen, ``gas`` its tx's gasUsed."""

    kind: str
    t: float
    tx_hash: str
    gas: int = 0
    task_id: int = 0
    machine: str = ""          # TaskAccepted/TaskCompleted/BatchAnchored: the machine; Approval: the owner
    batch_id: bytes = b""      # TaskCompleted: the cited batch; BatchAnchored: the anchored one
    block: int = 0
    block_time: int = 0        # the block's timestamp (chain clock, s)
    data: dict = field(default_factory=dict, compare=False)  # TaskPosted: goal, reward, deadline ...


@dataclass(frozen=True)
class Arrival:
    """A robot's arrival record for ``task_id`` (by ``machine``), first seen at ``t``."""

    task_id: int
    machine: str
    t: float


@dataclass
class TaskTiming:
    task_id: int
    machine: str
    posted: float
    accepted: float
    arrived: float | None
    anchored: float | None
    completed: float
    gas_accept: int
    gas_anchor: int
    gas_complete: int

    @property
    def total(self) -> float:
        return self.completed - self.posted

    @property
    def steps(self) -> dict[str, float | None]:
        """The four steps (s); drive/anchor None when the arrival or the anchoring was not seen
        (their sum, accepted -> anchored or accepted -> completed, is still in the total)."""
        out: dict[str, float | None] = {"accept": self.accepted - self.posted, "drive": None, "anchor": None,
                                        "complete": None}
        if self.arrived is not None:
            out["drive"] = self.arrived - self.accepted
        if self.anchored is not None:
            out["complete"] = self.completed - self.anchored
            if self.arrived is not None:
                out["anchor"] = self.anchored - self.arrived
        return out

    @property
    def gas(self) -> int:
        return self.gas_accept + self.gas_anchor + self.gas_complete


def _addr(a: str) -> str:
    return (a or "").lower()


def match_tasks(events: list[ChainEvent], arrivals: list[Arrival]) -> tuple[list[TaskTiming], list[str]]:
    """The timing of every task completed (TaskCompleted seen), with the notes of what could not be
    matched. A task's accept is the TaskAccepted by the machine that completed it (the latest one
    before the completion: a task is accepted once, but a watcher could see a log twice); its
    arrival the first record by that machine for that task seen after the acceptance (a robot may
    record an arrival again when telemetry did not confirm it: the first one counts, as the
    earliest the robot was there); its anchoring the first BatchAnchored of the cited
    (machine, batch). An arrival seen after its batch was anchored (clock order across two
    observers) is taken as the anchoring time."""
    notes: list[str] = []
    evs = sorted(events, key=lambda e: e.t)
    posted = {}
    for e in evs:
        if e.kind == "TaskPosted" and e.task_id not in posted:
            posted[e.task_id] = e
    anchored: dict[tuple[str, bytes], ChainEvent] = {}
    for e in evs:
        if e.kind == "BatchAnchored":
            anchored.setdefault((_addr(e.machine), bytes(e.batch_id)), e)
    out: list[TaskTiming] = []
    done: set[int] = set()
    for c in evs:
        if c.kind != "TaskCompleted" or c.task_id in done:
            continue
        done.add(c.task_id)
        p = posted.get(c.task_id)
        if p is None:
            notes.append(f"task {c.task_id}: completed, but its TaskPosted was not seen (posted before the watch began)")
            continue
        accepts = [e for e in evs if e.kind == "TaskAccepted" and e.task_id == c.task_id
                   and _addr(e.machine) == _addr(c.machine) and e.t <= c.t]
        if not accepts:
            notes.append(f"task {c.task_id}: completed, but no TaskAccepted by {c.machine} was seen before it")
            continue
        a = accepts[-1]
        arr = [x for x in arrivals if x.task_id == c.task_id and _addr(x.machine) == _addr(c.machine) and x.t >= a.t]
        arrived = min((x.t for x in arr), default=None)
        b = anchored.get((_addr(c.machine), bytes(c.batch_id)))
        anchor_t = b.t if b is not None and b.t <= c.t else None
        if b is None:
            notes.append(f"task {c.task_id}: the anchoring of its batch 0x{bytes(c.batch_id).hex()[:16]}... was not seen")
        if arrived is None:
            notes.append(f"task {c.task_id}: its arrival record was not seen (drive and anchor steps left out)")
        elif anchor_t is not None and arrived > anchor_t:
            arrived = anchor_t
        out.append(TaskTiming(c.task_id, c.machine, p.t, a.t, arrived, anchor_t, c.t, a.gas, b.gas if b else 0, c.gas))
    out.sort(key=lambda t: t.task_id)
    return out, notes


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the other benches' convention); nan for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


@dataclass
class Summary:
    label: str
    completed: int
    posted: int
    robots: int
    sim_minutes: float
    total: list[float]
    steps: dict[str, list[float]]
    gas_per_task: float
    gas_per_post: float
    gas_parts: tuple[float, float, float] = (float("nan"),) * 3  # mean accept, anchor, complete gas

    @property
    def per_sim_minute_per_robot(self) -> float:
        if self.sim_minutes <= 0 or self.robots <= 0:
            return float("nan")
        return self.completed / self.sim_minutes / self.robots


def summarize(label: str, timings: list[TaskTiming], events: list[ChainEvent], *, robots: int, sim_minutes: float,
              requester: str) -> Summary:
    """The figures of one method. Gas per posted task: the requester's postTask and approve txs
    (FleetToken Approval events whose owner is ``requester``), divided by the tasks it posted."""
    steps = {s: [v for t in timings if (v := t.steps[s]) is not None] for s in STEPS}
    posts = {e.tx_hash: e.gas for e in events if e.kind == "TaskPosted"}
    approves = {e.tx_hash: e.gas for e in events if e.kind == "Approval" and _addr(e.machine) == _addr(requester)
                and e.tx_hash not in posts}
    n_posted = len({e.task_id for e in events if e.kind == "TaskPosted"})
    gas_post = (sum(posts.values()) + sum(approves.values())) / n_posted if n_posted else float("nan")
    n = len(timings)
    gas_task = sum(t.gas for t in timings) / n if n else float("nan")
    parts = tuple(sum(getattr(t, f) for t in timings) / n if n else float("nan")
                  for f in ("gas_accept", "gas_anchor", "gas_complete"))
    return Summary(label, n, n_posted, robots, sim_minutes, [t.total for t in timings], steps, gas_task, gas_post, parts)


def _f(v: float, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _p(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{_f(pct(values, 50))} / {_f(pct(values, 99))}"


def format_table(summaries: list[Summary]) -> str:
    """One markdown table: a row per figure, a column per method."""
    rows = [
        ("tasks completed (of posted)", [f"{s.completed} (of {s.posted})" for s in summaries]),
        ("tasks / simulated minute / robot", [_f(s.per_sim_minute_per_robot, 3) for s in summaries]),
        ("posted -> paid p50 / p99 s", [_p(s.total) for s in summaries]),
    ]
    for step in STEPS:
        rows.append((f"  {step} p50 / p99 s", [_p(s.steps[step]) for s in summaries]))
    rows.append(("gas per completed task (accept + anchor + complete)",
                 [_f(s.gas_per_task, 0) if s.completed else "-" for s in summaries]))
    rows.append(("  of which accept / anchor / complete",
                 [" / ".join(_f(g, 0) for g in s.gas_parts) if s.completed else "-" for s in summaries]))
    rows.append(("requester gas per posted task (approve + post)", [_f(s.gas_per_post, 0) for s in summaries]))
    head = "| figure | " + " | ".join(s.label for s in summaries) + " |"
    sep = "|---|" + "---:|" * len(summaries)
    return "\n".join([head, sep] + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows])
