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
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nav_msgs.msg import Odometry

from depai_nodes.common.qos import SENSOR_QOS

REPO = Path(__file__).resolve().parents[2]


def wait_for(log: Path, pattern: str, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        time.sleep(0.2)
    raise TimeoutError(f"/{pattern}/ not in the launch log within {timeout} s:\n{log.read_text()[-4000:]}")


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
        wait_for(log, r"arrived at waypoint 0 \(3\.00, 0\.00\)", timeout=90)
        odom.wait_for(timeout=5)
        at_goal = odom.messages[-1]
        assert math.hypot(at_goal.pose.pose.position.x - 3.0, at_goal.pose.pose.position.y) < 0.5

        wait_for(log, r"waypoint 1 \(5\.00, 2\.00\) can never be reached: GOAL_IN_KEEPOUT; skipping it", timeout=30)
        wait_for(log, r"driving to waypoint 2", timeout=30)
        # Moving home: now the DAO's pause, through the policy file, must stop the robot.
        odom.wait_for(lambda m: abs(m.twist.twist.linear.x) > 0.1, timeout=30)
        policy.write_text(policy.read_text().replace("paused: false", "paused: true"))
        wait_for(log, r"policy v2 .*paused=True", timeout=10)
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


TOKEN = 10**18


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.timeout(420)
def test_machine_economy_robots_earn_by_proven_deliveries(ros_domain, tmp_path):
    from depai_nodes.chain.client import ChainClient
    from depai_nodes.chain.config import load_config
    from depai_nodes.chain.fleet import Fleet

    cfg_path = tmp_path / "chain.json"
    log = tmp_path / "launch.log"
    env = dict(os.environ, DEPAI_CHAIN_CONFIG=str(cfg_path), DEPAI_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    command = [
        sys.executable, "-m", "depai_nodes.cli", "launch", "--stack", str(REPO / "config" / "stack.yaml"),
        "--chain-port", "0",  # a new chain on a free port, never the user's 8545
        # a lighter LiDAR than the shipped 128 x 1024: two robots' perception on a test machine's cores
        "--set", "simulator.lidar_beams=32", "--set", "simulator.lidar_horizontal=512",
        "--set", f"telemetry.output_dir={tmp_path}/telemetry/$(robot)",
        "--set", "requester.period=8.0", "--set", "requester.start_delay=2.0",
    ]
    process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True)
    try:
        wait_for(log, r"posted task #1 to station", timeout=120)
        paid = wait_for_all(log, r"\[(robot\d)/agent\] .*completed task (\d+) .*: paid (\d+)", count=2, timeout=300)
        anvil = int(wait_for(log, r"anvil pid (\d+)", timeout=5).group(1))
        fleet = Fleet(ChainClient(load_config(cfg_path)))
        machines = {"robot1": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "robot2": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}
        earned: dict[str, int] = {}
        for robot, task_id, amount in paid:
            task = fleet.task(int(task_id))
            assert task.status_name == "Completed" and task.machine == machines[robot], task
            assert int(amount) == task.reward == 5 * TOKEN
            earned[robot] = earned.get(robot, 0) + task.reward
        for robot, total in earned.items():  # funded 10000, staked 100, then paid for what it did
            assert fleet.token.call("balanceOf", machines[robot]) >= 9900 * TOKEN + total
        assert all(fleet.data.call("batchCount", m) > 0 for m in machines.values())  # both robots anchor their telemetry
        wait_for(log, r"\[status\] tasks  posted \d+  open \d+  accepted \d+  paid [1-9]", timeout=30)
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", log.read_text())] + [anvil]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "== DePAI run summary" in text and "stopped the local chain" in text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)], "processes left running after Ctrl-C"
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:3000]


def wait_for_all(log: Path, pattern: str, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text())
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"/{pattern}/ x{count} not in the launch log within {timeout} s:\n{log.read_text()[-4000:]}")
