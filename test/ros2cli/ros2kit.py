"""Helpers for running the upstream ROS 2 Jazzy `ros2` CLI as an external client (see conftest.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
KIT = Path(os.environ.get("DEPAI_ROS2CLI_KIT", REPO_ROOT.parent / "shared" / "tools" / "ros2-cli-jazzy"))
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds.xml"  # the stack's own (shared memory sized for sweeps; logs to stderr)


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "depai"
    # One install per interpreter: install.sh re-installs whenever the interpreter changes.
    return base / f"ros2cli-kit-{hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]}"


def without_overlay(env: dict[str, str]) -> dict[str, str]:
    """The environment with this clone's colcon overlay taken out of every search path.

    colcon records the prefixes on the path at build time in the kit's setup.bash; building the
    kit with this clone's install/ on them would make every later user of the cached kit (another
    clone, CI) source this clone's package.
    """
    overlay = str(REPO_ROOT / "install")
    clean = dict(env)
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "PATH"):
        if var in clean:
            kept = [p for p in clean[var].split(os.pathsep) if p and not p.startswith(overlay)]
            clean[var] = os.pathsep.join(kept)
    return clean


class Ros2:
    """Runs `ros2 ...` from the kit, on the test's ROS domain (taken from os.environ at each call)."""

    def __init__(self, kit_dir: Path, cwd: Path) -> None:
        self.kit_dir = kit_dir
        self.cwd = cwd

    def _argv(self, args: list[str]) -> list[str]:
        # The kit's env.sh, then this clone's overlay again so it wins over anything the kit's
        # colcon chain brought in; `exec` so the process we hold is `ros2` itself.
        script = (
            f'source "{self.kit_dir}/env.sh" >/dev/null && '
            f'source "{REPO_ROOT}/install/local_setup.bash" && exec ros2 "$@"'
        )
        return ["bash", "-c", script, "ros2", *args]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0", RCUTILS_LOGGING_BUFFERED_STREAM="0")
        # The stack's Fast DDS profile, as env.sh sets it: the CLI must reach the stack's shared
        # memory as its nodes do, and Fast DDS's own coloured log lines ("RTPS_TRANSPORT_SHM
        # Error ...") go to stderr, so the CLI's stdout stays data (YAML from `ros2 topic echo`).
        for var in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
            env.setdefault(var, str(FASTDDS_PROFILE))
        return env

    def run(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self._argv(list(args)), cwd=self.cwd, env=self._env(), capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ros2 {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def popen(self, *args: str, log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen(
                self._argv(list(args)), cwd=self.cwd, env=self._env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @staticmethod
    def interrupt(process: subprocess.Popen, timeout: float = 20.0) -> int | None:
        """SIGINT (as Ctrl-C would); the exit code, or None if it did not exit in time (then killed)."""
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            return None


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout} s (last: {last!r})")
