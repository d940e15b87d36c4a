"""Machine identity: standing read back through a key-free, read-only client; the identity node
asking the wallet (the only process with the key) to write the DID attribute and stake, waiting
for a wallet that is not there yet, and reporting (not crashing on) an unreachable chain."""

import pytest
from chainkit import MACHINE, MACHINE2, TOKEN

from depai.msg import MachineIdentity
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import save_config
from depai_nodes.chain.errors import SignerError
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.intents import IdentityRequest
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.identity.core import read_identity
from depai_nodes.wallet.core import IntentPolicy, Intents


def test_standing_is_read_without_a_key(chain):
    address = chain.address(MACHINE2)
    reader = Fleet(ChainClient(chain.config, None), address)  # what the identity node holds: no signer
    before = read_identity(reader)
    assert before.address == address and before.machine_name == "" and not before.did_valid and not before.market_registered
    Intents(Fleet(chain.client(MACHINE2)), IntentPolicy(max_stake=150 * TOKEN, machine_name="rover-7")).ensure_identity(IdentityRequest("rover-7", str(150 * TOKEN)))
    s = read_identity(reader)
    assert s.machine_name == "rover-7" and s.did_valid and s.market_registered and s.stake == 150 * TOKEN
    assert s.token_balance == before.token_balance - 150 * TOKEN and s.native_balance > 0 and s.active_tasks == 0
    with pytest.raises(SignerError, match="read-only"):
        reader.register_did()  # the reader cannot sign even by mistake


def test_identity_node_waits_for_the_wallet_then_has_it_sign(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    inbox = ros_node.subscribe(MachineIdentity, "/robot2/identity", LATCHED_QOS)
    start_node("identity", namespace="robot2", parameters={"chain_config": str(cfg), "stake": str(100 * TOKEN), "period": 0.5})
    waiting = inbox.wait_for(lambda m: m.error != "", timeout=20)
    assert waiting.error.startswith("WalletUnavailable") and waiting.address == "" and not waiting.market_registered
    start_node("wallet", namespace="robot2", parameters={"chain_config": str(cfg), "demo_index": MACHINE2, "max_stake": str(100 * TOKEN)})
    msg = inbox.wait_for(lambda m: m.market_registered, timeout=30)
    assert msg.machine_name == "robot2" and msg.did_valid and msg.stake == str(100 * TOKEN) and msg.error == ""
    assert msg.address == chain.address(MACHINE2) and msg.chain_id == 31337 and msg.block_number > 0


def test_identity_node_reports_a_refusing_wallet_and_an_unreachable_chain(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    wallet = start_node("wallet", namespace="robot3", parameters={"chain_config": str(cfg), "demo_index": MACHINE, "max_stake": str(10 * TOKEN)})
    inbox = ros_node.subscribe(MachineIdentity, "/robot3/identity", LATCHED_QOS)
    start_node("identity", namespace="robot3", parameters={"chain_config": str(cfg), "stake": str(100 * TOKEN), "period": 0.5})
    refused = inbox.wait_for(lambda m: "REJECTED_BY_POLICY" in m.error, timeout=30)
    assert "max_stake" in refused.error and refused.address == chain.address(MACHINE) and not refused.market_registered
    assert refused.block_number > 0  # still reads and publishes its standing
    wallet.wait_for_log("above the wallet's max_stake", timeout=10)

    dead = chain.config.model_copy(update={"rpc_url": "http://127.0.0.1:9", "rpc_timeout_s": 0.5})
    dead_cfg = save_config(dead, tmp_path / "dead.json")
    start_node("wallet", namespace="robot4", parameters={"chain_config": str(dead_cfg), "demo_index": 3, "max_stake": "0"})
    node = start_node("identity", namespace="robot4", parameters={"chain_config": str(dead_cfg), "period": 0.5})
    inbox4 = ros_node.subscribe(MachineIdentity, "/robot4/identity", LATCHED_QOS)
    msg = inbox4.wait_for(lambda m: "RpcUnavailableError" in m.error, timeout=30)
    assert "CHAIN_UNAVAILABLE" in msg.error and not msg.market_registered and msg.address == chain.address(3)
    assert node.process.poll() is None
