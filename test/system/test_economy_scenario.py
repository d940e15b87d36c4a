"""Issue 10's shortened scenario: the main job (`depai launch`, the shipped config/stack.yaml) with
2 robots, a requester posting tasks, and one DAO vote mid-run (`--vote-at`): a real Governor round
on the launch's own anvil (a member proposes, the members vote with delegated FLEET, queue,
timelock, execute) that lowers the speed limit and closes a station with a keep-out zone.

Asserted on chain: at least 3 tasks posted; at least 3 Completed, each paid to the machine whose
agent did it (its balance grew by its rewards); both robots anchored batches; the proposal
Executed in the transaction and block the log names, the FleetPolicy version changed to the new
limit and zone; no task inside the zone accepted after the execution - not even the better-paid one
another customer posts there just before the vote (open at the vote: the agents log why they do
not take it; taken in those seconds: the vote waited until it was delivered) - nor posted there. Asserted on
behaviour, from the robots' odometry recorded over real DDS by the test's own node: no robot's
footprint inside the new zone, nor faster than the new limit, later than 1 s after the
execution (and each robot drove faster than that limit before it, so the check is not idle).
Asserted on the run: the log names the proposal, its description and the execution's tx, and
times each robot's controller taking the new policy; exit 0 after Ctrl-C and nothing left
running, the chain included.
"""

from __future__ import annotations

import math
import re
import threading
import time

import pytest
from launchkit import LIGHT_LIDAR, MACHINES, TOKEN, Launch, pids_in, wait_for, wait_gone, wait_match
from nav_msgs.msg import Odometry

from depai_nodes.common.qos import SENSOR_QOS

VOTE_AT = 45.0  # s after the nodes start: the first deliveries are under way or done
ROBOT_RADIUS = 0.3
EXECUTED = (r"\[dao\] executed proposal (\d+) \(\"([^\"]+)\"\) in block (\d+), tx (0x[0-9a-f]{64}), receipt at unix ([\d.]+): "
            r"policy v(\d+) -> v(\d+)")
PAID = r"\[(robot\d)/agent\] .*completed task (\d+) .*: paid (\d+)"


class OdomRecorder:
    """(wall-clock receipt time, x, y, forward speed) of every odometry message per robot."""

    def __init__(self, probe, robots: list[str]):
        self.samples: dict[str, list[tuple[float, float, float, float]]] = {r: [] for r in robots}
        self._lock = threading.Lock()
        for robot in robots:
            probe.node.create_subscription(Odometry, f"/{robot}/odom", lambda m, r=robot: self._put(r, m), SENSOR_QOS)

    def _put(self, robot: str, m: Odometry) -> None:
        p, v = m.pose.pose.position, m.twist.twist.linear
        with self._lock:
            self.samples[robot].append((time.time(), p.x, p.y, math.hypot(v.x, v.y)))

    def copy(self) -> dict[str, list[tuple[float, float, float, float]]]:
        with self._lock:
            return {r: list(s) for r, s in self.samples.items()}


@pytest.mark.timeout(420)
def test_dao_votes_mid_run_robots_obey_agents_earn(ros_node, tmp_path):
    from depai_nodes.chain import governance as g
    from depai_nodes.chain.client import ChainClient
    from depai_nodes.chain.config import load_config
    from depai_nodes.chain.fleet import Fleet, read_policy
    from depai_nodes.chain.signer import demo_signer
    from depai_nodes.common.polygon import signed_distance

    odom = OdomRecorder(ros_node, list(MACHINES))
    job = Launch(tmp_path, "scenario",
                 "--chain-port", "0", "--robots", "2", "--vote-at", str(VOTE_AT), *LIGHT_LIDAR,
                 "--set", f"telemetry.output_dir={tmp_path}/telemetry/$(robot)",
                 "--set", "telemetry.batch_period=4.0",  # arrivals anchored sooner: shorter deliveries
                 "--set", "requester.period=7.0", "--set", "requester.start_delay=2.0")  # under the wallet's 10 posts a minute
    log = job.log
    try:
        wait_match(log, r"\[dao\] the DAO votes at t=", timeout=180)  # the nodes start now; the vote's clock runs
        started = time.time()
        wait_match(log, r"posted task #1 to station", timeout=120)
        # Another customer (the deployer's key, not the requester's) posts a better-paid task to the
        # station the DAO is about to close, a few seconds before the vote.
        outsider = Fleet(ChainClient(load_config(job.config), demo_signer(0, 31337)))
        while time.time() < started + VOTE_AT - 8.0:
            time.sleep(0.2)
        while time.time() < started + VOTE_AT - 2.0 and \
                not all(outsider.machine_info(a).active_tasks for a in MACHINES.values()):
            time.sleep(0.2)  # best when both robots are busy: then it is open at the vote
        now = int(outsider.client.get_block("latest")["timestamp"], 16)
        tempting = outsider.post_task(8.0, -8.3, 0.0, now + 600, 9 * TOKEN, tolerance=0.5, station="south_east_aisle")
        m = wait_match(log, EXECUTED, timeout=VOTE_AT + 150)
        proposal, description, block, tx = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        executed_at, v_before, v_after = float(m.group(5)), int(m.group(6)), int(m.group(7))
        report = wait_match(log, r"\[dao\] policy v\d+ taken after the execution's receipt .*: (.*)", timeout=30).group(1)
        fleet = Fleet(ChainClient(load_config(job.config)))
        if fleet.task(tempting).machine is None:
            # open at the vote: every agent that looks at it says why it does not take it, and none does
            wait_match(log, rf"\[robot\d/agent\] .*not taking task {tempting} \(south_east_aisle\).* while a keep-out zone "
                            "covers it", timeout=150)
        else:  # a robot took it in those seconds: the DAO waited until it was delivered and the robot gone
            assert re.search(rf"\[dao\] the vote waits: task {tempting} \(south_east_aisle\) held by robot\d", job.text())
            assert fleet.task(tempting).status_name == "Completed"
        paid = wait_for(log, PAID, count=3, timeout=240)
        while time.time() < executed_at + 12.0:  # odometry well past the 1 s after the execution
            time.sleep(0.5)
        anvil = job.anvil_pid(5)
        cfg = load_config(job.config)
        client = ChainClient(cfg)
        fleet = Fleet(client)

        # ---- the DAO's round, on chain: the proposal the log names, executed in that tx and block
        p = g.find_proposal(client, proposal)
        assert p.description == description and g.state(client, p) == "Executed"
        receipt = client.rpc.call("eth_getTransactionReceipt", [tx])
        assert int(receipt["blockNumber"], 16) == block and int(receipt["status"], 16) == 1
        votes = client.contract("FleetGovernor").call("proposalVotes", proposal)
        assert votes["forVotes"] >= client.contract("FleetGovernor").call("quorum", p.vote_start) > 0  # passed by delegated votes
        policy = read_policy(client, block)
        assert v_after == policy.version > v_before == read_policy(client, block - 1).version
        assert abs(policy.max_speed - 0.4) < 1e-9 and len(policy.keep_out_zones) == 1
        zone = policy.keep_out_zones[0]
        polygon = [tuple(q) for q in zone.polygon]
        assert zone.id == "south_east_aisle_closed" and signed_distance(polygon, [8.0], [-8.3])[0] < -1.0
        limit = policy.max_speed

        # ---- the market, on chain: tasks completed and paid to the machine that did them
        tasks = fleet.tasks()
        assert len(tasks) >= 3
        earned: dict[str, int] = {}
        for robot, task_id, amount in paid:
            task = fleet.task(int(task_id))
            assert task.status_name == "Completed" and task.machine == MACHINES[robot], task
            assert int(amount) == task.reward == (9 if task.id == tempting else 5) * TOKEN
            earned[robot] = earned.get(robot, 0) + task.reward
        completed = {t.id for t in fleet.tasks() if t.status_name == "Completed"}
        assert {int(t) for _, t, _ in paid} <= completed and len(completed) >= 3
        for robot, total in earned.items():  # funded 10000, staked 100, then paid for what it did
            assert fleet.token.call("balanceOf", MACHINES[robot]) >= 9900 * TOKEN + total
        assert all(fleet.data.call("batchCount", a) > 0 for a in MACHINES.values())  # both robots anchored
        # agents stop taking tasks to the closed station (and the requester posts none there)
        exec_time = int(client.get_block(block)["timestamp"], 16)
        posted_by_then = fleet.market.call("taskCount", block=block)
        in_zone = [t for t in fleet.tasks() if signed_distance(polygon, [t.goal_x], [t.goal_y])[0] < ROBOT_RADIUS]
        assert fleet.task(tempting).status_name in ("Open", "Completed")
        assert all(t.id <= posted_by_then for t in in_zone), in_zone  # no task posted there after the vote (TaskMarket refuses)
        late = [t for t in in_zone if t.machine and t.accepted_at > exec_time]
        assert not late, f"tasks in the new keep-out zone accepted after the execution: {late}"

        # ---- behaviour, from the recorded odometry
        samples = odom.copy()
        for robot, rows in samples.items():
            before = [r for r in rows if r[0] < executed_at - 0.5]
            after = [r for r in rows if r[0] > executed_at + 1.0]
            assert before and after and after[-1][0] > executed_at + 10.0, f"{robot}: no odometry around the vote"
            assert max(r[3] for r in before) > limit + 0.1, f"{robot} never drove faster than the new limit before the vote"
            inside = [(round(t - executed_at, 2), x, y) for t, x, y, _ in after
                      if signed_distance(polygon, [x], [y])[0] < ROBOT_RADIUS - 0.02]
            assert not inside, f"{robot} inside keep-out zone {zone.id} later than 1 s after the execution: {inside[:5]}"
            fast = [(round(t - executed_at, 2), round(v, 3)) for t, _, _, v in after if v > limit + 0.02]
            assert not fast, f"{robot} faster than {limit} m/s later than 1 s after the execution: {fast[:5]}"
        assert any(max(r[3] for r in rows if r[0] > executed_at + 1.0) > 0.1 for rows in samples.values()), \
            "no robot moved after the vote"

        # ---- the log: each robot's controller timed taking the new policy
        for robot in MACHINES:
            assert re.search(rf"{robot}/controller [+-]\d+ ms", report), report
        assert f"tx {tx}" in job.text() and "voted for by" in job.text()
        pids = pids_in(log) + [anvil]
    finally:
        code = job.stop(timeout=60)
    text = job.text()
    assert code == 0, text[-3000:]
    assert "== DePAI run summary" in text and "stopped the local chain" in text
    assert re.search(r"\[status\] == DePAI run summary .* policy v\d+ \(chain\) max 0\.40 m/s  keep-out: south_east_aisle_closed", text)
    assert not wait_gone(pids), "processes left running after Ctrl-C"
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:3000]
