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


def test_the_agents_delays_follow_the_clock_and_survive_a_jump_back(ros_node, start_node):
    """The task agent's start delay and retries run on /clock (sim time), and a clock that starts
    again at zero (a restarted simulator) does not leave its retries stuck minutes ahead."""
    from depai.msg import NavigationStatus
    from depai.srv import PlanPath

    from depai_nodes.common.qos import RELIABLE_QOS

    clock_pub = ros_node.publisher(Clock, "/clock", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    sim = {"t": 100.0, "rate": 0.1}
    stop = threading.Event()
    asked: list[float] = []  # wall times of plan requests

    def plan(request, response):
        asked.append(time.monotonic())
        response.result = PlanPath.Response.MAP_NOT_READY  # a transient refusal: retried after retry_period
        response.message = "test"
        return response

    ros_node.node.create_service(PlanPath, "plan_path", plan)
    status_pub = ros_node.publisher(NavigationStatus, "navigation_status", RELIABLE_QOS)

    def tick():
        while not stop.is_set():
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(sim["t"]), int((sim["t"] % 1) * 1e9)
            clock_pub.publish(msg)
            status_pub.publish(NavigationStatus(state=NavigationStatus.IDLE))
            time.sleep(0.02)
            sim["t"] += 0.02 * sim["rate"]

    threading.Thread(target=tick, daemon=True).start()
    try:
        agent = start_node("agent", parameters={"use_sim_time": True, "waypoints": [1.0, 1.0, 0.0], "start_delay": 2.0,
                                                "retry_period": 1.0, "controller_timeout": 600.0, "max_attempts": 1000})
        ros_node.wait_for_subscribers(status_pub, timeout=20)
        time.sleep(5.0)  # 5 s of wall time, 0.5 s of sim time: the 2 s start delay is not over
        assert asked == [], "the agent asked for a plan before its start delay had passed on /clock"
        sim["t"] += 3.0  # /clock passes the start delay
        wait_for = time.monotonic() + 15
        while not asked:
            assert time.monotonic() < wait_for, "no plan request after /clock passed the start delay"
            time.sleep(0.05)
        # The simulator restarts: its clock starts again near zero, at real-time rate now.
        sim["rate"], sim["t"] = 1.0, 1.0
        agent.wait_for_log("the clock jumped back", timeout=15)
        n = len(asked)
        wait_for = time.monotonic() + 15
        while len(asked) < n + 2:  # retries keep coming, 1 s of the new clock apart
            assert time.monotonic() < wait_for, "retries stopped after the clock jumped back"
            time.sleep(0.05)
        assert agent.process.poll() is None
    finally:
        stop.set()
