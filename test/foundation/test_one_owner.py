"""One stack, one owner: nodes die with `depai launch` (kill -9 included), and a second launch on
the same ROS domain refuses while the first one's nodes live, then starts once they are gone."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from depai_nodes.bringup.lock import LaunchLock, LaunchLockedError

from test_supervisor import alive, launch, wait_for

REPO = Path(__file__).resolve().parents[2]

TWO_MONITORS = """
robots: [alpha]
nodes:
  - {name: watcher, concern: monitor, parameters: {period: 0.5}}
  - {name: observer, concern: monitor, scope: fleet, parameters: {period: 0.5}}
"""


@pytest.fixture
def launch_locks(tmp_path, monkeypatch):
    """Domain locks of this test in a directory of its own (the test's domain is its own anyway)."""
    directory = tmp_path / "locks"
    monkeypatch.setenv("DEPAI_LAUNCH_LOCKS", str(directory))
    return directory


def node_pids(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", text)]


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_kill_9_of_the_launcher_takes_its_nodes_down_and_frees_the_stack(ros_domain, launch_locks, tmp_path):
    first, log = launch(TWO_MONITORS, tmp_path)
    pids = []
    try:
        text = wait_for(log, r"\[alpha/watcher\] .*what flows")
        wait_for(log, r"\[observer\] .*what flows")
        pids = node_pids(text) or node_pids(log.read_text())
        assert len(pids) == 2 and all(alive(p) for p in pids)

        # A second launch on the same domain refuses, naming the first, and starts nothing.
        (tmp_path / "second").mkdir()
        second, second_log = launch(TWO_MONITORS, tmp_path / "second")
        assert second.wait(timeout=30) == 3
        refusal = second_log.read_text()
        assert f"ROS_DOMAIN_ID={ros_domain} is already in use by `depai launch` pid {first.pid}" in refusal
        assert not node_pids(refusal)
        assert all(alive(p) for p in pids)  # the first stack was not disturbed

        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert wait_gone(pids, timeout=15) == [], "nodes outlived their supervisor's kill -9"

        # Its lock file still names the dead launch; that does not block the next one.
        holder = json.loads((launch_locks / f"domain-{ros_domain}.lock").read_text())
        assert holder["pid"] == first.pid
        (tmp_path / "third").mkdir()
        third, third_log = launch(TWO_MONITORS, tmp_path / "third")
        try:
            wait_for(third_log, r"\[alpha/watcher\] .*what flows")
            third.send_signal(signal.SIGINT)
            assert third.wait(timeout=20) == 0
        finally:
            if third.poll() is None:
                os.killpg(third.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_launch_on_another_domain_is_not_refused(ros_domain, launch_locks, tmp_path):
    first, log = launch(TWO_MONITORS, tmp_path)
    try:
        wait_for(log, r"started alpha/watcher")
        (tmp_path / "other").mkdir()
        other_env = {**os.environ, "ROS_DOMAIN_ID": str(ros_domain + 100)}  # 101..200: no test uses them
        stack = tmp_path / "other" / "stack.yaml"
        stack.write_text(TWO_MONITORS)
        other = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "launch", "--stack", str(stack), "--duration", "1"],
                               capture_output=True, text=True, env=other_env, cwd=REPO, timeout=60)
        assert other.returncode == 0, other.stdout + other.stderr
        assert "started alpha/watcher" in other.stdout
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)
            try:
                first.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(first.pid, signal.SIGKILL)


# A launcher that takes the lock, starts a long-lived "node" that inherits it, and is then killed.
HOLDER = textwrap.dedent("""
    import subprocess, sys, time
    from pathlib import Path
    from depai_nodes.bringup.lock import LaunchLock
    lock = LaunchLock({Path(sys.argv[1]): "ROS_DOMAIN_ID=test"}, info={"stack": "s.yaml"})
    lock.acquire()
    node = subprocess.Popen(["sleep", sys.argv[2]], pass_fds=lock.fds)
    print(node.pid, flush=True)
    time.sleep(600)
""")


def test_the_lock_lives_as_long_as_any_node_of_the_launch(tmp_path):
    path = tmp_path / "domain-test.lock"
    launcher = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "3"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        node = int(launcher.stdout.readline())
        with pytest.raises(LaunchLockedError, match=rf"in use by `depai launch` pid {launcher.pid} \(started .*, stack s.yaml\)"):
            LaunchLock({path: "ROS_DOMAIN_ID=test"}).acquire()
        launcher.kill()
        launcher.wait()
        # The launcher is gone but its node still holds the lock: still refused, saying so.
        with pytest.raises(LaunchLockedError, match=rf"nodes of `depai launch` pid {launcher.pid} .*which has exited"):
            LaunchLock({path: "ROS_DOMAIN_ID=test"}).acquire()
        assert wait_gone([node], timeout=10) == []
        lock = LaunchLock({path: "ROS_DOMAIN_ID=test"}, info={"stack": "mine"})
        lock.acquire()
        assert json.loads(path.read_text())["pid"] == os.getpid()
        lock.release()
    finally:
        if launcher.poll() is None:
            launcher.kill()


def test_a_stale_lock_file_does_not_block_and_a_partial_acquire_is_undone(tmp_path):
    stale = tmp_path / "domain-1.lock"
    stale.write_text(json.dumps({"pid": 999999, "since": 0}) + "\n")  # left by a dead launch
    held = tmp_path / "key.lock"
    holder = LaunchLock({held: "the wallet key"})
    holder.acquire()
    try:
        both = LaunchLock({stale: "ROS_DOMAIN_ID=1", held: "the wallet key"})
        with pytest.raises(LaunchLockedError, match="the wallet key is already in use"):
            both.acquire()
        assert both.fds == []
        # The domain lock taken before the refusal was released again.
        alone = LaunchLock({stale: "ROS_DOMAIN_ID=1"})
        alone.acquire()
        alone.release()
    finally:
        holder.release()


def test_two_launches_whose_wallets_share_a_chain_config_conflict_even_on_two_domains(ros_domain, launch_locks, tmp_path):
    config = tmp_path / "chain.json"  # need not exist: the lock is taken before any node starts
    stack_text = f"""
nodes:
  - {{name: observer, concern: monitor, scope: fleet, parameters: {{period: 0.5}}}}
  - {{name: wallet, concern: wallet, parameters: {{chain_config: "{config}"}}, respawn: false}}
"""
    first, log = launch(stack_text, tmp_path)
    try:
        wait_for(log, r"started observer")
        (tmp_path / "other").mkdir()
        stack = tmp_path / "other" / "stack.yaml"
        stack.write_text(stack_text)
        other = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "launch", "--stack", str(stack), "--duration", "1"],
                               capture_output=True, text=True, cwd=REPO, timeout=60,
                               env={**os.environ, "ROS_DOMAIN_ID": str(ros_domain + 100)})
        assert other.returncode == 3, other.stdout + other.stderr
        assert f"the wallet key of chain config {config} is already in use by `depai launch` pid {first.pid}" in other.stderr
        assert "started" not in other.stdout
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)
            try:
                first.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(first.pid, signal.SIGKILL)


def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path):
    # An attacker who can write where a lock file lives plants a link to one of our files.
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate me\n")
    planted = tmp_path / "domain-0.lock"
    planted.symlink_to(precious)
    with pytest.raises(LaunchLockedError, match="cannot open lock file"):
        LaunchLock({planted: "ROS_DOMAIN_ID=0"}).acquire()
    assert precious.read_text() == "do not truncate me\n"


def test_the_domain_lock_directory_is_private(tmp_path, monkeypatch):
    from depai_nodes.bringup.lock import domain_lock_path

    monkeypatch.delenv("DEPAI_LAUNCH_LOCKS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = domain_lock_path("5")
    assert path.parent == tmp_path / f"depai-launch-{os.getuid()}"
    lock = LaunchLock({path: "ROS_DOMAIN_ID=5"})
    lock.acquire()
    try:
        assert (path.parent.stat().st_mode & 0o777) == 0o700
        assert (path.stat().st_mode & 0o777) == 0o600
    finally:
        lock.release()
    # A link in place of the directory (pointing somewhere else) is refused.
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime2"))
    (tmp_path / "runtime2").mkdir()
    (tmp_path / "runtime2" / f"depai-launch-{os.getuid()}").symlink_to(other)
    with pytest.raises(LaunchLockedError, match="not a directory owned by this user"):
        LaunchLock({domain_lock_path("5"): "ROS_DOMAIN_ID=5"}).acquire()
