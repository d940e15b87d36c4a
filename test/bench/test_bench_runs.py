"""The benchmarks run: the short ones as a user runs them, each to its table (a benchmark that
has rotted - a renamed helper, a deployment that changed under it - fails here instead of the
day someone needs its numbers). The long ones (economy, safe_stop, perception, transport, view,
planning) are run by hand for the notes; their pure parts are unit-tested (test_economy_lib.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("bench, args, table", [
    ("chain_anchoring", ["--quick"], r"\| bridge send_many"),
    ("chain_events", ["--quick"], r"\| WebSocket eth_subscribe \|"),
    ("data", ["--minutes", "0.5"], r"\| verify \|"),
    ("dao", ["-n", "1"], r"\| automine \| controller enforcing \(navigation_status\) \| 1 \|"),
], ids=["chain_anchoring", "chain_events", "data", "dao"])
def test_a_short_benchmark_runs_to_its_table(bench, args, table):
    r = subprocess.run([sys.executable, str(REPO / "bench" / f"{bench}.py"), *args], cwd=REPO, capture_output=True,
                       text=True, timeout=240)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert re.search(table, out), out[-3000:]
    assert "Traceback" not in out, out[-3000:]
