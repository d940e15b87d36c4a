"""A machine's on-chain identity: make sure it exists, then read its standing.

ROS-free. ``ensure_identity`` writes the machine's ``depai:machine`` DID attribute (add, or
update when the name changed) and, when asked, registers it in the TaskMarket with a stake: the
steps a robot needs before it can take paid work. ``read_identity`` gathers what operators and
other nodes want to see (DID, stake, balances, active tasks) at one block.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.fleet import MACHINE_ATTRIBUTE, Fleet

__all__ = ["IdentityState", "ensure_identity", "read_identity"]


class IdentityState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str
    chain_id: int
    did_registry: str
    machine_name: str = ""
    did_valid: bool = False
    market_registered: bool = False
    stake: int = 0
    token_balance: int = 0
    native_balance: int = 0
    active_tasks: int = 0
    block_number: int = 0


def ensure_identity(fleet: Fleet, name: str, stake: int = 0, validity_blocks: int = 0) -> list[str]:
    """Create or fix the DID attribute and (stake > 0) the market registration; returns what was done."""
    done = []
    value = name.encode()
    try:
        current = fleet.attribute(fleet.me, MACHINE_ATTRIBUTE)["value"]
    except ContractRevertError as e:
        if e.error != "AttributeNotFound":
            raise
        current = None
    if current is None:
        fleet.did.transact("addAttribute", fleet.me, MACHINE_ATTRIBUTE, value, validity_blocks)
        done.append(f"added DID attribute depai:machine={name}")
    elif current != value:
        fleet.did.transact("updateAttribute", fleet.me, MACHINE_ATTRIBUTE, value, validity_blocks)
        done.append(f"updated DID attribute depai:machine={name}")
    if stake > 0:
        info = fleet.machine_info()
        if not info.registered:
            fleet.register_machine(stake)
            done.append(f"registered in the TaskMarket with stake {stake}")
        elif info.stake < stake:
            fleet.approve(stake - info.stake)
            fleet.market.transact("addStake", stake - info.stake)
            done.append(f"topped the stake up to {stake}")
    return done


def read_identity(fleet: Fleet) -> IdentityState:
    client = fleet.client
    block = client.block_number()
    try:
        name = fleet.did.call("readAttribute", fleet.me, MACHINE_ATTRIBUTE, block=block)["value"].decode(errors="replace")
    except ContractRevertError as e:
        if e.error != "AttributeNotFound":
            raise
        name = ""
    # a precompile may lack MachineDID's isValid helper: validity is checked against the block here
    valid = False
    if name:
        attr = fleet.did.call("readAttribute", fleet.me, MACHINE_ATTRIBUTE, block=block)
        valid = block <= attr["validity"]
    info = fleet.market.call("machineInfo", fleet.me, block=block)
    return IdentityState(
        address=fleet.me,
        chain_id=client.config.chain_id,
        did_registry=fleet.did.address,
        machine_name=name,
        did_valid=valid,
        market_registered=info["registered"],
        stake=info["stake"],
        token_balance=fleet.token.call("balanceOf", fleet.me, block=block),
        native_balance=int(client.rpc.call("eth_getBalance", [fleet.me, hex(block)]), 16),
        active_tasks=info["activeTasks"],
        block_number=block,
    )
