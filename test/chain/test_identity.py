"""Machine identity: DID attribute and market stake ensured on chain, standing read back; the
identity node publishing it over DDS, and reporting (not crashing on) an unreachable chain."""

from chainkit import MACHINE2, STRANGER, TOKEN

from depai.msg import MachineIdentity
from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.identity.core import ensure_identity, read_identity


def test_ensure_is_idempotent_and_follows_renames(chain):
    f = Fleet(chain.client(STRANGER))
    before = read_identity(f)
    assert before.machine_name == "" and not before.did_valid and not before.market_registered
    steps = ensure_identity(f, "rover-7", stake=150 * TOKEN)
    assert steps == ["added DID attribute depai:machine=rover-7", f"registered in the TaskMarket with stake {150 * TOKEN}"]
    assert ensure_identity(f, "rover-7", stake=150 * TOKEN) == []
    assert ensure_identity(f, "rover-7b", stake=200 * TOKEN) == [
        "updated DID attribute depai:machine=rover-7b", f"topped the stake up to {200 * TOKEN}"]
    s = read_identity(f)
    assert s.machine_name == "rover-7b" and s.did_valid and s.market_registered and s.stake == 200 * TOKEN
    assert s.token_balance == before.token_balance - 200 * TOKEN and s.native_balance > 0 and s.active_tasks == 0


def test_identity_node_publishes_standing(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    start_node("identity", namespace="robot2", parameters={"chain_config": str(cfg), "demo_index": MACHINE2,
                                                          "stake": str(100 * TOKEN), "period": 0.5})
    inbox = ros_node.subscribe(MachineIdentity, "/robot2/identity", LATCHED_QOS)
    msg = inbox.wait_for(lambda m: m.market_registered, timeout=20)
    assert msg.machine_name == "robot2" and msg.did_valid and msg.stake == str(100 * TOKEN) and msg.error == ""
    assert msg.address == chain.address(MACHINE2) and msg.chain_id == 31337 and msg.block_number > 0


def test_identity_node_reports_an_unreachable_chain(chain, tmp_path, start_node, ros_node):
    dead = chain.config.model_copy(update={"rpc_url": "http://127.0.0.1:9", "rpc_timeout_s": 0.5})
    cfg = save_config(dead, tmp_path / "chain.json")
    node = start_node("identity", namespace="robot3", parameters={"chain_config": str(cfg), "demo_index": 3, "period": 0.5})
    inbox = ros_node.subscribe(MachineIdentity, "/robot3/identity", LATCHED_QOS)
    msg = inbox.wait_for(lambda m: m.error != "", timeout=20)
    assert "RpcUnavailableError" in msg.error and not msg.market_registered
    assert node.process.poll() is None
