"""Helpers shared by the chain tests (imported as a plain module: pytest puts this folder on sys.path)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from depai_nodes.chain.anvil import Anvil
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig
from depai_nodes.chain.deploy import TOKEN, DeployParams
from depai_nodes.chain.signer import demo_signer

# Roles of the anvil demo accounts in these tests
DEPLOYER, MACHINE, MACHINE2, REQUESTER, VOTER, STRANGER = 0, 1, 2, 3, 4, 5

PARAMS = DeployParams(voting_delay_blocks=1, voting_period_blocks=5, quorum_percent=4, timelock_delay_s=60,
                      max_speed=1.5, min_task_price=1 * TOKEN, spending_cap=0, min_stake=100 * TOKEN, slash_bps=5000)


@dataclass
class Chain:
    anvil: Anvil
    config: ChainConfig

    def client(self, who: int = DEPLOYER, **overrides) -> ChainClient:
        cfg = self.config.model_copy(update=overrides) if overrides else self.config
        return ChainClient(cfg, demo_signer(who, LOCAL_CHAIN_ID))

    def address(self, who: int) -> str:
        return demo_signer(who, LOCAL_CHAIN_ID).address

    def signer(self, who: int):
        return demo_signer(who, LOCAL_CHAIN_ID)

    def now(self) -> int:
        return int(self.client().get_block("latest")["timestamp"], 16)



def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.01):
    """Poll until predicate() is truthy (returns it) or fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")
