"""Plans between the real planner and the real controller, over DDS: a custom start is for dry runs
only (never published, never followed), the start's frame is validated, and a plan published
before the controller's subscription matched still reaches it (latched)."""
from __future__ import annotations

import time

from nav_msgs.msg import Odometry, Path

from depai.msg import NavigationStatus
from depai.srv import PlanPath
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

from test_controller_node import PolicyFeed

START = (2.0, 2.0)  # depot: free floor
GOAL = (6.0, 2.5)


def _pose(x, y, frame="map"):
    from geometry_msgs.msg import PoseStamped

    p = PoseStamped()
    p.header.frame_id = frame
    p.pose.position.x, p.pose.position.y = float(x), float(y)
    p.pose.orientation.w = 1.0
    return p


def _call(probe, client, request, timeout=15.0):
    """Sent once: a plan request with a goal publishes a plan, which must not happen twice here."""
    return probe.call(client.srv_type, client.srv_name, request, timeout=timeout, resend_after=None)


def test_custom_starts_are_dry_runs_only_and_plans_are_latched(start_node, ros_node, shared_data):
    planner = start_node("planner", parameters={"map_yaml": str(shared_data / "maps" / "depot.yaml"),
                                                "odom_timeout": 5.0})
    planner.wait_for_log("map ready", timeout=30)
    odom_pub = ros_node.publisher(Odometry, "odom", RELIABLE_QOS)
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.position.x, odom.pose.pose.position.y = START
    odom.pose.pose.orientation.w = 1.0
    timer = ros_node.node.create_timer(0.05, lambda: odom_pub.publish(odom))
    plans = ros_node.subscribe(Path, "plan", LATCHED_QOS)
    client = ros_node.node.create_client(PlanPath, "plan_path")

    def request(goal, **kw):
        req = PlanPath.Request()
        req.goal = goal
        for k, v in kw.items():
            setattr(req, k, v)
        return _call(ros_node, client, req)

    # A custom start that would be followed: refused, nothing published.
    r = request(_pose(*GOAL), use_start=True, start=_pose(8.0, 2.0))
    assert r.result == PlanPath.Response.INVALID_REQUEST and "dry_run" in r.message and not r.path.poses
    # ... the start's frame is checked like the goal's.
    r = request(_pose(*GOAL), use_start=True, start=_pose(8.0, 2.0, frame="base_link"), dry_run=True)
    assert r.result == PlanPath.Response.INVALID_REQUEST and "start frame 'base_link'" in r.message
    # A dry run may use one: an answer, not a plan on the topic.
    r = request(_pose(*GOAL), use_start=True, start=_pose(8.0, 2.0), dry_run=True)
    assert r.result == PlanPath.Response.SUCCESS, r.message
    time.sleep(0.5)
    assert plans.messages == []
    planner.wait_for_log("plan refused: INVALID_REQUEST: use_start is only allowed with dry_run")

    # A real plan, before any controller exists; the controller started later still gets it.
    deadline = time.monotonic() + 15
    while (r := request(_pose(*GOAL))).result == PlanPath.Response.START_INVALID and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.result == PlanPath.Response.SUCCESS, r.message
    status = ros_node.subscribe(NavigationStatus, "navigation_status", RELIABLE_QOS)
    start_node("controller", parameters={"require_costmap": False})
    PolicyFeed(ros_node)
    st = status.wait_for(lambda s: s.state == NavigationStatus.FOLLOWING, timeout=20)
    assert st.distance_remaining > 3.0
    timer.cancel()
