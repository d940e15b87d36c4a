"""The wallet's market intents (accept, complete, post) on a real anvil: validated field by field,
policy-checked, idempotent, and the report the wallet signs built by the wallet itself."""

import pytest
from chainkit import DEPLOYER, MACHINE, MACHINE2, REQUESTER, TOKEN, arrive, fleet, registered_machine

from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.intents import RETRYABLE, Result
from depai_nodes.chain.models import TaskStatus
from depai_nodes.wallet.market import AcceptRequest, CompleteRequest, MarketIntents, MarketPolicy, PostRequest
from depai_nodes.wallet.state import WalletState

REWARD = 5 * TOKEN


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _complete_req(report, hashes, **change):
    fields = dict(task_id=str(report.task_id), batch_id=report.batch_id.rstrip(b"\0").decode(), x_mm=report.x_mm,
                  y_mm=report.y_mm, yaw_mrad=report.yaw_mrad, time=report.time, proof=tuple(_hex(p) for p in hashes))
    fields.update(change)
    return CompleteRequest(**fields)


def _post(chain, **kw):
    return fleet(chain, REQUESTER).post_task(4.0, 3.0, 0.0, chain.now() + 3600, REWARD, tolerance=0.3, **kw)


def test_accept_checks_then_is_idempotent(chain):
    m = registered_machine(chain, MACHINE, stake=200 * TOKEN)
    wallet = MarketIntents(m, MarketPolicy(max_active_tasks=1, max_accepts_per_minute=4))
    for bad in ["", "0", "-1", "1.5", "0x1", str(2**64), "9" * 30]:
        out = wallet.accept(AcceptRequest(bad))
        assert (out.result, out.error) == (Result.INVALID_REQUEST, "InvalidTaskId"), bad
    nf = wallet.accept(AcceptRequest("77"))
    assert (nf.result, nf.error) == (Result.REVERTED, "TaskNotFound") and nf.tx_hash == ""
    t1, t2 = _post(chain), _post(chain)
    ok = wallet.accept(AcceptRequest(str(t1)))
    assert ok.ok and not ok.already_done and ok.tx_hash and m.task(t1).machine == m.me
    again = wallet.accept(AcceptRequest(str(t1)))
    assert again.ok and again.already_done and again.tx_hash == ""
    busy = wallet.accept(AcceptRequest(str(t2)))  # one task at a time (max_active_tasks)
    assert (busy.result, busy.error) == (Result.REJECTED_BY_POLICY, "PolicyRefused") and "max_active_tasks" in busy.reason
    wallet.set_policy(MarketPolicy(max_active_tasks=5, max_accepts_per_minute=4))
    assert wallet.accept(AcceptRequest(str(t2))).ok  # 200 FLEET: collateral for two tasks
    t3 = _post(chain)
    poor = wallet.accept(AcceptRequest(str(t3)))  # beyond its collateral: refused before signing
    assert (poor.result, poor.error) == (Result.REJECTED_BY_POLICY, "CollateralTooLow") and poor.tx_hash == ""
    # lost the race: another machine was first
    other = MarketIntents(registered_machine(chain, MACHINE2))
    t4 = _post(chain)
    assert other.accept(AcceptRequest(str(t4))).ok
    lost = wallet.accept(AcceptRequest(str(t4)))
    assert (lost.result, lost.error) == (Result.REVERTED, "TaskNotOpen") and m.me not in lost.reason
    assert lost.tx_hash == ""


def test_accept_is_rate_limited(chain):
    m = registered_machine(chain, MACHINE, stake=1000 * TOKEN)
    wallet = MarketIntents(m, MarketPolicy(max_active_tasks=10, max_accepts_per_minute=2))
    ids = [_post(chain) for _ in range(3)]
    assert wallet.accept(AcceptRequest(str(ids[0]))).ok and wallet.accept(AcceptRequest(str(ids[1]))).ok
    busy = wallet.accept(AcceptRequest(str(ids[2])))
    assert (busy.result, busy.error) == (Result.BUSY, "RateLimited") and busy.retryable
    assert wallet.accept(AcceptRequest(str(ids[0]))).already_done  # an idempotent retry is not rate limited


def test_complete_builds_and_signs_the_report_itself(chain):
    m = registered_machine(chain, MACHINE)
    wallet = MarketIntents(m)
    tid = _post(chain)
    assert wallet.accept(AcceptRequest(str(tid))).ok
    report, proof, batch = arrive(chain, m, tid, 4050, 3000, 10)
    good = _complete_req(report, proof)
    refused = {
        "bad task id": (_complete_req(report, proof, task_id="x"), Result.INVALID_REQUEST, "InvalidTaskId"),
        "bad batch id": (_complete_req(report, proof, batch_id="b" * 33), Result.INVALID_REQUEST, "InvalidBatchId"),
        "bad proof entry": (_complete_req(report, proof, proof=("0x12",)), Result.INVALID_REQUEST, "InvalidProof"),
        "proof too long": (_complete_req(report, proof, proof=(_hex(proof[0]),) * 65), Result.INVALID_REQUEST, "InvalidProof"),
        "wrong pose for the proof": (_complete_req(report, proof, x_mm=4051), Result.INVALID_REQUEST, "ProofMismatch"),
        "wrong time for the proof": (_complete_req(report, proof, time=report.time - 1), Result.INVALID_REQUEST, "ProofMismatch"),
        "a batch never anchored": (_complete_req(report, proof, batch_id="f" * 32), Result.INVALID_REQUEST, "BatchNotAnchored"),
        "pose out of int64": (_complete_req(report, proof, y_mm=2**63), Result.INVALID_REQUEST, "InvalidPose"),
    }
    nonce = m.client.pending_nonce()
    for why, (req, code, error) in refused.items():
        out = wallet.complete(req)
        assert (out.result, out.error) == (code, error), why
        assert out.tx_hash == "" and out.reward == "0", why
    assert m.client.pending_nonce() == nonce  # nothing signed or sent for any of them
    before = m.token.call("balanceOf", m.me)
    paid = wallet.complete(good)
    assert paid.ok and paid.reward == str(REWARD) and paid.tx_hash and not paid.already_done
    assert m.token.call("balanceOf", m.me) == before + REWARD and m.task(tid).status == TaskStatus.COMPLETED
    twice = wallet.complete(good)  # completing twice never pays twice
    assert twice.ok and twice.already_done and twice.tx_hash == "" and m.token.call("balanceOf", m.me) == before + REWARD


def test_complete_refuses_strangers_tasks_and_reports_contract_errors(chain):
    m = registered_machine(chain, MACHINE)
    m2 = registered_machine(chain, MACHINE2)
    wallet = MarketIntents(m)
    theirs = _post(chain)
    m2.accept_task(theirs)
    r2, p2, _ = arrive(chain, m2, theirs, 4000, 3000)
    out = wallet.complete(_complete_req(r2, p2))  # someone else's task
    assert (out.result, out.error) == (Result.REJECTED_BY_POLICY, "NotMyTask") and m2.me in out.reason
    open_one = _post(chain)
    assert wallet.complete(_complete_req(r2, p2, task_id=str(open_one))).error == "NotMyTask"
    mine = _post(chain)
    wallet.accept(AcceptRequest(str(mine)))
    far, pf, _ = arrive(chain, m, mine, 9000, 3000)  # proven, but 5 m off: the contract's own error, nothing mined
    out = wallet.complete(_complete_req(far, pf))
    assert (out.result, out.error) == (Result.REVERTED, "ArrivalTooFar") and out.tx_hash == ""
    assert m.task(mine).status == TaskStatus.ACCEPTED


def test_post_validated_budgeted_and_posted_once_across_restarts(chain, tmp_path):
    req = fleet(chain, REQUESTER)
    path = tmp_path / "ledger.json"
    policy = MarketPolicy(post_budget=12 * TOKEN, max_reward=6 * TOKEN, max_posts_per_minute=10)
    wallet = MarketIntents(req, policy, state=WalletState(path, req.me), cap=lambda: 0)
    deadline = chain.now() + 600

    def ask(rid="r-1", **change):
        fields = dict(request_id=rid, station="shelf-3", x=4.0, y=3.0, yaw=0.0, tolerance=0.3, deadline=deadline, reward=str(REWARD))
        fields.update(change)
        return wallet.post(PostRequest(**fields))

    refused = {
        "empty id": (dict(rid=""), Result.INVALID_REQUEST, "InvalidRequestId"),
        "long station": (dict(station="s" * 33), Result.INVALID_REQUEST, "InvalidStation"),
        "nan": (dict(x=float("nan")), Result.INVALID_REQUEST, "InvalidPose"),
        "yaw": (dict(yaw=4.0), Result.INVALID_REQUEST, "InvalidPose"),
        "zero tolerance": (dict(tolerance=0.0), Result.INVALID_REQUEST, "InvalidTolerance"),
        "tolerance over the DAO's cap": (dict(tolerance=2.5), Result.REJECTED_BY_POLICY, "ToleranceAboveCap"),
        "reward text": (dict(reward="5e18"), Result.INVALID_REQUEST, "InvalidReward"),
        "reward over max": (dict(reward=str(7 * TOKEN)), Result.REJECTED_BY_POLICY, "PolicyRefused"),
        "too cheap": (dict(reward=str(TOKEN - 1)), Result.REJECTED_BY_POLICY, "RewardBelowMinimum"),
        "deadline too soon": (dict(deadline=chain.now() + 5), Result.REJECTED_BY_POLICY, "PolicyRefused"),
        "deadline too far": (dict(deadline=chain.now() + 30 * 86_400), Result.REJECTED_BY_POLICY, "PolicyRefused"),
    }
    for why, (change, code, error) in refused.items():
        out = ask(**change)
        assert (out.result, out.error) == (code, error), why
        assert out.tx_hash == "" and out.task_id == "", why
    assert req.task_count() == 0
    first = ask()
    assert first.ok and first.task_id == "1" and not first.already_done
    t = req.task(1)
    assert (t.goal_x, t.goal_y, t.tolerance, t.station, t.reward, t.requester) == (4.0, 3.0, 0.3, "shelf-3", REWARD, req.me)
    again = ask(reward=str(6 * TOKEN))  # the same request id: answered from the ledger, not posted again
    assert again.ok and again.already_done and again.task_id == "1" and req.task_count() == 1
    restarted = MarketIntents(req, policy, state=WalletState(path, req.me), cap=lambda: 0)  # after a restart
    assert restarted.post(PostRequest("r-1", "shelf-3", 4.0, 3.0, 0.0, 0.3, deadline, str(REWARD))).already_done
    assert restarted.post(PostRequest("r-2", "a", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD))).ok  # 10 of 12 used
    over = restarted.post(PostRequest("r-3", "a", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD)))
    assert (over.result, over.error) == (Result.REJECTED_BY_POLICY, "BudgetExceeded") and req.task_count() == 2
    off = MarketIntents(req, MarketPolicy(), state=WalletState(None, req.me)).post(PostRequest("x", "a", 1, 1, 0, 0.3, deadline, "1"))
    assert off.result == Result.REJECTED_BY_POLICY and "post_budget is 0" in off.reason


def test_post_obeys_the_daos_daily_cap_and_waits_for_it(chain):
    req = fleet(chain, REQUESTER)
    cap = [None]
    wallet = MarketIntents(req, MarketPolicy(post_budget=100 * TOKEN), cap=lambda: cap[0])
    deadline = chain.now() + 600
    none = wallet.post(PostRequest("a", "s", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD)))
    # fail closed while no policy is known, and say "not ready, ask again" (a starting wallet):
    # a requester that took it for a verdict gave that post up for good
    assert (none.result, none.error) == (Result.WALLET_UNAVAILABLE, "NoSpendingCap") and none.result in RETRYABLE
    assert req.task_count() == 0
    cap[0] = 8 * TOKEN
    assert wallet.post(PostRequest("a", "s", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD))).ok  # the same request, now
    capped = wallet.post(PostRequest("c", "s", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD)))
    assert (capped.result, capped.error) == (Result.REJECTED_BY_POLICY, "SpendingCapExceeded")


def test_post_in_flight_when_the_wallet_dies_is_resolved_by_its_hash(chain, tmp_path):
    """Signed and sent, no receipt (mining stopped), the wallet gone: the same request id after a
    restart is resolved by the recorded hash and posted exactly once."""
    cfg = chain.config.model_copy(update={"receipt_timeout_s": 1.0})
    req = fleet(chain, REQUESTER)
    slow = type(req)(ChainClient(cfg, chain.signer(REQUESTER)))
    path = tmp_path / "ledger.json"
    policy = MarketPolicy(post_budget=100 * TOKEN)
    wallet = MarketIntents(slow, policy, state=WalletState(path, req.me), cap=lambda: 0)
    deadline = chain.now() + 600
    ask = PostRequest("in-flight", "s", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD))
    c = chain.client(DEPLOYER)
    assert wallet.post(PostRequest("warm", "s", 1.0, 1.0, 0.0, 0.3, deadline, str(REWARD))).ok
    c.rpc_local("evm_setAutomine", [False])
    try:
        out = wallet.post(ask)  # signed, on disk, sent; no receipt in time
        assert out.result == Result.TIMEOUT and out.tx_hash, out
        assert WalletState(path, req.me).get("post:in-flight")["state"] == "submitted"
    finally:
        c.rpc_local("evm_setAutomine", [True])
    c.mine(1)
    again = MarketIntents(fleet(chain, REQUESTER), policy, state=WalletState(path, req.me), cap=lambda: 0).post(ask)
    assert again.ok and again.already_done and again.task_id == "2" and req.task_count() == 2


def test_accept_and_complete_after_a_timeout_are_answered_not_repeated(chain):
    """No receipt in time (mining stopped): TIMEOUT with the hash; asked again once it is mined,
    the chain says it is done (already_done), nothing is sent twice, the reward is paid once."""
    cfg = chain.config.model_copy(update={"receipt_timeout_s": 1.0})
    registered_machine(chain, MACHINE)
    m = type(fleet(chain, MACHINE))(ChainClient(cfg, chain.signer(MACHINE)))
    m.client.strict_nonce = True
    wallet = MarketIntents(m)
    tid = _post(chain)
    c = chain.client(DEPLOYER)
    c.rpc_local("evm_setAutomine", [False])
    try:
        late = wallet.accept(AcceptRequest(str(tid)))
        assert late.result == Result.TIMEOUT and late.tx_hash
    finally:
        c.rpc_local("evm_setAutomine", [True])
    c.mine(1)
    again = wallet.accept(AcceptRequest(str(tid)))
    assert again.ok and again.already_done and again.tx_hash == ""
    report, proof, _ = arrive(chain, m, tid, 4000, 3000)
    req = _complete_req(report, proof)
    before = m.token.call("balanceOf", m.me)
    c.rpc_local("evm_setAutomine", [False])
    try:
        late = wallet.complete(req)
        assert late.result == Result.TIMEOUT and late.tx_hash
    finally:
        c.rpc_local("evm_setAutomine", [True])
    c.mine(1)
    done = wallet.complete(req)
    assert done.ok and done.already_done and done.reward == str(REWARD)
    assert m.token.call("balanceOf", m.me) == before + REWARD
