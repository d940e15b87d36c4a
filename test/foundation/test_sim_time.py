"""Sim time (issue 11, item 2): a node's timeouts follow /clock, not the wall clock. The controller
runs with use_sim_time; the test is its clock. With /clock slowed to a tenth of real time, odom
received once stays fresh for 10x its odom_timeout in wall time; it goes stale only when /clock
passes the timeout."""
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from depai_nodes.common.diagnostics import OK, WARN
from depai_nodes.common.qos import SENSOR_QOS


def test_odom_timeout_follows_a_slowed_clock(ros_node, start_node):
    clock_pub = ros_node.publisher(Clock, "/clock", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    sim = {"t": 100.0, "rate": 0.1}
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(sim["t"]), int((sim["t"] % 1) * 1e9)
            clock_pub.publish(msg)
            time.sleep(0.02)
            sim["t"] += 0.02 * sim["rate"]

    threading.Thread(target=tick, daemon=True).start()
    try:
        start_node("controller", parameters={"use_sim_time": True, "odom_timeout": 0.5, "policy_timeout": 60.0})
        diag = ros_node.subscribe(DiagnosticArray, "/diagnostics", 10)
        odom_pub = ros_node.publisher(Odometry, "odom", SENSOR_QOS)
        ros_node.wait_for_subscribers(odom_pub, timeout=20)
        diag.wait_for(timeout=20)
        odom = Odometry()
        odom.header.frame_id = "odom"
        odom_pub.publish(odom)

        def odom_status(msg):
            return next((s for s in msg.status if s.name == "/controller: input odom"), None)

        fresh = diag.wait_for(lambda m: odom_status(m) is not None and odom_status(m).level == bytes([OK]), timeout=10)
        t_fresh = time.monotonic()
        time.sleep(2.0)  # 2 s of wall time: 4x odom_timeout, but only 0.2 s of sim time
        n = len(diag.messages)
        later = diag.wait_for(lambda m: diag.messages.index(m) >= n and odom_status(m) is not None, timeout=5)
        assert odom_status(later).level == bytes([OK]), odom_status(later).message  # still fresh on /clock
        assert time.monotonic() - t_fresh > 4 * 0.5
        n = len(diag.messages)
        sim["t"] += 1.0  # /clock passes the timeout
        stale = diag.wait_for(lambda m: diag.messages.index(m) >= n and odom_status(m) is not None
                              and odom_status(m).level == bytes([WARN]), timeout=10)
        assert odom_status(stale).message.startswith("stale")
        assert float({kv.key: kv.value for kv in odom_status(stale).values}["age_s"]) < 3.0  # sim seconds, not wall
        _ = fresh
    finally:
        stop.set()
