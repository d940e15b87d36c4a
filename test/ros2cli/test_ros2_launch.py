"""`ros2 launch` of every shipped launch file, checked with the upstream `ros2` CLI as a user would.

One robot with the shipped config/stack.yaml: the nodes appear in `ros2 node list`, topics flow
(`ros2 topic echo --once`, `ros2 topic hz`), parameters read back (`ros2 param get`, the empty
list `simulator.spawn_poses: []` that launch_ros's dict form cannot carry included), the planner
answers `ros2 service call .../plan_path`, and Ctrl-C (SIGINT) stops everything. Several robots:
the same with `robots:=robot1,robot2`. A stack value no ROS parameter can hold stops the launch
before any node starts, naming node.parameter.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from ros2kit import REPO_ROOT, alive, descendants, wait_until

from depai_nodes.bringup.stack import expand, load_stack, with_robots

SHIPPED = sorted(p.name for p in (REPO_ROOT / "launch").glob("*.launch.py"))
STACK = REPO_ROOT / "config" / "stack.yaml"


def test_every_shipped_launch_file_is_checked():
    # A new launch file must get its own check here before it ships.
    assert SHIPPED == ["depai.launch.py"]


def _node_list(ros2) -> list[str]:
    out = ros2.run("node", "list", "--no-daemon", "--spin-time", "2", check=False).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip().startswith("/"))


class Launch:
    """One `ros2 launch` run: its process, log, and the node names the stack says it runs."""

    def __init__(self, ros2, tmp_path: Path, launch_file: str, *args: str, stack: Path = STACK, robots: list[str] | None = None,
                 chain: str | None = None):
        self.ros2 = ros2
        self.log_path = tmp_path / f"launch-{len(list(tmp_path.glob('launch-*')))}.log"
        instances = expand(with_robots(load_stack(stack), robots), chain=chain != "none")
        # a wallet process serves its intents from a second node, <name>_intents (wallet/README.md)
        self.expected = sorted([i.fqn for i in instances] + [f"{i.fqn}_intents" for i in instances if i.concern == "wallet"])
        argv = ["launch", "depai", launch_file, *args]
        if chain is not None:
            argv.append(f"chain:={chain}")
        if stack != STACK:
            argv.append(f"stack:={stack}")
        if robots:
            argv.append(f"robots:={','.join(robots)}")
        self.process = ros2.popen(*argv, log=self.log_path)
        self.seen: set[int] = set()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def track(self) -> None:
        self.seen |= descendants(self.process.pid)

    def wait_nodes(self, timeout: float = 90.0) -> list[str]:
        def all_up():
            assert self.process.poll() is None, f"ros2 launch exited {self.process.returncode}:\n{self.log()[-3000:]}"
            self.track()
            nodes = _node_list(self.ros2)
            return nodes if set(self.expected) <= set(nodes) else None

        try:
            return wait_until(all_up, timeout, f"nodes {self.expected} in `ros2 node list`")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.log()[-3000:]}") from None

    def stop(self) -> int | None:
        """SIGINT to `ros2 launch`; every node it started must be gone afterwards."""
        self.track()
        code = self.ros2.interrupt(self.process, timeout=30)
        left = alive(self.seen)
        for pid in left:  # never leave a process behind, even when the check fails
            subprocess.run(["kill", "-KILL", str(pid)], check=False)
        assert code is not None, f"ros2 launch did not exit within 30 s of SIGINT:\n{self.log()[-2000:]}"
        assert not left, f"processes left running after SIGINT: {sorted(left)}"
        return code


@pytest.fixture
def launched(ros2, tmp_path):
    runs: list[Launch] = []

    def start(*args, **kwargs) -> Launch:
        run = Launch(ros2, tmp_path, *args, **kwargs)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            try:
                run.stop()
            except AssertionError:
                pass


def _echo_once(ros2, topic: str, msg_type: str) -> dict:
    out = ros2.run("topic", "echo", "--once", "--no-daemon", "--timeout", "20", topic, msg_type, timeout=60).stdout
    doc = out.split("\n---")[0]
    assert doc.strip(), f"ros2 topic echo {topic} printed nothing"
    return yaml.safe_load(doc)


def _hz(ros2, topic: str, seconds: float = 6.0, start_within: float = 60.0) -> float:
    """`ros2 topic hz`'s last average, measured for `seconds` after its first one. The CLI's start
    (imports, discovery without a daemon) takes many seconds on a loaded machine: wait for it."""
    log = ros2.cwd / f"hz-{topic.strip('/').replace('/', '_')}.log"
    process = ros2.popen("topic", "hz", "--wall-time", topic, log=log)

    def rates() -> list[float]:
        return [float(m) for m in re.findall(r"average rate: ([0-9.]+)", log.read_text())]

    deadline = time.monotonic() + start_within
    while not rates() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    if rates():
        time.sleep(seconds)
    ros2.interrupt(process)
    found = rates()
    assert found, f"ros2 topic hz {topic} measured nothing in {start_within} s:\n{log.read_text()[-1000:]}"
    return found[-1]


def _param(ros2, node: str, name: str) -> str:
    """`ros2 param get`; without the daemon, discovery may miss a node on a loaded machine: retry."""
    for _ in range(3):
        result = ros2.run("param", "get", "--no-daemon", "--spin-time", "2", node, name, check=False)
        if result.returncode == 0:
            return result.stdout.strip()
    raise AssertionError(f"ros2 param get {node} {name}: {result.stdout}{result.stderr}")


def _plan(ros2, service: str, x: float, y: float) -> tuple[int, str]:
    request = f"{{goal: {{header: {{frame_id: map}}, pose: {{position: {{x: {x}, y: {y}}}, orientation: {{w: 1.0}}}}}}, dry_run: true}}"
    out = ros2.run("service", "call", service, "depai/srv/PlanPath", request, timeout=60).stdout
    found = re.search(r"result=(\d+), message='([^']*)'", out)
    assert found, f"no response in:\n{out}"
    return int(found.group(1)), found.group(2)


@pytest.mark.timeout(400)  # a stack start, the CLI checks, the lifecycle transitions
def test_one_robot_shipped_stack(ros2, launched):  # and lifecycle, on the same launch
    # without a chain: the patrol under config/policy.yaml (its keep-out zone is checked below)
    run = launched("depai.launch.py", robots=["robot1"], chain="none")
    nodes = run.wait_nodes()
    assert nodes == run.expected  # exactly the stack's nodes: nothing extra, nothing missing

    odom = _echo_once(ros2, "/robot1/odom", "nav_msgs/msg/Odometry")
    assert (odom["header"]["frame_id"], odom["child_frame_id"]) == ("robot1/odom", "robot1/base_link")
    assert all(math.isfinite(odom["pose"]["pose"]["position"][k]) for k in "xyz")

    # TF (REP-105) read by the stock CLI: tf2_msgs is the same type whether ours or the system's.
    static = ros2.run("topic", "echo", "--once", "--no-daemon", "--timeout", "20", "--qos-durability", "transient_local",
                      "--qos-reliability", "reliable", "/tf_static", "tf2_msgs/msg/TFMessage", timeout=60).stdout
    mount = yaml.safe_load(static.split("\n---")[0])["transforms"]
    assert [(t["header"]["frame_id"], t["child_frame_id"]) for t in mount] == [("robot1/base_link", "robot1/lidar_link")]
    tf = _echo_once(ros2, "/tf", "tf2_msgs/msg/TFMessage")["transforms"]
    assert {(t["header"]["frame_id"], t["child_frame_id"]) for t in tf} == {("map", "robot1/odom"), ("robot1/odom", "robot1/base_link")}

    # The simulator sweeps at lidar_rate (10 Hz sim time); on a loaded machine the simulation
    # may run slower than real time, so only "it flows, and not faster than configured".
    rate = _hz(ros2, "/robot1/points")
    assert 0.5 < rate < 15.0, rate

    assert _param(ros2, "/robot1/planner", "robot_radius") == "Double value is: 0.3"
    spawn = _param(ros2, "/simulator", "spawn_poses")
    assert spawn == "Double values are: []", spawn  # typed (a double array), and empty
    assert _param(ros2, "/robot1/controller", "use_sim_time") == "Boolean value is: True"

    # (5, 2) lies in the shipped policy's keep-out zone; (0, -8.3) is free floor.
    def answered():
        answer = _plan(ros2, "/robot1/plan_path", 5.0, 2.0)
        return answer if answer[0] != 6 else None  # 6: MAP_NOT_READY (still starting)

    code, message = wait_until(answered, 60, "planner ready")
    assert code == 3, message  # GOAL_IN_KEEPOUT
    code, message = _plan(ros2, "/robot1/plan_path", -8.0, -8.3)
    assert code == 0, message

    # Lifecycle, on the same launch (one stack start fewer in CI). Without a chain the managed node
    # is the dao_listener (the wallets, identities and telemetry need one:
    # test/foundation/test_lifecycle.py, test/chain/test_wallet_lifecycle.py); the stack's
    # lifecycle_manager brings it up (it starts with autostart: false).
    wait_until(lambda: "all 1 managed node(s) active" in run.log() or None, 60, "the lifecycle manager's bring-up")
    def lifecycle_nodes():  # without the daemon the CLI sees only what it discovers while it spins: asked again
        listed = ros2.run("lifecycle", "nodes", "--no-daemon", "--spin-time", "3").stdout.split()
        return sorted(n for n in listed if n in run.expected) or None

    managed = wait_until(lifecycle_nodes, 40, "ros2 lifecycle nodes listing the managed node")
    assert managed == ["/dao_listener"], managed
    states = {n: _lifecycle(ros2, "get", n).stdout.strip() for n in managed}
    assert all(state.startswith("active") for state in states.values()), states
    # ros2 lifecycle set: deactivate (the policy heartbeat stops), then activate again
    out = _lifecycle(ros2, "set", "/dao_listener", "deactivate").stdout
    assert "Transitioning successful" in out, out
    wait_until(lambda: "/dao_listener: deactivated by someone else: left inactive" in run.log() or None, 20, "the manager seeing it")
    assert _lifecycle(ros2, "get", "/dao_listener").stdout.startswith("inactive")  # the manager leaves it so
    refused = _lifecycle(ros2, "set", "/dao_listener", "configure", check=False)
    assert "Transitioning successful" not in refused.stdout  # not a transition from inactive; the node lives on
    out = _lifecycle(ros2, "set", "/dao_listener", "activate").stdout
    assert "Transitioning successful" in out, out
    assert _lifecycle(ros2, "get", "/dao_listener").stdout.startswith("active")

    assert run.stop() == 0
    assert _node_list(ros2) == []


def _light_stack(tmp_path: Path) -> Path:
    """The shipped stack with a 16 x 256 LiDAR instead of 128 x 1024 (test machines have few cores),
    and a new local chain on any free port (never the user's 8545)."""
    stack = yaml.safe_load(STACK.read_text())
    simulator = next(n for n in stack["nodes"] if n["name"] == "simulator")
    simulator["parameters"].update(lidar_beams=16, lidar_horizontal=256)
    stack["chain"]["port"] = 0
    telemetry = next(n for n in stack["nodes"] if n["name"] == "telemetry")
    telemetry["parameters"]["output_dir"] = str(tmp_path / "telemetry" / "$(robot)")  # not the clone's .depai/
    light = tmp_path / "stack.yaml"
    light.write_text(yaml.safe_dump(stack))
    return light


def _lifecycle(ros2, *args, check=True):
    """`ros2 lifecycle get/set --no-daemon ...`: the CLI looks the node up in a graph it has only just
    joined - the node *and* its `get_state` service, which discovery reports later than the node -
    and says 'Node not found' when they are not there yet. So it spins 1.5 s for discovery
    (`--spin-time`, 0.5 s by default) and is asked again after a miss (the transition was not sent)."""
    for _ in range(10):
        result = ros2.run("lifecycle", args[0], "--no-daemon", "--spin-time", "1.5", *args[1:], check=False)
        if "Node not found" not in result.stdout + result.stderr:
            break
        time.sleep(0.5)
    if check and result.returncode != 0:
        raise AssertionError(f"ros2 lifecycle {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.mark.timeout(400)  # 20 processes and a chain on a machine with few cores
def test_several_robots(ros2, launched, tmp_path, monkeypatch):
    # Two robots on the shipped launch file with the shipped machine economy: the launch brings its
    # local chain (bringup/chain.py) for the wallets, identities, telemetry, requester and status
    # table; a lighter LiDAR than the shipped 128 x 1024 keeps two robots' perception within the
    # test machine's cores. Everything else is the shipped stack.
    monkeypatch.setenv("DEPAI_CHAIN_CONFIG", str(tmp_path / "chain.json"))
    monkeypatch.setenv("DEPAI_STATE_DIR", str(tmp_path / "state"))
    run = launched("depai.launch.py", stack=_light_stack(tmp_path), robots=["robot1", "robot2"])
    nodes = run.wait_nodes(timeout=180)  # 20 processes on a machine with few cores
    assert nodes == run.expected
    assert {"/robot1/wallet", "/robot2/identity", "/requester/wallet", "/requester/requester", "/status"} <= set(nodes)
    assert {n.split("/")[1] for n in nodes if n.count("/") == 2} == {"robot1", "robot2", "requester"}
    first = _echo_once(ros2, "/robot1/odom", "nav_msgs/msg/Odometry")["pose"]["pose"]["position"]
    second = _echo_once(ros2, "/robot2/odom", "nav_msgs/msg/Odometry")["pose"]["pose"]["position"]
    assert math.hypot(first["x"] - second["x"], first["y"] - second["y"]) > 0.5  # two robots, two places
    points = ros2.run("topic", "echo", "--once", "--no-daemon", "--timeout", "20", "--field", "width",
                      "/robot2/points", "sensor_msgs/msg/PointCloud2", timeout=60).stdout
    assert int(points.split()[0]) > 0
    # the robots' identity nodes registered them through their wallets, on the launch's own chain
    # (the wallet and the identity node both log the step: each robot's wallet line counts)
    wait_until(lambda: all(re.search(rf"\[{r}\.wallet\]: identity: registered in the TaskMarket", run.log())
                           for r in ("robot1", "robot2")) or None, 90, "both robots staked")
    anvil = int(re.search(r"anvil pid (\d+)", run.log()).group(1))
    assert "== DePAI fleet status" in run.log()
    assert run.stop() == 0  # every process it started is gone, the chain's anvil included (descendants)
    assert not alive({anvil})
    assert _node_list(ros2) == []


def test_unconvertible_parameter_stops_launch_naming_it(ros2, tmp_path):
    stack = yaml.safe_load(STACK.read_text())
    planner = next(n for n in stack["nodes"] if n["name"] == "planner")
    planner["parameters"]["robot_radius"] = None
    bad = tmp_path / "stack.yaml"
    bad.write_text(yaml.safe_dump(stack))
    result = ros2.run("launch", "depai", "depai.launch.py", f"stack:={bad}", check=False, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "robot1/planner.robot_radius" in output, output
    assert "[INFO] [simulator" not in output and "process started" not in output  # nothing started
