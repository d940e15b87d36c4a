"""DAO governance from Python: proposals against FleetPolicy (or any contract), the vote, the
timelock queue and the execution, through the real Governor and TimelockController.

On a real network each step happens when its time comes (voting delay/period in blocks, the
timelock delay in seconds), so ``propose``/``vote``/``queue``/``execute`` are separate calls. On
the local chain ``local_round`` runs them all at once, mining blocks and moving time forward on
anvil, so a laptop demo of "the DAO slows the fleet down" takes a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from eth_utils import keccak

from .client import ChainClient
from .errors import ChainError
from .models import id32, to_mm

__all__ = ["Action", "Proposal", "policy_actions", "propose", "vote", "queue", "execute", "state", "local_round", "STATES"]

STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed")


@dataclass(frozen=True)
class Action:
    contract: str  # artifact / config name, e.g. "FleetPolicy"
    fn: str
    args: tuple


@dataclass(frozen=True)
class Proposal:
    proposal_id: int
    targets: list
    values: list
    calldatas: list
    description: str

    @property
    def description_hash(self) -> bytes:
        return keccak(text=self.description)


def policy_actions(*, max_speed: float | None = None, paused: bool | None = None, min_task_price: int | None = None,
                   spending_cap: int | None = None, zones: dict[str, list[tuple[float, float]]] | None = None,
                   remove_zones: list[str] | None = None) -> list[Action]:
    """FleetPolicy changes in SI units (m/s, metres) as governance actions."""
    out = []
    if max_speed is not None:
        out.append(Action("FleetPolicy", "setMaxSpeed", (to_mm(max_speed),)))
    if paused is not None:
        out.append(Action("FleetPolicy", "setPaused", (paused,)))
    if min_task_price is not None:
        out.append(Action("FleetPolicy", "setMinTaskPrice", (min_task_price,)))
    if spending_cap is not None:
        out.append(Action("FleetPolicy", "setSpendingCap", (spending_cap,)))
    for zid, polygon in (zones or {}).items():
        out.append(Action("FleetPolicy", "setKeepOutZone", (id32(zid), [to_mm(x) for x, _ in polygon], [to_mm(y) for _, y in polygon])))
    for zid in remove_zones or []:
        out.append(Action("FleetPolicy", "removeKeepOutZone", (id32(zid),)))
    if not out:
        raise ValueError("no policy change given")
    return out


def propose(client: ChainClient, actions: list[Action], description: str) -> Proposal:
    gov = client.contract("FleetGovernor")
    targets, values, datas = [], [], []
    for a in actions:
        target = client.contract(a.contract)
        targets.append(target.address)
        values.append(0)
        datas.append(bytes.fromhex(target.abi.encode_call(a.fn, a.args)[2:]))
    r = gov.transact("propose", targets, values, datas, description)
    for raw in r.logs:
        ev = gov.abi.decode_log(raw)
        if ev and ev["event"] == "ProposalCreated":
            return Proposal(ev["proposalId"], targets, values, datas, description)
    raise ChainError("propose succeeded but emitted no ProposalCreated event")


def state(client: ChainClient, p: Proposal) -> str:
    return STATES[client.contract("FleetGovernor").call("state", p.proposal_id)]


def vote(client: ChainClient, p: Proposal, support: int = 1):
    """support: 0 against, 1 for, 2 abstain."""
    return client.contract("FleetGovernor").transact("castVote", p.proposal_id, support)


def queue(client: ChainClient, p: Proposal):
    return client.contract("FleetGovernor").transact("queue", p.targets, p.values, p.calldatas, p.description_hash)


def execute(client: ChainClient, p: Proposal):
    return client.contract("FleetGovernor").transact("execute", p.targets, p.values, p.calldatas, p.description_hash)


def local_round(client: ChainClient, actions: list[Action], description: str, *,
                progress: Callable[[str], None] | None = None) -> Proposal:
    """Propose, vote (with this client's votes), queue and execute at once on the local chain,
    mining the voting delay/period and moving time past the timelock delay."""
    say = progress or (lambda _m: None)
    if not client.config.is_local:
        raise ChainError("local_round mines blocks and moves time: local chain only; on a real network call "
                         "propose, vote, queue and execute as the periods pass")
    gov = client.contract("FleetGovernor")
    p = propose(client, actions, description)
    say(f"proposed #{str(p.proposal_id)[:12]}... ({len(actions)} action(s)): {state(client, p)}")
    client.mine(gov.call("votingDelay") + 1)
    vote(client, p, 1)
    say(f"voted for with {gov.call('getVotes', client.signer.address, client.block_number() - 1) if client.signer else 0} votes")
    client.mine(gov.call("votingPeriod"))
    if state(client, p) != "Succeeded":
        raise ChainError(f"proposal did not pass: {state(client, p)} (quorum or votes missing)")
    queue(client, p)
    delay = client.contract("FleetTimelock").call("getMinDelay")
    say(f"queued in the timelock ({delay} s)")
    client.mine(1, seconds=delay + 1)
    execute(client, p)
    say(f"executed: {state(client, p)}")
    return p
