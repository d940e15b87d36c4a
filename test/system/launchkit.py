"""Helpers of the system tests: the main job (`depai launch`) as a real subprocess, its log, and
whether what it started is gone (test_main_job.py, test_launch_chain.py, test_economy_scenario.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from depai_nodes.common.procs import pid_alive as alive

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "config" / "stack.yaml"
TOKEN = 10**18
ROBOT1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil demo key #1 (public)
ROBOT2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # #2
REQUESTER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # #9
MACHINES = {"robot1": ROBOT1, "robot2": ROBOT2}
# a lighter LiDAR than the shipped 128 x 1024: two robots' perception on a test machine's cores
LIGHT_LIDAR = ["--set", "simulator.lidar_beams=32", "--set", "simulator.lidar_horizontal=512"]

__all__ = ["REPO", "STACK", "TOKEN", "ROBOT1", "ROBOT2", "REQUESTER", "MACHINES", "LIGHT_LIDAR", "alive", "wait_for",
           "wait_match", "pids_in", "wait_gone", "Launch"]


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def wait_for(log: Path, pattern: str, timeout: float, count: int = 1) -> list:
    """Every match of ``pattern`` in the log (re.findall) once there are ``count``; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, _read(log))
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"/{pattern}/ x{count} not in the launch log within {timeout} s:\n{_read(log)[-4000:]}")


def wait_match(log: Path, pattern: str, timeout: float) -> re.Match:
    """The first match of ``pattern`` in the log (re.search); TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, _read(log))
        if match:
            return match
        time.sleep(0.2)
    raise TimeoutError(f"/{pattern}/ not in the launch log within {timeout} s:\n{_read(log)[-4000:]}")


def pids_in(log: Path) -> list[int]:
    """Every process the supervisor said it started ("started <label> (pid N)")."""
    return [int(p) for p in re.findall(r"\(pid (\d+)\)", _read(log))]


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """The pids still alive after ``timeout`` s (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


class Launch:
    """`depai launch --stack config/stack.yaml ARGS` with its own chain config and state folder in
    ``tmp_path`` (never the user's), its output in ``tmp_path/<name>.log``."""

    def __init__(self, tmp_path: Path, name: str, *args: str, env: dict | None = None):
        self.log = tmp_path / f"{name}.log"
        self.config = tmp_path / "chain.json"
        full_env = dict(os.environ, DEPAI_CHAIN_CONFIG=str(self.config), DEPAI_STATE_DIR=str(tmp_path / "state"),
                        PYTHONUNBUFFERED="1", **(env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "depai_nodes.cli", "launch", "--stack", str(STACK), *args],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, cwd=REPO, env=full_env, start_new_session=True)

    def anvil_pid(self, timeout: float = 60.0) -> int:
        return int(wait_for(self.log, r"anvil pid (\d+)", timeout)[0])

    def stop(self, sig=signal.SIGINT, timeout: float = 40.0) -> int:
        """Signal the launcher (Ctrl-C by default) and wait for its exit code; SIGKILL its group on a hang."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise

    def text(self) -> str:
        return _read(self.log)
