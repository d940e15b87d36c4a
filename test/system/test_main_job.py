"""The main job without its chain: the shipped config/stack.yaml brought up by `depai launch --no-chain`.

One robot patrols under config/policy.yaml: it must reach a waypoint, the waypoint inside the
keep-out zone must be refused and skipped, and a fleet pause written to the policy file must stop
the robot; Ctrl-C must then stop every process.

The main job with its chain (tasks posted, accepted, driven, proven and paid to the machine that did
them, batches anchored by both robots, the DAO's mid-run vote obeyed, the status summary, exit 0,
nothing left running) is test/system/test_economy_scenario.py: one launch serves both.
"""

import math
import os
import signal
import subprocess
import sys
import shutil
import time

from launchkit import REPO, wait_match
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
