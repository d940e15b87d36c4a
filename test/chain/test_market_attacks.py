"""TaskMarket tried as an attacker would (issue 10, item 5), every attack on a real anvil.

A lazy robot (a correct, signed report made far from the goal), an outsider (its own DID
attribute and a stake, no membership), a greedy requester (a goal in a keep-out zone, to collect
the slash), replayed, backdated and forwarded reports, a report for another machine's task, a
report citing another machine's batch, a junk root, a batch reused across tasks, and a claimed
time chosen to escape a pause or a zone. Each is refused with its custom error, or slashed when
the report itself proves the violation.
"""

import pytest
from chainkit import (DEPLOYER, MACHINE, MACHINE2, REQUESTER, STRANGER, TOKEN, _as_timelock_sender, arrive, fleet,
                      registered_machine)

from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.models import TaskStatus, id32

REWARD = 5 * TOKEN
GOAL_MM = (4000, 3000, 0)


def _post(chain, tolerance=0.2, deadline_in=3600, x=4.0, y=3.0):
    req = fleet(chain, REQUESTER)
    return req, req.post_task(x, y, 0.0, chain.now() + deadline_in, REWARD, tolerance=tolerance, station="shelf-3")


def _reverts(fn, error):
    with pytest.raises(ContractRevertError) as e:
        fn()
    assert e.value.error == error, f"{e.value.error} ({e.value.error_args}) instead of {error}"
    return e.value.error_args


def _balance(chain, who):
    return chain.client().contract("FleetToken").call("balanceOf", chain.address(who))


@pytest.fixture()
def job(chain):
    m = registered_machine(chain, MACHINE, stake=200 * TOKEN)
    req, tid = _post(chain)
    m.accept_task(tid)
    return chain, m, req, tid


def test_lazy_robot_700_km_away_is_not_paid(job):
    chain, m, req, tid = job
    report, proof, _ = arrive(chain, m, tid, 700_000_000, 3000)  # a perfectly proven, signed arrival... 700 km off
    args = _reverts(lambda: req.complete_task(report, proof, m.sign_report(report)), "ArrivalTooFar")
    assert args["toleranceMm"] == 200 and args["x"] == 700_000_000
    assert req.task(tid).status == TaskStatus.ACCEPTED


def test_tolerance_edge(job):
    chain, m, req, tid = job
    r1, p1, _ = arrive(chain, m, tid, 4000 + 121, 3000 + 161)  # 201 mm (121^2 + 161^2 > 200^2)
    _reverts(lambda: m.complete_task(r1, p1), "ArrivalTooFar")
    r2, p2, _ = arrive(chain, m, tid, 4000 - 120, 3000 - 160)  # exactly 200 mm: within
    m.complete_task(r2, p2)
    assert req.task(tid).status == TaskStatus.COMPLETED


def test_outsider_with_its_own_did_attribute_cannot_join(chain):
    outsider = fleet(chain, STRANGER)
    outsider.register_did(b"i-am-a-robot")  # anyone can write its own DID attribute
    outsider.approve(1000 * TOKEN)
    _reverts(lambda: outsider.market.transact("registerMachine", 500 * TOKEN), "NotAdmitted")
    _reverts(lambda: outsider.admit_machines([outsider.me]), "AccessControlUnauthorizedAccount")  # nor admit itself
    _reverts(lambda: outsider.market.transact("revokeMachine", chain.address(MACHINE)), "AccessControlUnauthorizedAccount")
    owner = fleet(chain, DEPLOYER)  # the fleet owner admits it: now it may register
    owner.admit_machines([outsider.me])
    assert outsider.is_admitted()
    outsider.market.transact("registerMachine", 100 * TOKEN)


def test_revoked_member_and_expired_did_accept_nothing(chain):
    m = registered_machine(chain, MACHINE)
    _, t1 = _post(chain)
    owner = fleet(chain, DEPLOYER)
    owner.revoke_machine(m.me)
    _reverts(lambda: m.accept_task(t1), "NotAdmitted")
    owner.admit_machines([m.me])
    m.did.transact("removeAttribute", m.me, b"depai:machine")  # a member whose DID attribute is gone
    _reverts(lambda: m.accept_task(t1), "NoMachineDid")
    m.register_did()
    m.accept_task(t1)
    # a DID that expires: valid for 3 more blocks, then refused
    m2 = fleet(chain, MACHINE2)
    m2.register_did(validity_blocks=3)
    m2.register_machine(100 * TOKEN)
    _, t2 = _post(chain)
    chain.client().mine(5)
    _reverts(lambda: m2.accept_task(t2), "DidExpired")
    m3 = fleet(chain, REQUESTER)  # admitted (demo account 3) but its DID already expired at registration
    m3.register_did(validity_blocks=1)
    chain.client().mine(3)
    m3.approve(100 * TOKEN)
    _reverts(lambda: m3.market.transact("registerMachine", 100 * TOKEN), "DidExpired")


def test_the_dao_governs_membership(chain):
    """The timelock (a vote) admits and revokes machines and can take the fleet owner's role away."""
    send = _as_timelock_sender(chain, "TaskMarket")
    outsider = fleet(chain, STRANGER)
    send("admitMachines", [outsider.me])
    assert outsider.is_admitted()
    send("revokeMachine", outsider.me)
    assert not outsider.is_admitted()
    market = fleet(chain, DEPLOYER).market
    send("revokeRole", market.call("ADMITTER_ROLE"), chain.address(DEPLOYER))
    _reverts(lambda: fleet(chain, DEPLOYER).admit_machines([outsider.me]), "AccessControlUnauthorizedAccount")


def test_report_for_another_machines_task(job):
    chain, m, req, tid = job
    other = registered_machine(chain, MACHINE2)
    r, p, _ = arrive(chain, other, tid, *GOAL_MM)  # the other robot was there too, with its own proof
    _reverts(lambda: other.complete_task(r, p), "WrongMachine")
    forged = r.model_copy(update={"machine": m.me})  # naming the task's machine, signed by the other
    _reverts(lambda: other.complete_task(forged, p, other.sign_report(forged)), "BadSignature")


def test_citing_another_machines_batch(job):
    chain, m, req, tid = job
    other = registered_machine(chain, MACHINE2)
    # the other machine anchors a batch holding an arrival record that names OUR machine
    r, p, batch = arrive(chain, other, tid, *GOAL_MM, machine=m.me)
    report = r.model_copy(update={"machine": m.me})
    _reverts(lambda: m.complete_task(report, p), "BatchNotAnchored")  # not a batch this machine anchored


def test_junk_root_and_wrong_proofs(job):
    chain, m, req, tid = job
    report, proof, _ = arrive(chain, m, tid, *GOAL_MM)
    junk, _ = m.make_batch([b"nothing", b"to", b"see"], "junk", report.time - 5, report.time + 1)
    m.anchor(junk)  # any root the machine likes
    cites_junk = report.model_copy(update={"batch_id": junk.batch_id})
    _reverts(lambda: m.complete_task(cites_junk, proof), "ArrivalNotInBatch")
    _reverts(lambda: m.complete_task(report, proof[:-1]), "ArrivalNotInBatch")  # truncated proof
    _reverts(lambda: m.complete_task(report, []), "ArrivalNotInBatch")
    moved = report.model_copy(update={"x_mm": report.x_mm + 1})  # a field not in the leaf
    _reverts(lambda: m.complete_task(moved, proof), "ArrivalNotInBatch")
    unanchored = report.model_copy(update={"batch_id": id32("never")})
    _reverts(lambda: m.complete_task(unanchored, proof), "BatchNotAnchored")
    tampered = report.model_copy(update={"yaw_mrad": 1})
    _reverts(lambda: req.complete_task(tampered, proof, m.sign_report(report)), "BadSignature")


def test_one_batch_one_task_and_no_replay(chain):
    m = registered_machine(chain, MACHINE, stake=300 * TOKEN)
    req, t1 = _post(chain)
    _, t2 = _post(chain)
    m.accept_task(t1)
    m.accept_task(t2)
    second = m.arrival_report(t2, bytes(32), *GOAL_MM, chain.now())
    r1, p1, batch = arrive(chain, m, t1, *GOAL_MM, extra=[second])  # both arrivals in one batch
    m.complete_task(r1, p1)
    from depai_nodes.chain.merkle import MerkleTree

    msgs = [b"odom before", r1.leaf_preimage(), second.leaf_preimage(), b"odom after"]
    assert MerkleTree(msgs).root == batch.root
    r2 = second.model_copy(update={"batch_id": batch.batch_id})
    args = _reverts(lambda: m.complete_task(r2, MerkleTree(msgs).proof(2)), "BatchAlreadyCited")
    assert args["taskId"] == t1
    _reverts(lambda: m.complete_task(r1, p1), "TaskNotAccepted")  # the same report again: paid once
    assert req.task(t1).status == TaskStatus.COMPLETED and req.task(t2).status == TaskStatus.ACCEPTED
    # a report proven for task 1 is no report for task 2 (the leaf names the task)
    r3, p3, _ = arrive(chain, m, t1, *GOAL_MM)
    _reverts(lambda: m.complete_task(r3.model_copy(update={"task_id": t2}), p3), "ArrivalNotInBatch")


def test_backdated_forwarded_and_premade_reports(chain):
    m = registered_machine(chain, MACHINE)
    req, tid = _post(chain)
    # made BEFORE acceptance (a proof prepared in advance), anchored, then the task accepted
    early, early_proof, _ = arrive(chain, m, tid, *GOAL_MM)
    chain.client().mine(1, seconds=3)
    m.accept_task(tid)
    accepted_at = req.task(tid).accepted_at
    _reverts(lambda: m.complete_task(early, early_proof), "ReportBeforeAcceptance")
    # a time outside the batch's own range
    now = chain.now()
    r, p, _ = arrive(chain, m, tid, *GOAL_MM, time=now, start=now + 1, end=now + 2)
    _reverts(lambda: m.complete_task(r, p), "ArrivalOutsideBatch")
    # a time after the batch was anchored (the record cannot predate... be newer than its anchor)
    later = now + 30
    r, p, _ = arrive(chain, m, tid, *GOAL_MM, time=later, start=now - 1, end=later + 5)
    _reverts(lambda: m.complete_task(r, p), "ReportFromFuture")
    chain.client().mine(1, seconds=60)
    args = _reverts(lambda: m.complete_task(r, p), "ArrivalAfterAnchoring")
    assert args["anchoredTime"] < later and accepted_at <= args["anchoredTime"]


def test_greedy_requester_cannot_bait_a_robot_into_a_zone(chain):
    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setKeepOutZone", id32("dock"), [3000, 5000, 5000, 3000], [2000, 2000, 4000, 4000])
    req = fleet(chain, REQUESTER)
    args = _reverts(lambda: req.post_task(4.0, 3.0, 0.0, chain.now() + 600, REWARD, tolerance=0.2), "GoalInKeepOut")
    assert args["zoneId"] == id32("dock")
    send("removeKeepOutZone", id32("dock"))
    m = registered_machine(chain, MACHINE)
    _, tid = _post(chain)
    send("setKeepOutZone", id32("dock"), [3000, 5000, 5000, 3000], [2000, 2000, 4000, 4000])  # voted after posting
    _reverts(lambda: m.accept_task(tid), "GoalInKeepOut")


@pytest.mark.parametrize("rule", ["pause", "zone"])
def test_a_claimed_time_cannot_escape_a_rule(job, rule):
    """The robot arrives after the pause / zone took force and claims an earlier time (after
    acceptance, inside its own batch's range): not paid. Claiming the true time: slashed."""
    chain, m, req, tid = job
    send = _as_timelock_sender(chain, "FleetPolicy")
    t_before = chain.now()
    chain.client().mine(1, seconds=10)
    if rule == "pause":
        send("setPaused", True)
    else:
        send("setKeepOutZone", id32("dock"), [3000, 5000, 5000, 3000], [2000, 2000, 4000, 4000])
    t_rule = chain.now()
    chain.client().mine(1, seconds=10)
    lie, lie_proof, _ = arrive(chain, m, tid, *GOAL_MM, time=t_before + 1, start=t_before, end=chain.now())
    args = _reverts(lambda: req.complete_task(lie, lie_proof, m.sign_report(lie)), "RulesChangedBeforeAnchoring")
    assert args["rule"] == id32("fleet paused" if rule == "pause" else "keep-out zone")
    if rule == "pause":  # lifting the pause before settling does not help either: pauses are remembered
        send("setPaused", False)
        _reverts(lambda: req.complete_task(lie, lie_proof, m.sign_report(lie)), "RulesChangedBeforeAnchoring")
    truth, truth_proof, _ = arrive(chain, m, tid, *GOAL_MM, time=t_rule + 2, start=t_before, end=chain.now())
    before = _balance(chain, REQUESTER)
    r = req.complete_task(truth, truth_proof, m.sign_report(truth))
    ev = next(e for e in (req.market.abi.decode_log(lg) for lg in r.logs) if e and e["event"] == "MachineSlashed")
    assert ev["reason"] == id32("fleet paused" if rule == "pause" else "keep-out zone") and ev["amount"] == 100 * TOKEN
    assert req.task(tid).status == TaskStatus.SLASHED and m.machine_info().stake == 100 * TOKEN
    assert _balance(chain, REQUESTER) == before + REWARD + 100 * TOKEN


def test_rules_after_the_anchoring_are_not_held_against_the_machine(job):
    chain, m, req, tid = job
    report, proof, _ = arrive(chain, m, tid, *GOAL_MM)
    chain.client().mine(1, seconds=5)
    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setKeepOutZone", id32("dock"), [3000, 5000, 5000, 3000], [2000, 2000, 4000, 4000])
    send("setPaused", True)
    before = _balance(chain, MACHINE)
    req.complete_task(report, proof, m.sign_report(report))
    assert req.task(tid).status == TaskStatus.COMPLETED and _balance(chain, MACHINE) == before + REWARD
    assert m.machine_info().stake == 200 * TOKEN


def test_a_lifted_pause_is_still_judged(chain):
    policy = chain.client().contract("FleetPolicy")
    send = _as_timelock_sender(chain, "FleetPolicy")
    t0 = chain.now()
    chain.client().mine(1, seconds=10)
    send("setPaused", True)
    p0 = chain.now()
    chain.client().mine(1, seconds=10)
    send("setPaused", False)
    p1 = chain.now()
    assert policy.call("pastPauseCount") == 1
    assert policy.call("pausedAt", p0) and policy.call("pausedAt", p1 - 1) and not policy.call("pausedAt", p1)
    assert not policy.call("pausedAt", t0) and policy.call("pausedBetween", t0, p0) and not policy.call("pausedBetween", p1, p1 + 100)
    for _ in range(3):  # more pauses later: an old window is still judged by its own pause, scanning newest first
        chain.client().mine(1, seconds=20)
        send("setPaused", True)
        chain.client().mine(1, seconds=5)
        send("setPaused", False)
    assert policy.call("pastPauseCount") == 4
    assert policy.call("pausedAt", p0 + 1) and not policy.call("pausedAt", p1 + 1) and not policy.call("pausedBetween", t0 - 5, t0)
    assert policy.call("pausedBetween", p1, chain.now())  # a later pause inside the window


def test_relayer_submits_and_gas(job):
    """A relayer may anchor and submit for the machine (the signatures count, not the sender);
    the gas of a proven completion is printed (bench/ measures it properly)."""
    chain, m, req, tid = job
    relayer = fleet(chain, STRANGER)
    report, proof, _ = arrive(chain, m, tid, *GOAL_MM, anchor_with=relayer)
    before = _balance(chain, MACHINE)
    r = relayer.complete_task(report, proof, m.sign_report(report))
    assert _balance(chain, MACHINE) == before + REWARD
    assert r.gas_used < 260_000, r.gas_used  # the proof, the citation, the fee and the payee
    print(f"completeTask gas (proof of {len(proof)} hashes): {r.gas_used}")
