"""/diagnostics of the chain-facing nodes (issue 11, item 4) on a real anvil, over DDS: the wallet's
chain entry (the block height when the RPC answers, WARN then ERROR when it does not), its
spending-cap policy (ERROR without a fleet policy: transfers refused), the identity's DID, and
telemetry's anchoring backlog (WARN with the count while no wallet anchors, OK once it has), and
the requester's chain and posting entries (WARN while its wallet does not answer)."""

import socket
import time

from chainkit import MACHINE
from diagkit import wait_status
from diagkit import values as status_values

from depai.msg import FleetPolicy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry

from depai_nodes.chain.config import save_config
from depai_nodes.common.diagnostics import ERROR, OK, WARN
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wallet_chain_policy_and_identity_entries(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    head = chain.client().block_number()
    start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE,
                                                          "state_dir": str(tmp_path / "state")})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    ok = wait_status(inbox, "/robot1/wallet: chain", OK)
    assert int(status_values(ok)["block"]) >= head and ok.message == f"block {status_values(ok)['block']}"
    assert status_values(ok)["rpc_url"] == chain.config.rpc_url
    # follow_policy and no /fleet/policy yet: no cap, every transfer refused (fail closed)
    none = wait_status(inbox, "/robot1/wallet: policy", ERROR)
    assert none.message.startswith("no spending cap") and status_values(none)["cap"] == ""
    assert wait_status(inbox, "/robot1/wallet: ledger", OK).message == "0 pending, 0 submitted"
    assert wait_status(inbox, "/robot1/wallet: lifecycle", OK).message == "active"
    pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    ros_node.wait_for_subscribers(pub)
    policy = FleetPolicy(version=4, max_speed=0.5, spending_cap="5000", min_task_price="0", source="test", paused=True)
    policy.header.frame_id = "map"
    pub.publish(policy)
    capped = wait_status(inbox, "/robot1/wallet: policy", OK)
    v = status_values(capped)
    assert (v["cap"], v["cap_from"], v["spent_today"], v["allowed_payees"], v["policy_version"]) == ("5000", "fleet policy", "0", "0", "4")
    assert "no allowed payees (transfers off)" in capped.message and "fleet paused (policy v4)" in capped.message
    # the identity asks the wallet for its DID attribute and reads it back from the chain
    start_node("identity", namespace="robot1", parameters={"chain_config": str(cfg), "period": 1.0})
    did = wait_status(inbox, "/robot1/identity: did", OK, timeout=60)
    assert did.message.startswith("DID 'robot1' valid") and status_values(did)["did_valid"] == "True"
    read = wait_status(inbox, "/robot1/identity: chain", OK)
    assert int(status_values(read)["block"]) > head  # the DID write was mined after the start


def test_wallet_chain_entry_warns_then_errors_when_the_rpc_is_unreachable(chain, tmp_path, start_node, ros_node):
    dead = chain.config.model_copy(update={"rpc_url": f"http://127.0.0.1:{_free_port()}", "rpc_timeout_s": 1.0})
    cfg = save_config(dead, tmp_path / "dead.json")
    start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE,
                                                          "state_dir": str(tmp_path / "state"), "follow_policy": False})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    retrying = wait_status(inbox, "/robot1/wallet: chain", WARN, where=lambda s: "retrying" in s.message)
    assert status_values(retrying)["block"] == "" and int(status_values(retrying)["failures"]) >= 1
    assert status_values(retrying)["error"].startswith("RpcUnavailableError")
    down = wait_status(inbox, "/robot1/wallet: chain", ERROR)  # beyond rpc_timeout_s + 5 s without a good read
    assert down.message.startswith("chain unreachable for") and "(limit 6 s)" in down.message
    assert float(status_values(down)["down_s"]) >= 6.0
    # follow_policy false, spending_cap 0: a cap (none) from the parameter, not an error
    assert wait_status(inbox, "/robot1/wallet: policy", OK).message.startswith("cap none (parameter)")


def test_telemetry_backlog_counts_unanchored_batches_until_the_wallet_anchors_them(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    start_node("telemetry", namespace="robot1", parameters={
        "batch_period": 1.0, "output_dir": str(tmp_path / "tlm"), "topics": ["odom nav_msgs/msg/Odometry"], "reliable": True,
        "retry_backoff": 0.2, "max_attempts": 2, "rescan_period": 1.0, "chain_config": str(cfg)})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    assert wait_status(inbox, "/robot1/telemetry: input /robot1/odom", WARN).message == "no message yet"
    assert wait_status(inbox, "/robot1/telemetry: backlog", OK).message == "no backlog: 0 batch(es) anchored"
    pub = ros_node.publisher(Odometry, "/robot1/odom", RELIABLE_QOS)
    ros_node.wait_for_subscribers(pub)
    time.sleep(0.5)
    for i in range(30):
        m = Odometry()
        m.pose.pose.position.x = float(i)
        pub.publish(m)
        time.sleep(0.01)
    recorded = wait_status(inbox, "/robot1/telemetry: input /robot1/odom", OK)
    assert status_values(recorded)["messages"] == "30"
    # sealed after batch_period, no wallet to anchor it: WARN with the count, the batch waits on disk
    waiting = wait_status(inbox, "/robot1/telemetry: backlog", WARN)
    v = status_values(waiting)
    assert int(v["pending"]) >= 1 and v["anchored"] == "0" and v["wallet"] == ""
    assert waiting.message.startswith(f"{v['pending']} sealed batch(es) not anchored") and "no wallet" in waiting.message
    start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE,
                                                          "state_dir": str(tmp_path / "state")})
    done = wait_status(inbox, "/robot1/telemetry: backlog", OK, timeout=60, where=lambda s: status_values(s)["anchored"] != "0")
    assert status_values(done)["pending"] == "0" and status_values(done)["failed"] == "0"
    assert done.message == f"no backlog: {status_values(done)['anchored']} batch(es) anchored"


def test_requester_chain_and_posting_entries_without_its_wallet(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    start_node("requester", namespace="requester", parameters={"chain_config": str(cfg), "start_delay": 0.0,
                                                                "retry_period": 0.5, "wallet_timeout": 2.0})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    ok = wait_status(inbox, "/requester/requester: chain", OK)
    assert int(status_values(ok)["block"]) >= 0 and ok.message == f"block {status_values(ok)['block']}"
    # no wallet serves requester/wallet/post_task: a retryable answer, asked again
    waiting = wait_status(inbox, "/requester/requester: posting", WARN)
    assert status_values(waiting)["last_result"] == "WALLET_UNAVAILABLE" and status_values(waiting)["posted"] == "0"
    assert "WalletUnavailable" in waiting.message and waiting.message.endswith("asking again")
