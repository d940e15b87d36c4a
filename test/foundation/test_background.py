"""common/background.py: the outside watcher's node (tests, fault harness, benches) and the
summed /clock, over real DDS."""

from __future__ import annotations

import threading

from builtin_interfaces.msg import Time
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from depai_nodes.common.background import BackgroundNode, SimClock
from depai_nodes.common.qos import RELIABLE_QOS


def _clock(sec: float) -> Clock:
    m = Clock()
    m.clock = Time(sec=int(sec), nanosec=int(round((sec % 1) * 1e9)))
    return m


def test_sim_clock_sums_forward_steps_across_a_simulator_restart():
    c = SimClock()
    for t in (0.0, 1.0, 2.5):
        c.on_clock(_clock(t))
    assert abs(c.total - 2.5) < 1e-9
    for t in (0.0, 0.5, 1.0):  # restarted: its clock starts at 0 again
        c.on_clock(_clock(t))
    assert abs(c.total - 3.5) < 1e-9
    c.on_clock(_clock(1.0))  # the same stamp twice adds nothing
    assert abs(c.total - 3.5) < 1e-9


def test_two_background_nodes_talk_over_dds_and_close_cleanly(ros_domain):
    got: list[str] = []
    arrived = threading.Event()
    listener = BackgroundNode("bg_listener", ros_domain)
    talker = BackgroundNode("bg_talker", ros_domain)
    try:
        listener.node.create_subscription(String, "/bg_test", lambda m: (got.append(m.data), arrived.set()), RELIABLE_QOS)
        pub = talker.node.create_publisher(String, "/bg_test", RELIABLE_QOS)
        msg = String(data="hello")
        for _ in range(100):  # until discovery has matched them
            pub.publish(msg)
            if arrived.wait(0.1):
                break
        assert got and got[0] == "hello"  # the listener's callback ran in its own spinning thread
    finally:
        talker.close()
        listener.close()
    assert not listener.context.ok() and not listener._thread.is_alive()
    listener.close()  # a second close is harmless
