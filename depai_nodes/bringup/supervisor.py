"""Bring the stack up without launch_ros: one OS process per node, supervised.

This is what `depai launch` runs where the ROS 2 launch system is not installed (the pip path).
It follows what `ros2 launch` with `respawn=True` does, and adds what a field robot needs:

- every node is its own process, started as `python -m depai_nodes.<concern>.node` with
  `--ros-args` remapping its name and namespace and a generated parameter file;
- output lines are prefixed with the node's namespace/name, so interleaved logs stay readable;
- a crashed node is restarted after its respawn delay, doubling up to 30 s while it keeps
  crashing; a node that exits with code 2 (invalid configuration) is not restarted, since a
  restart cannot fix a bad parameter;
- Ctrl-C or SIGTERM stops every node with SIGINT, then SIGTERM, then SIGKILL, each after a grace
  period, and returns only when all are gone;
- nodes die with their supervisor, `kill -9` included: each child gets `PR_SET_PDEATHSIG`
  (SIGTERM) right after fork, and `DEPAI_SUPERVISOR_PID` so that the node's runner sets it again
  and exits if the supervisor is already gone (see common/runner.py). The kernel sends the
  signal when the *thread* that forked the child exits, so every child is spawned from the
  thread that runs `run()`, which returns only after all children are gone;
- a crash loop is logged per node and exit code with counts (common/logthrottle.py), not one
  "exited ... restart" line per restart forever (each "started <label> (pid N)" line stays);
- `lock_fds` (the launch's locks, bringup/lock.py) are inherited by every node, so the locks live
  as long as any node of this stack does.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from depai_nodes.common.logthrottle import CauseThrottle, with_count
from depai_nodes.common.runner import PR_SET_PDEATHSIG, SUPERVISOR_PID_ENV

from .stack import NodeInstance

EXIT_BAD_CONFIG = 2
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 10.0
RESTART_LOG_PERIOD_S = 60.0  # per node and exit code: one line, then a count


def _death_signal_preexec():
    """A preexec_fn that makes the child receive SIGTERM when this thread exits (Linux).

    Resolved before fork; after fork it only calls prctl and setsid, which take no locks another
    thread could hold. Elsewhere it is only setsid (the runner's parent check still applies).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
    except (OSError, AttributeError):
        prctl = None

    def preexec() -> None:
        os.setsid()  # our own process group: our signals, our order
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return preexec


def command_for(instance: NodeInstance, params_file: Path) -> list[str]:
    """The command line that runs one node instance."""
    args = [sys.executable, "-m", f"depai_nodes.{instance.concern}.node", "--ros-args", "-r", f"__node:={instance.name}"]
    if instance.namespace:
        args += ["-r", f"__ns:=/{instance.namespace}"]
    return args + ["--params-file", str(params_file)]


def write_params_file(instance: NodeInstance, directory: Path) -> Path:
    """A ROS 2 parameter YAML for one node, keyed by its fully qualified name."""
    path = directory / f"{instance.label.replace('/', '__')}.yaml"
    path.write_text(yaml.safe_dump({instance.fqn: {"ros__parameters": instance.parameters}}, sort_keys=True))
    return path


@dataclass
class _Child:
    instance: NodeInstance
    params_file: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None
    final_code: int | None = None
    reader: threading.Thread | None = None


@dataclass
class Supervisor:
    """Runs node instances until stopped; `run()` blocks and returns an exit code."""

    instances: list[NodeInstance]
    out: TextIO = field(default_factory=lambda: sys.stdout)
    grace_s: float = 5.0
    env: dict[str, str] | None = None
    lock_fds: tuple[int, ...] = ()
    console: object | None = None  # bringup/console.py Console: where lines go instead of `out`
    _children: list[_Child] = field(default_factory=list, init=False)
    _restart_log: CauseThrottle = field(default_factory=lambda: CauseThrottle(RESTART_LOG_PERIOD_S), init=False)
    _spawn_thread: int | None = field(default=None, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _print_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def say(self, label: str, text: str) -> None:
        with self._print_lock:
            try:
                if self.console is not None:
                    self.console.line(label, text)  # the status table: redrawn in place on a TTY (console.py)
                    return
                self.out.write(f"[{label}] {text}\n")
                self.out.flush()
            except (OSError, ValueError):
                # Our own output is gone (a closed pipe: `depai launch | head`). Keep supervising
                # and keep draining the nodes' pipes, or a node blocks on a full one.
                pass

    def stop(self, *_args) -> None:
        """Ask `run()` to shut everything down (safe to call from a signal handler)."""
        self._stopping.set()

    def _spawn(self, child: _Child) -> None:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")
        env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
        env[SUPERVISOR_PID_ENV] = str(os.getpid())
        # PDEATHSIG fires when the forking *thread* exits: only run()'s thread may spawn.
        assert threading.get_ident() == self._spawn_thread, "children are spawned only by run()'s thread"
        child.process = subprocess.Popen(
            command_for(child.instance, child.params_file),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, text=True, errors="replace", bufsize=1, preexec_fn=_death_signal_preexec(), pass_fds=self.lock_fds,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.reader = threading.Thread(target=self._pump, args=(child, child.process), daemon=True)
        child.reader.start()
        # Always logged, even in a throttled crash loop: tools and operators find pids by this line.
        self.say("depai", f"started {child.instance.label} (pid {child.process.pid})")

    def _start(self, child: _Child, now: float) -> None:
        """Spawn, and treat a failure to spawn (no memory, no file descriptors) like a crash: retry later."""
        try:
            self._spawn(child)
        except OSError as exc:
            child.process = None
            child.backoff = min(max(child.backoff * 2, 1.0), MAX_BACKOFF_S)
            child.restart_at = now + child.backoff
            log_now, held_back = self._restart_log.check((child.instance.label, "spawn"))
            if log_now:
                self.say("depai", with_count(f"could not start {child.instance.label}: {exc}; retrying in {child.backoff:.1f} s", held_back))

    def _pump(self, child: _Child, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        # Undecodable bytes are replaced and our own output errors are swallowed (say()), so this
        # thread drains the node's pipe until the node closes it, whatever the node writes.
        for line in process.stdout:
            self.say(child.instance.label, line.rstrip("\n"))

    def _check(self, child: _Child, now: float) -> None:
        if child.final_code is not None:
            return
        if child.process is None:
            if child.restart_at is not None and now >= child.restart_at:
                self._start(child, now)
            return
        code = child.process.poll()
        if code is None:
            return
        if child.reader is not None:
            child.reader.join(timeout=1.0)
        child.process = None
        label = child.instance.label
        if code == EXIT_BAD_CONFIG:
            self.say("depai", f"{label} exited: invalid configuration (code 2); not restarting")
            child.final_code = code
        elif not child.instance.respawn:
            self.say("depai", f"{label} exited with code {code}; respawn is off")
            child.final_code = code
        else:
            lived = now - child.started_at
            child.backoff = child.instance.respawn_delay if lived >= STABLE_AFTER_S or child.backoff == 0 else min(
                max(child.backoff * 2, 0.5), MAX_BACKOFF_S
            )
            child.restarts += 1
            child.restart_at = now + child.backoff
            log_now, held_back = self._restart_log.check((label, code))
            if log_now:
                self.say("depai", with_count(f"{label} exited with code {code}; restart #{child.restarts} in {child.backoff:.1f} s", held_back))

    def _shutdown(self) -> None:
        running = [c for c in self._children if c.process is not None and c.process.poll() is None]
        for sig, wait_s in ((signal.SIGINT, self.grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if not running:
                break
            for child in running:
                try:
                    os.killpg(child.process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            while running and time.monotonic() < deadline:
                running = [c for c in running if c.process.poll() is None]
                time.sleep(0.05)
            if running and sig != signal.SIGKILL:
                self.say("depai", f"{', '.join(c.instance.label for c in running)} still running; sending {signal.Signals(sig).name} did not stop them")
        for child in self._children:
            if child.reader is not None:
                child.reader.join(timeout=1.0)

    def run(self, duration_s: float | None = None) -> int:
        """Start all nodes, supervise until stop() or `duration_s`, stop all; return exit code."""
        if not self.instances:
            self.say("depai", "nothing to run: the stack has no enabled nodes")
            return EXIT_BAD_CONFIG
        self._spawn_thread = threading.get_ident()
        with tempfile.TemporaryDirectory(prefix="depai-params-") as tmp:
            self._children = [_Child(i, write_params_file(i, Path(tmp))) for i in self.instances]
            for child in self._children:
                self._start(child, time.monotonic())
            end = None if duration_s is None else time.monotonic() + duration_s
            while not self._stopping.is_set():
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                for child in self._children:
                    self._check(child, now)
                if all(c.final_code is not None for c in self._children):
                    self.say("depai", "every node has exited and none will be restarted")
                    break
                self._stopping.wait(0.1)
            self.say("depai", "shutting down")
            self._shutdown()
        codes = [c.final_code for c in self._children if c.final_code is not None]
        if codes and len(codes) == len(self._children):
            return EXIT_BAD_CONFIG if EXIT_BAD_CONFIG in codes else 1
        return 0

    def restarts(self) -> dict[str, int]:
        """How often each node was restarted so far (by label)."""
        return {c.instance.label: c.restarts for c in self._children}
