"""Deploying and wiring the DePAI contracts (local anvil or a real network, same code).

Order: FleetToken -> FleetTimelock -> FleetGovernor (timelock roles granted to it, deployer's
admin role renounced) -> FleetPolicy (owned by the timelock) -> MachineDID (only where there
is no DID precompile) -> DataRegistry -> TaskMarket -> RevenueDistributor (owned by the
timelock) -> the supply handed out: members, the deployer's float, the rest to the treasury.
Returns the ChainConfig with addresses.

A DAO that is not one key: when deploy_all returns, the timelock owns the token (mint),
FleetPolicy and the RevenueDistributor; the timelock has no admin; the deployer holds only its
float (never delegated, so it votes nothing) and, unless another was named, the guardian's
pause-only e-stop, which a vote revokes. Voting power is spread over the members, and the
deployment is refused when any single holder would reach the quorum alone. On the local chain
the demo members are anvil accounts ``DEMO_MEMBERS`` (public keys), funded and self-delegated
here; on a real network the members are addresses given in ``members`` and delegate themselves
(``depai dao delegate``).
"""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from .client import ChainClient
from .signer import demo_signer
from .config import PEAQ_DID_PRECOMPILE, ChainConfig, ContractAddresses, checksum
from .errors import ChainError, DeployError
from .units import TOKEN

__all__ = ["DeployParams", "deploy_all", "fund_machines", "admit_machines", "DEMO_MEMBERS"]

ZERO = "0x0000000000000000000000000000000000000000"
# anvil mnemonic accounts that stand for the DAO's members in the local demo (beyond the ten
# pre-funded accounts that deployer, machines and requesters use)
DEMO_MEMBERS = (10, 11, 12, 13)


class DeployParams(BaseModel):
    """Deployment settings. Defaults suit a local demo/test (governance rounds take seconds)."""

    model_config = ConfigDict(extra="forbid")

    initial_supply: int = Field(10_000_000 * TOKEN, ge=0, description="FLEET minted, then handed out (members, float, treasury)")
    voting_delay_blocks: int = Field(1, ge=0, description="blocks between propose and vote start")
    voting_period_blocks: int = Field(5, ge=1, description="blocks a vote is open")
    proposal_threshold: int = Field(1_000 * TOKEN, ge=0, description="votes needed to propose")
    quorum_percent: int = Field(15, ge=1, le=100, description="share of supply that must vote for (or abstain)")
    timelock_delay_s: int = Field(1, ge=0, description="seconds between queue and execute")
    max_speed: float = Field(1.0, gt=0, le=50, description="initial FleetPolicy max speed, m/s")
    min_task_price: int = Field(1 * TOKEN, ge=0)
    spending_cap: int = Field(0, ge=0, description="per machine per day; 0 = none")
    min_stake: int = Field(100 * TOKEN, ge=0)
    slash_bps: int = Field(5000, ge=0, le=10000, description="share of stake slashed on a violation")
    guardian: str | None = Field(None, description="may only pause the fleet, at once (default: deployer; the zero address: none)")
    deploy_did: bool | None = Field(None, description="deploy MachineDID (default: on the local chain only)")
    token_owner_timelock: bool = Field(True, description="hand FleetToken's mint right to the timelock (False: local tests only)")
    max_arrival_tolerance: float = Field(2.0, gt=0, le=1000, description="FleetPolicy's cap on a task's arrival tolerance, m")
    fleet_owner: str | None = Field(None, description="may admit/revoke TaskMarket machines besides the DAO (default: deployer; zero address: DAO only)")
    admit: list[str] = Field(default_factory=list, description="machines admitted to the TaskMarket at deploy")
    admit_demo_machines: int = Field(3, ge=0, le=9, description="local chain: anvil demo accounts 1..N admitted too (`chain up`'s demo machines)")
    protocol_fee_bps: int = Field(0, ge=0, le=1000, description="DAO fee on task payouts (a vote changes it; capped at 10 %)")
    members: dict[str, int] = Field(default_factory=dict, description="address -> FLEET for the DAO's members (they delegate themselves)")
    demo_members: int = Field(len(DEMO_MEMBERS), ge=0, le=len(DEMO_MEMBERS),
                              description="local chain: anvil accounts DEMO_MEMBERS[:n] become members, funded and self-delegated")
    demo_member_tokens: int = Field(1_000_000 * TOKEN, ge=0, description="FLEET each demo member gets")
    deployer_float: int = Field(1_000_000 * TOKEN, ge=0, description="FLEET the deployer keeps to fund machines/requesters (never delegated)")


def deploy_all(client: ChainClient, params: DeployParams | None = None, *, progress: Callable[[str], None] | None = None) -> ChainConfig:
    p = params or DeployParams()
    say = progress or (lambda _msg: None)
    me = client.signer.address if client.signer else None
    if me is None:
        raise DeployError("deploying needs a signing key")
    step = "start"
    try:
        start_block = client.block_number()
        step = "FleetToken"
        say("deploying FleetToken")
        token = client.deploy("FleetToken", me, p.initial_supply)
        step = "FleetTimelock"
        say("deploying FleetTimelock")
        timelock = client.deploy("FleetTimelock", p.timelock_delay_s, [], [ZERO], me)
        step = "FleetGovernor"
        say("deploying FleetGovernor")
        governor = client.deploy("FleetGovernor", token.address, timelock.address, p.voting_delay_blocks,
                                 p.voting_period_blocks, p.proposal_threshold, p.quorum_percent)
        step = "timelock roles"
        say("wiring timelock roles (governor proposes and cancels; anyone executes)")
        proposer = timelock.call("PROPOSER_ROLE")
        canceller = timelock.call("CANCELLER_ROLE")
        admin = timelock.call("DEFAULT_ADMIN_ROLE")
        timelock.transact("grantRole", proposer, governor.address)
        timelock.transact("grantRole", canceller, governor.address)
        step = "FleetPolicy"
        say("deploying FleetPolicy")
        policy = client.deploy("FleetPolicy", me, int(round(p.max_speed * 1000)), p.min_task_price, p.spending_cap)
        policy.transact("setGuardian", checksum(p.guardian) if p.guardian else me)
        if int(round(p.max_arrival_tolerance * 1000)) != policy.call("maxArrivalToleranceMm"):
            policy.transact("setMaxArrivalTolerance", int(round(p.max_arrival_tolerance * 1000)))
        if p.protocol_fee_bps:
            policy.transact("setProtocolFee", p.protocol_fee_bps)
        policy.transact("transferOwnership", timelock.address)
        deploy_did = client.config.is_local if p.deploy_did is None else p.deploy_did
        if deploy_did:
            step = "MachineDID"
            say("deploying MachineDID (stands in for peaq's DID precompile)")
            did_address = client.deploy("MachineDID").address
        else:
            did_address = client.config.did_address or PEAQ_DID_PRECOMPILE
        step = "DataRegistry"
        say("deploying DataRegistry")
        data = client.deploy("DataRegistry")
        step = "TaskMarket"
        say("deploying TaskMarket")
        owner = checksum(p.fleet_owner) if p.fleet_owner else me
        market = client.deploy("TaskMarket", token.address, did_address, policy.address, data.address, p.min_stake, p.slash_bps,
                               timelock.address, owner)
        admit = [checksum(a) for a in p.admit]
        if client.config.is_local:
            from .signer import demo_signer
            admit += [demo_signer(i, client.config.chain_id).address for i in range(1, p.admit_demo_machines + 1)]
        if admit and owner == me:
            step = "admit machines"
            say(f"admitting {len(admit)} machine(s) to the TaskMarket")
            market.transact("admitMachines", admit)
        step = "RevenueDistributor"
        say("deploying RevenueDistributor (owned by the timelock; treasury and market escrow excluded)")
        distributor = client.deploy("RevenueDistributor", token.address, timelock.address, [timelock.address, market.address])
        step = "supply"
        _hand_out_supply(client, p, token, timelock.address, say)
        if p.token_owner_timelock:
            token.transact("transferOwnership", timelock.address)
        step = "renounce timelock admin"
        timelock.transact("renounceRole", admin, me)
    except ChainError as e:
        raise DeployError(f"deploy failed at step '{step}': {e}") from e
    contracts = ContractAddresses(
        FleetToken=token.address,
        FleetTimelock=timelock.address,
        FleetGovernor=governor.address,
        FleetPolicy=policy.address,
        MachineDID=did_address if deploy_did else None,
        DataRegistry=data.address,
        TaskMarket=market.address,
        RevenueDistributor=distributor.address,
    )
    genesis = client.get_block(0)
    return client.config.model_copy(update={"contracts": contracts, "did_address": did_address, "deploy_block": start_block,
                                            "genesis_hash": client.genesis_hash(refresh=True),
                                            "genesis_timestamp": int(genesis["timestamp"], 16)})


def admit_machines(client: ChainClient, machines: list[str]) -> None:
    """Admit machines to the TaskMarket (``client``: the fleet owner, or on a local chain anyone:
    anvil impersonates the timelock). Idempotent."""
    market = client.contract("TaskMarket")
    todo = [checksum(m) for m in machines if not market.call("admitted", checksum(m))]
    if not todo:
        return
    role = market.call("ADMITTER_ROLE")
    if client.signer is not None and market.call("hasRole", role, client.signer.address):
        market.transact("admitMachines", todo)
        return
    if not client.config.is_local:
        raise DeployError("admitting machines needs the fleet owner's key or a DAO vote (admitMachines through the timelock)")
    timelock = client.contract("FleetTimelock").address
    client.rpc_local("anvil_impersonateAccount", [timelock])
    try:
        client.rpc_local("anvil_setBalance", [timelock, hex(10**20)])
        tx = {"from": timelock, "to": market.address, "data": market.abi.encode_call("admitMachines", (todo,))}
        r = client.wait_receipt(client.rpc.call("eth_sendTransaction", [tx]))
        if r.status != 1:
            raise DeployError("admitMachines as the timelock reverted")
    finally:
        client.rpc_local("anvil_stopImpersonatingAccount", [timelock])


def _hand_out_supply(client: ChainClient, p: DeployParams, token, treasury: str, say: Callable[[str], None]) -> None:
    """Members get their tokens (local demo members also delegate to themselves), the deployer
    keeps its float, the treasury gets the rest. Refused when one holder could reach quorum."""
    me = client.signer.address
    members = {checksum(a): int(v) for a, v in p.members.items()}
    demo = []
    if p.demo_members and client.config.is_local:
        demo = [demo_signer(i, client.config.chain_id) for i in DEMO_MEMBERS[: p.demo_members]]
        for s in demo:
            members.setdefault(s.address, p.demo_member_tokens)
    if not members:
        raise DeployError("no DAO members: give `members` (address -> tokens); without voters nobody could ever pass a proposal")
    if me in members:
        raise DeployError("the deployer cannot be a member (its float never votes)")
    supply = token.call("totalSupply")
    handed = sum(members.values()) + p.deployer_float
    if handed > supply:
        raise DeployError(f"members and float need {handed} base units, the supply is {supply}")
    quorum = supply * p.quorum_percent // 100
    biggest = max([*members.values(), p.deployer_float])
    if biggest >= quorum:
        raise DeployError(f"one holder would hold {biggest} >= the quorum {quorum} ({p.quorum_percent} % of {supply}) "
                          "and could pass proposals alone: spread the supply or raise quorum_percent")
    say(f"handing out FLEET: {len(members)} member(s), deployer float {p.deployer_float}, treasury {supply - handed}")
    calls = [token.prepare("transfer", a, v) for a, v in members.items() if v]
    if supply - handed:
        calls.append(token.prepare("transfer", treasury, supply - handed))
    for o in client.send_many(calls):
        if not o.ok:
            raise DeployError(f"handing out the supply failed: {o.error}")
    for s in demo:
        client.rpc_local("anvil_setBalance", [s.address, hex(100 * 10**18)])
        ChainClient(client.config, s).contract("FleetToken", token.address).transact("delegate", s.address)
    if demo:
        say(f"demo members {', '.join(str(i) for i in DEMO_MEMBERS[: len(demo)])} (anvil demo keys) delegated to themselves")


def fund_machines(client: ChainClient, machines: list[str], tokens_each: int, *, native_each: int = 0) -> None:
    """Give each machine FLEET tokens (and native gas coin when ``native_each``), batched."""
    token = client.contract("FleetToken")
    calls = [token.prepare("transfer", checksum(m), tokens_each) for m in machines]
    for o in client.send_many(calls):
        if not o.ok:
            raise DeployError(f"funding failed: {o.error}")
    if native_each:
        if client.config.is_local:
            for m in machines:
                client.rpc_local("anvil_setBalance", [checksum(m), hex(native_each)])
        else:
            raise DeployError("native funding on a real network: send coins from a wallet, not from the bridge")
