"""`depai plan`: exit codes and the PNG, run as a real process."""
from __future__ import annotations

import subprocess
import sys

import cv2


def _plan(*args):
    return subprocess.run([sys.executable, "-m", "depai_nodes.cli", "plan", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_plan_cli(shared_data, tmp_path):
    depot = shared_data / "maps" / "depot.yaml"
    png = tmp_path / "p.png"
    r = _plan(depot, "--start", 2, 2, "--goal", 26, 12, "--keepout", "12,4 16,4 16,9 12,9", "--png", png)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("SUCCESS: path of")
    img = cv2.imread(str(png))
    assert img is not None and img.shape[:2] == (307, 604)
    r = _plan(depot, "--start", 2, 2, "--goal", 14, 6, "--keepout", "12,4 16,4 16,9 12,9")
    assert r.returncode == 1 and r.stdout.startswith("GOAL_IN_KEEPOUT")
    r = _plan(tmp_path / "missing.yaml", "--start", 0, 0, "--goal", 1, 1)
    assert r.returncode == 2 and "not found" in r.stderr
    r = _plan(depot, "--start", 0, 0, "--goal", 1, 1, "--keepout", "1,1 2,2")
    assert r.returncode == 2 and "polygon" in r.stderr
