"""`depai world list|check` through the real CLI entry point."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, "-m", "depai_nodes.cli", "world", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_list_and_check_shipped_worlds():
    r = run("list")
    assert r.returncode == 0
    for name in ("warehouse", "yard", "depot"):
        assert name in r.stdout and "INVALID" not in r.stdout
    r = run("check", "yard")
    assert r.returncode == 0
    assert "terrain_ramp_up" in r.stdout and "ground_plane" in r.stdout


def test_check_reports_unusable_world(tmp_path):
    bad = tmp_path / "bad.sdf"
    bad.write_text('<sdf version="1.9"><world name="x"><model name="m"><include/></model></world></sdf>')
    r = run("check", str(bad))
    assert r.returncode == 1 and "<include>" in r.stdout
    mesh = tmp_path / "mesh.sdf"
    mesh.write_text('<sdf version="1.9"><world name="x"><model name="m"><link name="l">'
                    '<collision name="c"><geometry><box><size>1 1 1</size></box></geometry></collision>'
                    '<collision name="d"><geometry><mesh><uri>x.stl</uri></mesh></geometry></collision>'
                    '</link></model></world></sdf>')
    r = run("check", str(mesh))
    assert r.returncode == 0 and "warning: m::l::d" in r.stdout
