"""/diagnostics from every node (issue 11, item 4): the chain-health core's levels, and real node
processes over DDS publishing their named entries with levels that follow what they see
(perception: WARN "no message yet" on `points` with no simulator, OK once it runs; the planner's
map and inputs; the agent's controller input and planner; the simulator's real-time factor; the
dao_listener's policy and source; the status node's inputs). Chain-facing entries (wallet,
telemetry backlog, identity) are tested on a real anvil in test/chain/test_diagnostics_chain.py."""
import time

from diagnostic_msgs.msg import DiagnosticArray
from diagkit import FakeClock, wait_status
from diagkit import values as status_values

from depai_nodes.common.diagnostics import ERROR, OK, WARN, ChainHealth, ChainProbe, Diagnostics


def test_chain_health_levels_follow_reads_and_time():
    clock = FakeClock(50.0)
    health = ChainHealth(error_after=10.0, stale_after=6.0, clock=clock)
    level, message, _ = health.check()
    assert level == WARN and message == "no chain read yet"
    health.ok(41)
    level, message, values = health.check()
    assert level == OK and message == "block 41" and values["block"] == "41"
    clock.t += 3.0
    health.failed("RpcUnavailableError: connection refused")
    level, message, values = health.check()
    assert level == WARN and "retrying" in message and "connection refused" in message and values["failures"] == "1"
    clock.t += 9.0  # failing for 9 s: still within error_after
    health.failed("RpcUnavailableError: connection refused")
    assert health.check()[0] == WARN
    clock.t += 1.5  # 10.5 s since the first failure of this outage
    level, message, values = health.check()
    assert level == ERROR and message.startswith("chain unreachable for 10.5 s") and values["block"] == "41"
    health.ok(57)  # back: OK at once, the outage forgotten
    level, message, values = health.check()
    assert level == OK and message == "block 57" and values["failures"] == "0" and "error" not in values
    clock.t += 6.5  # no read since: the reader is stuck
    level, message, _ = health.check()
    assert level == WARN and message.startswith("no chain read for 6.5 s")


def test_chain_probe_feeds_health_and_a_cached_check_is_computed_once_per_period():
    health = ChainHealth(error_after=0.2)
    heads = iter([5, 6])

    def read():
        try:
            return next(heads)
        except StopIteration:
            raise ConnectionError("gone") from None

    probe = ChainProbe(read, health, period=0.05).start()
    try:
        deadline = time.monotonic() + 5
        while health.check()[0] != ERROR and time.monotonic() < deadline:
            time.sleep(0.02)
        level, message, values = health.check()
        assert level == ERROR and "ConnectionError: gone" in message and values["block"] == "6"
    finally:
        probe.stop()
    calls = []
    diag = Diagnostics(FakeClock(50.0))
    diag.check("disk", lambda: (calls.append(1), (OK, f"call {len(calls)}", {}))[1], cache_s=60.0)
    assert [s.message for s in diag.report()] == ["call 1"] and diag.report()[0].message == "call 1" and len(calls) == 1


SIM = {"world": "warehouse", "robots": ["robot1"], "lidar_beams": 8, "lidar_horizontal": 128, "lidar_rate": 5.0}


def test_perception_planner_agent_and_simulator_levels_over_dds(ros_node, start_node):
    start_node("perception", namespace="robot1", parameters={"expected_frame": "robot1/lidar_link"})
    start_node("planner", namespace="robot1")
    start_node("agent", namespace="robot1", parameters={"waypoints": [1.0, 0.0, 0.0], "start_delay": 0.0})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    # no simulator: nothing to perceive, no map, no odom, no controller
    points = wait_status(inbox, "/robot1/perception: input points", WARN)
    assert points.message == "no message yet" and status_values(points)["messages"] == "0"
    assert wait_status(inbox, "/robot1/perception: clouds", OK).message == "0 sweep(s) processed, 0 dropped"
    assert wait_status(inbox, "/robot1/planner: map", WARN).message == "no map yet: every plan is refused"
    assert wait_status(inbox, "/robot1/planner: input odom", WARN).message == "no message yet"
    assert "no /fleet/policy yet" in wait_status(inbox, "/robot1/planner: policy", WARN).message
    assert wait_status(inbox, "/robot1/agent: input navigation_status", WARN).message == "no message yet"
    assert wait_status(inbox, "/robot1/agent: planner", OK).message == "plan_path available"
    task = wait_status(inbox, "/robot1/agent: task", OK)
    assert status_values(task)["phase"] == "waiting" and status_values(task)["waypoints"] == "1"

    start_node("simulator", parameters=SIM)
    # 5 sweeps per simulated s: the rate over the 5 s window climbs past 1 Hz
    points = wait_status(inbox, "/robot1/perception: input points", OK, timeout=60, where=lambda s: float(status_values(s)["rate_hz"]) > 1.0)
    assert int(status_values(points)["messages"]) > 5 and points.message.endswith("Hz")
    clouds = wait_status(inbox, "/robot1/perception: clouds", OK, where=lambda s: status_values(s)["processed"] != "0")
    assert status_values(clouds)["dropped"] == "0"
    sweep = wait_status(inbox, "/robot1/perception: processing sweep", OK, where=lambda s: "samples" in status_values(s))
    assert float(status_values(sweep)["mean_ms"]) > 0.0
    mapped = wait_status(inbox, "/robot1/planner: map", OK)
    assert " cells at " in mapped.message and status_values(mapped)["source"] == "topic"
    assert int(status_values(wait_status(inbox, "/robot1/planner: input odom", OK))["messages"]) > 0
    rtf = wait_status(inbox, "/simulator: real-time factor", OK, where=lambda s: "factor" in status_values(s))
    assert float(status_values(rtf)["factor"]) > 0.0 and status_values(rtf)["target"] == "1"
    # nothing drives the robot (no controller): the simulator says so
    assert wait_status(inbox, "/simulator: input robot1/cmd_vel", WARN).message == "no message yet"
    step = wait_status(inbox, "/simulator: processing step", OK, where=lambda s: "samples" in status_values(s))
    assert float(status_values(step)["max_ms"]) >= float(status_values(step)["mean_ms"]) > 0.0


def test_dao_listener_policy_and_source_levels_and_status_inputs_over_dds(ros_node, start_node, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("max_speed: 0.4\npaused: false\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n")
    start_node("dao_listener", parameters={"policy_file": str(policy), "source_timeout": 1.5, "watch_period": 0.2})
    start_node("status", parameters={"robots": ["robot1"], "chain": False, "period": 0.5})
    inbox = ros_node.subscribe(DiagnosticArray, "/diagnostics", 50)
    ok = wait_status(inbox, "/dao_listener: policy", OK)
    assert ok.message == "policy v1 published" and status_values(ok)["max_speed"] == "0.4" and status_values(ok)["zones"] == "0"
    assert wait_status(inbox, "/dao_listener: source", OK).message == f"file {policy}"
    # the status node hears the heartbeat, and no controller
    assert wait_status(inbox, "/status: input /fleet/policy", OK).message.endswith("Hz")
    assert wait_status(inbox, "/status: input /robot1/navigation_status", WARN).message == "no message yet"
    # an invalid edit is refused: WARN on the source, the policy in force stays OK
    policy.write_text("max_speed: [\n")
    report = inbox.wait_for(lambda m: any(s.name == "/dao_listener: source" and s.level == bytes([WARN]) for s in m.status), timeout=30)
    entries = {s.name: s for s in report.status}
    assert entries["/dao_listener: source"].message.startswith("last edit refused, v1 stays")
    kept = entries["/dao_listener: policy"]  # in the same report: the policy in force is still fine
    assert kept.level == bytes([OK]) and kept.message == "policy v1 published"
    # the file gone: not confirmed for source_timeout -> ERROR, the heartbeat stopped
    policy.unlink()
    stopped = wait_status(inbox, "/dao_listener: policy", ERROR, timeout=20)
    assert "heartbeat stopped, the robots hold still" in stopped.message and status_values(stopped)["version"] == "1"
    stale = wait_status(inbox, "/status: input /fleet/policy", WARN, timeout=20, where=lambda s: s.message.startswith("stale"))
    assert float(status_values(stale)["age_s"]) > 5.0
    # a valid file again: confirmed, OK
    policy.write_text("max_speed: 0.3\npaused: true\nkeep_out_zones: []\nmin_task_price: 0\nspending_cap: 0\n...\n")
    back = wait_status(inbox, "/dao_listener: policy", OK, timeout=20, where=lambda s: status_values(s)["version"] == "2")
    assert back.message == "policy v2 published (fleet paused)"
