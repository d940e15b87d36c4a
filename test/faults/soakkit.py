"""What the fixed-sequence fault tests share: the shipped stack and policy, and one run of a
fault sequence with the checks every such run must pass (each fault injected once, no invariant
violated, the stack recovered from each), the table printed for the CI log."""

from __future__ import annotations

from pathlib import Path

from depai_nodes.faults.soak import SoakConfig, SoakResult, format_table, run_soak

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "config" / "stack.yaml"
POLICY = REPO / "config" / "policy.yaml"


def run_sequence(config: SoakConfig, tmp_path: Path, domain: int) -> tuple[SoakResult, str]:
    """Run ``config.sequence`` into a launched stack; (the result, its table) once every fault of
    it was injected exactly once, none violated an invariant and the stack recovered from each."""
    result = run_soak(config, tmp_path, domain, stack=STACK, policy_template=POLICY, on_event=print)
    table = format_table(result)
    print(table)
    sequence = config.sequence
    assert [k for k in sequence if result.counts[k].injected != 1] == [], table
    assert result.violations == [], table + "\n" + result.log_tail
    assert all(result.counts[k].recovered == 1 for k in sequence), table + "\n" + result.log_tail
    return result, table
