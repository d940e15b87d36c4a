"""The last stage with real physics: simulator + dao_listener (a policy file with a keep-out zone)
+ controller, and a plan straight through the zone that no planner would make (what a buggy
planner, a custom start or a stale plan could send). From the simulator's recorded odometry: the
robot drives up to the zone and its footprint never overlaps it; the controller says which zone."""
from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path

from depai.msg import NavigationStatus
from depai_nodes.common.polygon import signed_distance
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

START = (-1.5, -2.5, math.pi)  # warehouse: free floor westwards to x = -3.36
ZONE = [(-2.8, -3.5), (-2.3, -3.5), (-2.3, -1.5), (-2.8, -1.5)]
RADIUS = 0.3

POLICY = f"""max_speed: 0.6
paused: false
keep_out_zones:
  - id: spill
    polygon: {[list(p) for p in ZONE]}
min_task_price: 0
spending_cap: 0
...
"""


def test_a_plan_through_a_zone_stops_the_footprint_outside_it(start_node, ros_node, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    start_node("simulator", parameters={
        "world": "warehouse", "robots": ["robot1"], "spawn_poses": list(START),
        "lidar_beams": 4, "lidar_horizontal": 64, "lidar_rate": 1.0, "robot_radius": RADIUS})
    start_node("dao_listener", parameters={"policy_file": str(policy_file)})
    controller = start_node("controller", namespace="robot1", parameters={
        "require_costmap": False, "robot_radius": RADIUS, "desired_linear_vel": 0.6})
    track = []
    ros_node.node.create_subscription(
        Odometry, "/robot1/odom", lambda o: track.append((o.pose.pose.position.x, o.pose.pose.position.y)), RELIABLE_QOS)
    status = ros_node.subscribe(NavigationStatus, "/robot1/navigation_status", RELIABLE_QOS)
    deadline = time.monotonic() + 30
    while not track:
        assert time.monotonic() < deadline, "no odom from the simulator"
        time.sleep(0.1)
    status.wait_for(lambda s: s.policy_source.startswith("file:"), timeout=30)

    plan = Path()
    plan.header.frame_id = "map"
    for x in np.arange(START[0], -3.0, -0.05):
        ps = PoseStamped()
        ps.header.frame_id = "map"
        ps.pose.position.x, ps.pose.position.y = float(x), START[1]
        ps.pose.orientation.z, ps.pose.orientation.w = 1.0, 0.0  # facing west
        plan.poses.append(ps)
    plan_pub = ros_node.publisher(Path, "/robot1/plan", LATCHED_QOS)
    plan_pub.publish(plan)

    st = status.wait_for(lambda s: s.reason.startswith("keep-out zone 'spill'"), timeout=60)
    assert st.state == NavigationStatus.STOPPED
    # After the first stop it may creep on while the zone is farther than the guard's shortest
    # roll-out (collision_min_distance): it comes to rest at the edge, and stays there.
    deadline = time.monotonic() + 30
    while True:
        time.sleep(0.5)
        recent = list(track)[-40:]
        if len(recent) >= 20 and max(abs(a[0] - recent[-1][0]) + abs(a[1] - recent[-1][1]) for a in recent) < 1e-3:
            break
        assert time.monotonic() < deadline, f"still moving 30 s after the stop: last x {[round(a[0], 3) for a in recent[-5:]]}"
    rest = track[-1]
    time.sleep(1.5)
    assert abs(track[-1][0] - rest[0]) + abs(track[-1][1] - rest[1]) < 1e-3  # and stands still now
    pts = np.array(track)
    d = signed_distance(np.array(ZONE), pts[:, 0], pts[:, 1])
    assert d.min() >= RADIUS, f"footprint entered the zone: clearance {d.min() - RADIUS:.3f} m"
    assert pts[:, 0].min() < START[0] - 0.2  # it did drive towards the zone
    assert signed_distance(np.array(ZONE), [rest[0]], [rest[1]])[0] - RADIUS < 0.35  # it stopped at the edge, not short of it
    controller.wait_for_log("keep-out zone 'spill'")
