"""The wallet as a managed node (issue 11, item 3), over its real lifecycle_msgs services on a real
anvil: it signs only while active; deactivated it refuses every request with a result code and
loses nothing; the lifecycle manager reports a wallet whose keystore cannot be loaded."""

import time

from chainkit import MACHINE, MACHINE2, STRANGER

from depai.msg import TokenTransfer, TxStatus
from depai.srv import AnchorBatch
from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.intents import content_batch_id
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.chain.models import id32
from depai_nodes.common.qos import RELIABLE_QOS
from lifecycle_msgs.srv import ChangeState, GetState

CONFIGURE, ACTIVATE, DEACTIVATE = 1, 3, 4


def _call(probe, client, request, timeout=30.0):
    """Anchor requests are idempotent (content-derived ids): resent until one copy is answered."""
    return probe.call(client.srv_type, client.srv_name, request, timeout=timeout)


def _transition(probe, node, transition):
    """Sent once (a transition must not run twice), after a get_state has matched the node."""
    _state(probe, node)
    request = ChangeState.Request()
    request.transition.id = transition
    return probe.call(ChangeState, f"{node}/change_state", request, timeout=30.0, resend_after=None).success


def _state(probe, node):
    return probe.call(GetState, f"{node}/get_state", GetState.Request(), timeout=30.0).current_state.label


def _anchored(fleet, machine, batch_id) -> int:
    from depai_nodes.chain.errors import ContractRevertError

    try:
        return fleet.batch_record(machine, id32(batch_id)).message_count
    except ContractRevertError as e:
        assert "BatchNotFound" in str(e)
        return 0


def _anchor_request(leaves):
    root = "0x" + MerkleTree(leaves).root.hex()
    t1 = int(time.time())
    batch_id = content_batch_id(root, len(leaves), t1 - 10, t1)
    return AnchorBatch.Request(batch_id=batch_id, root=root, message_count=len(leaves), start_time=t1 - 10, end_time=t1, uri="file:///x.dpb")


def test_a_deactivated_wallet_refuses_to_sign_and_loses_nothing(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    node = start_node("wallet", namespace="robot1", parameters={
        "chain_config": str(cfg), "demo_index": MACHINE, "state_dir": str(tmp_path / "state"),
        "allowed_payees": [chain.address(STRANGER)], "autostart": False})
    name = "/robot1/wallet"
    assert _state(ros_node, name) == "unconfigured"
    assert _transition(ros_node, name, CONFIGURE) and _state(ros_node, name) == "inactive"
    anchor = ros_node.node.create_client(AnchorBatch, f"{name}/anchor_batch")
    fleet = Fleet(chain.client(STRANGER))

    first = _anchor_request([b"a", b"b"])
    refused = _call(ros_node, anchor, first)  # configured, not active: no signature
    assert refused.result == AnchorBatch.Response.WALLET_UNAVAILABLE and refused.error == "WalletInactive" and refused.tx_hash == ""
    assert "inactive" in refused.reason
    assert _anchored(fleet, chain.address(MACHINE), first.batch_id) == 0

    assert _transition(ros_node, name, ACTIVATE)
    done = _call(ros_node, anchor, first)
    assert done.result == AnchorBatch.Response.SUCCESS and done.block_number > 0
    assert _anchored(fleet, chain.address(MACHINE), first.batch_id) == 2

    assert _transition(ros_node, name, DEACTIVATE) and _state(ros_node, name) == "inactive"
    second = _anchor_request([b"c", b"d", b"e"])
    again = _call(ros_node, anchor, second)
    assert again.result == AnchorBatch.Response.WALLET_UNAVAILABLE and again.error == "WalletInactive"
    assert _anchored(fleet, chain.address(MACHINE), second.batch_id) == 0
    status = ros_node.subscribe(TxStatus, f"{name}/tx_status", RELIABLE_QOS)
    pub = ros_node.publisher(TokenTransfer, f"{name}/transfer", RELIABLE_QOS)
    ros_node.wait_for_subscribers(pub)
    pub.publish(TokenTransfer(request_id="while-inactive", to=chain.address(STRANGER), amount="1"))
    paid = status.wait_for(lambda s: s.request_id == "while-inactive", timeout=15)
    assert paid.status == TxStatus.FAILED and paid.error.startswith("WalletInactive")

    assert _transition(ros_node, name, ACTIVATE)  # nothing lost: the same ledger, the same key
    assert _call(ros_node, anchor, second).result == AnchorBatch.Response.SUCCESS
    repeat = _call(ros_node, anchor, first)
    assert repeat.result == AnchorBatch.Response.SUCCESS and repeat.already_anchored
    assert node.process.poll() is None and "Traceback" not in node.log()


def test_the_manager_reports_a_wallet_with_a_bad_keystore(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    missing = tmp_path / "no-such-keystore.json"
    wallet = start_node("wallet", namespace="robot2", parameters={
        "chain_config": str(cfg), "keystore": str(missing), "state_dir": str(tmp_path / "state"), "autostart": False})
    manager = start_node("lifecycle_manager", parameters={"robots": ["robot2"], "robot_nodes": ["wallet", "identity"],
                                                          "check_period": 0.5})
    log = manager.wait_for_log("/robot2/wallet: configure failed", timeout=40)
    assert "/robot2/identity" not in log.split("managing", 1)[1].split("\n", 1)[1]  # the rest of its group waits
    assert _state(ros_node, "/robot2/wallet") == "unconfigured"
    assert wallet.process.poll() is None and manager.process.poll() is None
    assert "keystore" in wallet.wait_for_log("configure failed")
    assert manager.log().count("configure failed") == 1
    _ = MACHINE2
