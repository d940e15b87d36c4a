"""The DAO's command line to the robots: `./depai dao propose ... --now` (a real subprocess, a
full Governor round) and a real dao_listener process publishes the new speed limit and keep-out
zone on /fleet/policy over real DDS."""

import json
import subprocess

from depai.msg import FleetPolicy
from depai_nodes.chain.config import repo_root, save_config
from depai_nodes.common.qos import LATCHED_QOS


def test_cli_round_reaches_the_robots_policy_topic(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    start_node("dao_listener", parameters={"source": "chain", "chain_config": str(cfg), "watch_period": 0.05})
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    first = inbox.wait_for(timeout=20)
    assert first.max_speed > 0.45 and not first.keep_out_zones
    zones = tmp_path / "dock.geojson"
    zones.write_text(json.dumps({"type": "Feature", "id": "dock", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[4, 1], [6, 1], [6, 3], [4, 3], [4, 1]]]}}))
    r = subprocess.run([str(repo_root() / "depai"), "dao", "propose", "--max-speed", "0.45", "--zones", str(zones), "--now",
                        "--config", str(cfg), "--key", "demo:11"], capture_output=True, text=True, timeout=120,
                       cwd=repo_root(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    msg = inbox.wait_for(lambda m: abs(m.max_speed - 0.45) < 1e-6 and len(m.keep_out_zones) == 1, timeout=15)
    assert msg.keep_out_zones[0].id == "dock"
    assert [(p.x, p.y) for p in msg.keep_out_zones[0].polygon.points] == [(4.0, 1.0), (6.0, 1.0), (6.0, 3.0), (4.0, 3.0)]
    assert msg.version >= first.version + 2


def test_cli_round_changes_a_running_controllers_limit_and_zones(chain, tmp_path, start_node, ros_node):
    """Issue 12's check, end to end: `./depai dao propose --max-speed --zones --now` from the command
    line, a real dao_listener and a real controller process: the controller enforces the new
    version's speed limit at once, and its own zone guard stops the robot short of the new zone
    on the path it was following."""
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Odometry, Path as PathMsg

    from depai.msg import NavigationStatus
    from depai_nodes.common.qos import RELIABLE_QOS

    cfg = save_config(chain.config, tmp_path / "chain.json")
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    start_node("controller", parameters={"require_costmap": False, "policy_timeout": 3.0, "desired_linear_vel": 0.8})
    start_node("dao_listener", parameters={"source": "chain", "chain_config": str(cfg), "heartbeat_period": 0.25})
    # the robot stands at (3.6, 2.0) facing +x, 0.4 m before where the dock zone will be, on a path along y = 2
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.position.x, odom.pose.pose.position.y = 3.6, 2.0
    odom.pose.pose.orientation.w = 1.0
    odom_pub = ros_node.publisher(Odometry, "odom", RELIABLE_QOS)
    ros_node.node.create_timer(0.05, lambda: odom_pub.publish(odom))
    plan_pub = ros_node.publisher(PathMsg, "plan", LATCHED_QOS)
    ros_node.wait_for_subscribers(plan_pub)
    plan = PathMsg()
    plan.header.frame_id = "map"
    for i in range(90):
        ps = PoseStamped()
        ps.header.frame_id = "map"
        ps.pose.position.x, ps.pose.position.y = 3.6 + i * 0.05, 2.0
        ps.pose.orientation.w = 1.0
        plan.poses.append(ps)
    plan_pub.publish(plan)
    before = status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING and s.policy_version > 0
                             and s.linear_velocity > 0.3, timeout=30)
    assert before.speed_limit > 0.45

    zones = tmp_path / "dock.yaml"
    zones.write_text("dock: [[4, 1], [6, 1], [6, 3], [4, 3]]\n")
    r = subprocess.run([str(repo_root() / "depai"), "dao", "propose", "--max-speed", "0.45", "--zones", str(zones), "--now",
                        "--config", str(cfg), "--key", "demo:12"], capture_output=True, text=True, timeout=120,
                       cwd=repo_root(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr + r.stdout
    newest = before.policy_version + 2  # two actions: the speed and the zone, one version each
    after = status.wait_for(lambda s: s.policy_version >= newest, timeout=15)
    assert after.speed_limit <= 0.45 + 1e-6 and after.policy_source == before.policy_source
    held = status.wait_for(lambda s: s.policy_version >= newest and s.state == NavigationStatus.STOPPED
                           and "keep-out zone 'dock'" in s.reason, timeout=10)
    assert held.linear_velocity == 0.0
