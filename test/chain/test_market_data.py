"""TaskMarket and DataRegistry: every path, including the reverts and slashing; Merkle roots
computed in Python verified on chain."""

import pytest
from chainkit import MACHINE, MACHINE2, REQUESTER, STRANGER, TOKEN, _as_timelock_sender, fleet, registered_machine

from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.merkle import MerkleTree, leaf_hash, verify
from depai_nodes.chain.models import TaskReport, TaskStatus, id32

REWARD = 5 * TOKEN


def _anchored(f, batch_id="b1", n=5):
    msgs = [f"odom {i}".encode() for i in range(n)]
    batch, tree = f.make_batch(msgs, batch_id, 1000, 1000 + n, uri="file:///tmp/b1.mcap")
    f.anchor(batch)
    return batch, tree, msgs


def _posted(chain, deadline_in=3600, reward=REWARD):
    req = fleet(chain, REQUESTER)
    return req, req.post_task(1.0, 2.0, 0.5, chain.now() + deadline_in, reward)


def _report(chain, m, task_id, batch, x=5.0, y=5.0):
    return TaskReport(task_id=task_id, machine=m.me, batch_id=batch.batch_id, x=x, y=y, timestamp=chain.now())


def _balance(chain, who):
    return chain.client().contract("FleetToken").call("balanceOf", chain.address(who))


def test_happy_path_post_accept_complete_payout(chain):
    m = registered_machine(chain, MACHINE)
    req, tid = _posted(chain)
    t = req.task(tid)
    assert t.status == TaskStatus.OPEN and t.goal_x == 1.0 and t.goal_y == 2.0 and t.goal_yaw == 0.5 and t.reward == REWARD
    m.accept(tid)
    assert req.task(tid).status == TaskStatus.ACCEPTED and m.machine_info().active_tasks == 1
    batch, _, _ = _anchored(m)
    before = _balance(chain, MACHINE)
    report = _report(chain, m, tid, batch)
    req.complete(report, m.sign_report(report))  # anyone (here the requester) may submit it
    t = req.task(tid)
    assert t.status == TaskStatus.COMPLETED and t.batch_id == batch.batch_id and t.machine == m.me
    assert _balance(chain, MACHINE) == before + REWARD
    assert m.machine_info().active_tasks == 0


def test_register_needs_did_and_stake(chain):
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
    with pytest.raises(ContractRevertError) as e:
        req.post_task(0, 0, 0, chain.now() + 60, TOKEN - 1)
    assert e.value.error == "RewardBelowMinimum" and e.value.error_args["minTaskPrice"] == TOKEN
    with pytest.raises(ContractRevertError) as e:
        req.post_task(0, 0, 0, chain.now() - 1, TOKEN)
    assert e.value.error == "DeadlineInPast"
    req.approve(0)
    with pytest.raises(ContractRevertError) as e:  # no allowance: the token's own error surfaces, decoded
        req.post_task(0, 0, 0, chain.now() + 60, TOKEN, approve=False)
    assert e.value.error == "ERC20InsufficientAllowance"


def test_double_accept_and_unregistered_accept(chain):
    m1 = registered_machine(chain, MACHINE)
    m2 = registered_machine(chain, MACHINE2)
    _, tid = _posted(chain)
    with pytest.raises(ContractRevertError) as e:
        fleet(chain, STRANGER).accept(tid)
    assert e.value.error == "NotRegistered"
    m1.accept(tid)
    for m in (m1, m2):
        with pytest.raises(ContractRevertError) as e:
            m.accept(tid)
        assert e.value.error == "TaskNotOpen" and e.value.error_args["status"] == TaskStatus.ACCEPTED
    with pytest.raises(ContractRevertError) as e:
        m1.accept(999)
    assert e.value.error == "TaskNotFound"


def test_payout_after_deadline_reverts_and_refund(chain):
    m = registered_machine(chain, MACHINE)
    req, tid = _posted(chain, deadline_in=100)
    m.accept(tid)
    batch, _, _ = _anchored(m)
    with pytest.raises(ContractRevertError) as e:
        req.refund(tid)
    assert e.value.error == "DeadlineNotPassed"
    report = _report(chain, m, tid, batch)
    sig = m.sign_report(report)
    chain.client().mine(1, seconds=200)
    with pytest.raises(ContractRevertError) as e:
        req.complete(report, sig)
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


def test_report_checks(chain):
    m = registered_machine(chain, MACHINE)
    other = registered_machine(chain, MACHINE2)
    req, tid = _posted(chain)
    m.accept(tid)
    batch, _, _ = _anchored(m)
    report = _report(chain, m, tid, batch)
    with pytest.raises(ContractRevertError) as e:  # signed by another key
        req.complete(report, other.sign_report(report))
    assert e.value.error == "BadSignature"
    forged = report.model_copy(update={"x": 9.0})
    with pytest.raises(ContractRevertError) as e:  # tampered after signing
        req.complete(forged, m.sign_report(report))
    assert e.value.error == "BadSignature"
    unanchored = report.model_copy(update={"batch_id": id32("never")})
    with pytest.raises(ContractRevertError) as e:
        req.complete(unanchored, m.sign_report(unanchored))
    assert e.value.error == "BatchNotAnchored"
    wrong = TaskReport(task_id=tid, machine=other.me, batch_id=batch.batch_id, x=0, y=0, timestamp=chain.now())
    with pytest.raises(ContractRevertError) as e:
        req.complete(wrong, other.sign_report(wrong))
    assert e.value.error == "WrongMachine"
    future = report.model_copy(update={"timestamp": chain.now() + 10_000})
    with pytest.raises(ContractRevertError) as e:
        req.complete(future, m.sign_report(future))
    assert e.value.error == "ReportFromFuture"


@pytest.mark.parametrize("violation", ["keep-out zone", "fleet paused"])
def test_slashing_on_proven_violation(chain, violation):
    m = registered_machine(chain, MACHINE, stake=200 * TOKEN)
    req, tid = _posted(chain)
    m.accept(tid)
    batch, _, _ = _anchored(m)
    send = _as_timelock_sender(chain, "FleetPolicy")
    if violation == "keep-out zone":
        send("setKeepOutZone", id32("dock"), [0, 2000, 2000, 0], [0, 0, 2000, 2000])
        report = _report(chain, m, tid, batch, x=1.0, y=1.0)  # claimed inside the dock
    else:
        send("setPaused", True)
        report = _report(chain, m, tid, batch, x=5.0, y=5.0)
    before_req, before_m = _balance(chain, REQUESTER), _balance(chain, MACHINE)
    r = req.complete(report, m.sign_report(report))
    ev = next(e for e in (req.market.abi.decode_log(l) for l in r.logs) if e and e["event"] == "MachineSlashed")
    assert ev["amount"] == 100 * TOKEN and ev["reason"] == id32(violation)
    assert req.task(tid).status == TaskStatus.SLASHED
    assert m.machine_info().stake == 100 * TOKEN
    assert _balance(chain, REQUESTER) == before_req + REWARD + 100 * TOKEN
    assert _balance(chain, MACHINE) == before_m


def test_rules_are_judged_at_the_reports_time(chain):
    m = registered_machine(chain, MACHINE, stake=200 * TOKEN)
    req, tid = _posted(chain)
    m.accept(tid)
    accepted_at = req.task(tid).accepted_at
    assert accepted_at > 0
    batch, _, _ = _anchored(m)
    early = _report(chain, m, tid, batch).model_copy(update={"timestamp": accepted_at - 1})
    with pytest.raises(ContractRevertError) as e:  # a report may not claim a time before acceptance
        req.complete(early, m.sign_report(early))
    assert e.value.error == "ReportBeforeAcceptance"
    report = _report(chain, m, tid, batch, x=1.0, y=1.0)  # done here, before the zone or the pause existed
    chain.client().mine(1, seconds=5)
    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setKeepOutZone", id32("dock"), [0, 2000, 2000, 0], [0, 0, 2000, 2000])
    send("setPaused", True)
    before = _balance(chain, MACHINE)
    req.complete(report, m.sign_report(report))
    assert req.task(tid).status == TaskStatus.COMPLETED and _balance(chain, MACHINE) == before + REWARD
    assert m.machine_info().stake == 200 * TOKEN


def test_paused_fleet_takes_no_new_work_and_stake_is_locked(chain):
    m = registered_machine(chain, MACHINE)
    _, t1 = _posted(chain)
    _, t2 = _posted(chain)
    m.accept(t1)
    with pytest.raises(ContractRevertError) as e:
        m.market.transact("withdrawStake", 1)
    assert e.value.error == "StakeLocked"
    chain.client().contract("FleetPolicy").transact("setPaused", True)  # the guardian's e-stop
    with pytest.raises(ContractRevertError) as e:
        m.accept(t2)
    assert e.value.error == "FleetPaused"


def test_spending_cap_for_machine_requesters(chain):
    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setSpendingCap", 8 * TOKEN)
    buyer = registered_machine(chain, MACHINE)
    buyer.post_task(0, 0, 0, chain.now() + 600, 5 * TOKEN)
    with pytest.raises(ContractRevertError) as e:
        buyer.post_task(0, 0, 0, chain.now() + 600, 5 * TOKEN)
    assert e.value.error == "SpendingCapExceeded" and e.value.error_args["wouldSpend"] == 10 * TOKEN
    fleet(chain, REQUESTER).post_task(0, 0, 0, chain.now() + 600, 50 * TOKEN)  # not a machine: no cap
    chain.client().mine(1, seconds=86_400)  # next day, fresh budget
    buyer.post_task(0, 0, 0, chain.now() + 600, 5 * TOKEN)


def test_withdraw_stake(chain):
    m = registered_machine(chain, MACHINE, stake=150 * TOKEN)
    before = _balance(chain, MACHINE)
    m.market.transact("withdrawStake", 50 * TOKEN)
    assert _balance(chain, MACHINE) == before + 50 * TOKEN and m.machine_info().stake == 100 * TOKEN
    with pytest.raises(ContractRevertError) as e:
        m.market.transact("withdrawStake", 101 * TOKEN)
    assert e.value.error == "StakeTooLow"


def test_post_with_permit(chain):
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
    r = req.market.transact("postTaskWithPermit", 0, 0, 0, deadline, REWARD, deadline, sig[64], sig[:32], sig[32:64])
    assert r.status == 1 and req.task(req.market.call("taskCount")).reward == REWARD


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
