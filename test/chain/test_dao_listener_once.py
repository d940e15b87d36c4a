"""The DAO listener as the fleet's one way to hear the DAO (issue 12 item 3, INTERFACES item 6):
real anvil, real listener and controller processes, real DDS.

- a governance round changes the running controller's limit; the listener logs the decision with
  its proposal id and transaction hash; restarts apply nothing twice (a decision made while the
  listener was down is applied once by the next run, from its persisted cursor);
- a reorg that removes an applied change un-applies it (confirmations 0), and one shallower than
  the confirmations depth never applies it;
- a look-alike FleetPolicy (not owned by the timelock) is never followed; the guardian's pause is;
- the chain killed (kill -9) under a running listener + controller: the heartbeat stops, the
  controller goes to "policy stale" and the robot holds; `depai chain up` restores it: it resumes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chainkit import DEPLOYER, STRANGER, _as_timelock_sender, governance_round, wait_for
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry, Path as PathMsg

from depai.msg import FleetPolicy, NavigationStatus
from depai_nodes.chain.config import load_config, repo_root, save_config
from depai_nodes.chain.models import id32
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.dao_listener.cursor import cursor_path, load_cursor


def _applied(log: str) -> list[str]:
    return re.findall(r"applied policy decision (v\d+) ", log)


class RobotFeed:
    """Plays the robot for a controller: odom at the origin (20 Hz) and a straight 10 m plan."""

    def __init__(self, probe):
        self.odom_pub = probe.publisher(Odometry, "odom", RELIABLE_QOS)
        self.plan_pub = probe.publisher(PathMsg, "plan", LATCHED_QOS)
        self.odom = Odometry()
        self.odom.header.frame_id = "odom"
        self.odom.pose.pose.orientation.w = 1.0
        self.timer = probe.node.create_timer(0.05, lambda: self.odom_pub.publish(self.odom))
        probe.wait_for_subscribers(self.plan_pub)
        plan = PathMsg()
        plan.header.frame_id = "map"
        for i in range(200):
            ps = PoseStamped()
            ps.header.frame_id = "map"
            ps.pose.position.x = i * 0.05
            ps.pose.orientation.w = 1.0
            plan.poses.append(ps)
        self.plan_pub.publish(plan)


CONTROLLER = {"require_costmap": False, "policy_timeout": 2.0, "desired_linear_vel": 0.5}


def _listener_params(cfg_path, state_dir, **kw):
    return {"source": "chain", "chain_config": str(cfg_path), "state_dir": str(state_dir), "heartbeat_period": 0.25,
            "source_timeout": 1.5, **kw}


def test_governance_round_changes_the_controller_and_restarts_apply_nothing_twice(chain, tmp_path, start_node, ros_node):
    cfg_path = save_config(chain.config, tmp_path / "chain.json")
    state = tmp_path / "state"
    policy = chain.client(DEPLOYER).contract("FleetPolicy")
    v0 = policy.call("version")
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    controller = start_node("controller", parameters=CONTROLLER)
    RobotFeed(ros_node)
    first = start_node("dao_listener", name="listener_first", parameters=_listener_params(cfg_path, state))
    status.wait_for(lambda s: s.policy_version == v0 and s.state == NavigationStatus.FOLLOWING
                    and s.speed_limit == pytest.approx(0.5), timeout=30)
    assert _applied(first.log()) == []  # the policy in force at the first start is not a "decision"

    # A real Governor round: the running controller enforces the new limit.
    r1 = governance_round(chain, [("FleetPolicy", "setMaxSpeed", (300,))], "slow the fleet to 0.3 m/s")
    enforced = status.wait_for(lambda s: s.policy_version == v0 + 1, timeout=10)
    assert enforced.speed_limit == pytest.approx(0.3) and enforced.linear_velocity <= 0.3 + 1e-6
    line = first.wait_for_log(f"applied policy decision v{v0 + 1} (maxSpeed) by proposal {r1['proposal_id']}, "
                              f"tx {r1['receipts'][2].tx_hash}")
    assert "Traceback" not in line

    # Restart: the cursor says v0+1 is applied; it is not applied again.
    first.stop()
    r2 = governance_round(chain, [("FleetPolicy", "setMaxSpeed", (200,)),
                                  ("FleetPolicy", "setKeepOutZone", (id32("dock"), [40000, 42000, 42000], [0, 0, 2000]))],
                          "0.2 m/s and a dock zone, voted while the listener is down")
    second = start_node("dao_listener", name="listener_second", parameters=_listener_params(cfg_path, state))
    second.wait_for_log(f"applied policy decision v{v0 + 3} (keepOutZone) by proposal {r2['proposal_id']}")
    status.wait_for(lambda s: s.policy_version == v0 + 3 and s.speed_limit == pytest.approx(0.2), timeout=10)
    second.stop()
    third = start_node("dao_listener", name="listener_third", parameters=_listener_params(cfg_path, state))
    third.wait_for_log(f"policy v{v0 + 3} from chain:")
    time.sleep(1.0)

    logs = [first.log(), second.log(), third.log()]
    assert _applied(logs[0]) == [f"v{v0 + 1}"]
    assert _applied(logs[1]) == [f"v{v0 + 2}", f"v{v0 + 3}"]  # both decisions of the round missed while down
    assert _applied(logs[2]) == []  # nothing twice
    # the controller adopted each published version once (heartbeats are not changes)
    changes = re.findall(r"policy v(\d+) from chain:\S+: max_speed", controller.log())
    assert changes == [str(v0), str(v0 + 1), str(v0 + 3)], changes
    cur, why = load_cursor(cursor_path(state, enforced.policy_source), enforced.policy_source)
    assert why == "" and cur.version == v0 + 3 and [d.version for d in cur.recent] == [v0 + 1, v0 + 2, v0 + 3]
    assert cur.recent[0].proposal_id == r1["proposal_id"] and cur.recent[0].tx_hash == r1["receipts"][2].tx_hash


def test_reorg_unapplies_a_change_at_zero_confirmations(chain, tmp_path, start_node, ros_node):
    cfg_path = save_config(chain.config.model_copy(update={"confirmations": 0}), tmp_path / "chain.json")
    state = tmp_path / "state"
    c = chain.client(DEPLOYER)
    v0 = c.contract("FleetPolicy").call("version")
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    node = start_node("dao_listener", parameters=_listener_params(cfg_path, state, chain_transport="ws"))
    inbox.wait_for(lambda m: m.version == v0, timeout=30)
    send = _as_timelock_sender(chain, "FleetPolicy")
    r = send("setMaxSpeed", 700)
    inbox.wait_for(lambda m: m.version == v0 + 1 and abs(m.max_speed - 0.7) < 1e-6, timeout=10)
    node.wait_for_log(f"applied policy decision v{v0 + 1} (maxSpeed) by owner call, tx {r.tx_hash}")

    n = len(inbox.messages)
    c.rpc_local("anvil_reorg", [1, []])  # the block of that change is replaced by an empty one
    assert c.contract("FleetPolicy").call("version") == v0
    back = inbox.wait_for(lambda m: inbox.messages.index(m) >= n and m.version == v0, timeout=10)
    assert back.max_speed == pytest.approx(1.5)
    node.wait_for_log(f"un-applied policy decision v{v0 + 1} (maxSpeed) by owner call, tx {r.tx_hash}")
    source = back.source
    cur, _ = load_cursor(cursor_path(state, source), source)
    assert cur.version == v0 and all(d.tx_hash != r.tx_hash for d in cur.recent)

    # the next change is applied as usual (the stream continues on the new chain)
    send("setMaxSpeed", 600)
    inbox.wait_for(lambda m: m.version == v0 + 1 and abs(m.max_speed - 0.6) < 1e-6, timeout=10)
    wait_for(lambda: len(_applied(node.log())) == 2)
    assert _applied(node.log()) == [f"v{v0 + 1}", f"v{v0 + 1}"]  # 0.7 (un-applied), then 0.6


def test_reorg_shallower_than_the_confirmations_never_applies(chain, tmp_path, start_node, ros_node):
    cfg_path = save_config(chain.config.model_copy(update={"confirmations": 2, "event_poll_s": 0.05}), tmp_path / "chain.json")
    c = chain.client(DEPLOYER)
    v0 = c.contract("FleetPolicy").call("version")
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    node = start_node("dao_listener", parameters=_listener_params(cfg_path, tmp_path / "state"))
    inbox.wait_for(lambda m: m.version == v0, timeout=30)
    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setMaxSpeed", 700)  # 0 deep
    c.mine(1)                 # 1 deep: not yet applied
    time.sleep(0.5)
    c.rpc_local("anvil_reorg", [2, []])  # gone before it was 2 deep
    c.mine(3)
    time.sleep(1.0)
    assert all(m.version == v0 for m in inbox.messages) and _applied(node.log()) == []
    # positive control: a change that gets 2 blocks on top is applied
    send("setMaxSpeed", 650)
    time.sleep(0.5)
    assert all(m.version == v0 for m in inbox.messages)
    c.mine(2)
    inbox.wait_for(lambda m: m.version == v0 + 1 and abs(m.max_speed - 0.65) < 1e-6, timeout=10)
    node.wait_for_log(f"applied policy decision v{v0 + 1} (maxSpeed)")
    assert _applied(node.log()) == [f"v{v0 + 1}"]


def test_guardian_pause_applies_and_a_lookalike_policy_is_never_followed(chain, tmp_path, start_node, ros_node):
    c = chain.client(DEPLOYER)
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    cfg_path = save_config(chain.config, tmp_path / "chain.json")
    node = start_node("dao_listener", parameters=_listener_params(cfg_path, tmp_path / "state"))
    v0 = inbox.wait_for(timeout=30).version
    r = c.contract("FleetPolicy").transact("setPaused", True)  # the deployer is the guardian
    inbox.wait_for(lambda m: m.paused and m.version == v0 + 1, timeout=10)
    node.wait_for_log(f"applied policy decision v{v0 + 1} (paused) by guardian pause, tx {r.tx_hash}")
    node.stop()

    # a FleetPolicy of the same code, owned by a stranger, named in a config: never followed
    fake = chain.client(STRANGER).deploy("FleetPolicy", chain.address(STRANGER), 20_000, 0, 0)
    contracts = chain.config.contracts.model_copy(update={"FleetPolicy": fake.address})
    fake_cfg = save_config(chain.config.model_copy(update={"contracts": contracts}), tmp_path / "fake.json")
    other = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    n = len(inbox.messages)
    liar = start_node("dao_listener", name="listener_fake", parameters=_listener_params(fake_cfg, tmp_path / "state"))
    liar.wait_for_log(f"FleetPolicy {fake.address} is owned by {chain.address(STRANGER)}, not by the configured timelock")
    chain.client(STRANGER).contract("FleetPolicy", fake.address).transact("setMaxSpeed", 19_000)
    time.sleep(1.5)
    assert not any(m.source.endswith(fake.address) for m in inbox.messages[n:] + other.messages)
    assert liar.process.poll() is None and "Traceback" not in liar.log() and _applied(liar.log()) == []


def _depai_chain(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=repo_root())


def test_chain_killed_the_robot_holds_and_resumes_when_it_is_restored(tmp_path, start_node, ros_node):
    cfg_path = tmp_path / "chain.json"
    up = _depai_chain("up", "--port", "0", "--config", str(cfg_path), "--machines", "0")
    assert up.returncode == 0, up.stderr
    try:
        cfg = load_config(cfg_path)
        wait_for(lambda: (tmp_path / "chain.json.anvil" / "state.json").exists(), timeout_s=10)
        time.sleep(1.5)  # the deployment is in a state dump
        status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
        cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
        controller = start_node("controller", parameters=CONTROLLER)
        RobotFeed(ros_node)
        listener = start_node("dao_listener", parameters=_listener_params(cfg_path, tmp_path / "state"))
        status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING and s.policy_source.startswith("chain:"), timeout=30)
        cmds.wait_for(lambda m: m.linear.x > 0.05, timeout=5)

        pid = json.loads(cfg_path.with_name(cfg_path.name + ".anvil.pid").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        listener.wait_for_log("heartbeat of /fleet/policy stopped", timeout=10)
        held = status.wait_for(lambda s: s.state == NavigationStatus.STOPPED and "policy stale" in s.reason, timeout=10)
        assert held.linear_velocity == 0.0 and held.policy_version == 0
        # source_timeout (1.5 s) + policy_timeout (2 s), plus a heartbeat and a check period of slack
        assert time.monotonic() - t_kill < 1.5 + 2.0 + 2.5
        n = len(cmds.messages)
        time.sleep(0.5)
        assert all(m.linear.x == 0.0 for m in cmds.messages[n:])

        again = _depai_chain("up", "--config", str(cfg_path))
        assert again.returncode == 0 and "restored the chain" in again.stderr, again.stderr
        listener.wait_for_log("heartbeat of /fleet/policy resumed", timeout=30)
        status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING and s.policy_source.startswith(
            f"chain:31337:{cfg.genesis_hash[:10]}:"), timeout=15)
        cmds.wait_for(lambda m: m.linear.x > 0.05, timeout=5)
        log = listener.log()
        assert log.count("heartbeat of /fleet/policy stopped") == 1 and log.count("heartbeat of /fleet/policy resumed") == 1
        assert "Traceback" not in log and "Traceback" not in controller.log()
    finally:
        _depai_chain("down", "--config", str(cfg_path))
