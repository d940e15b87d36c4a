"""A machine's on-chain identity, read: ``read_identity`` gathers what operators and other nodes
want to see (DID, stake, balances, active tasks) at one block.

ROS-free and key-free: it reads through a read-only ``Fleet(client, address)``. Writing the
identity (the DID attribute, the stake) is an intent the identity node asks the machine's wallet
to sign (``depai_nodes.wallet.core.ensure_identity`` behind ``wallet/ensure_identity``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.fleet import MACHINE_ATTRIBUTE, Fleet

__all__ = ["IdentityState", "read_identity"]


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
