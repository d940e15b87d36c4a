"""The wallet: validated payments in FLEET under the DAO's daily spending cap, and the wallet
node answering transfer requests over DDS with TxStatus."""

import pytest
from chainkit import MACHINE, STRANGER, TOKEN

from depai.msg import FleetPolicy, TokenTransfer, TxStatus
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import save_config
from depai_nodes.chain.errors import WrongChainError
from depai_nodes.chain.fleet import Fleet
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.wallet.core import SpendingLedger, Status, WalletError, parse_transfer


def test_parse_and_ledger():
    good = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert parse_transfer(good.lower(), "5") == (good, 5)
    for to, amount, why in [("0x1234", "1", "InvalidAddressError"), (good, "-1", "decimal integer"), (good, "1.5", "decimal integer"),
                            (good, "0", r"1\.\.2\*\*256-1"), (good, str(2**256), r"1\.\.2\*\*256-1"), ("0x" + "0" * 40, "1", "zero address")]:
        with pytest.raises(WalletError, match=why):
            parse_transfer(to, amount)
    ledger = SpendingLedger(cap=10)
    day = ledger.reserve(6, now_s=1000)
    with pytest.raises(WalletError, match="spending cap exceeded: 11 > 10"):
        ledger.reserve(5, now_s=2000)
    ledger.release(day, 6)
    ledger.reserve(10, now_s=3000)
    ledger.reserve(10, now_s=3000 + 86_400)  # a new day


def test_signing_client_verifies_the_chain_before_its_first_transaction(chain):
    cfg = chain.config.model_copy(update={"chain_id": 3338})
    c = ChainClient(cfg, None, verify_chain=False)
    c.signer = chain.signer(MACHINE)  # (a demo key could not even be made for 3338)
    with pytest.raises(WrongChainError):
        c.contract("FleetToken", chain.config.contracts.FleetToken).transact("transfer", chain.address(STRANGER), 1)


def test_wallet_node_pays_and_obeys_the_fleet_cap(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    node = start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE})
    status = ros_node.subscribe(TxStatus, "/robot1/wallet/tx_status", RELIABLE_QOS)
    pub = ros_node.publisher(TokenTransfer, "/robot1/wallet/transfer", RELIABLE_QOS)
    policy_pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    node.wait_for_log("wallet of", timeout=20)
    ros_node.wait_for_subscribers(pub)
    token = Fleet(chain.client(STRANGER)).token
    before = token.call("balanceOf", chain.address(STRANGER))

    def send(rid, to, amount):
        pub.publish(TokenTransfer(request_id=rid, to=to, amount=str(amount)))
        return status.wait_for(lambda s: s.request_id == rid and s.status in (TxStatus.CONFIRMED, TxStatus.FAILED, TxStatus.REVERTED), timeout=15)

    ok = send("pay-1", chain.address(STRANGER), 3 * TOKEN)
    assert ok.status == TxStatus.CONFIRMED and ok.tx_hash.startswith("0x") and ok.block_number > 0
    assert token.call("balanceOf", chain.address(STRANGER)) == before + 3 * TOKEN
    assert [s.status for s in status.messages if s.request_id == "pay-1"] == [TxStatus.PENDING, TxStatus.SUBMITTED, TxStatus.CONFIRMED]

    bad = send("pay-2", "0x1234", 1)
    assert bad.status == TxStatus.FAILED and "InvalidAddressError" in bad.error
    pub.publish(TokenTransfer(request_id="pay-1", to=chain.address(STRANGER), amount="1"))  # a replay
    dup = status.wait_for(lambda s: s.request_id == "pay-1" and s.status == TxStatus.FAILED, timeout=15)
    assert "duplicate request_id" in dup.error
    broke = send("pay-3", chain.address(STRANGER), 10**9 * TOKEN)  # more than the machine owns
    assert broke.status == Status.REVERTED and "ERC20InsufficientBalance" in broke.error

    ros_node.wait_for_subscribers(policy_pub)
    policy_pub.publish(FleetPolicy(version=9, max_speed=1.0, spending_cap=str(4 * TOKEN), min_task_price="0", source="test"))
    node.wait_for_log("spending cap from fleet policy v9", timeout=10)
    capped = send("pay-4", chain.address(STRANGER), 2 * TOKEN)  # 3 + 2 > 4 today
    assert capped.status == TxStatus.FAILED and "spending cap exceeded" in capped.error
    assert send("pay-5", chain.address(STRANGER), TOKEN).status == TxStatus.CONFIRMED  # 3 + 1 <= 4
