"""`depai launch`: the stack from one file, supervised processes, prefixed logs, clean stop."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def launch(stack_text: str, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    stack = tmp_path / "stack.yaml"
    stack.write_text(stack_text)
    log = tmp_path / "launch.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "depai_nodes.cli", "launch", "--stack", str(stack), *extra],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
    )
    return process, log


def wait_for(log: Path, pattern: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise TimeoutError(f"/{pattern}/ not in launch log:\n{log.read_text()[-3000:]}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_two_nodes_exchange_the_policy_and_ctrl_c_stops_everything(ros_domain, tmp_path):
    process, log = launch(
        """
nodes:
  - {name: dao_listener, concern: dao_listener, scope: fleet}
  - name: monitor
    concern: monitor
    scope: fleet
    parameters: {period: 0.5, topics: ["/fleet/policy depai/msg/FleetPolicy latched"]}
""", tmp_path)
    try:
        # The monitor, another process, shows the policy that crossed DDS; lines carry the node label.
        text = wait_for(log, r"\[monitor\] .*/fleet/policy .*total 1 .*v1 max_speed=1\.00")
        pids = [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", text)]
        assert len(pids) == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert not any(alive(pid) for pid in pids)
        assert "shutting down" in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_crashed_node_is_respawned_and_a_misconfigured_one_is_not(ros_domain, tmp_path):
    process, log = launch(
        """
robots: [alpha]
nodes:
  - {name: watcher, concern: monitor, parameters: {period: 0.5}, respawn_delay: 0.2}
  - {name: broken, concern: dao_listener, scope: fleet, parameters: {watch_period: 0}}
""", tmp_path)
    try:
        text = wait_for(log, r"started alpha/watcher \(pid (\d+)\)")
        first_pid = int(re.search(r"started alpha/watcher \(pid (\d+)\)", text)[1])
        wait_for(log, r"\[alpha/watcher\] .*what flows")
        os.kill(first_pid, signal.SIGKILL)
        text = wait_for(log, r"alpha/watcher exited with code -9; restart #1")
        text = wait_for(log, r"started alpha/watcher \(pid (?!%d\))\d+\)" % first_pid)
        text = wait_for(log, r"broken exited: invalid configuration \(code 2\); not restarting")
        assert "parameter 'watch_period'" in text
        assert text.count("started broken") == 1
        process.terminate()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_bad_stack_file_is_reported_without_starting_anything(tmp_path):
    process, log = launch("nodes: [{name: x, concern: monitor, colour: red}]", tmp_path)
    assert process.wait(timeout=20) != 0
    text = log.read_text()
    assert "colour" in text and "started" not in text


def test_a_crash_loop_is_logged_per_cause_with_counts_not_once_per_restart(tmp_path, monkeypatch):
    import io

    from depai_nodes.bringup import supervisor as sup
    from depai_nodes.bringup.stack import NodeInstance

    # A process that crashes at once, supervised for real (only the command differs from a node's).
    monkeypatch.setattr(sup, "command_for", lambda instance, params: [sys.executable, "-c", "import sys; sys.exit(1)"])
    monkeypatch.setattr(sup, "RESTART_LOG_PERIOD_S", 2.5)
    out = io.StringIO()
    crasher = NodeInstance(name="crasher", concern="monitor", namespace="", parameters={}, respawn=True, respawn_delay=0.0)
    supervisor = sup.Supervisor([crasher], out=out)
    assert supervisor.run(duration_s=6.0) == 0
    text = out.getvalue()
    restarts = supervisor.restarts()["crasher"]
    lines = re.findall(r"crasher exited with code 1; restart #(\d+) in [\d.]+ s(?: \((\d+) more since the last report\))?", text)
    assert restarts >= 4  # backoff 0, 0.5, 1, 2 s ...
    assert 2 <= len(lines) < restarts, text  # throttled, not one line per restart
    assert lines[0] == ("1", "")
    # Every restart is accounted for: logged, or counted in the next logged line.
    logged = [int(n) for n, _ in lines]
    counted = sum(int(c or 0) for _, c in lines)
    assert logged[-1] - 1 == counted + len(lines) - 1


def _one_process(monkeypatch, code: str):
    from depai_nodes.bringup import supervisor as sup
    from depai_nodes.bringup.stack import NodeInstance

    monkeypatch.setattr(sup, "command_for", lambda instance, params: [sys.executable, "-c", code])
    return sup, NodeInstance(name="chatty", concern="monitor", namespace="", parameters={}, respawn=False, respawn_delay=0.0)


def test_undecodable_node_output_does_not_stop_the_supervisor_reading_it(tmp_path, monkeypatch):
    import io

    sup, instance = _one_process(monkeypatch, "import sys; sys.stdout.buffer.write(b'\\xff\\xfe bad\\n'); print('still read', flush=True)")
    out = io.StringIO()
    supervisor = sup.Supervisor([instance], out=out)
    supervisor.run(duration_s=20.0)
    text = out.getvalue()
    assert "[chatty] \ufffd\ufffd bad" in text and "[chatty] still read" in text
    assert "chatty exited with code 0; respawn is off" in text


def test_a_lost_console_does_not_wedge_a_chatty_node(tmp_path, monkeypatch):
    class ClosedPipe:
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    # 2 MB of output: far more than a pipe holds. If the reader thread died on the first failed
    # write, the node would block on its full pipe and never exit by itself.
    sup, instance = _one_process(monkeypatch, "import sys\nfor i in range(40000): print('x' * 50)\n")
    supervisor = sup.Supervisor([instance], out=ClosedPipe())
    supervisor.run(duration_s=60.0)
    assert supervisor._children[0].final_code == 0  # it exited on its own, it was not killed at shutdown
