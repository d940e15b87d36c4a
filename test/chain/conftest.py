"""A real anvil for the whole session, the contracts deployed once, evm_snapshot/evm_revert
around every test so each starts from the same freshly deployed state."""

from __future__ import annotations

import pytest
from chainkit import DEPLOYER, MACHINE, MACHINE2, PARAMS, REQUESTER, STRANGER, VOTER, Chain

from depai_nodes.chain.anvil import Anvil
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig, KeySource
from depai_nodes.chain.deploy import TOKEN, deploy_all, fund_machines
from depai_nodes.chain.signer import demo_signer


@pytest.fixture(scope="session")
def anvil_node():
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def deployed(anvil_node) -> Chain:
    base = ChainConfig(name="test", rpc_url=anvil_node.rpc_url, ws_url=anvil_node.ws_url, chain_id=LOCAL_CHAIN_ID,
                       key=KeySource(kind="demo"), receipt_timeout_s=20)
    client = ChainClient(base, demo_signer(DEPLOYER, LOCAL_CHAIN_ID))
    cfg = deploy_all(client, PARAMS)
    chain = Chain(anvil_node, cfg)
    c = chain.client(DEPLOYER)
    fund_machines(c, [chain.address(i) for i in (MACHINE, MACHINE2, REQUESTER, VOTER, STRANGER)], 10_000 * TOKEN)
    return chain


@pytest.fixture()
def chain(deployed) -> Chain:
    """The deployed chain, reverted to the post-deploy state after the test."""
    c = deployed.client()
    snap = c.rpc_local("evm_snapshot")
    yield deployed
    c.rpc_local("evm_setAutomine", [True])
    assert c.rpc_local("evm_revert", [snap]) is True


@pytest.fixture(autouse=True)
def _wallet_state_dir(tmp_path, monkeypatch):
    """Each test's wallets keep their durable ledgers in the test's own folder (never in the
    checkout's .depai/state, where one test run would see the request ids of the last)."""
    monkeypatch.setenv("DEPAI_STATE_DIR", str(tmp_path / "wallet-state"))
