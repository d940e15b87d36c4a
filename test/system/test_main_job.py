"""The main job, end to end: the shipped config/stack.yaml brought up by `depai launch`.

With its chain (the default): the launcher starts a local anvil, deploys, funds the two robots and
the requester; the requester posts delivery tasks to the warehouse's stations through its own
wallet; each robot's agent takes tasks, drives there (simulator -> LiDAR -> perception -> planner
-> controller), has telemetry anchor its arrival and its wallet complete the task with the
Merkle proof; TaskMarket pays. Asserted on chain: tasks Completed and paid to the machine that
did them (its balance grew by the rewards), batches anchored by both robots; and on the run:
the status table and its summary in the log, exit 0, nothing left running (the chain included).

Without a chain (`--no-chain`): one robot patrols under config/policy.yaml: it must reach a
waypoint, the waypoint inside the keep-out zone must be refused and skipped, and a fleet pause
written to the policy file must stop the robot; Ctrl-C must then stop every process.
"""

import math
import os
import signal
import subprocess
import sys
import shutil
import time

import pytest
from launchkit import LIGHT_LIDAR, MACHINES, REPO, TOKEN, Launch, pids_in, wait_for, wait_gone, wait_match
from nav_msgs.msg import Odometry

from depai_nodes.common.qos import SENSOR_QOS


def test_without_a_chain_robot_patrols_obeys_keep_out_and_pause(ros_node, tmp_path):
    policy = tmp_path / "policy.yaml"
    shutil.copy(REPO / "config" / "policy.yaml", policy)
    log = tmp_path / "launch.log"
    command = [
        sys.executable, "-m", "depai_nodes.cli", "launch", "--stack", str(REPO / "config" / "stack.yaml"),
        # A short patrol: 3 m ahead, then a goal inside the loading-dock keep-out zone, then home.
        "--set", "agent.waypoints=[3.0, 0.0, 0.0, 5.0, 2.0, 0.0, 0.0, 0.0, 3.14]",
        "--set", "agent.loop=false",
        "--set", "agent.start_delay=1.0",
        "--set", f"dao_listener.policy_file={policy}",
        "--set", "dao_listener.watch_period=0.2",
        "--no-chain", "--robots", "robot1",
    ]
    process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    odom = ros_node.subscribe(Odometry, "/robot1/odom", SENSOR_QOS)
    try:
        wait_match(log, r"arrived at waypoint 0 \(3\.00, 0\.00\)", timeout=90)
        odom.wait_for(timeout=5)
        at_goal = odom.messages[-1]
        assert math.hypot(at_goal.pose.pose.position.x - 3.0, at_goal.pose.pose.position.y) < 0.5

        wait_match(log, r"waypoint 1 \(5\.00, 2\.00\) can never be reached: GOAL_IN_KEEPOUT; skipping it", timeout=30)
        wait_match(log, r"driving to waypoint 2", timeout=30)
        # Moving home: now the DAO's pause, through the policy file, must stop the robot.
        odom.wait_for(lambda m: abs(m.twist.twist.linear.x) > 0.1, timeout=30)
        policy.write_text(policy.read_text().replace("paused: false", "paused: true"))
        wait_match(log, r"policy v2 .*paused=True", timeout=10)
        paused_at = len(odom.messages)
        time.sleep(1.5)
        assert all(abs(m.twist.twist.linear.x) < 0.05 for m in odom.messages[paused_at:][-10:])
        assert "Traceback" not in log.read_text()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert code == 0, log.read_text()[-3000:]


@pytest.mark.timeout(420)
def test_machine_economy_robots_earn_by_proven_deliveries(ros_domain, tmp_path):
    from depai_nodes.chain.client import ChainClient
    from depai_nodes.chain.config import load_config
    from depai_nodes.chain.fleet import Fleet

    job = Launch(tmp_path, "launch",
                 "--chain-port", "0",  # a new chain on a free port, never the user's 8545
                 *LIGHT_LIDAR,
                 "--set", f"telemetry.output_dir={tmp_path}/telemetry/$(robot)",
                 "--set", "requester.period=8.0", "--set", "requester.start_delay=2.0")
    log = job.log
    try:
        wait_for(log, r"posted task #1 to station", timeout=120)
        paid = wait_for(log, r"\[(robot\d)/agent\] .*completed task (\d+) .*: paid (\d+)", count=2, timeout=300)
        anvil = job.anvil_pid(5)
        fleet = Fleet(ChainClient(load_config(job.config)))
        earned: dict[str, int] = {}
        for robot, task_id, amount in paid:
            task = fleet.task(int(task_id))
            assert task.status_name == "Completed" and task.machine == MACHINES[robot], task
            assert int(amount) == task.reward == 5 * TOKEN
            earned[robot] = earned.get(robot, 0) + task.reward
        for robot, total in earned.items():  # funded 10000, staked 100, then paid for what it did
            assert fleet.token.call("balanceOf", MACHINES[robot]) >= 9900 * TOKEN + total
        assert all(fleet.data.call("batchCount", m) > 0 for m in MACHINES.values())  # both robots anchor their telemetry
        wait_for(log, r"\[status\] tasks  posted \d+  open \d+  accepted \d+  paid [1-9]", timeout=30)
        pids = pids_in(log) + [anvil]
    finally:
        code = job.stop(timeout=60)
    text = job.text()
    assert code == 0, text[-3000:]
    assert "== DePAI run summary" in text and "stopped the local chain" in text
    assert not wait_gone(pids), "processes left running after Ctrl-C"
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:3000]
