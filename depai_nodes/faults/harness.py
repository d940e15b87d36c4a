"""Run the real stack, inject faults into its real processes, and record what the robots did.

Used by the fault-injection tests (test/faults/), the soak (`depai soak`) and the safe-stop
benchmark (bench/safe_stop.py). Nothing is simulated here beyond what the stack itself
simulates: `depai launch` brings up the nodes as OS processes, faults are signals to those
processes (``kill -9``, ``SIGSTOP``), file edits, or a dead chain process, and the ``Recorder``
is an ordinary rclpy node on the same ROS domain that records the simulator's ground-truth
odometry, every /fleet/policy message and the node graph into a ``Trace``.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from depai_nodes.common.background import BackgroundNode, SimClock
from depai_nodes.common.procs import pid_alive

from .core import Fault, OdomSample, PolicySample, Trace

__all__ = ["Recorder", "StackRun", "LocalChain", "read_sidecars", "wait_until", "speed_of"]

REPO = Path(__file__).resolve().parents[2]
_STARTED = re.compile(r"^\[depai\] started (\S+) \(pid (\d+)\)", re.M)


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout:g} s")


def live_node_processes(domain: int) -> list[str]:
    """Fully qualified names of the DePAI node processes alive on ROS domain ``domain``."""
    names = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
            if "--ros-args" not in argv or not any(a.startswith("depai_nodes.") and a.endswith(".node") for a in argv):
                continue
            with open(f"/proc/{entry.name}/stat") as f:
                if f.read().rsplit(") ", 1)[1].startswith(("Z", "X")):
                    continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = dict(kv.split("=", 1) for kv in f.read().decode(errors="replace").split("\0") if "=" in kv)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if env.get("ROS_DOMAIN_ID", "0") != str(domain):
            continue
        name = ns = ""
        for i, a in enumerate(argv[:-1]):
            if a == "-r" and argv[i + 1].startswith("__node:="):
                name = argv[i + 1].split(":=", 1)[1]
            if a == "-r" and argv[i + 1].startswith("__ns:="):
                ns = argv[i + 1].split(":=", 1)[1]
        if name:
            names.append(f"{ns.rstrip('/')}/{name}")
    return names


def speed_of(msg) -> float:
    t = msg.twist.twist.linear
    return math.hypot(t.x, t.y)


class Recorder(BackgroundNode):
    """An rclpy node that records odometry, policy and the node graph into a ``Trace``."""

    def __init__(self, domain: int, robots: list[str], graph_period: float = 0.5) -> None:
        self.domain = domain
        from nav_msgs.msg import Odometry

        from depai.msg import FleetPolicy
        from depai_nodes.common.qos import LATCHED_QOS, SENSOR_QOS

        self.trace = Trace(start=time.monotonic())
        self._lock = threading.Lock()
        self._clock = SimClock()
        super().__init__("fault_recorder", domain, thread_name="recorder")
        for robot in robots:
            self.node.create_subscription(Odometry, f"/{robot}/odom", lambda m, r=robot: self._on_odom(r, m), SENSOR_QOS)
        self.node.create_subscription(FleetPolicy, "/fleet/policy", self._on_policy, LATCHED_QOS)
        from rosgraph_msgs.msg import Clock
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.node.create_subscription(Clock, "/clock", self._clock.on_clock,
                                      QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.node.create_timer(graph_period, self._sample_graph)

    @property
    def sim_time(self) -> float:
        """Simulated seconds seen on /clock, summed across simulator restarts."""
        return self._clock.total

    def _on_odom(self, robot: str, msg) -> None:
        p = msg.pose.pose.position
        with self._lock:
            self.trace.odom.append(OdomSample(time.monotonic(), robot, p.x, p.y, speed_of(msg)))

    def _on_policy(self, msg) -> None:
        zones = tuple((z.id, tuple((q.x, q.y) for q in z.polygon.points)) for z in msg.keep_out_zones)
        sample = PolicySample(time.monotonic(), int(msg.version), msg.source, bool(msg.paused), float(msg.max_speed), zones)
        with self._lock:
            self.trace.policy.append(sample)

    def _sample_graph(self) -> None:
        """The node processes alive on this ROS domain, by fully qualified name.

        Processes, not the DDS graph: a node killed with SIGKILL says no goodbye, so discovery
        shows it beside its successor until its lease runs out — two entries, one process."""
        names = live_node_processes(self.domain)
        with self._lock:
            self.trace.graph.append((time.monotonic(), names))

    # ------------------------------------------------------------------ queries

    def latest(self, robot: str) -> OdomSample | None:
        with self._lock:
            for s in reversed(self.trace.odom):
                if s.robot == robot:
                    return s
        return None

    def policies_since(self, t: float) -> list[PolicySample]:
        with self._lock:
            return [p for p in self.trace.policy if p.t > t]

    def moving(self, robot: str, eps: float = 0.1) -> bool:
        s = self.latest(robot)
        return s is not None and time.monotonic() - s.t < 1.0 and s.speed > eps

    def stopped_since(self, robot: str, t: float, eps: float = 0.05) -> float | None:
        """The first time after ``t`` from which every sample of ``robot`` is below ``eps``."""
        with self._lock:
            samples = [s for s in self.trace.odom if s.robot == robot and s.t >= t]
        first = None
        for s in samples:
            if s.speed <= eps:
                first = s.t if first is None else first
            else:
                first = None
        return first

    def fault(self, kind: str, target: str, *, unbacked: bool, note: str = "") -> Fault:
        f = Fault(kind, target, time.monotonic(), unbacked=unbacked, note=note)
        with self._lock:
            self.trace.faults.append(f)
        return f

    def snapshot(self) -> Trace:
        with self._lock:
            t = Trace(list(self.trace.odom), list(self.trace.policy), list(self.trace.graph), list(self.trace.faults),
                      self.trace.start, time.monotonic())
        return t

class StackRun:
    """`depai launch` as a subprocess, its output in a log file, its node pids known by label."""

    def __init__(self, log_path: Path, *, args: list[str], env: dict | None = None) -> None:
        self.log_path = Path(log_path)
        command = [sys.executable, "-m", "depai_nodes.cli", "launch", *args]
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=REPO, env=dict(os.environ if env is None else env), start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """label -> pid of its latest start."""
        return {label: int(pid) for label, pid in _STARTED.findall(self.log())}

    def pid(self, label: str, timeout: float = 30.0) -> int:
        return wait_until(lambda: self.pids().get(label), timeout, what=f"{label} started")

    def wait_log(self, pattern: str, timeout: float, since: int = 0) -> re.Match:
        def find():
            return re.search(pattern, self.log()[since:])
        try:
            return wait_until(find, timeout, interval=0.1, what=f"/{pattern}/ in the launch log")
        except TimeoutError:
            raise TimeoutError(f"/{pattern}/ not in the launch log within {timeout} s:\n{self.log()[-4000:]}") from None

    def signal(self, label: str, sig: int) -> int:
        pid = self.pids()[label]
        os.kill(pid, sig)
        return pid

    def restarted(self, label: str, old_pid: int, timeout: float = 30.0) -> int:
        return wait_until(lambda: (p := self.pids().get(label)) and p != old_pid and p, timeout,
                          what=f"{label} restarted")

    def stop(self, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()
        return self.process.returncode

    def node_pids_alive(self) -> list[int]:
        return [pid for pid in set(self.pids().values()) if pid_alive(pid)]


class LocalChain:
    """The launch's local chain as the fault harness sees it: the config and state `depai launch`
    keeps in the run's folder (``DEPAI_CHAIN_CONFIG``), anvil's pid from its pid file, a kill -9,
    a restore the way a user does it (`depai chain up` with the same config: the state file
    anvil saved every second), and read-only views of the chain's state for the invariants."""

    def __init__(self, config_path: Path, env: dict) -> None:
        self.config_path = Path(config_path)
        self.env = dict(env)
        self.restored_pids: list[int] = []

    def pid(self) -> int | None:
        from depai_nodes.chain import cli as chain_cli

        info = chain_cli._read_pid(self.config_path)
        return int(info["pid"]) if info else None

    def kill(self) -> int:
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"no live anvil for {self.config_path}")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10, what=f"anvil {pid} gone")
        return pid

    def restore(self, log_path: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """`depai chain up --config <the launch's>`: anvil restarted from its state file."""
        with open(log_path, "a") as log:
            done = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", "up", "--config", str(self.config_path)],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=self.env,
                                  timeout=timeout)
        pid = self.pid()
        if done.returncode == 0 and pid:
            self.restored_pids.append(pid)
        return done

    def stop_restored(self) -> None:
        """Stop the anvils `restore` started (the launcher stops only the one it started)."""
        from depai_nodes.chain import cli as chain_cli

        for pid in self.restored_pids:
            chain_cli._stop_pid(pid)
        self.restored_pids.clear()

    def client(self):
        from depai_nodes.chain.client import ChainClient
        from depai_nodes.chain.config import load_config

        return ChainClient(load_config(self.config_path))

    def task_events(self, client=None) -> list:
        """Every TaskMarket event since the deployment, as core.TaskEvent."""
        from .core import TaskEvent

        client = client or self.client()
        market = client.contract("TaskMarket")
        out = []
        for raw in client.get_logs(market.address, None, client.config.deploy_block):
            ev = market.abi.decode_log(raw)
            if ev is None or "taskId" not in ev:
                continue
            who = ev.get("machine") or ev.get("payee") or ev.get("requester") or ""
            amount = ev.get("amount", ev.get("reward", 0)) or 0
            out.append(TaskEvent(int(ev["taskId"]), ev["event"], int(ev["block_number"] or 0), ev.get("tx_hash") or "",
                                 str(who), int(amount)))
        return out

    def batch_records(self, batches, client=None) -> dict:
        """(machine, batch id) -> core.AnchoredRecord, or None where DataRegistry has no record."""
        from .core import AnchoredRecord

        from depai_nodes.chain.errors import ContractRevertError
        from depai_nodes.chain.models import id32

        client = client or self.client()
        fleet_data = client.contract("DataRegistry")
        out = {}
        for b in batches:
            if b.state != "anchored" or not b.machine or not b.batch_id:
                continue
            try:  # the batch id is text (content_batch_id), bytes32 as the wallet sends it (id32)
                r = fleet_data.call("getBatch", b.machine, id32(b.batch_id))
                rec = AnchoredRecord("0x" + bytes(r["root"]).hex(), int(r["messageCount"]))
            except ContractRevertError:  # BatchNotFound
                rec = None
            out[(b.machine.lower(), b.batch_id.lower())] = rec
        return out

    def postings(self, requester: str, client=None) -> dict[str, str]:
        """tx hash -> description of every task the requester's account posted (TaskPosted)."""
        client = client or self.client()
        market = client.contract("TaskMarket")
        out = {}
        for raw in client.get_logs(market.address, [market.abi.topic("TaskPosted")], client.config.deploy_block):
            ev = market.abi.decode_log(raw)
            if ev and str(ev.get("requester", "")).lower() == requester.lower():
                out[ev["tx_hash"]] = f"task {ev['taskId']} posted in block {ev['block_number']}"
        return out


def read_sidecars(directory: Path) -> list:
    """core.SealedBatch of every batch folder under ``directory`` (a robot's telemetry output_dir)."""
    from depai_nodes.telemetry.core import list_batches

    from .core import SealedBatch

    out = []
    if not Path(directory).is_dir():
        return out
    for folder, side in list_batches(Path(directory)):
        side = side or {}
        out.append(SealedBatch(folder.name, str(side.get("state", "unreadable")), str(side.get("batch_id", "")),
                               str(side.get("root", "")), int(side.get("messages", 0) or 0), str(side.get("machine", "")),
                               int(side.get("sealed_ns", 0) or 0), str(side.get("error", ""))))
    return out
