"""Chain identity beyond the chain id (issue 8, invariant 3): the genesis hash recorded at deploy,
verify_chain() refusing another chain with the same id, content-derived batch ids."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import keccak

from depai_nodes.chain.anvil import Anvil
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.errors import ChainError, ChainResetError
from depai_nodes.chain.intents import content_batch_id


def test_content_batch_id_is_keccak_of_abi_encoded_content():
    root = bytes(range(32))
    enc = eth_abi.encode(["bytes32", "uint64", "uint64", "uint64"], [root, 7, 100, 200])
    want = keccak(enc)[:16].hex()
    assert content_batch_id(root, 7, 100, 200) == want
    assert content_batch_id("0x" + root.hex(), 7, 100, 200) == want
    assert len(want) == 32 and want == want.lower()
    # every field matters
    assert len({content_batch_id(root, 7, 100, 200), content_batch_id(root, 8, 100, 200),
                content_batch_id(root, 7, 101, 200), content_batch_id(root, 7, 100, 201),
                content_batch_id(bytes(32), 7, 100, 200)}) == 5
    for bad in (("0x12", 1, 1, 1), (root, -1, 1, 1), (root, 1, 2**64, 1), (root, True, 1, 1), (b"x" * 31, 1, 1, 1)):
        with pytest.raises(ValueError):
            content_batch_id(*bad)


def test_deploy_records_genesis_and_verify_chain_refuses_another_chain(deployed):
    cfg = deployed.config
    c = deployed.client()
    assert cfg.genesis_hash == c.genesis_hash() == c.get_block(0)["hash"].lower()
    assert cfg.deploy_block >= 0
    assert c.verify_chain() == cfg.chain_id
    # another chain with the same id (a fresh anvil; its own genesis time so it cannot share the
    # second of the session's): refused with the typed error
    with Anvil(extra_args=["--timestamp", "1000000"]) as other:
        moved = cfg.model_copy(update={"rpc_url": other.rpc_url})
        with pytest.raises(ChainResetError) as e:
            ChainClient(moved)
        assert isinstance(e.value, ChainError)
        assert e.value.expected == cfg.genesis_hash and e.value.actual != cfg.genesis_hash


def test_backoff_is_bounded_and_never_overflows():
    from depai_nodes.chain.backoff import Backoff, backoff_delay

    b = Backoff(0.002, 0.02)
    delays = [b.next() for _ in range(5000)]  # the old 0.002 * 2**n raised OverflowError at n = 1024
    assert delays[:4] == [0.002, 0.004, 0.008, 0.016] and max(delays) == 0.02 and delays[-1] == 0.02
    assert backoff_delay(0.5, 30.0, 10**9) == 30.0 and backoff_delay(0.5, 30.0, 0) == 0.5


def test_a_long_receipt_wait_ends_in_a_timeout_not_an_overflow(deployed):
    """Thousands of polls (1 ms apart for 3 s): the wait ends with the typed TxTimeoutError."""
    from depai_nodes.chain.errors import TxTimeoutError

    c = deployed.client(receipt_poll_s=0.001)
    missing = "0x" + "ab" * 32
    with pytest.raises(TxTimeoutError) as e:
        c.wait_receipt(missing, timeout_s=3.0)
    assert e.value.tx_hash == missing
