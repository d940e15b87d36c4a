"""Nothing lost, nothing twice: the data layer across faults of real processes - a chain killed
mid-run and restarted from its state file, a wallet killed while it anchors. Counts asserted:
every sealed batch anchored exactly once, in recording order, every published message in one."""

import os
import signal
import threading
import time

from chainkit import DEPLOYER, MACHINE, PARAMS, wait_for

from depai_nodes.chain.anvil import Anvil, _free_port
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig, KeySource, save_config
from depai_nodes.chain.deploy import deploy_all
from depai_nodes.chain.models import id32
from depai_nodes.chain.signer import demo_signer
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.telemetry.core import list_batches, read_batch


def _own_chain(tmp_path, port):
    state = tmp_path / "anvil-state.json"
    args = ["--state", str(state), "--state-interval", "1"]
    anvil = Anvil(port=port, extra_args=args).start()
    base = ChainConfig(name="faults", rpc_url=anvil.rpc_url, chain_id=LOCAL_CHAIN_ID, key=KeySource(kind="demo"),
                       receipt_timeout_s=5, rpc_timeout_s=2)
    cfg = deploy_all(ChainClient(base, demo_signer(DEPLOYER, LOCAL_CHAIN_ID)), PARAMS)
    return anvil, args, cfg


class _Publisher(threading.Thread):
    def __init__(self, pub, rate_hz=50.0):
        super().__init__(daemon=True)
        self.pub, self.period, self.sent, self.stop = pub, 1.0 / rate_hz, 0, threading.Event()

    def run(self):
        from nav_msgs.msg import Odometry

        while not self.stop.is_set():
            m = Odometry()
            m.pose.pose.position.x = float(self.sent)
            self.pub.publish(m)
            self.sent += 1
            time.sleep(self.period)


def _chain_view(cfg, machine):
    c = ChainClient(cfg, None)
    reg = c.contract("DataRegistry")
    events = [e for e in reg.events("BatchAnchored", 0) if e["machine"] == machine]
    return reg.call("batchCount", machine), events


def _assert_all_anchored_once_in_order(out, cfg, machine, published):
    batches = list_batches(out)
    assert batches and all(s and s["state"] == "anchored" for _, s in batches), [s and s["state"] for _, s in batches]
    count, events = _chain_view(cfg, machine)
    ids = [id32(s["batch_id"]) for _, s in batches]
    assert count == len(batches) == len(events)  # sealed = anchored, no duplicates
    assert [e["batchId"] for e in events] == ids  # in recording order
    assert [e["messageCount"] for e in events] == [s["messages"] for _, s in batches]
    xs = [int(x) for f, _ in batches for x in (_x(m.data) for m in read_batch(f).messages)]
    assert xs == list(range(published))  # every published message, once, in order
    return batches


def _x(cdr: bytes) -> float:
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message

    return deserialize_message(cdr, Odometry).pose.pose.position.x


def _telemetry_params(out, cfg_path):
    return {"batch_period": 1.0, "output_dir": str(out), "topics": ["odom nav_msgs/msg/Odometry"], "reliable": True,
            "retry_backoff": 0.2, "max_attempts": 3, "rescan_period": 1.0, "wallet_timeout": 20.0,
            "chain_config": str(cfg_path)}


def test_chain_killed_mid_run_and_restarted_nothing_lost_nothing_twice(tmp_path, start_node, ros_node):
    from nav_msgs.msg import Odometry

    port = _free_port()
    anvil, args, cfg = _own_chain(tmp_path, port)
    try:
        cfg_path = save_config(cfg, tmp_path / "chain.json")
        out = tmp_path / "tlm"
        start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg_path), "demo_index": MACHINE})
        tlm = start_node("telemetry", namespace="robot1", parameters=_telemetry_params(out, cfg_path))
        pub = ros_node.publisher(Odometry, "/robot1/odom", RELIABLE_QOS)
        tlm.wait_for_log("recording", timeout=20)
        ros_node.wait_for_subscribers(pub)
        time.sleep(0.5)  # discovery settles on the subscriber's side too
        p = _Publisher(pub)
        p.start()
        wait_for(lambda: "anchored tlm_" in tlm.log() or " in block " in tlm.log(), timeout_s=30)
        os.kill(anvil.proc.pid, signal.SIGKILL)  # the chain dies mid-run
        anvil.proc.wait()
        time.sleep(4.0)  # batches keep being sealed; they queue on disk
        pending = [s["state"] for _, s in list_batches(out) if s]
        assert pending.count("pending") >= 2, pending
        anvil = Anvil(port=port, extra_args=args).start()  # back, from its state file
        time.sleep(2.0)
        p.stop.set()
        p.join()
        machine = demo_signer(MACHINE, LOCAL_CHAIN_ID).address
        wait_for(lambda: len(list_batches(out)) > 0 and all(s and s["state"] == "anchored" for _, s in list_batches(out))
                 and sum(s["messages"] for _, s in list_batches(out)) == p.sent, timeout_s=90, interval_s=0.2)
        batches = _assert_all_anchored_once_in_order(out, cfg, machine, p.sent)
        assert len(batches) >= 5
        assert "CHAIN_UNAVAILABLE" in tlm.log()
        # the anchors the chain lost with its last second of state (if any) were noticed and re-done: once
        assert tlm.log().count("chain reset detected") <= 1
    finally:
        anvil.stop()


def test_wallet_killed_while_anchoring_causes_no_duplicate(tmp_path, start_node, ros_node):
    from nav_msgs.msg import Odometry

    port = _free_port()
    anvil, args, cfg = _own_chain(tmp_path, port)
    try:
        cfg_path = save_config(cfg, tmp_path / "chain.json")
        out = tmp_path / "tlm"
        c = ChainClient(cfg, None)
        c.rpc_local("evm_setAutomine", [False])  # transactions wait in the pool until we mine
        wallet = start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg_path), "demo_index": MACHINE})
        tlm = start_node("telemetry", namespace="robot1", parameters=_telemetry_params(out, cfg_path))
        pub = ros_node.publisher(Odometry, "/robot1/odom", RELIABLE_QOS)
        tlm.wait_for_log("recording", timeout=20)
        ros_node.wait_for_subscribers(pub)
        time.sleep(0.5)  # discovery settles on the subscriber's side too
        p = _Publisher(pub)
        p.start()
        time.sleep(1.5)
        p.stop.set()
        p.join()
        # the wallet has sent the anchor transaction and waits for its receipt: kill it there
        wait_for(lambda: int(c.rpc_local("txpool_status")["pending"], 16) >= 1, timeout_s=30, interval_s=0.05)
        os.kill(wallet.process.pid, signal.SIGKILL)
        wallet.wait_exit()
        c.mine(1)  # the transaction lands although nobody is left to see it
        c.rpc_local("evm_setAutomine", [True])
        start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg_path), "demo_index": MACHINE})
        machine = demo_signer(MACHINE, LOCAL_CHAIN_ID).address
        wait_for(lambda: len(list_batches(out)) > 0 and all(s and s["state"] == "anchored" for _, s in list_batches(out))
                 and sum(s["messages"] for _, s in list_batches(out)) == p.sent, timeout_s=60, interval_s=0.2)
        batches = _assert_all_anchored_once_in_order(out, cfg, machine, p.sent)
        assert batches[0][1]["already_anchored"]  # the retry found the first attempt's anchor: same content id
    finally:
        anvil.stop()
