"""TaskMarket and DataRegistry: every path, including the reverts and slashing; Merkle roots
computed in Python verified on chain. The attacks on the market are in test_market_attacks.py."""

import pytest
from chainkit import (MACHINE, MACHINE2, REQUESTER, STRANGER, TOKEN, _as_timelock_sender, arrive, fleet,
                      registered_machine)

from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.merkle import MerkleTree, leaf_hash, verify
from depai_nodes.chain.models import TaskStatus, id32

REWARD = 5 * TOKEN
GOAL = (1.0, 2.0, 0.5)  # m, m, rad
GOAL_MM = (1000, 2000, 500)


def _anchored(f, batch_id="b1", n=5):
    msgs = [f"odom {i}".encode() for i in range(n)]
    batch, tree = f.make_batch(msgs, batch_id, 1000, 1000 + n, uri="file:///tmp/b1.mcap")
    f.anchor(batch)
    return batch, tree, msgs


def _posted(chain, deadline_in=3600, reward=REWARD, tolerance=0.25, station="dock-A"):
    req = fleet(chain, REQUESTER)
    return req, req.post_task(*GOAL, chain.now() + deadline_in, reward, tolerance=tolerance, station=station)


def _balance(chain, who):
    return chain.client().contract("FleetToken").call("balanceOf", chain.address(who))


def test_happy_path_post_accept_prove_complete_payout(chain):
    m = registered_machine(chain, MACHINE)
    req, tid = _posted(chain)
    t = req.task(tid)
    assert t.status == TaskStatus.OPEN and t.status_name == "Open" and (t.goal_x, t.goal_y, t.goal_yaw) == GOAL
    assert t.reward == REWARD and t.tolerance == 0.25 and t.station == "dock-A" and t.machine is None
    assert [o.id for o in req.open_tasks()] == [tid]
    m.accept_task(tid)
    t = req.task(tid)
    assert t.status == TaskStatus.ACCEPTED and t.machine == m.me and t.accepted_at > 0 and m.machine_info().active_tasks == 1
    assert req.open_tasks() == []
    report, proof, batch = arrive(chain, m, tid, 1100, 2050, 480)  # 11 cm from the goal: within 25 cm
    before = _balance(chain, MACHINE)
    r = req.complete_task(report, proof, m.sign_report(report))  # anyone (here the requester) may submit it
    t = req.task(tid)
    assert t.status == TaskStatus.COMPLETED and t.batch_id == batch.batch_id
    assert _balance(chain, MACHINE) == before + REWARD and m.machine_info().active_tasks == 0
    assert req.market.call("batchCitedBy", m.me, batch.batch_id) == tid
    ev = [e for e in (req.market.abi.decode_log(lg) for lg in r.logs) if e]
    done = next(e for e in ev if e["event"] == "TaskCompleted")
    assert done["taskId"] == tid and done["machine"] == m.me and done["reward"] == REWARD and done["batchId"] == batch.batch_id


def test_the_contract_rebuilds_telemetrys_arrival_leaf(chain):
    """The leaf the contract checks is byte for byte the one telemetry records."""
    from depai_nodes.telemetry.leaves import ArrivalRecord

    m = fleet(chain, MACHINE)
    for x, y, yaw in [(1.0, 2.0, 0.5), (-3.25, -0.001, -3.1416), (0.0, 0.0, 0.0)]:
        rec = ArrivalRecord(7, m.me, x, y, yaw, 1_700_000_000, 5)
        report = m.arrival_report(*rec.typed()[:1], bytes(32), *rec.typed()[2:])
        assert report.leaf_preimage() == rec.preimage()
        assert m.market.call("arrivalLeaf", report.as_tuple()) == report.leaf() == leaf_hash(rec.preimage())


def test_register_needs_admission_did_and_stake(chain):
    f = fleet(chain, MACHINE)
    f.approve(1000 * TOKEN)
    with pytest.raises(ContractRevertError) as e:
        f.market.transact("registerMachine", 100 * TOKEN)
    assert e.value.error == "NoMachineDid"
    f.register_did()
    with pytest.raises(ContractRevertError) as e:
        f.market.transact("registerMachine", 99 * TOKEN)
    assert e.value.error == "StakeTooLow"
    f.market.transact("registerMachine", 100 * TOKEN)
    with pytest.raises(ContractRevertError) as e:
        f.market.transact("registerMachine", 100 * TOKEN)
    assert e.value.error == "AlreadyRegistered"
    assert f.machine_info().stake == 100 * TOKEN


def test_post_reverts(chain):
    req = fleet(chain, REQUESTER)
    cases = [
        (dict(reward=TOKEN - 1), "RewardBelowMinimum"),
        (dict(deadline=chain.now() - 1), "DeadlineInPast"),
        (dict(tolerance=0.0), "ToleranceOutOfRange"),
        (dict(tolerance=2.001), "ToleranceOutOfRange"),  # above the DAO's cap (2 m)
        (dict(yaw=3.2), "InvalidGoalYaw"),
    ]
    for change, error in cases:
        args = dict(x=0.0, y=0.0, yaw=0.0, deadline=chain.now() + 60, reward=TOKEN, tolerance=0.5)
        args.update(change)
        with pytest.raises(ContractRevertError) as e:
            req.post_task(args.pop("x"), args.pop("y"), args.pop("yaw"), args.pop("deadline"), args.pop("reward"), **args)
        assert e.value.error == error, change
    with pytest.raises(ValueError, match="longer than 32 bytes"):
        req.post_task(0, 0, 0, chain.now() + 60, TOKEN, tolerance=0.5, station="x" * 33)
    req.approve(0)
    with pytest.raises(ContractRevertError) as e:  # no allowance: the token's own error surfaces, decoded
        req.post_task(0, 0, 0, chain.now() + 60, TOKEN, tolerance=0.5, approve=False)
    assert e.value.error == "ERC20InsufficientAllowance"
    assert req.task_count() == 0


def test_tolerance_cap_is_the_daos(chain):
    req = fleet(chain, REQUESTER)
    assert req.max_arrival_tolerance() == 2.0
    with pytest.raises(ContractRevertError) as e:  # only the owner (the timelock) sets it
        req.policy_contract.transact("setMaxArrivalTolerance", 5000)
    assert e.value.error == "OwnableUnauthorizedAccount"
    send = _as_timelock_sender(chain, "FleetPolicy")
    v0 = req.policy().version
    r = send("setMaxArrivalTolerance", 300)
    ev = [e for e in (req.policy_contract.abi.decode_log(lg) for lg in r.logs) if e]
    assert {e["event"] for e in ev} == {"MaxArrivalToleranceSet", "PolicyChanged"} and req.policy().version == v0 + 1
    with pytest.raises(ContractRevertError) as e:
        send("setMaxArrivalTolerance", 0)
    assert e.value.error == "InvalidTolerance"
    with pytest.raises(ContractRevertError) as e:
        req.post_task(0, 0, 0, chain.now() + 60, TOKEN, tolerance=0.301)
    assert e.value.error == "ToleranceOutOfRange" and e.value.error_args["maxToleranceMm"] == 300
    assert req.task(req.post_task(0, 0, 0, chain.now() + 60, TOKEN, tolerance=0.3)).tolerance == 0.3


def test_double_accept_and_unregistered_accept(chain):
    m1 = registered_machine(chain, MACHINE)
    m2 = registered_machine(chain, MACHINE2)
    _, tid = _posted(chain)
    with pytest.raises(ContractRevertError) as e:
        fleet(chain, STRANGER).accept_task(tid)
    assert e.value.error == "NotRegistered"
    m1.accept_task(tid)
    for m in (m1, m2):
        with pytest.raises(ContractRevertError) as e:
            m.accept_task(tid)
        assert e.value.error == "TaskNotOpen" and e.value.error_args["status"] == TaskStatus.ACCEPTED
    with pytest.raises(ContractRevertError) as e:
        m1.accept_task(999)
    assert e.value.error == "TaskNotFound"


def test_collateral_covers_every_accepted_task(chain):
    m = registered_machine(chain, MACHINE, stake=100 * TOKEN)  # minStake: one task's collateral
    _, t1 = _posted(chain)
    _, t2 = _posted(chain)
    m.accept_task(t1)
    with pytest.raises(ContractRevertError) as e:
        m.accept_task(t2)
    assert e.value.error == "CollateralTooLow" and e.value.error_args["required"] == 200 * TOKEN
    with pytest.raises(ContractRevertError) as e:  # nor can it withdraw what backs t1
        m.market.transact("withdrawStake", 1)
    assert e.value.error == "StakeLocked"
    m.approve(100 * TOKEN)
    m.market.transact("addStake", 100 * TOKEN)
    m.accept_task(t2)
    assert m.machine_info().active_tasks == 2


def test_payout_after_deadline_reverts_and_refund(chain):
    m = registered_machine(chain, MACHINE)
    req, tid = _posted(chain, deadline_in=100)
    m.accept_task(tid)
    report, proof, _ = arrive(chain, m, tid, *GOAL_MM)
    with pytest.raises(ContractRevertError) as e:
        req.refund(tid)
    assert e.value.error == "DeadlineNotPassed"
    sig = m.sign_report(report)
    chain.client().mine(1, seconds=200)
    with pytest.raises(ContractRevertError) as e:
        req.complete_task(report, proof, sig)
    assert e.value.error == "DeadlinePassed"
    before = _balance(chain, REQUESTER)
    fleet(chain, STRANGER).refund(tid)  # anyone may trigger the refund; it goes to the requester
    assert _balance(chain, REQUESTER) == before + REWARD
    assert req.task(tid).status == TaskStatus.REFUNDED
    assert m.machine_info().active_tasks == 0
    with pytest.raises(ContractRevertError) as e:
        req.refund(tid)
    assert e.value.error == "TaskNotAccepted"


def test_cancel_open_task_only_by_requester(chain):
    req, tid = _posted(chain)
    with pytest.raises(ContractRevertError) as e:
        fleet(chain, STRANGER).market.transact("cancelTask", tid)
    assert e.value.error == "NotRequester"
    before = _balance(chain, REQUESTER)
    req.market.transact("cancelTask", tid)
    assert _balance(chain, REQUESTER) == before + REWARD and req.task(tid).status == TaskStatus.CANCELLED


def test_paused_fleet_takes_no_new_work(chain):
    m = registered_machine(chain, MACHINE, stake=200 * TOKEN)
    _, t1 = _posted(chain)
    _, t2 = _posted(chain)
    m.accept_task(t1)
    chain.client().contract("FleetPolicy").transact("setPaused", True)  # the guardian's e-stop
    with pytest.raises(ContractRevertError) as e:
        m.accept_task(t2)
    assert e.value.error == "FleetPaused"


def test_spending_cap_for_machine_requesters(chain):
    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setSpendingCap", 8 * TOKEN)
    buyer = registered_machine(chain, MACHINE)
    buyer.post_task(0, 0, 0, chain.now() + 600, 5 * TOKEN, tolerance=0.5)
    with pytest.raises(ContractRevertError) as e:
        buyer.post_task(0, 0, 0, chain.now() + 600, 5 * TOKEN, tolerance=0.5)
    assert e.value.error == "SpendingCapExceeded" and e.value.error_args["wouldSpend"] == 10 * TOKEN
    fleet(chain, REQUESTER).post_task(0, 0, 0, chain.now() + 600, 50 * TOKEN, tolerance=0.5)  # not a machine: no cap
    chain.client().mine(1, seconds=86_400)  # next day, fresh budget
    buyer.post_task(0, 0, 0, chain.now() + 600, 5 * TOKEN, tolerance=0.5)


def test_withdraw_stake(chain):
    m = registered_machine(chain, MACHINE, stake=150 * TOKEN)
    before = _balance(chain, MACHINE)
    m.market.transact("withdrawStake", 50 * TOKEN)
    assert _balance(chain, MACHINE) == before + 50 * TOKEN and m.machine_info().stake == 100 * TOKEN
    with pytest.raises(ContractRevertError) as e:
        m.market.transact("withdrawStake", 101 * TOKEN)
    assert e.value.error == "StakeTooLow"


def test_post_with_permit_and_task_pages(chain):
    req = fleet(chain, REQUESTER)
    token = req.token
    deadline = chain.now() + 3600
    nonce = token.call("nonces", req.me)
    domain = {"name": "DePAI Fleet Token", "version": "1", "chainId": 31337, "verifyingContract": token.address}
    types = {"Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]}
    sig = chain.signer(REQUESTER).sign_typed_data(domain, types, {"owner": req.me, "spender": req.market.address,
                                                                   "value": REWARD, "nonce": nonce, "deadline": deadline})
    r = req.market.transact("postTaskWithPermit", 0, 0, 0, 500, deadline, REWARD, id32("gate"), deadline, sig[64], sig[:32], sig[32:64])
    assert r.status == 1 and req.task(req.task_count()).reward == REWARD and req.task(1).station == "gate"
    assert req.market.call("getTasks", 0, 10)[0]["reward"] == REWARD and req.market.call("getTasks", 2, 10) == []
    assert req.market.call("getTasks", 1, 0) == [] and len(req.market.call("getTasks", 1, 2**256 - 1)) == 1
    assert [t.id for t in req.tasks()] == [1]


# ---------------------------------------------------------------------------------- data registry

@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 33])
def test_python_merkle_roots_verify_on_chain(chain, n):
    m = fleet(chain, MACHINE)
    batch, tree, msgs = _anchored(m, batch_id=f"n{n}", n=n)
    rec = m.batch_record(m.me, batch.batch_id)
    assert rec.root == tree.root and rec.message_count == n and rec.uri == "file:///tmp/b1.mcap"
    for i in range(n):
        assert verify(leaf_hash(msgs[i]), tree.proof(i), tree.root)
        assert m.verify_message(m.me, batch.batch_id, msgs[i], tree.proof(i)) is True
    assert m.verify_message(m.me, batch.batch_id, b"not in the batch", tree.proof(0)) is False
    if n > 1:
        assert m.verify_message(m.me, batch.batch_id, msgs[0], tree.proof(1)) is False


def test_anchor_reverts_and_relaying(chain):
    m = fleet(chain, MACHINE)
    relayer = fleet(chain, STRANGER)
    batch, tree = m.make_batch([b"a", b"b"], "relayed", 1, 2)
    sig = m.sign_batch(batch)
    with pytest.raises(ContractRevertError) as e:  # signed by someone else
        relayer.anchor(batch, relayer.sign_batch(batch))
    assert e.value.error == "BadSignature"
    r = relayer.anchor(batch, sig)  # a relayer pays the gas; the machine's signature is what counts
    assert r.status == 1 and m.batch_record(m.me, batch.batch_id).submitter == relayer.me
    with pytest.raises(ContractRevertError) as e:
        relayer.anchor(batch, sig)
    assert e.value.error == "BatchExists"
    bad = batch.model_copy(update={"batch_id": id32("bad"), "start_time": 5, "end_time": 4})
    with pytest.raises(ContractRevertError) as e:
        m.anchor(bad)
    assert e.value.error == "InvalidBatch" and e.value.error_args["reason"] == "end before start"
    with pytest.raises(ContractRevertError) as e:
        m.batch_record(m.me, id32("missing"))
    assert e.value.error == "BatchNotFound"
    with pytest.raises(ContractRevertError) as e:
        m.verify_message(m.me, id32("missing"), b"a", [])
    assert e.value.error == "BatchNotFound"


def test_anchor_many_in_one_transaction(chain):
    m = fleet(chain, MACHINE)
    batches = [m.make_batch([f"{i}-{j}".encode() for j in range(4)], f"many{i}", i, i + 1)[0] for i in range(5)]
    r = m.data.transact("anchorMany", [b.as_tuple() for b in batches], [m.sign_batch(b) for b in batches])
    assert r.status == 1 and m.data.call("batchCount", m.me) == 5


def test_merkle_tree_properties():
    msgs = [bytes([i]) * i for i in range(1, 12)]
    t = MerkleTree(msgs)
    assert len(t) == 11 and all(verify(t.leaf(i), t.proof(i), t.root) for i in range(11))
    assert MerkleTree(msgs[:1]).root == leaf_hash(msgs[0])
    assert MerkleTree(list(reversed(msgs))).root != t.root or len(set(msgs)) == 1  # order matters
    with pytest.raises(ValueError):
        MerkleTree([])
    with pytest.raises(IndexError):
        t.proof(11)


def test_tolerance_cap_by_a_real_vote(chain):
    """The cap is changed the way the DAO changes anything: a Governor round through the timelock."""
    from chainkit import governance_round

    from depai_nodes.chain.fleet import Fleet

    action = Fleet.set_tolerance_cap_action(0.5)
    governance_round(chain, [(action.contract, action.fn, action.args)], "arrival within 50 cm")
    req = fleet(chain, REQUESTER)
    assert req.max_arrival_tolerance() == 0.5
    with pytest.raises(ContractRevertError) as e:
        req.post_task(0, 0, 0, chain.now() + 600, TOKEN, tolerance=0.6)
    assert e.value.error == "ToleranceOutOfRange"
