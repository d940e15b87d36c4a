"""Controller node over real DDS: drives along a path under a fleet policy, stops within one
control period on a fleet pause, holds still without odom or with a stale costmap, obeys the
policy's max_speed. (No policy, stale policies, zones and refused paths: test_controller_safety.)"""
from __future__ import annotations

import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path

from depai.msg import FleetPolicy, NavigationStatus
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

RATE = 20.0


def _after(inbox, n, msg) -> bool:
    """True when msg is one of the messages received after the first n (identity, not value)."""
    return any(msg is m for m in inbox.messages[n:])



def _path(n=200, step=0.05, x0=0.0):
    p = Path()
    p.header.frame_id = "map"
    for i in range(n):
        ps = PoseStamped()
        ps.header.frame_id = "map"
        ps.pose.position.x = x0 + i * step
        ps.pose.orientation.w = 1.0
        p.poses.append(ps)
    return p


def _policy(paused=False, max_speed=1.0, version=1, source="test"):
    msg = FleetPolicy()
    msg.header.frame_id = "map"
    msg.version = version
    msg.max_speed = max_speed
    msg.paused = paused
    msg.source = source
    return msg


class PolicyFeed:
    """Plays the dao_listener: publishes a policy latched, and again every 0.5 s (its heartbeat)."""

    def __init__(self, probe, msg=None):
        self.pub = probe.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
        self.msg = msg if msg is not None else _policy()
        self.beating = True
        probe.wait_for_subscribers(self.pub)
        self.pub.publish(self.msg)
        self.timer = probe.node.create_timer(0.5, self._beat)

    def publish(self, msg):
        self.msg = msg
        self.pub.publish(msg)

    def _beat(self):
        if self.beating:
            self.pub.publish(self.msg)


class Feeder:
    """Publishes odom (and optionally an empty local costmap) from the test node at 20 Hz."""

    def __init__(self, probe, costmap=True):
        self.odom_pub = probe.publisher(Odometry, "odom", RELIABLE_QOS)
        self.cm_pub = probe.publisher(OccupancyGrid, "local_costmap", RELIABLE_QOS)
        self.odom = Odometry()
        self.odom.header.frame_id = "odom"
        self.odom.pose.pose.orientation.w = 1.0
        self.send_odom = True
        self.send_costmap = costmap
        grid = OccupancyGrid()
        grid.header.frame_id = "lidar_link"
        grid.info.resolution = 0.1
        grid.info.width = grid.info.height = 40
        grid.info.origin.position.x = grid.info.origin.position.y = -2.0
        grid.info.origin.orientation.w = 1.0
        grid.data = [0] * 1600
        self.grid = grid
        self.timer = probe.node.create_timer(0.05, self._tick)

    def _tick(self):
        if self.send_odom:
            self.odom_pub.publish(self.odom)
        if self.send_costmap:
            self.cm_pub.publish(self.grid)


@pytest.fixture
def controller(start_node):
    node = start_node("controller", parameters={"control_frequency": RATE, "odom_timeout": 0.5, "costmap_timeout": 0.5})
    return node


def test_pause_stops_within_one_control_period(controller, ros_node):
    cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    feeder = Feeder(ros_node)
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    ros_node.wait_for_subscribers(plan_pub)
    policy = PolicyFeed(ros_node, _policy(max_speed=0.3))
    controller.wait_for_log("policy v1")
    plan_pub.publish(_path())
    moving = cmds.wait_for(lambda m: m.linear.x > 0.05, timeout=10)
    assert moving.linear.x <= 0.3 + 1e-6  # the policy's max_speed caps the command
    status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING and s.speed_limit == pytest.approx(0.3), timeout=5)

    received = []
    ros_node.node.create_subscription(Twist, "cmd_vel", lambda m: received.append((time.monotonic(), m)), RELIABLE_QOS)
    time.sleep(0.3)
    t0 = time.monotonic()
    policy.publish(_policy(paused=True, max_speed=0.3, version=2))
    deadline = t0 + 5.0
    stop_at = None
    while time.monotonic() < deadline and stop_at is None:
        for t, m in list(received):
            if t >= t0 and m.linear.x == 0.0 and m.angular.z == 0.0:
                stop_at = t
                break
        time.sleep(0.002)
    assert stop_at is not None, "no zero cmd_vel after the pause"
    # One control period plus transport slack between two local processes.
    assert stop_at - t0 <= 1.0 / RATE + 0.1, stop_at - t0
    # ... and it stays stopped, with the reason.
    time.sleep(0.3)
    after = [m for t, m in received if t > stop_at + 0.01]
    assert after and all(m.linear.x == 0.0 and m.angular.z == 0.0 for m in after)
    status.wait_for(lambda s: s.state == NavigationStatus.STOPPED and s.reason == "fleet paused", timeout=5)
    # Resume: it drives again.
    n = len(cmds.messages)
    policy.publish(_policy(paused=False, max_speed=0.3, version=3))
    cmds.wait_for(lambda m: _after(cmds, n, m) and m.linear.x > 0.05, timeout=5)
    # A DAO max_speed of 0 means: do not move.
    policy.publish(_policy(paused=False, max_speed=0.0, version=4))
    status.wait_for(lambda s: s.state == NavigationStatus.STOPPED and s.reason == "speed limit is zero", timeout=5)
    feeder.timer.cancel()


def test_stays_stopped_without_odom_or_with_stale_costmap(controller, ros_node):
    PolicyFeed(ros_node)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    ros_node.wait_for_subscribers(plan_pub)
    plan_pub.publish(_path())
    status.wait_for(lambda s: s.state == NavigationStatus.STOPPED and s.reason == "no odom", timeout=10)
    feeder = Feeder(ros_node, costmap=False)
    status.wait_for(lambda s: s.reason == "no local costmap", timeout=10)
    feeder.send_costmap = True
    cmds.wait_for(lambda m: m.linear.x > 0.01, timeout=10)
    feeder.send_costmap = False  # perception stops: stale costmap -> stop
    status.wait_for(lambda s: s.reason == "local costmap stale", timeout=10)
    n = len(cmds.messages)
    time.sleep(0.3)
    assert all(m.linear.x == 0.0 for m in cmds.messages[n:])
    feeder.send_costmap = True
    feeder.send_odom = False
    status.wait_for(lambda s: s.reason == "odom stale", timeout=10)
    controller.wait_for_log("state STOPPED: odom stale")
    feeder.timer.cancel()


def test_empty_path_stops_and_goal_is_reached(controller, ros_node):
    PolicyFeed(ros_node)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
    feeder = Feeder(ros_node)
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    ros_node.wait_for_subscribers(plan_pub)
    plan_pub.publish(_path())
    cmds.wait_for(lambda m: m.linear.x > 0.05, timeout=10)
    n = len(cmds.messages)
    plan_pub.publish(Path())  # a failed replan: hold still
    cmds.wait_for(lambda m: _after(cmds, n, m) and m.linear.x == 0.0, timeout=5)
    status.wait_for(lambda s: s.state == NavigationStatus.IDLE, timeout=5)
    # A robot at the end of its path has arrived (a path starting where it stands).
    feeder.odom.pose.pose.position.x = 9.93
    time.sleep(0.3)  # the controller hears the new pose first (else the path's start is refused)
    plan_pub.publish(_path(n=2, step=0.02, x0=9.93))
    st = status.wait_for(lambda s: s.state == NavigationStatus.ARRIVED, timeout=10)
    assert st.progress == pytest.approx(1.0)
    feeder.timer.cancel()


def test_speed_mask_limits_speed(start_node, ros_node, shared_data):
    from depai_nodes.planner.mapio import load_map

    mask_yaml = shared_data / "maps" / "depot_speed.yaml"
    mask = load_map(mask_yaml)
    r, c = np.argwhere(mask.data == 50)[len(np.argwhere(mask.data == 50)) // 2]
    x, y = (float(v) for v in mask.cell_to_world(c, r))
    start_node("controller", parameters={"speed_mask_yaml": str(mask_yaml), "require_costmap": False})
    PolicyFeed(ros_node)
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    cmds = ros_node.subscribe(Twist, "cmd_vel", RELIABLE_QOS)
    feeder = Feeder(ros_node, costmap=False)
    feeder.odom.pose.pose.position.x, feeder.odom.pose.pose.position.y = x, y
    path = _path()
    for p in path.poses:
        p.pose.position.x += x
        p.pose.position.y = y
    plan_pub = ros_node.publisher(Path, "plan", LATCHED_QOS)
    ros_node.wait_for_subscribers(plan_pub)
    plan_pub.publish(path)
    st = status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING, timeout=10)
    assert st.speed_limit == pytest.approx(0.25)  # mask value 50 -> 50 % of 0.5 m/s
    time.sleep(0.5)
    assert max(m.linear.x for m in cmds.messages) <= 0.25 + 1e-6
    assert max(m.linear.x for m in cmds.messages) > 0.2
    feeder.timer.cancel()
