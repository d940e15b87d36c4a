"""/diagnostics of the tool nodes (issue 11, item 4): the monitor (one entry per watched topic,
levels against its expected rate), the lifecycle manager (one entry per managed node and an
overall one: ERROR for a failed transition with the node's own error, WARN for a node not up yet,
OK once active), and the topic statistics' reset when the ROS clock goes back (a restarted
simulator resets /clock). Real node processes over DDS; the view's entries are tested with the
viewer extra in test/view/test_view_diagnostics.py."""
import threading
import time

from diagkit import FakeClock
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String

from depai_nodes.common.diagnostics import ERROR, OK, WARN, Diagnostics
from depai_nodes.lifecycle_manager.core import NodeRecord, overall_status
from depai_nodes.monitor.core import parse_topic_spec


def test_topic_stats_reset_cleanly_when_the_clock_goes_back():
    clock = FakeClock(200.0)
    diag = Diagnostics(clock, window=2.0)
    odom = diag.topic("odom", expected_rate=10.0, stale_after=0.5)
    for _ in range(20):
        clock.t += 0.1
        odom.tick()
    before = diag.report()[0]
    assert before.level == OK and before.values["messages"] == "20" and float(before.values["rate_hz"]) == pytest.approx(10.0)
    clock.t = 3.0  # the simulator restarted: /clock from (almost) zero
    jumped = diag.report()[0]
    assert jumped.level == WARN and jumped.message == "clock jumped back 199.00 s: samples after it forgotten, counting again"
    assert jumped.values["clock_jump_s"] == "199.00" and jumped.values["age_s"] == "0.00" and jumped.values["rate_hz"] == "0.00"
    assert jumped.values["messages"] == "20"  # the total is kept; the samples of the old timeline are gone
    # reported once: then the levels count normally on the new timeline
    clock.t += 0.3
    again = diag.report()[0]
    assert "clock_jump_s" not in again.values and again.level == WARN and again.message == "slow: 0.00 Hz, expected 10 Hz"
    clock.t += 0.5  # 0.8 s since the jump and no message: stale, with a real age (not 'unknown')
    stale = diag.report()[0]
    assert stale.level == WARN and stale.message == "stale: no message for 0.80 s (limit 0.5 s)" and stale.values["age_s"] == "0.80"
    for _ in range(20):
        clock.t += 0.1
        odom.tick()
    back = diag.report()[0]
    assert back.level == OK and float(back.values["rate_hz"]) == pytest.approx(10.0) and back.values["messages"] == "40"


def test_a_jump_seen_first_by_a_message_is_reported_once_too():
    clock = FakeClock(200.0)
    diag = Diagnostics(clock, window=2.0)
    points = diag.topic("points")
    for _ in range(5):
        clock.t += 0.1
        points.tick()
    clock.t = 1.0
    points.tick()  # the first message on the new timeline finds the jump
    jumped = diag.report()[0]
    assert jumped.level == WARN and jumped.values["clock_jump_s"] == "199.50" and jumped.values["rate_hz"] == "0.50"
    assert diag.report()[0].level == OK  # no expected rate, not stale: OK from now on


def test_monitor_specs_take_an_expected_rate():
    spec = parse_topic_spec("odom nav_msgs/msg/Odometry sensor 20hz")
    assert (spec.qos, spec.rate, spec.stale_after) == ("sensor", 20.0, 1.0)  # three periods, at least 1 s
    slow = parse_topic_spec("/fleet/policy depai/msg/FleetPolicy latched 0.5")
    assert (slow.rate, slow.stale_after) == (0.5, 6.0)
    assert parse_topic_spec("plan nav_msgs/msg/Path").rate is None
    for bad in ("odom nav_msgs/msg/Odometry 0", "odom nav_msgs/msg/Odometry fast", "odom nav_msgs/msg/Odometry 5 sensor"):
        with pytest.raises(ValueError):
            parse_topic_spec(bad)


def test_lifecycle_records_levels():
    wallet, identity = NodeRecord("/robot1/wallet"), NodeRecord("/robot1/identity")
    assert wallet.status()[:2] == (WARN, "unknown: not active yet (not tried yet)")
    wallet.state, wallet.attempts, wallet.transition = "unconfigured", 1, "configure"
    assert wallet.status()[:2] == (WARN, "unconfigured: being brought up (configure, attempt 1)")
    wallet.transition = ""
    wallet.fail("configure failed (it stays unconfigured; its log says why)")
    wallet.node_error = "unconfigured (configure: keystore: no such file)"
    identity.state, identity.waiting_for = "unconfigured", "/robot1/wallet"
    level, message, values = wallet.status()
    assert level == ERROR and message.endswith("(attempt 1): unconfigured (configure: keystore: no such file)")
    assert values["failure"].startswith("configure failed") and values["attempts"] == "1"
    assert identity.status()[:2] == (WARN, "unconfigured: waiting for /robot1/wallet (earlier in its group)")
    level, message, values = overall_status([wallet, identity])
    assert level == ERROR and message == "0 of 2 active; failed: /robot1/wallet" and values["active"] == "0"
    wallet.state = "active"
    wallet.ok()
    wallet.activations = 1
    assert wallet.status()[:2] == (OK, "active") and wallet.attempts == 0
    assert overall_status([wallet, identity])[:2] == (WARN, "1 of 2 active; not yet: /robot1/identity")
    unavailable = NodeRecord("/ghost", state="unavailable", attempts=3)
    unavailable.fail("no answer from its lifecycle services within 1 s", transition_failed=False)
    assert unavailable.status()[:2] == (WARN, "unavailable: no answer from its lifecycle services within 1 s (attempt 3)")


def _status(inbox, name, level, timeout=30.0, where=None):
    def match(msg):
        return any(s.name == name and s.level == bytes([level]) and (where is None or where(s)) for s in msg.status)
    msg = inbox.wait_for(match, timeout=timeout)
    return next(s for s in msg.status if s.name == name and s.level == bytes([level]) and (where is None or where(s)))


def _values(status):
    return {kv.key: kv.value for kv in status.values}


def test_monitor_topic_entries_follow_what_flows(ros_node, start_node):
    start_node("monitor", parameters={"period": 1.0, "topics": ["/probe_a std_msgs/msg/String 5", "/probe_b std_msgs/msg/String"]})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    a = _status(inbox, "/monitor: input /probe_a", WARN)
    assert a.message == "no message yet" and _values(a)["expected_hz"] == "5" and _values(a)["messages"] == "0"
    assert _status(inbox, "/monitor: input /probe_b", WARN).message == "no message yet"
    pub = ros_node.publisher(String, "/probe_a", 10)
    ros_node.wait_for_subscribers(pub)
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            pub.publish(String(data="hello"))
            stop.wait(0.1)  # 10 Hz, twice the expected rate

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        ok = _status(inbox, "/monitor: input /probe_a", OK, where=lambda s: float(_values(s)["rate_hz"]) > 2.5)
        assert ok.message.endswith("Hz") and int(_values(ok)["messages"]) >= 12 and float(_values(ok)["age_s"]) < 1.0
        report = inbox.wait_for(lambda m: any(s.name == "/monitor: input /probe_a" and s.level == bytes([OK]) for s in m.status))
        b = next(s for s in report.status if s.name == "/monitor: input /probe_b")  # in the same report: nobody publishes it
        assert b.level == bytes([WARN]) and b.message == "no message yet"
        report = _status(inbox, "/monitor: processing report", OK, where=lambda s: "samples" in _values(s))
        assert float(_values(report)["max_ms"]) >= float(_values(report)["mean_ms"]) > 0.0
    finally:
        stop.set()
        thread.join(2.0)
    stale = _status(inbox, "/monitor: input /probe_a", WARN, timeout=15, where=lambda s: s.message.startswith("stale"))
    assert float(_values(stale)["age_s"]) > 1.0 and "(limit 1 s)" in stale.message


POLICY = "max_speed: 0.4\npaused: false\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n"


def test_lifecycle_manager_entries_per_managed_node(ros_node, start_node, tmp_path):
    missing = tmp_path / "policy.yaml"  # not there yet: dao_listener's configure fails
    start_node("dao_listener", parameters={"policy_file": str(missing), "autostart": False})
    start_node("lifecycle_manager", parameters={"fleet_nodes": ["dao_listener", "ghost"], "check_period": 0.5,
                                                "service_timeout": 1.0})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    # the manager hears the node's own error on /diagnostics and says it with the failed transition
    failed = _status(inbox, "/lifecycle_manager: node /dao_listener", ERROR, where=lambda s: str(missing) in s.message)
    assert failed.message.startswith("configure failed (it stays unconfigured") and "policy_file" in failed.message
    assert _values(failed)["state"] == "unconfigured" and int(_values(failed)["attempts"]) >= 1
    ghost = _status(inbox, "/lifecycle_manager: node /ghost", WARN, where=lambda s: _values(s)["state"] == "unavailable")
    assert ghost.message.startswith("unavailable: no answer from its lifecycle services within 1 s (attempt ")  # nothing runs under that name
    overall = _status(inbox, "/lifecycle_manager: managed nodes", ERROR)
    assert overall.message == "0 of 2 active; failed: /dao_listener"
    missing.write_text(POLICY)  # the manager's retry configures it now
    active = _status(inbox, "/lifecycle_manager: node /dao_listener", OK, timeout=30)
    assert active.message == "active" and _values(active)["attempts"] == "0" and _values(active)["activations"] == "1"
    assert "node_says" not in _values(active)
    assert _status(inbox, "/lifecycle_manager: managed nodes", WARN).message == "1 of 2 active; not yet: /ghost"
    start_node("dao_listener", name="ghost", parameters={"policy_file": str(missing), "autostart": False})
    up = _status(inbox, "/lifecycle_manager: managed nodes", OK, timeout=40)
    assert up.message == "all 2 managed node(s) active" and _values(up)["active"] == "2"
    assert _status(inbox, "/lifecycle_manager: node /ghost", OK).message == "active"
    time.sleep(0.1)
