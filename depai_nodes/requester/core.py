"""The requester's logic, ROS-free: which delivery task to post next, and what became of it.

A requester posts delivery tasks on TaskMarket through its OWN wallet (`requester/wallet`, a key
that is never a robot's): a goal at a named station of the world (stations file, see
common/stations.py), an arrival tolerance, a deadline (chain time) and a reward escrowed from
its account. It posts one task every `period` s, at most `max_tasks` (0: no limit) and never more
reward in total than `budget` (refunds do not top the budget up again).

Request ids are idempotent: `<prefix>-<chain genesis[2:10]>-<n>` for the n-th task of this
requester on this chain. After a restart the requester asks again from n = 1; the wallet's ledger
answers each id already posted with that task (`already_done`), so nothing is posted twice and
the count and the budget spent are rebuilt from those answers; a new chain (another genesis)
starts a new sequence. A retryable answer (chain down, timeout, wallet busy or absent) asks again
with the same id; a refusal (invalid, policy, revert) is logged and that number is skipped.

Stations under a keep-out zone of the fleet policy are not posted to (logged once per zone set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydantic import Field, field_validator

from depai_nodes.chain.intents import RETRYABLE, PostRequest, Result
from depai_nodes.chain.units import TOKEN
from depai_nodes.chain.units import fleet as fleet_units
from depai_nodes.common.params import READ_ONLY, ParamsModel
from depai_nodes.common.stations import Station

__all__ = ["RequesterParams", "PostRequest", "Requester"]

class RequesterParams(ParamsModel):
    stations_file: str = Field("", description="stations file; empty: the one beside the world (worlds/<world>.stations.yaml)", json_schema_extra=READ_ONLY)
    world: str = Field("warehouse", min_length=1, description="the world the stations belong to (name in worlds/ or an .sdf path); free space is checked", json_schema_extra=READ_ONLY)
    stations: list[str] = Field(default_factory=list, description="station ids to post to, in order; empty: every station of the file")
    reward: str = Field("5000000000000000000", pattern=r"^[0-9]{1,78}$", description="reward per task, token base units (escrowed at posting)")
    tolerance: float = Field(0.5, gt=0.0, le=10.0, description="m: how close an arrival must be to the station")
    deadline: float = Field(240.0, ge=10.0, le=30 * 86400.0, description="s after posting (chain time) by which the task must be done")
    period: float = Field(15.0, ge=0.5, le=86400.0, description="s between two posts")
    retry_period: float = Field(3.0, ge=0.1, le=3600.0, description="s before asking again after a retryable answer (chain down, wallet busy)")
    max_tasks: int = Field(0, ge=0, le=1_000_000, description="tasks to post in all; 0: no limit (the budget still holds)")
    budget: str = Field("100000000000000000000", pattern=r"^[0-9]{1,78}$", description="total reward this requester may escrow, token base units")
    start_delay: float = Field(5.0, ge=0.0, le=3600.0, description="s before the first post (let the robots register)", json_schema_extra=READ_ONLY)
    request_prefix: str = Field("task", pattern=r"^[A-Za-z0-9_.-]{1,24}$", description="request ids are <prefix>-<genesis>-<n>", json_schema_extra=READ_ONLY)
    robot_radius: float = Field(0.3, gt=0.0, le=3.0, description="m: a station must fit a robot this wide (checked at start)", json_schema_extra=READ_ONLY)
    chain_config: str = Field("", description="chain config (read-only use: chain time); empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json", json_schema_extra=READ_ONLY)
    wallet_timeout: float = Field(90.0, ge=1.0, le=3600.0, description="s to wait for the wallet's answer")

    @field_validator("stations")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("station ids must be unique")
        return v


def _inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    """Even-odd rule; a point on the border counts as inside (fail towards not posting)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % n]
        if min(y1, y2) <= y <= max(y1, y2) and min(x1, x2) <= x <= max(x1, x2):
            cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
            if abs(cross) < 1e-9:
                return True
        if (y1 > y) != (y2 > y):
            if x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
                inside = not inside
    return inside


@dataclass
class Requester:
    """Decides the next post and books the wallet's answers. Times are seconds (monotonic for
    `now`, unix chain time for `chain_time`)."""

    params: RequesterParams
    stations: list[Station]
    genesis: str  # 0x... of the chain's block 0: part of every request id
    seq: int = 1  # number of the next task to post
    posted: int = 0
    spent: int = 0
    task_ids: list[int] = field(default_factory=list)
    zones: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    next_at: float = 0.0
    done_reason: str = ""  # set once posting has ended for good (budget, max_tasks)
    _rr: int = 0  # round-robin position over the stations

    def __post_init__(self) -> None:
        if not self.stations:
            raise ValueError("a requester needs at least one station")
        if int(self.params.reward) <= 0:
            raise ValueError("reward must be positive")

    def request_id(self, seq: int) -> str:
        return f"{self.params.request_prefix}-{self.genesis[2:10]}-{seq}"

    def blocked(self, s: Station) -> str | None:
        """The keep-out zone over station ``s``, if any."""
        for zid, polygon in self.zones.items():
            if _inside(polygon, s.x, s.y):
                return zid
        return None

    def set_zones(self, zones: dict[str, list[tuple[float, float]]]) -> list[str]:
        """New keep-out zones (from /fleet/policy); returns lines to log (stations now blocked)."""
        before = {s.id for s in self.stations if self.blocked(s)}
        self.zones = {k: [tuple(p) for p in v] for k, v in zones.items()}
        lines = []
        for s in self.stations:
            zid = self.blocked(s)
            if zid and s.id not in before:
                lines.append(f"station {s.id} lies in keep-out zone {zid}: no tasks there while it stands")
            elif not zid and s.id in before:
                lines.append(f"station {s.id} is free of keep-out zones again")
        return lines

    def next_request(self, now: float, chain_time: int) -> PostRequest | None:
        """The request to send now, or None (not yet, or finished: see done_reason)."""
        if self.done_reason or now < self.next_at:
            return None
        reward = int(self.params.reward)
        if self.params.max_tasks and self.posted >= self.params.max_tasks:
            self.done_reason = f"posted {self.posted} task(s), the max_tasks set"
            return None
        if self.spent + reward > int(self.params.budget):
            self.done_reason = (f"budget spent: {fleet_units(self.spent)} of {fleet_units(int(self.params.budget))} escrowed "
                                f"in {self.posted} task(s)")
            return None
        free = [s for s in self.stations if not self.blocked(s)]
        if not free:
            self.next_at = now + self.params.retry_period
            return None
        station = free[self._rr % len(free)]
        return PostRequest(request_id=self.request_id(self.seq), station=station.id, x=station.x, y=station.y,
                           yaw=station.yaw, tolerance=self.params.tolerance,
                           deadline=int(chain_time + math.ceil(self.params.deadline)), reward=str(reward))

    def on_result(self, request: PostRequest, now: float, result: int, task_id: str = "", already_done: bool = False,
                  error: str = "", reason: str = "") -> str:
        """Book the wallet's answer to ``request``; returns the line to log."""
        name = Result.NAMES.get(result, str(result))
        if result == Result.SUCCESS:
            self.seq += 1
            self._rr += 1
            self.posted += 1
            self.spent += int(request.reward)
            try:
                self.task_ids.append(int(task_id))
            except ValueError:
                pass
            # a replayed id (after a restart) is answered from the wallet's ledger: go on at once
            self.next_at = now if already_done else now + self.params.period
            if already_done:
                return f"task #{task_id} ({request.request_id}) was already posted; {self.posted} so far"
            return (f"posted task #{task_id} to station {request.station} ({request.x:.2f}, {request.y:.2f}): reward "
                    f"{fleet_units(int(request.reward))}, tolerance {request.tolerance:g} m, deadline {request.deadline} "
                    f"({request.request_id}; {self.posted} posted, {fleet_units(self.spent)} escrowed)")
        if result in RETRYABLE:
            self.next_at = now + self.params.retry_period
            return f"post {request.request_id} not done: {name} {error}: {reason}; asking again in {self.params.retry_period:g} s"
        self.seq += 1  # refused for good: this number is not used again
        self._rr += 1
        self.next_at = now + self.params.period
        return f"post {request.request_id} to station {request.station} refused: {name} {error}: {reason}"
