"""The fleet status table, ROS-free: what the user sees while the main job runs, and at its end.

Fed from two read-only sources: ROS topics (per robot `navigation_status`, `identity`,
`wallet/account`; the fleet's `/fleet/policy`) and chain events (TaskMarket's TaskPosted /
TaskAccepted / TaskCompleted / TaskRefunded / TaskCancelled, DataRegistry's BatchAnchored), read
with no key. `render()` turns it into lines, the same for a TTY and a log:

    == DePAI fleet status  t=42 s  block 311  policy v3 (chain) max 0.50 m/s  keep-out: loading-dock
    tasks  posted 5  open 1  accepted 1  paid 3  refunded 0  total paid 15 FLEET
    robot    state      task  left    balance       stake    batches  policy
    robot1   FOLLOWING  #4     3.2 m  9915 FLEET    100      6        v3
    robot2   ARRIVED    -         -   9905 FLEET    100      5        v3
    ==

A frame starts with FRAME_START and ends with a line equal to FRAME_END, so that a console can
redraw it in place (bringup/console.py); the final summary starts with SUMMARY_START instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from depai_nodes.chain.units import fleet_rounded as fleet_amount

__all__ = ["FRAME_START", "SUMMARY_START", "FRAME_END", "NAV_STATES", "RobotRow", "FleetView", "render"]

FRAME_START = "== DePAI fleet status"
SUMMARY_START = "== DePAI run summary"
FRAME_END = "=="
NAV_STATES = {0: "IDLE", 1: "FOLLOWING", 2: "ARRIVED", 3: "STOPPED"}

@dataclass
class RobotRow:
    name: str
    address: str = ""
    state: str = "-"
    reason: str = ""
    distance_left: float | None = None
    policy_version: int | None = None
    balance: int | None = None
    stake: int | None = None


@dataclass
class _Task:
    status: str = "open"  # open | accepted | paid | refunded | cancelled
    machine: str = ""
    reward: int = 0
    paid_this_run: bool = False


@dataclass
class FleetView:
    """Everything the table shows; update it with the on_* methods, read it with render()."""

    robots: dict[str, RobotRow] = field(default_factory=dict)
    policy_version: int | None = None
    policy_source: str = ""
    max_speed: float | None = None
    paused: bool = False
    zones: list[str] = field(default_factory=list)
    block: int | None = None
    chain_error: str = ""
    tasks: dict[int, _Task] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)  # machine address (lower case) -> anchored batches
    total_paid: int = 0
    # The first block of this run (the head when the reader started): a local chain's state lives
    # on across runs, so its totals since the deployment hold earlier runs too. The robot
    # columns count this run; the tasks line counts the chain's tasks and says this run's share.
    run_from_block: int | None = None
    batches_this_run: dict[str, int] = field(default_factory=dict)
    posted_this_run: int = 0

    def robot(self, name: str) -> RobotRow:
        return self.robots.setdefault(name, RobotRow(name))

    # ---------------------------------------------------------------- topics
    def on_navigation(self, robot: str, state: int, reason: str, distance_left: float, policy_version: int) -> None:
        row = self.robot(robot)
        row.state = NAV_STATES.get(state, str(state))
        row.reason = reason
        row.distance_left = distance_left if state == 1 else None
        row.policy_version = policy_version

    def on_identity(self, robot: str, address: str, balance: str, stake: str) -> None:
        row = self.robot(robot)
        row.address = address or row.address
        row.balance = int(balance) if balance.isdigit() else row.balance
        row.stake = int(stake) if stake.isdigit() else row.stake

    def on_account(self, robot: str, address: str) -> None:
        self.robot(robot).address = address

    def on_policy(self, version: int, source: str, max_speed: float, paused: bool, zones: list[str]) -> None:
        self.policy_version, self.policy_source, self.max_speed, self.paused, self.zones = version, source, max_speed, paused, list(zones)

    # ---------------------------------------------------------------- chain
    def reset_chain(self) -> None:
        """Another chain (a reset): what was counted belongs to the old one."""
        self.tasks.clear()
        self.batches.clear()
        self.batches_this_run.clear()
        self.total_paid = 0
        self.posted_this_run = 0

    def in_this_run(self, ev: dict) -> bool:
        block = ev.get("block_number")
        return self.run_from_block is None or block is None or int(block) >= self.run_from_block

    def on_event(self, ev: dict) -> None:
        """One decoded TaskMarket / DataRegistry event (depai_nodes.chain.abi.DecodedLog)."""
        name = ev.get("event")
        now = self.in_this_run(ev)
        if name == "BatchAnchored":
            key = str(ev["machine"]).lower()
            self.batches[key] = self.batches.get(key, 0) + 1
            if now:
                self.batches_this_run[key] = self.batches_this_run.get(key, 0) + 1
            return
        if "taskId" not in ev:
            return
        task = self.tasks.setdefault(int(ev["taskId"]), _Task())
        if name == "TaskPosted":
            task.reward = int(ev.get("reward", 0))
            self.posted_this_run += int(now)
        elif name == "TaskAccepted":
            task.status, task.machine = "accepted", str(ev["machine"]).lower()
        elif name == "TaskCompleted":
            task.status, task.machine = "paid", str(ev["machine"]).lower()
            task.paid_this_run = now
            paid = int(ev.get("reward", task.reward))
            self.total_paid += paid
        elif name == "TaskRefunded":
            task.status = "refunded"
        elif name == "TaskCancelled":
            task.status = "cancelled"

    def counts(self) -> dict[str, int]:
        out = {"posted": len(self.tasks), "open": 0, "accepted": 0, "paid": 0, "refunded": 0, "cancelled": 0}
        for t in self.tasks.values():
            out[t.status] += 1
        return out

    def task_of(self, address: str) -> str:
        a = address.lower()
        held = sorted(i for i, t in self.tasks.items() if t.status == "accepted" and t.machine == a and a)
        return ", ".join(f"#{i}" for i in held) or "-"

    def paid_to(self, address: str, this_run: bool = True) -> int:
        """Tasks paid to ``address`` (in this run, or since the deployment)."""
        a = address.lower()
        return sum(1 for t in self.tasks.values() if t.status == "paid" and t.machine == a and a
                   and (t.paid_this_run or not this_run))

    def earlier(self) -> tuple[int, int, int]:
        """(tasks posted, tasks paid, batches anchored) before this run, on this chain."""
        posted = len(self.tasks) - self.posted_this_run
        paid = sum(1 for t in self.tasks.values() if t.status == "paid" and not t.paid_this_run)
        batches = sum(self.batches.values()) - sum(self.batches_this_run.values())
        return posted, paid, batches


def _source_kind(source: str) -> str:
    return source.split(":", 1)[0] if source else "none"


def _earlier(view: FleetView) -> str:
    posted, paid, batches = view.earlier()
    if not (posted or paid or batches):
        return ""
    return (f"  (before this run, below block {view.run_from_block}: {posted} posted, {paid} paid, "
            f"{batches} batches; the robot rows count this run)")


def render(view: FleetView, elapsed_s: float, *, summary: bool = False) -> list[str]:
    """The table as lines (FRAME_START or SUMMARY_START ... FRAME_END)."""
    if view.policy_version is None:
        policy = "policy: none yet (robots hold still)"
    else:
        speed = f"{view.max_speed:.2f} m/s" if view.max_speed is not None else "-"
        policy = f"policy v{view.policy_version} ({_source_kind(view.policy_source)}) max {speed}" + ("  PAUSED" if view.paused else "")
    zones = ", ".join(view.zones) or "none"
    block = f"block {view.block}" if view.block is not None else "chain: " + (view.chain_error or "-")
    c = view.counts()
    head = SUMMARY_START if summary else FRAME_START
    lines = [
        f"{head}  t={elapsed_s:.0f} s  {block}  {policy}  keep-out: {zones}",
        f"tasks  posted {c['posted']}  open {c['open']}  accepted {c['accepted']}  paid {c['paid']}  "
        f"refunded {c['refunded']}  total paid {fleet_amount(view.total_paid)}" + _earlier(view),
        f"{'robot':<10} {'state':<10} {'task':<6} {'left':>7}  {'balance':<15} {'stake':<12} {'batches':>7}  {'paid':>4}  policy",
    ]
    for name in sorted(view.robots):
        r = view.robots[name]
        left = f"{r.distance_left:.1f} m" if r.distance_left is not None else "-"
        version = f"v{r.policy_version}" if r.policy_version else "none"
        batches = view.batches_this_run.get(r.address.lower(), 0) if r.address else 0
        lines.append(f"{name:<10} {r.state:<10} {view.task_of(r.address):<6} {left:>7}  {fleet_amount(r.balance):<15} "
                     f"{fleet_amount(r.stake):<12} {batches:>7}  {view.paid_to(r.address):>4}  {version}")
    lines.append(FRAME_END)
    return lines
