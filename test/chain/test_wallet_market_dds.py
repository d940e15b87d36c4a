"""The wallet's market services over real DDS: a robot's wallet and a requester's wallet as real
node processes, a probe node as the caller, including a stranger on the domain asking the robot's
wallet to complete someone else's task, to accept beyond its collateral, or to sign junk."""

from __future__ import annotations

import os
import signal

from chainkit import MACHINE, MACHINE2, REQUESTER, TOKEN, arrive, fleet, registered_machine

from depai.msg import FleetPolicy
from depai.srv import AcceptTask, CompleteTask, PostTask
from depai_nodes.chain.config import save_config
from depai_nodes.chain.intents import Result
from depai_nodes.chain.models import TaskStatus
from depai_nodes.common.qos import LATCHED_QOS

REWARD = 5 * TOKEN


def _call(probe, client, request, timeout=30):
    """One answer. Every market
    request is idempotent by its request or task id, so a request with no answer after a few
    seconds is sent again: a just-(re)started wallet is served before DDS has matched all of its
    endpoints with this client. WALLET_UNAVAILABLE (a wallet still activating) is asked again."""
    return probe.call(client.srv_type, client.srv_name, request, timeout=timeout,
                      retry_results=(Result.WALLET_UNAVAILABLE,))


def test_result_codes_equal_the_core():
    for srv in (AcceptTask, CompleteTask, PostTask):
        for name, value in vars(Result).items():
            if name.isupper() and name != "NAMES":
                assert getattr(srv.Response, name) == value, (srv, name)


def test_market_services_over_dds(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    robot = registered_machine(chain, MACHINE, stake=100 * TOKEN)  # collateral for one task
    other = registered_machine(chain, MACHINE2)
    robot.client.strict_nonce = True  # the wallet process signs with the same key meanwhile
    state = str(tmp_path / "state")
    w_robot = start_node("wallet", namespace="robot1", parameters={"chain_config": str(cfg), "demo_index": MACHINE,
                                                                 "state_dir": state, "max_active_tasks": 3})
    w_req = start_node("wallet", namespace="requester", parameters={"chain_config": str(cfg), "demo_index": REQUESTER,
                                                                  "state_dir": state, "post_budget": str(20 * TOKEN)})
    w_robot.wait_for_log("activated", timeout=30)
    w_req.wait_for_log("activated", timeout=30)
    policy_pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    ros_node.wait_for_subscribers(policy_pub)
    policy_pub.publish(FleetPolicy(version=2, max_speed=1.0, spending_cap="0", min_task_price=str(TOKEN), source="test"))
    w_req.wait_for_log("spending cap from fleet policy v2", timeout=15)

    post = ros_node.node.create_client(PostTask, "/requester/wallet/post_task")
    accept = ros_node.node.create_client(AcceptTask, "/robot1/wallet/accept_task")
    complete = ros_node.node.create_client(CompleteTask, "/robot1/wallet/complete_task")
    deadline = chain.now() + 900

    def post_req(rid, **kw):
        f = dict(request_id=rid, station="shelf-3", x=4.0, y=3.0, yaw=0.0, tolerance=0.3, deadline=deadline, reward=str(REWARD))
        f.update(kw)
        return PostTask.Request(**f)

    # the requester posts; the same request id again is answered, not posted again
    p1 = _call(ros_node, post, post_req("req-1"))
    assert p1.result == PostTask.Response.SUCCESS and p1.task_id == "1" and p1.requester == chain.address(REQUESTER)
    assert _call(ros_node, post, post_req("req-1")).already_done and fleet(chain, REQUESTER).task_count() == 1
    bad = _call(ros_node, post, post_req("req-2", tolerance=float("inf")))
    assert (bad.result, bad.error) == (PostTask.Response.INVALID_REQUEST, "InvalidPose") and bad.task_id == ""
    over = _call(ros_node, post, post_req("req-3", reward=str(21 * TOKEN)))
    assert (over.result, over.error) == (PostTask.Response.REJECTED_BY_POLICY, "BudgetExceeded")
    # the requester's wallet is killed and restarted: the request id is still known (durable ledger)
    os.kill(w_req.process.pid, signal.SIGKILL)
    w_req.process.wait(10)
    w_req = start_node("wallet", namespace="requester", parameters={"chain_config": str(cfg), "demo_index": REQUESTER,
                                                                  "state_dir": state, "post_budget": str(20 * TOKEN)})
    w_req.wait_for_log("activated", timeout=30)
    replay = _call(ros_node, post, post_req("req-1"))
    assert replay.result == PostTask.Response.SUCCESS and replay.already_done and replay.task_id == "1"
    assert fleet(chain, REQUESTER).task_count() == 1
    tid = int(p1.task_id)
    t2 = int(_call(ros_node, post, post_req("req-4")).task_id)
    t3 = int(_call(ros_node, post, post_req("req-5")).task_id)

    # accept: idempotent; beyond the collateral: refused, nothing signed
    a1 = _call(ros_node, accept, AcceptTask.Request(task_id=str(tid)))
    assert a1.result == AcceptTask.Response.SUCCESS and a1.machine == robot.me and a1.tx_hash and not a1.already_done
    again = _call(ros_node, accept, AcceptTask.Request(task_id=str(tid)))
    assert again.result == AcceptTask.Response.SUCCESS and again.already_done
    poor = _call(ros_node, accept, AcceptTask.Request(task_id=str(t2)))  # a stranger asks for a second task: 100 FLEET back one
    assert (poor.result, poor.error) == (AcceptTask.Response.REJECTED_BY_POLICY, "CollateralTooLow") and poor.tx_hash == ""
    assert fleet(chain, REQUESTER).task(t2).status == TaskStatus.OPEN
    other.accept_task(t3)
    lost = _call(ros_node, accept, AcceptTask.Request(task_id=str(t3)))  # someone was first
    assert (lost.result, lost.error) == (AcceptTask.Response.REVERTED, "TaskNotOpen")
    junk = _call(ros_node, accept, AcceptTask.Request(task_id="1; drop"))
    assert (junk.result, junk.error) == (AcceptTask.Response.INVALID_REQUEST, "InvalidTaskId")

    # complete: someone else's task refused; a proof that does not lead to our root refused
    r3, p3, _ = arrive(chain, other, t3, 4000, 3000)
    theirs = _call(ros_node, complete, CompleteTask.Request(task_id=str(t3), batch_id=r3.batch_id.rstrip(b"\0").decode(), x_mm=r3.x_mm,
                                                  y_mm=r3.y_mm, yaw_mrad=0, time=r3.time, proof=["0x" + h.hex() for h in p3]))
    assert (theirs.result, theirs.error) == (CompleteTask.Response.REJECTED_BY_POLICY, "NotMyTask") and theirs.reward == "0"
    report, proof, _ = arrive(chain, robot, tid, 4100, 3000)
    good = CompleteTask.Request(task_id=str(tid), batch_id=report.batch_id.rstrip(b"\0").decode(), x_mm=report.x_mm,
                                y_mm=report.y_mm, yaw_mrad=report.yaw_mrad, time=report.time, proof=["0x" + h.hex() for h in proof])
    forged = CompleteTask.Request(task_id=good.task_id, batch_id=good.batch_id, x_mm=good.x_mm, y_mm=good.y_mm, yaw_mrad=0,
                                  time=good.time, proof=["0x" + "11" * 32])
    f = _call(ros_node, complete, forged)
    assert (f.result, f.error) == (CompleteTask.Response.INVALID_REQUEST, "ProofMismatch") and f.tx_hash == ""
    before = robot.token.call("balanceOf", robot.me)
    paid = _call(ros_node, complete, good)
    assert paid.result == CompleteTask.Response.SUCCESS and paid.reward == str(REWARD) and paid.tx_hash, paid
    twice = _call(ros_node, complete, good)
    assert twice.result == CompleteTask.Response.SUCCESS and twice.already_done and twice.tx_hash == ""
    assert robot.token.call("balanceOf", robot.me) == before + REWARD
    assert fleet(chain, REQUESTER).task(tid).status == TaskStatus.COMPLETED
    w_robot.wait_for_log(f"complete task '{tid}': done in block", timeout=10)
