"""Shared fixtures: real nodes in real processes over real DDS, each test on its own domain.

- `ros_domain`: a ROS_DOMAIN_ID no other test run on this machine holds (a lock file per id),
  set in os.environ so every process the test starts joins it. Discovery is kept on localhost.
- `ros_node`: a Probe — an rclpy node on that domain, spun in a background thread — for the test
  to publish, subscribe and wait for messages.
- `start_node(concern, ...)`: runs `python -m depai_nodes.<concern>.node` as its own process,
  with a generated parameter file, exactly as `depai launch` does; stopped at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from depai_nodes.common.background import BackgroundNode

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets (real LiDAR sweeps and maps), every file checked against
    depai_nodes/data/manifest.yaml: DEPAI_DATA, else ../shared/data (CI), else the cache that
    `./depai data fetch` fills. Missing or corrupt data fails the test with one line naming what
    and the command that gets it; never a skip."""
    from depai_nodes.data.core import DataError, require

    try:
        return require()
    except DataError as error:
        pytest.fail(str(error), pytrace=False)


def _acquire_domain() -> tuple[int, Any]:
    from depai_nodes.common.domains import acquire_domain

    return acquire_domain()


@pytest.fixture
def ros_domain(monkeypatch) -> Iterator[int]:
    domain, handle = _acquire_domain()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        yield domain
    finally:
        handle.close()


class Inbox:
    """Messages received on one subscription, with blocking waits."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._cond = threading.Condition()

    def put(self, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def mark(self) -> int:
        """How many messages have arrived so far (``wait_for(after=...)`` looks only at later ones)."""
        with self._cond:
            return len(self.messages)

    def wait_for(self, predicate: Callable[[Any], bool] = lambda m: True, timeout: float = 10.0, after: int = 0) -> Any:
        """The first message (received before or during the wait, from the ``after``-th on) that
        satisfies predicate."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = after
            while True:
                for msg in self.messages[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self.messages)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching message within {timeout} s ({len(self.messages)} received)")
                self._cond.wait(remaining)


class Probe(BackgroundNode):
    """The test's own rclpy node, spinning in a background thread."""

    def __init__(self, domain: int) -> None:
        super().__init__("test_probe", domain)

    def subscribe(self, msg_type, topic: str, qos) -> Inbox:
        inbox = Inbox()
        self.node.create_subscription(msg_type, topic, inbox.put, qos)
        return inbox

    def publisher(self, msg_type, topic: str, qos):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while publisher.get_subscription_count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{publisher.topic_name}: no subscriber after {timeout} s")
            time.sleep(0.05)

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 10.0) -> None:
        """Until `count` publishers of `topic` are in this probe's graph: a reply topic's writer
        (e.g. a wallet's tx_status) must have been discovered before the request that triggers
        the reply is sent, or the reply (volatile) can reach nobody."""
        deadline = time.monotonic() + timeout
        while self.node.count_publishers(topic) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: no publisher after {timeout} s")
            time.sleep(0.05)

    def call(self, srv_type, name: str, request, timeout: float = 30.0, resend_after: float | None = 3.0,
             retry_results: tuple = (), retry_for: float = 20.0):
        """One service answer, as a careful client gets it from a node that may just have started.

        `wait_for_service` only says that *some* server is in the graph: a SIGKILLed one stays
        there until its DDS lease ends, and a just-started one is listed before all of its
        endpoints have matched this client, so a request sent then is dropped with nobody to
        answer it. For idempotent requests (`resend_after` seconds, the default) the same request
        is sent again (after resend_after, then twice that, ...) until one copy is answered: the
        product's own mechanism, depai_nodes/common/service.PendingCall.
        `resend_after=None` sends once (for requests that must not run twice). `retry_results`:
        result codes (the response's `result`) that mean "not yet" (e.g. WALLET_UNAVAILABLE while
        a wallet activates), asked again for up to `retry_for` seconds."""
        from depai_nodes.common.service import ANSWERED, PendingCall

        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"no service {name} within {timeout} s"
            retry_until = time.monotonic() + retry_for
            while True:
                call = PendingCall(client, request, timeout, resend_after)
                if call.wait() != ANSWERED:
                    raise AssertionError(f"{name}: no answer within {timeout} s ({call.sends} sends)")
                out = call.result
                if getattr(out, "result", None) not in retry_results or time.monotonic() > retry_until:
                    return out
                time.sleep(0.2)
        finally:
            self.node.destroy_client(client)


@pytest.fixture
def ros_node(ros_domain) -> Iterator[Probe]:
    probe = Probe(ros_domain)
    try:
        yield probe
    finally:
        probe.close()


class NodeProcess:
    """A node running in its own process; output goes to a log file the test can read."""

    def __init__(self, process: subprocess.Popen, log_path: Path, label: str) -> None:
        self.process = process
        self.log_path = log_path
        self.label = label

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(f"'{text}' not in {self.label}'s log within {timeout} s:\n{self.log()[-3000:]}")

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


@pytest.fixture
def start_node(ros_domain, tmp_path) -> Iterator[Callable[..., NodeProcess]]:
    from depai_nodes.bringup.stack import NodeInstance, resolve_package_paths
    from depai_nodes.bringup.supervisor import command_for, write_params_file

    started: list[NodeProcess] = []

    def start(concern: str, name: str | None = None, namespace: str = "", parameters: dict | None = None) -> NodeProcess:
        instance = NodeInstance(
            name=name or concern, concern=concern, namespace=namespace,
            parameters=resolve_package_paths(parameters or {}), respawn=False, respawn_delay=0.0,
        )
        log_path = tmp_path / f"{instance.label.replace('/', '__')}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0", RCUTILS_COLORIZED_OUTPUT="0")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                command_for(instance, write_params_file(instance, tmp_path)),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT,
            )
        handle = NodeProcess(process, log_path, instance.label)
        started.append(handle)
        return handle

    try:
        yield start
    finally:
        for handle in reversed(started):
            handle.stop()


def pytest_report_header(config) -> str:
    from depai_nodes.data.core import data_root

    root, why = data_root()
    return f"depai: python {sys.version.split()[0]}, RMW {os.environ.get('RMW_IMPLEMENTATION', '(default)')}, data {root} ({why})"
