"""Deploying and wiring the DePAI contracts (local anvil or a real network, same code).

Order: FleetToken -> FleetTimelock -> FleetGovernor (timelock roles granted to it, deployer's
admin role renounced) -> FleetPolicy (owned by the timelock) -> MachineDID (only where there
is no DID precompile) -> DataRegistry -> TaskMarket. Returns the ChainConfig with addresses.
"""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from .client import ChainClient
from .config import PEAQ_DID_PRECOMPILE, ChainConfig, ContractAddresses, checksum
from .errors import ChainError, DeployError

__all__ = ["DeployParams", "deploy_all", "fund_machines", "admit_machines"]

ZERO = "0x0000000000000000000000000000000000000000"
TOKEN = 10**18


class DeployParams(BaseModel):
    """Deployment settings. Defaults suit a local demo/test (governance rounds take seconds)."""

    model_config = ConfigDict(extra="forbid")

    initial_supply: int = Field(10_000_000 * TOKEN, ge=0, description="FLEET minted to the deployer")
    voting_delay_blocks: int = Field(1, ge=0, description="blocks between propose and vote start")
    voting_period_blocks: int = Field(5, ge=1, description="blocks a vote is open")
    proposal_threshold: int = Field(0, ge=0, description="votes needed to propose")
    quorum_percent: int = Field(4, ge=0, le=100, description="share of supply that must vote")
    timelock_delay_s: int = Field(1, ge=0, description="seconds between queue and execute")
    max_speed: float = Field(1.0, gt=0, le=50, description="initial FleetPolicy max speed, m/s")
    min_task_price: int = Field(1 * TOKEN, ge=0)
    spending_cap: int = Field(0, ge=0, description="per machine per day; 0 = none")
    min_stake: int = Field(100 * TOKEN, ge=0)
    slash_bps: int = Field(5000, ge=0, le=10000, description="share of stake slashed on a violation")
    guardian: str | None = Field(None, description="may pause the fleet at once (default: deployer)")
    deploy_did: bool | None = Field(None, description="deploy MachineDID (default: on the local chain only)")
    token_owner_timelock: bool = Field(False, description="hand FleetToken's mint right to the timelock")
    max_arrival_tolerance: float = Field(2.0, gt=0, le=1000, description="FleetPolicy's cap on a task's arrival tolerance, m")
    fleet_owner: str | None = Field(None, description="may admit/revoke TaskMarket machines besides the DAO (default: deployer; zero address: DAO only)")
    admit: list[str] = Field(default_factory=list, description="machines admitted to the TaskMarket at deploy")
    admit_demo_machines: int = Field(3, ge=0, le=9, description="local chain: anvil demo accounts 1..N admitted too (`chain up`'s demo machines)")


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
        step = "delegation"
        token.transact("delegate", me)  # the deployer's supply votes until it is distributed
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
    )
    return client.config.model_copy(update={"contracts": contracts, "did_address": did_address, "deploy_block": start_block,
                                            "genesis_hash": client.genesis_hash(refresh=True)})


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
