"""The runner every node shares: a fatal fault in any thread ends the process (code 1, logged),
and a supervised node dies with its supervisor, kill -9 included. Real processes throughout."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NODE = textwrap.dedent("""
    import sys, threading, time
    from rclpy.node import Node
    from depai_nodes.common.runner import run_node

    FAULT = sys.argv[1]

    class Faulty(Node):
        def __init__(self, **kw):
            super().__init__("faulty", **kw)
            self.ticks = 0
            self.create_timer(0.1, self.tick)
            print("up", flush=True)

        def tick(self):
            self.ticks += 1
            if self.ticks == 3:
                if FAULT == "thread":
                    threading.Thread(target=self.work, name="worker").start()
                elif FAULT == "callback":
                    raise RuntimeError("boom in a timer callback")
                elif FAULT == "caught":
                    threading.Thread(target=self.careful, name="careful").start()
                elif FAULT == "wedged":  # a worker dies while the executor is stuck in a callback
                    threading.Timer(0.2, self.work).start()
                    time.sleep(120)

        def on_shutdown(self):
            if FAULT == "hang_on_stop":
                time.sleep(120)

        def work(self):
            raise ZeroDivisionError("boom in a worker thread")

        def careful(self):
            try:
                raise ValueError("handled")
            except ValueError:
                print("handled in thread", flush=True)

    sys.exit(run_node(Faulty, ["faulty"]))
""")


def run_faulty(fault: str, timeout: float = 30.0, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NODE, fault], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, **(env or {})})


def test_an_exception_escaping_a_thread_ends_the_process_with_code_1(ros_domain):
    started = time.monotonic()
    done = run_faulty("thread")
    assert done.returncode == 1, done.stderr
    assert "[FATAL] [faulty]: uncaught exception in thread 'worker'; ending the process (code 1)" in done.stderr
    assert "ZeroDivisionError: boom in a worker thread" in done.stderr
    assert time.monotonic() - started < 25


def test_an_exception_escaping_the_executor_ends_the_process_with_code_1(ros_domain):
    done = run_faulty("callback")
    assert done.returncode == 1, done.stderr
    assert "[FATAL] [faulty]: uncaught exception; ending the process (code 1)" in done.stderr
    assert "RuntimeError: boom in a timer callback" in done.stderr


def test_a_fatal_fault_ends_the_process_even_when_the_executor_is_wedged(ros_domain):
    started = time.monotonic()
    done = run_faulty("wedged")
    assert done.returncode == 1, done.stderr
    assert "uncaught exception in thread" in done.stderr and "exiting hard" in done.stderr
    assert time.monotonic() - started < 25  # not the callback's 120 s


def test_a_thread_that_handles_its_errors_lives_on(ros_domain):
    process = subprocess.Popen([sys.executable, "-c", NODE, "caught"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO)
    try:
        assert process.stdout.readline().strip() == "up"
        assert process.stdout.readline().strip() == "handled in thread"
        time.sleep(1.0)
        assert process.poll() is None  # still serving
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_node_whose_supervisor_is_already_gone_does_not_start(ros_domain):
    dead = subprocess.Popen(["true"])
    dead.wait()
    done = run_faulty("none", env={"DEPAI_SUPERVISOR_PID": str(dead.pid)})
    assert done.returncode == 1
    assert f"supervisor (pid {dead.pid}) is gone; not starting" in done.stderr
    assert "up" not in done.stdout


# A "supervisor" that does nothing but start the node with DEPAI_SUPERVISOR_PID (no preexec_fn):
# the node's own runner must tie its life to it, as under `ros2 launch`.
PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]],
                             env={**os.environ, "DEPAI_SUPERVISOR_PID": str(os.getpid())}, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "up"
    print(child.pid, flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


@pytest.mark.parametrize("fault", ["none", "hang_on_stop"])
def test_a_supervised_node_dies_with_its_parent_killed_by_sigkill(ros_domain, fault):
    # "hang_on_stop": its clean shutdown never ends; an orphan then ends itself after ORPHAN_GRACE_S.
    parent = subprocess.Popen([sys.executable, "-c", PARENT, NODE, fault], stdout=subprocess.PIPE, text=True, cwd=REPO,
                              start_new_session=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the node outlived its supervisor"
    finally:
        if parent.poll() is None:
            parent.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
