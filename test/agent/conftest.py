"""The chain fixtures of test/chain (a real anvil for the session, the contracts deployed once,
evm_snapshot/evm_revert around each test) for the agent's tests, and its helpers (chainkit)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_CHAIN_TESTS = Path(__file__).resolve().parent.parent / "chain"
if str(_CHAIN_TESTS) not in sys.path:
    sys.path.insert(0, str(_CHAIN_TESTS))

_spec = importlib.util.spec_from_file_location("depai_chain_test_fixtures", _CHAIN_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

anvil_node = _fixtures.anvil_node
deployed = _fixtures.deployed
chain = _fixtures.chain
_wallet_state_dir = _fixtures._wallet_state_dir
