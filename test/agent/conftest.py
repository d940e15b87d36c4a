"""The chain fixtures of test/chain (a real anvil for the session, the contracts deployed once,
evm_snapshot/evm_revert around each test) for the agent's tests, and its helpers (chainkit)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

_CHAIN_TESTS = Path(__file__).resolve().parent.parent / "chain"
if str(_CHAIN_TESTS) not in sys.path:
    sys.path.insert(0, str(_CHAIN_TESTS))

_spec = importlib.util.spec_from_file_location("depai_chain_test_fixtures", _CHAIN_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

anvil_node = _fixtures.anvil_node
deployed = _fixtures.deployed


@pytest.fixture()
def chain(deployed):
    """The deployed chain, reverted to the post-deploy state after the test - and its clock set to
    the wall clock first: evm_revert also rewinds anvil's clock by the time since the snapshot, and
    the market compares the chain's time with telemetry's (wall-clock) batch times and arrivals."""
    c = deployed.client()
    snap = c.rpc_local("evm_snapshot")
    c.rpc_local("anvil_setTime", [int(time.time())])
    c.mine(1)
    yield deployed
    c.rpc_local("evm_setAutomine", [True])
    assert c.rpc_local("evm_revert", [snap]) is True
_wallet_state_dir = _fixtures._wallet_state_dir
