"""The wallet: validated payments in FLEET under the DAO's daily spending cap, and the wallet
node answering transfer requests over DDS with TxStatus; the intents it signs for other nodes
(anchor a batch, ensure the identity), each validated against its policy before signing."""

import time

import pytest
from chainkit import MACHINE, MACHINE2, STRANGER, TOKEN, wait_for

from depai.msg import FleetPolicy, MachineAccount, TokenTransfer, TxStatus
from depai.srv import AnchorBatch, EnsureIdentity
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import save_config
from depai_nodes.chain.errors import WrongChainError
from depai_nodes.chain.fleet import Fleet
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.chain.intents import AnchorRequest, IdentityRequest, Result
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.chain.models import id32
from depai_nodes.chain.intents import content_batch_id
from depai_nodes.wallet.core import IntentPolicy, Intents, Status, WalletError, parse_transfer
from depai_nodes.wallet.state import WalletState


def test_parse_and_ledger(tmp_path):
    good = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert parse_transfer(good.lower(), "5") == (good, 5)
    for to, amount, why in [("0x1234", "1", "InvalidAddressError"), (good, "-1", "decimal integer"), (good, "1.5", "decimal integer"),
                            (good, "0", r"1\.\.2\*\*256-1"), (good, str(2**256), r"1\.\.2\*\*256-1"), ("0x" + "0" * 40, "1", "zero address")]:
        with pytest.raises(WalletError, match=why):
            parse_transfer(to, amount)
    now = [1000.0]
    path = tmp_path / "state" / "wallet.json"
    ledger = WalletState(path, good, clock=lambda: now[0])
    assert ledger.accept("a", good, 6, cap=10)[0]
    ok, why, _ = ledger.accept("b", good, 5, cap=10)
    assert not ok and "spending cap exceeded: 11 > 10" in why
    ok, why, _ = ledger.accept("a", good, 1, cap=10)
    assert not ok and "duplicate request_id 'a'" in why
    ledger.update("a", "failed", error="x")  # not spent after all: released once
    ledger.update("a", "failed", error="x")
    assert ledger.spent_today() == 0 and ledger.accept("c", good, 10, cap=10)[0]
    now[0] += 86_400  # a new day
    assert ledger.accept("d", good, 10, cap=10)[0]
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o077 == 0
    again = WalletState(path, good, clock=lambda: now[0])  # what a restarted wallet reads
    assert again.requests.keys() == {"a", "c", "d"} and again.spent_today() == 10 and again.get("a")["state"] == "failed"
    with pytest.raises(Exception, match="belongs to"):
        WalletState(path, "0x" + "11" * 20)
    path.write_text('{"format": 1, "machine": "' + good + '", "requests": {"x": ')  # truncated
    with pytest.raises(Exception, match="unreadable"):
        WalletState(path, good)


def test_signing_client_verifies_the_chain_before_its_first_transaction(chain):
    cfg = chain.config.model_copy(update={"chain_id": 3338})
    c = ChainClient(cfg, None, verify_chain=False)
    c.signer = chain.signer(MACHINE)  # (a demo key could not even be made for 3338)
    with pytest.raises(WrongChainError):
        c.contract("FleetToken", chain.config.contracts.FleetToken).transact("transfer", chain.address(STRANGER), 1)


def test_wallet_node_pays_and_obeys_the_fleet_cap(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    node = start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE,
                                                              "state_dir": str(tmp_path / "state"),
                                                              "allowed_payees": [chain.address(STRANGER)]})
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

    # fail closed: no fleet policy yet, so no cap is known and nothing is paid
    early = send("pay-0", chain.address(STRANGER), 1)
    assert early.status == TxStatus.FAILED and "NoSpendingCap" in early.error
    ros_node.wait_for_subscribers(policy_pub)
    policy_pub.publish(FleetPolicy(version=8, max_speed=1.0, spending_cap="0", min_task_price="0", source="test"))
    node.wait_for_log("spending cap from fleet policy v8", timeout=10)
    ok = send("pay-1", chain.address(STRANGER), 3 * TOKEN)
    assert ok.status == TxStatus.CONFIRMED and ok.tx_hash.startswith("0x") and ok.block_number > 0
    assert token.call("balanceOf", chain.address(STRANGER)) == before + 3 * TOKEN
    assert [s.status for s in status.messages if s.request_id == "pay-1"] == [TxStatus.PENDING, TxStatus.SUBMITTED, TxStatus.CONFIRMED]

    bad = send("pay-2", "0x1234", 1)
    assert bad.status == TxStatus.FAILED and "InvalidAddressError" in bad.error
    pub.publish(TokenTransfer(request_id="pay-1", to=chain.address(STRANGER), amount="1"))  # a replay
    dup = status.wait_for(lambda s: s.request_id == "pay-1" and "DuplicateRequest" in s.error, timeout=15)
    assert dup.status == TxStatus.CONFIRMED and dup.tx_hash == ok.tx_hash  # reported as done, not paid again
    assert token.call("balanceOf", chain.address(STRANGER)) == before + 3 * TOKEN
    other = send("pay-6", chain.address(MACHINE2), 1)  # not an allowed payee
    assert other.status == TxStatus.FAILED and "PayeeNotAllowed" in other.error
    broke = send("pay-3", chain.address(STRANGER), 10**9 * TOKEN)  # more than the machine owns
    assert broke.status == Status.REVERTED and "ERC20InsufficientBalance" in broke.error

    policy_pub.publish(FleetPolicy(version=9, max_speed=1.0, spending_cap=str(4 * TOKEN), min_task_price="0", source="test"))
    node.wait_for_log("spending cap from fleet policy v9", timeout=10)
    capped = send("pay-4", chain.address(STRANGER), 2 * TOKEN)  # 3 + 2 > 4 today
    assert capped.status == TxStatus.FAILED and "spending cap exceeded" in capped.error
    assert send("pay-5", chain.address(STRANGER), TOKEN).status == TxStatus.CONFIRMED  # 3 + 1 <= 4

    # the intent services and the announced account, over DDS
    account = ros_node.subscribe(MachineAccount, "/robot1/wallet/account", LATCHED_QOS).wait_for(timeout=10)
    assert account.address == chain.address(MACHINE) and account.chain_id == 31337 and account.key_kind == "demo"
    client = ros_node.node.create_client(AnchorBatch, "/robot1/wallet/anchor_batch")
    assert client.wait_for_service(timeout_sec=10)

    def anchor(**fields):
        r = _req(**fields)
        future = client.call_async(AnchorBatch.Request(batch_id=r.batch_id, root=r.root, message_count=r.message_count,
                                                       start_time=r.start_time, end_time=r.end_time, uri=r.uri))
        wait_for(future.done, timeout_s=20)
        return future.result()

    bad = anchor(root="0x" + "00" * 32)
    assert bad.result == AnchorBatch.Response.INVALID_REQUEST and bad.error == "InvalidRoot" and bad.tx_hash == ""
    good = anchor()
    assert good.result == AnchorBatch.Response.SUCCESS and good.machine == chain.address(MACHINE) and good.block_number > 0
    assert Fleet(chain.client(STRANGER)).batch_record(chain.address(MACHINE), id32(_req().batch_id)).message_count == 3


def test_service_result_codes_match_the_core():
    for name, value in vars(Result).items():
        if name.isupper() and name != "NAMES":
            assert getattr(AnchorBatch.Response, name) == value == getattr(EnsureIdentity.Response, name), name
    assert set(Result.NAMES.values()) == {n for n in vars(Result) if n.isupper() and n != "NAMES"}


_T0 = int(time.time())


def _req(batch_id=None, root=None, **kw):
    """An anchor request; its batch id is the content-derived one unless given."""
    root = root or "0x" + MerkleTree([b"a", b"b", b"c"]).root.hex()
    fields = dict(root=root, message_count=3, start_time=_T0 - 10, end_time=_T0, uri="file:///x.dpb")
    fields.update(kw)
    if batch_id is None:
        try:
            batch_id = content_batch_id(fields["root"], fields["message_count"], fields["start_time"], fields["end_time"])
        except ValueError:
            batch_id = "not-derivable"
    return AnchorRequest(batch_id=batch_id, **fields)


def test_anchor_intent_is_validated_then_signed_by_the_machine(chain):
    fleet = Fleet(chain.client(MACHINE))
    intents = Intents(fleet, IntentPolicy(max_anchors_per_minute=3, max_uri_bytes=64))
    now = int(time.time())
    refused = {
        "batch id over 32 bytes": (_req("x" * 33), Result.INVALID_REQUEST, "InvalidBatchId"),
        "root not 32 bytes": (_req(root="0x1234"), Result.INVALID_REQUEST, "InvalidRoot"),
        "root not hex": (_req(root="0x" + "zz" * 32), Result.INVALID_REQUEST, "InvalidRoot"),
        "zero root": (_req(root="0x" + "00" * 32), Result.INVALID_REQUEST, "InvalidRoot"),
        "no messages": (_req(message_count=0), Result.INVALID_REQUEST, "InvalidMessageCount"),
        "time runs backwards": (_req(start_time=now, end_time=now - 5), Result.INVALID_REQUEST, "InvalidTimeRange"),
        "ends in the future": (_req(end_time=now + 3600), Result.REJECTED_BY_POLICY, "PolicyRefused"),
        "uri too long": (_req(uri="file:///" + "a" * 100), Result.REJECTED_BY_POLICY, "PolicyRefused"),
        "control chars in uri": (_req(uri="file:///a\nb"), Result.INVALID_REQUEST, "InvalidUri"),
        "a chosen (squatting) batch id": (_req("b-1"), Result.INVALID_REQUEST, "BatchIdMismatch"),
        "the id of other content": (_req(_req(message_count=4).batch_id), Result.INVALID_REQUEST, "BatchIdMismatch"),
    }
    for why, (req, code, error) in refused.items():
        out = intents.anchor(req)
        assert (out.result, out.error) == (code, error), why
        assert out.tx_hash == "" and out.machine == fleet.me, why
    assert fleet.client.pending_nonce() == 0  # nothing was signed or sent for any of them

    ok = intents.anchor(_req())
    assert ok.ok and ok.tx_hash.startswith("0x") and ok.block_number > 0 and not ok.already_anchored
    rec = fleet.batch_record(fleet.me, id32(_req().batch_id))
    assert "0x" + rec.root.hex() == _req().root and rec.message_count == 3 and rec.uri == "file:///x.dpb"
    again = intents.anchor(_req())  # a retry after a lost answer: the same root is already there
    assert again.ok and again.already_anchored and again.block_number == rec.anchored_at_block
    other = intents.anchor(_req(root="0x" + MerkleTree([b"z"]).root.hex()))  # other content: its own id, anchored too
    assert other.ok and not other.already_anchored
    busy = intents.anchor(_req(message_count=4))  # the 4th signing attempt within a minute
    assert busy.result == Result.BUSY and busy.error == "RateLimited" and busy.retryable


def test_identity_intent_obeys_max_stake_and_is_idempotent(chain):
    fleet = Fleet(chain.client(MACHINE2))
    intents = Intents(fleet, IntentPolicy(max_stake=200 * TOKEN, machine_name="rover-7"))
    assert intents.ensure_identity(IdentityRequest("", "0")).result == Result.INVALID_REQUEST
    assert intents.ensure_identity(IdentityRequest("rover-7", "1.5")).error == "InvalidStake"
    over = intents.ensure_identity(IdentityRequest("rover-7", str(201 * TOKEN)))
    assert over.result == Result.REJECTED_BY_POLICY and "max_stake" in over.reason and not over.steps
    assert not fleet.machine_info().registered  # refused before anything was signed
    first = intents.ensure_identity(IdentityRequest("rover-7", str(150 * TOKEN)))
    assert first.ok and first.steps == ["added DID attribute depai:machine=rover-7", f"registered in the TaskMarket with stake {150 * TOKEN}"]
    assert intents.ensure_identity(IdentityRequest("rover-7", str(150 * TOKEN))).steps == []
    stranger = intents.ensure_identity(IdentityRequest("evil-name", "0"))  # only the wallet's own name is ever set
    assert stranger.result == Result.REJECTED_BY_POLICY and stranger.error == "NotMyName" and not stranger.steps
    assert Intents(fleet, IntentPolicy()).ensure_identity(IdentityRequest("rover-7", "0")).error == "NotMyName"  # none configured
    intents.set_policy(IntentPolicy(max_stake=200 * TOKEN, machine_name="rover-7b"))  # the operator renames the robot
    renamed = intents.ensure_identity(IdentityRequest("rover-7b", str(200 * TOKEN)))
    assert renamed.steps == ["updated DID attribute depai:machine=rover-7b", f"topped the stake up to {200 * TOKEN}"]
    assert fleet.machine_info().stake == 200 * TOKEN and fleet.attribute(fleet.me, b"depai:machine")["value"] == b"rover-7b"
    off = Intents(fleet, IntentPolicy(machine_name="rover-7b")).ensure_identity(IdentityRequest("rover-7b", "1"))  # default: staking refused
    assert off.result == Result.REJECTED_BY_POLICY and "staking is off" in off.reason


def test_intents_report_an_unreachable_chain_as_retryable(chain):
    dead = chain.config.model_copy(update={"rpc_url": "http://127.0.0.1:9", "rpc_timeout_s": 0.5})
    intents = Intents(Fleet(ChainClient(dead, chain.signer(MACHINE), verify_chain=False)), IntentPolicy(machine_name="r"))
    out = intents.anchor(_req())
    assert out.result == Result.CHAIN_UNAVAILABLE and out.error == "RpcUnavailableError" and out.retryable
    assert intents.ensure_identity(IdentityRequest("r", "0")).result == Result.CHAIN_UNAVAILABLE


def test_load_node_chain_names_the_bad_parameter(chain, tmp_path):
    from types import SimpleNamespace

    from depai_nodes.chain.config import ChainConfig, KeySource
    from depai_nodes.chain.wiring import load_node_chain
    from depai_nodes.common.params import ParameterError

    good = save_config(chain.config.model_copy(update={"key": KeySource(kind="none")}), tmp_path / "good.json")
    config, client = load_node_chain(SimpleNamespace(chain_config=str(good)))
    assert client.signer is None and config.contracts.DataRegistry  # read-only unless signing is asked for
    cases = [
        (SimpleNamespace(chain_config=str(tmp_path / "missing.json")), {}, "chain_config", "no chain config"),
        (SimpleNamespace(chain_config=str(save_config(ChainConfig(rpc_url=chain.config.rpc_url, chain_id=31337), tmp_path / "bare.json"))),
         {}, "chain_config", "no address for FleetToken"),
        (SimpleNamespace(chain_config=str(good), demo_index=-1, keystore=""), {"signing": True}, "demo_index", "no signing key configured"),
        (SimpleNamespace(chain_config=str(good), demo_index=-1, keystore=str(tmp_path / "nope.json")), {"signing": True}, "keystore", "no passphrase|does not exist"),
    ]
    for params, kw, name, why in cases:
        with pytest.raises(ParameterError, match=why) as err:
            load_node_chain(params, **kw)
        assert err.value.parameter == name
    _, signing = load_node_chain(SimpleNamespace(chain_config=str(good), demo_index=MACHINE, keystore=""), signing=True)
    assert signing.signer.address == chain.address(MACHINE)
