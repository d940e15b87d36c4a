"""One stack, one owner under the upstream `ros2 launch` too: kill -9 of the launch process takes
its nodes down (each node's runner set PR_SET_PDEATHSIG from DEPAI_SUPERVISOR_PID), where stock
launch_ros would leave them running."""

from __future__ import annotations

import subprocess
import time

from ros2kit import alive, descendants, wait_until

LIGHT = """
robots: [robot1]
nodes:
  - {name: observer, concern: monitor, scope: fleet, parameters: {period: 0.5}}
  - {name: watcher, concern: monitor, parameters: {period: 0.5}}
"""


def test_kill_9_of_ros2_launch_takes_its_nodes_down(ros2, tmp_path):
    stack = tmp_path / "stack.yaml"
    stack.write_text(LIGHT)
    log = tmp_path / "launch.log"
    process = ros2.popen("launch", "depai", "depai.launch.py", f"stack:={stack}", log=log)
    seen: set[int] = set()
    try:
        def both_up():
            assert process.poll() is None, log.read_text()[-3000:]
            seen.update(descendants(process.pid))
            text = log.read_text(errors="replace")
            return "[observer]: what flows" in text and "[robot1.watcher]: what flows" in text and len(seen) >= 2

        wait_until(both_up, 90, "both monitors running under ros2 launch")
        nodes = alive(seen)
        assert len(nodes) >= 2
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while alive(nodes) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(nodes), f"nodes outlived `ros2 launch` killed with -9: {sorted(alive(nodes))}"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in alive(seen):
            subprocess.run(["kill", "-KILL", str(pid)], check=False)
