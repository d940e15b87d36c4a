"""The view's /diagnostics (issue 11, item 4), from a real view process over DDS: a viewer server
that cannot start (its port taken) is an ERROR while the other viewer serves; its inputs go from
WARN (nothing yet) to OK when the probe publishes them; a message it cannot place in `map` (no
transform yet) is a WARN on `placement` while recent, OK (with the count) once it stops."""

from __future__ import annotations

import socket
import threading

from diagkit import wait_status
from diagkit import values as status_values
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import PointCloud2
from tf2_msgs.msg import TFMessage

from depai.msg import FleetPolicy
from depai_nodes.common.diagnostics import ERROR, OK, WARN
from depai_nodes.common.pointcloud2 import array_to_cloud, xyz_dtype
from depai_nodes.common.qos import LATCHED_QOS, SENSOR_QOS, TF_QOS


INPUTS = ("/robot1/points", "/robot1/odom", "/robot1/plan", "/fleet/policy", "/tf")


def test_view_servers_inputs_and_placement_levels(ros_node, start_node, ports):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    try:
        view = start_node("view", parameters={"robots": ["robot1"], "world": "", "foxglove_port": busy,
                                              "rerun_web_port": ports["rerun_web_port"], "rerun_grpc_port": ports["rerun_grpc_port"],
                                              "cloud_rate": 5.0})
        inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
        failed = wait_status(inbox, "/view: viewer foxglove", ERROR, timeout=60)
        assert failed.message.startswith("failed to start:") and "Address already in use" in failed.message
        rerun = wait_status(inbox, "/view: viewer rerun", OK)
        assert rerun.message == f"serving {status_values(rerun)['web_url']}" and f":{ports['rerun_web_port']}/" in status_values(rerun)["web_url"]
        assert "cannot serve the viewer of `foxglove_port`" in view.log()  # logged once, the node goes on
        for topic in INPUTS:
            nothing = wait_status(inbox, f"/view: input {topic}", WARN)
            assert nothing.message == "no message yet" and status_values(nothing)["messages"] == "0"
        assert wait_status(inbox, "/view: placement", OK).message == "nothing failed to place in map"

        odom_pub = ros_node.publisher(Odometry, "/robot1/odom", SENSOR_QOS)
        cloud_pub = ros_node.publisher(PointCloud2, "/robot1/points", 5)
        tf_pub = ros_node.publisher(TFMessage, "/tf", TF_QOS)
        stop, with_tf = threading.Event(), threading.Event()
        xyz = np.array([(1.0, 0.0, 0.2), (2.0, 1.0, 0.5), (0.5, -1.0, 1.0)], xyz_dtype())

        def publish():
            while not stop.is_set():
                stamp = ros_node.node.get_clock().now().to_msg()
                odom = Odometry()
                odom.header.frame_id, odom.header.stamp, odom.child_frame_id = "robot1/odom", stamp, "robot1/base_link"
                odom.pose.pose.orientation.w = 1.0
                odom_pub.publish(odom)
                cloud_pub.publish(array_to_cloud(xyz, frame_id="robot1/odom", stamp=stamp))
                if with_tf.is_set():
                    edge = TransformStamped()
                    edge.header.frame_id, edge.header.stamp, edge.child_frame_id = "map", stamp, "robot1/odom"
                    edge.transform.translation.x, edge.transform.rotation.w = 1.5, 1.0
                    tf_pub.publish(TFMessage(transforms=[edge]))
                stop.wait(0.1)

        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        try:
            # no transform to map yet: the odometry and the sweeps cannot be placed
            unplaced = wait_status(inbox, "/view: placement", WARN)
            assert unplaced.message.startswith("cannot place in map robot1/") and status_values(unplaced)["last_input"] in ("robot1/odom", "robot1/points")
            assert int(status_values(unplaced)["failures"]) >= 1 and "map" in status_values(unplaced)["last_error"]
            odom = wait_status(inbox, "/view: input /robot1/odom", OK, where=lambda s: float(status_values(s)["rate_hz"]) > 2.0)
            assert int(status_values(odom)["messages"]) > 5
            assert wait_status(inbox, "/view: input /robot1/points", OK).message.endswith("Hz")
            # now the transform, a plan and a policy
            with_tf.set()
            plan_pub = ros_node.publisher(Path, "/robot1/plan", LATCHED_QOS)
            policy_pub = ros_node.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
            ros_node.wait_for_subscribers(plan_pub, timeout=20)
            ros_node.wait_for_subscribers(policy_pub, timeout=20)
            plan = Path()
            plan.header.frame_id = "map"
            plan.poses = [PoseStamped(), PoseStamped()]
            plan_pub.publish(plan)
            policy = FleetPolicy(version=2, max_speed=0.5, spending_cap="0", min_task_price="0", source="test")
            policy.header.frame_id = "map"
            policy_pub.publish(policy)
            for topic in ("/robot1/plan", "/fleet/policy", "/tf"):
                assert int(status_values(wait_status(inbox, f"/view: input {topic}", OK))["messages"]) >= 1
            # every message placed since: the placement WARN ends 10 s after the last failure
            placed = wait_status(inbox, "/view: placement", OK, timeout=40, where=lambda s: "failures" in status_values(s) and status_values(s)["failures"] != "0")
            assert " failure(s), none for " in placed.message and float(status_values(placed)["last_age_s"]) >= 10.0
            drawn = wait_status(inbox, "/view: drawing", OK, where=lambda s: int(status_values(s)["sweeps"]) > 0 and int(status_values(s)["poses"]) > 0)
            assert drawn.message == "nothing failed to draw" and status_values(drawn)["failures"] == "0"
        finally:
            stop.set()
            thread.join(2.0)
        # the streams stop: stale after 2 s; the latched plan and policy stay OK
        stale = wait_status(inbox, "/view: input /robot1/odom", WARN, timeout=20, where=lambda s: s.message.startswith("stale"))
        assert float(status_values(stale)["age_s"]) > 2.0
        entries = {s.name: s for s in _report_where_odom_is_stale(inbox)}
        assert entries["/view: input /robot1/plan"].level == bytes([OK]) and entries["/view: input /fleet/policy"].level == bytes([OK])
        assert view.process.poll() is None
    finally:
        taken.close()


def _report_where_odom_is_stale(inbox):
    return inbox.wait_for(lambda m: any(s.name == "/view: input /robot1/odom" and s.message.startswith("stale") for s in m.status)).status
