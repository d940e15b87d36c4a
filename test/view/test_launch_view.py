"""`depai launch --view`: the flag installs the extra (idempotent: a second call does nothing)
and adds the view to the stack; the view draws what the simulator publishes and stops cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from depai_nodes.view.install import ensure_view_extra, view_extra_ready

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_extra_install_is_idempotent():
    assert view_extra_ready()
    said = []
    assert ensure_view_extra(say=said.append) is False and said == []


def test_launch_view_flag_runs_the_view(ros_domain, ports):
    command = [sys.executable, "-m", "depai_nodes.cli", "launch", "--view", "--no-chain", "--only", "simulator,view",
               "--robots", "robot1", "--duration", "25",
               "--set", "simulator.lidar_beams=16", "--set", "simulator.lidar_horizontal=256", "--set", "simulator.lidar_rate=5.0",
               "--set", f"view.rerun_web_port={ports['rerun_web_port']}", "--set", f"view.rerun_grpc_port={ports['rerun_grpc_port']}",
               "--set", f"view.foxglove_port={ports['foxglove_port']}"]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0"))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert f"live view (Rerun) in a browser: http://127.0.0.1:{ports['rerun_web_port']}/" in text, text[-3000:]
    assert f"Foxglove endpoint: ws://127.0.0.1:{ports['foxglove_port']}" in text
    m = re.search(r"view drew (\d+) sweeps, (\d+) poses", text)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, text[-3000:]
