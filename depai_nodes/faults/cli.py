"""`depai soak`: the whole stack under random faults, invariants checked, a table printed."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def cmd_soak(args) -> int:
    from .soak import SoakConfig, format_table, run_soak

    repo = Path(__file__).resolve().parents[2]
    robots = [r for r in args.robots.split(",") if r]
    config = SoakConfig(duration_s=args.minutes * 60.0, robots=robots, seed=args.seed,
                        kinds=[k for k in args.kinds.split(",") if k] or None, chain=args.chain)
    from depai_nodes.common.domains import DomainBusyError, acquire_domain

    wanted = os.environ.get("ROS_DOMAIN_ID")
    try:  # held for the whole soak: another run on its domain would be one system with it (policies, node names)
        domain, _lock = acquire_domain(int(wanted) if wanted else None)
    except DomainBusyError as e:
        print(f"soak: {e}", file=sys.stderr)
        return 2
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="depai-soak-"))
    print(f"soak: {args.minutes:g} min, robots {','.join(robots)}, seed {args.seed}, ROS_DOMAIN_ID={domain}, "
          f"{'a fresh local chain in the work folder, market mode' if args.chain else 'no chain (patrol, file policy)'}, "
          f"logs in {workdir}", flush=True)
    result = run_soak(config, workdir, domain, stack=repo / "config" / "stack.yaml",
                      policy_template=repo / "config" / "policy.yaml",
                      on_event=lambda text: print(text, flush=True))
    print(format_table(result))
    return 0 if result.ok else 1


def register(subparsers) -> None:
    soak = subparsers.add_parser("soak", help="run the stack under random faults and check the safety invariants")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long to inject faults (default 10)")
    soak.add_argument("--robots", default="robot1", help="comma-separated robots (default robot1)")
    soak.add_argument("--seed", type=int, default=1)
    soak.add_argument("--kinds", default="", help="comma-separated fault kinds (default: all; see depai_nodes/faults/soak.py)")
    soak.add_argument("--chain", action="store_true",
                      help="the chain-backed stack: a fresh local chain in the work folder, robots in market mode, chain "
                           "faults (wallet, telemetry, identity, requester, kill:chain) and the chain-state invariants")
    soak.add_argument("--workdir", default="", help="where the launch log goes (default: a new temp dir)")
    soak.set_defaults(func=cmd_soak)


if __name__ == "__main__":
    sys.exit("use: depai soak")
