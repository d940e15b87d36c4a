"""DAO governance from Python: proposals against FleetPolicy (or any contract), the vote, the
timelock queue and the execution, through the real Governor and TimelockController.

On a real network each step happens when its time comes (voting delay/period in blocks, the
timelock delay in seconds), so ``propose``/``vote``/``queue``/``execute`` are separate calls. On
the local chain ``local_round`` runs them all at once, mining blocks and moving time forward on
anvil, so a laptop demo of "the DAO slows the fleet down" takes a second. No single account
passes a proposal (deploy.py spreads the votes below the quorum), so ``local_round`` votes with
several members' keys: by default the local demo members (``deploy.DEMO_MEMBERS``).

Proposals are found again from the chain (the Governor's ``ProposalCreated`` events carry
targets, calldatas and description), so queue and execute need only the proposal id, from any
machine, days later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from eth_utils import keccak

from .client import ChainClient
from .config import checksum
from .errors import ChainError
from .models import id32, to_mm

__all__ = ["Action", "Proposal", "policy_actions", "distribution_actions", "propose", "vote", "queue", "execute", "state",
           "local_round", "proposals", "find_proposal", "demo_voters", "STATES"]

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
    proposer: str = ""
    vote_start: int = 0  # block (Governor clock) the vote opens after
    vote_end: int = 0  # last block of the vote
    block_number: int = 0  # block of the propose transaction
    tx_hash: str = ""

    @property
    def description_hash(self) -> bytes:
        return keccak(text=self.description)


def policy_actions(*, max_speed: float | None = None, paused: bool | None = None, min_task_price: int | None = None,
                   spending_cap: int | None = None, zones: dict[str, list[tuple[float, float]]] | None = None,
                   remove_zones: list[str] | None = None, protocol_fee_bps: int | None = None,
                   guardian: str | None = None) -> list[Action]:
    """FleetPolicy changes in SI units (m/s, metres) as governance actions. ``guardian``: the new
    guardian's address, or the zero address to revoke the guardian."""
    out = []
    if protocol_fee_bps is not None:
        if not 0 <= protocol_fee_bps <= 10_000:
            raise ValueError(f"protocol fee must be 0..10000 basis points, got {protocol_fee_bps}")
        out.append(Action("FleetPolicy", "setProtocolFee", (protocol_fee_bps,)))
    if guardian is not None:
        out.append(Action("FleetPolicy", "setGuardian", (checksum(guardian),)))
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


def distribution_actions(client: ChainClient, amount: int, snapshot_block: int | None = None) -> list[Action]:
    """The treasury (timelock) shares ``amount`` FLEET among the holders at ``snapshot_block``
    (default: the head now, i.e. a block before the proposal: fixed and public while members vote)."""
    if amount <= 0:
        raise ValueError(f"distribution amount must be positive, got {amount}")
    token = client.contract("FleetToken").address
    dist = client.contract("RevenueDistributor").address
    snap = client.block_number() if snapshot_block is None else int(snapshot_block)
    return [Action("FleetToken", "approve", (dist, amount)),
            Action("RevenueDistributor", "createDistribution", (token, amount, snap))]


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
            return _from_event(ev)
    raise ChainError("propose succeeded but emitted no ProposalCreated event")


def _from_event(ev: dict) -> Proposal:
    return Proposal(ev["proposalId"], list(ev["targets"]), list(ev["values"]), list(ev["calldatas"]), ev["description"],
                    proposer=ev["proposer"], vote_start=ev["voteStart"], vote_end=ev["voteEnd"],
                    block_number=ev["block_number"] or 0, tx_hash=ev["tx_hash"] or "")


def proposals(client: ChainClient, from_block: int | None = None) -> list[Proposal]:
    """Every proposal made since the deployment (or ``from_block``), oldest first."""
    gov = client.contract("FleetGovernor")
    start = client.config.deploy_block if from_block is None else from_block
    return [_from_event(ev) for ev in gov.events("ProposalCreated", start)]


def find_proposal(client: ChainClient, proposal_id: int | str, from_block: int | None = None) -> Proposal:
    """The proposal with this id (decimal, 0x hex, or a unique decimal prefix of at least 6 digits)."""
    text = str(proposal_id).strip()
    found = proposals(client, from_block)
    if text.lower().startswith("0x"):
        try:
            want = int(text, 16)
        except ValueError:
            raise ChainError(f"not a proposal id: {text!r}") from None
        hits = [p for p in found if p.proposal_id == want]
    elif text.isdigit():
        hits = [p for p in found if str(p.proposal_id) == text]
        if not hits and len(text) >= 6:
            hits = [p for p in found if str(p.proposal_id).startswith(text)]
    else:
        raise ChainError(f"not a proposal id: {text!r}")
    if not hits:
        raise ChainError(f"no proposal {text} on this deployment (depai dao status lists them)")
    if len(hits) > 1:
        raise ChainError(f"proposal prefix {text} is ambiguous ({len(hits)} proposals); give more digits")
    return hits[0]


def state(client: ChainClient, p: Proposal) -> str:
    return STATES[client.contract("FleetGovernor").call("state", p.proposal_id)]


def vote(client: ChainClient, p: Proposal, support: int = 1):
    """support: 0 against, 1 for, 2 abstain."""
    return client.contract("FleetGovernor").transact("castVote", p.proposal_id, support)


def queue(client: ChainClient, p: Proposal):
    return client.contract("FleetGovernor").transact("queue", p.targets, p.values, p.calldatas, p.description_hash)


def execute(client: ChainClient, p: Proposal):
    return client.contract("FleetGovernor").transact("execute", p.targets, p.values, p.calldatas, p.description_hash)


def demo_voters(client: ChainClient) -> list[ChainClient]:
    """Clients of the local demo members (public anvil keys: local chain only)."""
    from .deploy import DEMO_MEMBERS
    from .signer import demo_signer

    if not client.config.is_local:
        raise ChainError("demo members exist on the local chain only")
    return [ChainClient(client.config, demo_signer(i, client.config.chain_id), verify_chain=False) for i in DEMO_MEMBERS]


def local_round(client: ChainClient, actions: list[Action], description: str, *,
                voters: list[ChainClient] | None = None, progress: Callable[[str], None] | None = None,
                before_execute: Callable[[], bool] | None = None) -> Proposal:
    """Propose (with ``client``), vote for it with every one of ``voters`` that holds votes
    (default: the local demo members), queue and execute at once on the local chain, mining the
    voting delay/period and moving time past the timelock delay.

    ``before_execute`` runs right before the execute transaction (the round's other steps take
    seconds: what the caller checked before proposing may have changed); returning False leaves
    the proposal queued, not executed."""
    say = progress or (lambda _m: None)
    if not client.config.is_local:
        raise ChainError("local_round mines blocks and moves time: local chain only; on a real network call "
                         "propose, vote, queue and execute as the periods pass")
    gov = client.contract("FleetGovernor")
    voters = demo_voters(client) if voters is None else voters
    # one client per key: two clients of one key would each count nonces on their own
    me = client.signer.address if client.signer else None
    voters = [client if me and v.signer.address == me else v for v in voters]
    proposer = client
    threshold = gov.call("proposalThreshold")
    if client.signer is None or gov.call("getVotes", client.signer.address, client.block_number() - 1) < threshold:
        # the caller may not propose alone (e.g. the deployer, whose float never votes): a member does
        proposer = next((v for v in voters if gov.call("getVotes", v.signer.address, v.block_number() - 1) >= threshold), client)
    p = propose(proposer, actions, description)
    say(f"proposed #{str(p.proposal_id)[:12]}... by {proposer.signer.address} ({len(actions)} action(s)): {state(client, p)}")
    client.mine(gov.call("votingDelay") + 1)
    total = 0
    for v in voters:
        weight = gov.call("getVotes", v.signer.address, p.vote_start)
        if weight and not gov.call("hasVoted", p.proposal_id, v.signer.address):
            vote(v, p, 1)
            total += weight
    say(f"voted for by {len(voters)} member(s) with {total} votes (quorum {gov.call('quorum', p.vote_start)})")
    client.mine(gov.call("votingPeriod"))
    if state(client, p) != "Succeeded":
        raise ChainError(f"proposal did not pass: {state(client, p)} (quorum or votes missing)")
    queue(client, p)
    delay = client.contract("FleetTimelock").call("getMinDelay")
    say(f"queued in the timelock ({delay} s)")
    client.mine(1, seconds=delay + 1)
    if before_execute is not None and not before_execute():
        say("not executed: the round was stopped before the execute step (the proposal stays queued)")
        return p
    execute(client, p)
    say(f"executed: {state(client, p)}")
    return p
