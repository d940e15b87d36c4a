"""Issue 8, invariants 4 and 5 with real processes over real DDS against a real anvil.

- a wallet that cannot wedge: a receipt that never comes (automine off) is a TIMEOUT answer and
  the service keeps answering; a payment in flight when the wallet is killed with kill -9 is
  resolved after the restart by its recorded tx hash and paid exactly once;
- never pays twice: the same request id after a restart is reported as done, and the DAO's
  daily cap holds across the restart;
- strangers on DDS (a probe node) cannot squat a batch id, rename the machine, over-stake it,
  pay themselves or replay a request.
"""

from __future__ import annotations

import os
import signal
import time

from chainkit import MACHINE, MACHINE2, STRANGER, TOKEN, wait_for

from depai.msg import FleetPolicy, TokenTransfer, TxStatus
from depai.srv import AnchorBatch, EnsureIdentity
from depai_nodes.chain.config import save_config
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.intents import content_batch_id
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.chain.models import id32
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

FINAL = (TxStatus.CONFIRMED, TxStatus.FAILED, TxStatus.REVERTED)


def _call(ros_node, client, request, timeout=30, resend_after=3.0):
    """Resent until answered (anchor and ensure_identity are idempotent: content-derived batch ids,
    an identity that converges); WALLET_UNAVAILABLE (a wallet still activating) is asked again."""
    return ros_node.call(client.srv_type, client.srv_name, request, timeout=timeout, resend_after=resend_after,
                         retry_results=(AnchorBatch.Response.WALLET_UNAVAILABLE,))


def _anchor_req(leaves=(b"a", b"b", b"c"), batch_id=None):
    root = "0x" + MerkleTree(list(leaves)).root.hex()
    now = int(time.time())
    bid = batch_id or content_batch_id(root, len(leaves), now - 10, now)
    return AnchorBatch.Request(batch_id=bid, root=root, message_count=len(leaves), start_time=now - 10, end_time=now, uri="")


def test_no_receipt_restart_in_flight_and_replay(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config.model_copy(update={"receipt_timeout_s": 2.0}), tmp_path / "chain.json")
    params = {"chain_config": str(cfg), "demo_index": MACHINE, "state_dir": str(tmp_path / "state"),
              "allowed_payees": [chain.address(MACHINE2)]}
    wallet = start_node("wallet", namespace="robot1", parameters=params)
    status = ros_node.subscribe(TxStatus, "/robot1/wallet/tx_status", RELIABLE_QOS)
    pub = ros_node.publisher(TokenTransfer, "/robot1/wallet/transfer", RELIABLE_QOS)
    policy_pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    wallet.wait_for_log("wallet of", timeout=20)
    ros_node.wait_for_subscribers(pub)
    ros_node.wait_for_subscribers(policy_pub)
    policy_pub.publish(FleetPolicy(version=3, max_speed=1.0, spending_cap=str(5 * TOKEN), min_task_price="0", source="test"))
    wallet.wait_for_log("spending cap from fleet policy v3", timeout=10)
    token = Fleet(chain.client(STRANGER)).token
    payee = chain.address(MACHINE2)
    start = token.call("balanceOf", payee)
    anchor = ros_node.node.create_client(AnchorBatch, "/robot1/wallet/anchor_batch")

    # a receipt that never comes: mining stops
    c = chain.client()
    c.rpc_local("evm_setAutomine", [False])
    primed = _call(ros_node, anchor, _anchor_req(batch_id="b-0"))  # answered: this probe and the wallet have matched
    assert primed.error == "BatchIdMismatch"
    late = _call(ros_node, anchor, _anchor_req(), timeout=30, resend_after=None)  # once: a resend would wait again
    assert late.result == AnchorBatch.Response.TIMEOUT and late.tx_hash.startswith("0x") and late.error == "TxTimeoutError"
    refused = _call(ros_node, anchor, _anchor_req(batch_id="b-1"))  # the service still answers
    assert refused.result == AnchorBatch.Response.INVALID_REQUEST and refused.error == "BatchIdMismatch"

    # a payment in flight (signed, sent, not mined) when the wallet is killed
    pub.publish(TokenTransfer(request_id="pay-1", to=payee, amount=str(2 * TOKEN)))
    sent = status.wait_for(lambda s: s.request_id == "pay-1" and s.status == TxStatus.SUBMITTED, timeout=15)
    os.kill(wallet.process.pid, signal.SIGKILL)
    wallet.process.wait(10)
    c.rpc_local("evm_setAutomine", [True])
    c.mine(1)  # the pool (the anchor and the payment) is mined now
    wallet = start_node("wallet", namespace="robot1", parameters=params)
    wallet.wait_for_log("wallet of", timeout=20)
    wallet.wait_for_log(f"request 'pay-1': resolved by its tx hash {sent.tx_hash}: CONFIRMED", timeout=20)
    assert token.call("balanceOf", payee) == start + 2 * TOKEN  # resolved by the recorded hash, not signed anew

    # the same request id after the restart: reported as done, not paid twice. Published again until
    # answered: right after a kill -9 the dead wallet's subscription still counts as matched (its
    # lease has not ended) and the new one may not have matched yet, so a first copy can be lost -
    # safe to repeat, the ledger answers each copy of a request id the same way.
    ros_node.wait_for_subscribers(pub)
    deadline = time.monotonic() + 30
    while True:
        pub.publish(TokenTransfer(request_id="pay-1", to=payee, amount=str(2 * TOKEN)))
        try:
            dup = status.wait_for(lambda s: s.request_id == "pay-1" and "DuplicateRequest" in s.error, timeout=3)
            break
        except TimeoutError:
            assert time.monotonic() < deadline, "the restarted wallet never answered the repeated request id"
    assert dup.status == TxStatus.CONFIRMED and dup.tx_hash == sent.tx_hash
    # the cap holds across the restart (2 of 5 spent today, remembered with the cap itself)
    pub.publish(TokenTransfer(request_id="pay-2", to=payee, amount=str(4 * TOKEN)))
    capped = status.wait_for(lambda s: s.request_id == "pay-2" and s.status in FINAL, timeout=15)
    assert capped.status == TxStatus.FAILED and "spending cap exceeded: 6000000000000000000 > 5000000000000000000" in capped.error
    pub.publish(TokenTransfer(request_id="pay-3", to=payee, amount=str(2 * TOKEN)))
    assert status.wait_for(lambda s: s.request_id == "pay-3" and s.status in FINAL, timeout=15).status == TxStatus.CONFIRMED
    # a payment whose receipt does not come in time: still tracked by its hash, confirmed once mined
    c.rpc_local("evm_setAutomine", [False])
    pub.publish(TokenTransfer(request_id="pay-4", to=payee, amount=str(TOKEN)))
    slow = status.wait_for(lambda s: s.request_id == "pay-4" and "TxTimeoutError" in s.error, timeout=20)
    assert slow.status == TxStatus.SUBMITTED and "still tracked" in slow.error
    c.rpc_local("evm_setAutomine", [True])
    c.mine(1)
    late_ok = status.wait_for(lambda s: s.request_id == "pay-4" and s.status == TxStatus.CONFIRMED, timeout=20)
    assert late_ok.tx_hash == slow.tx_hash
    assert token.call("balanceOf", payee) == start + 5 * TOKEN
    assert wallet.process.poll() is None and "Traceback" not in wallet.log()
    state = tmp_path / "state" / f"wallet-{chain.address(MACHINE).lower()}.json"
    assert state.stat().st_mode & 0o777 == 0o600 and (tmp_path / "state").stat().st_mode & 0o077 == 0
    key = bytes(chain.signer(MACHINE)._account.key).hex()  # (the test reads it; the wallet never writes it)
    text = state.read_text().lower()
    assert sent.tx_hash.lower() in text and key not in text  # hashes, never the key


def test_strangers_on_dds_cannot_make_the_wallet_act_for_them(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    wallet = start_node("wallet", namespace="robot2", parameters={
        "chain_config": str(cfg), "demo_index": MACHINE2, "state_dir": str(tmp_path / "state"),
        "machine_name": "robot2", "max_stake": str(100 * TOKEN), "follow_policy": False, "spending_cap": str(10 * TOKEN)})
    wallet.wait_for_log("wallet of", timeout=20)
    me = chain.address(MACHINE2)
    reader = Fleet(chain.client(STRANGER))
    anchor = ros_node.node.create_client(AnchorBatch, "/robot2/wallet/anchor_batch")
    ensure = ros_node.node.create_client(EnsureIdentity, "/robot2/wallet/ensure_identity")

    # squatting: the stranger guesses the id the robot's next batch would use; refused
    real = _anchor_req(leaves=(b"odom-1", b"odom-2"))
    for squat in ("robot2-0001", real.batch_id[:-1] + "0", content_batch_id("0x" + "11" * 32, 2, real.start_time, real.end_time)):
        out = _call(ros_node, anchor, _anchor_req(leaves=(b"junk", b"junk2"), batch_id=squat))
        assert out.result == AnchorBatch.Response.INVALID_REQUEST and out.error == "BatchIdMismatch" and out.tx_hash == ""
    ok = _call(ros_node, anchor, real)  # the robot's real batch is not blocked
    assert ok.result == AnchorBatch.Response.SUCCESS
    assert reader.batch_record(me, id32(real.batch_id)).root.hex() == real.root[2:]

    # renaming the machine or over-staking it
    rename = _call(ros_node, ensure, EnsureIdentity.Request(machine_name="evil", stake="0"))
    assert rename.result == EnsureIdentity.Response.REJECTED_BY_POLICY and rename.error == "NotMyName"
    greedy = _call(ros_node, ensure, EnsureIdentity.Request(machine_name="robot2", stake=str(101 * TOKEN)))
    assert greedy.result == EnsureIdentity.Response.REJECTED_BY_POLICY and "max_stake" in greedy.reason
    try:
        reader.attribute(me, b"depai:machine")
        raise AssertionError("a DID attribute was written")
    except Exception as e:  # noqa: BLE001 - the contract's AttributeNotFound revert
        assert "AttributeNotFound" in str(e)

    # paying itself (no payee allowed by default), then replaying someone's request id
    status = ros_node.subscribe(TxStatus, "/robot2/wallet/tx_status", RELIABLE_QOS)
    pub = ros_node.publisher(TokenTransfer, "/robot2/wallet/transfer", RELIABLE_QOS)
    ros_node.wait_for_subscribers(pub)
    ros_node.wait_for_publishers("/robot2/wallet/tx_status")  # the answers' writer too, before the first request
    time.sleep(0.5)
    before = reader.token.call("balanceOf", chain.address(STRANGER))
    pub.publish(TokenTransfer(request_id="steal-1", to=chain.address(STRANGER), amount=str(TOKEN)))
    out = status.wait_for(lambda s: s.request_id == "steal-1" and s.status in FINAL, timeout=15)
    assert out.status == TxStatus.FAILED and "PayeeNotAllowed" in out.error and "transfers are off" in out.error
    pub.publish(TokenTransfer(request_id="steal-1", to=chain.address(STRANGER), amount=str(TOKEN)))  # replayed: refused again
    wait_for(lambda: len([s for s in status.messages if s.request_id == "steal-1" and s.status == TxStatus.FAILED]) == 2, timeout_s=15)
    assert not [s for s in status.messages if s.request_id == "steal-1" and s.status != TxStatus.FAILED]
    assert reader.token.call("balanceOf", chain.address(STRANGER)) == before
    # a flood of them: each answered, logged once per cause (with a count later), not 50 times
    for i in range(50):  # paced: the answers' topic keeps the last 10 (RELIABLE_QOS), a loaded reader must keep up
        pub.publish(TokenTransfer(request_id=f"flood-{i}", to=chain.address(STRANGER), amount="1"))
        time.sleep(0.05)
    wait_for(lambda: len({s.request_id for s in status.messages if s.request_id.startswith("flood-")}) == 50, timeout_s=40)
    assert wallet.log().count("PayeeNotAllowed") == 1
    assert reader.token.call("balanceOf", chain.address(STRANGER)) == before
    assert wallet.process.poll() is None and "Traceback" not in wallet.log()


def test_a_ledger_that_cannot_be_written_ends_the_process(chain, tmp_path, start_node, ros_node):
    """Fatal: without its memory the wallet must not pay; it exits 1 (the supervisor restarts it)."""
    cfg = save_config(chain.config, tmp_path / "chain.json")
    state_dir = tmp_path / "state"
    wallet = start_node("wallet", namespace="robot1", parameters={
        "chain_config": str(cfg), "demo_index": MACHINE, "state_dir": str(state_dir), "follow_policy": False,
        "spending_cap": str(10 * TOKEN), "allowed_payees": [chain.address(MACHINE2)]})
    wallet.wait_for_log("wallet of", timeout=20)
    ledger = state_dir / f"wallet-{chain.address(MACHINE).lower()}.json"
    assert ledger.exists()  # the cap was recorded at start
    ledger.unlink()
    ledger.mkdir()  # the next write cannot replace it
    pub = ros_node.publisher(TokenTransfer, "/robot1/wallet/transfer", RELIABLE_QOS)
    ros_node.wait_for_subscribers(pub)
    before = Fleet(chain.client(STRANGER)).token.call("balanceOf", chain.address(MACHINE2))
    pub.publish(TokenTransfer(request_id="pay-x", to=chain.address(MACHINE2), amount=str(TOKEN)))
    assert wallet.wait_exit(timeout=20) == 1
    assert "cannot write wallet state" in wallet.log()
    assert Fleet(chain.client(STRANGER)).token.call("balanceOf", chain.address(MACHINE2)) == before
