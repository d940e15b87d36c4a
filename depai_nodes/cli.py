"""The `depai` command line.

    depai launch      bring the stack up (config/stack.yaml), supervised, until Ctrl-C, with its
                      chain (a local anvil, restored from its state; --fresh, --chain NAME|FILE,
                      --no-chain; bringup/chain.py), the DAO's mid-run vote (--vote-at;
                      bringup/dao_round.py) and the fleet status table (bringup/console.py)
                      (exit 3: another launch owns this ROS domain or wallet key; bringup/lock.py)
    depai nodes       list the node instances the stack would run
    depai test        run the test suite (arguments go to pytest)
    depai bench NAME  run bench/NAME.py (arguments go to the benchmark)

Concerns add their own commands (e.g. `depai chain up`) by providing
`depai_nodes/<concern>/cli.py` with `register(subparsers)`; they are discovered here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

import depai_nodes

REPO_ROOT = Path(os.environ.get("DEPAI_ROOT", Path(__file__).resolve().parent.parent))


def default_stack_path() -> Path:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        return Path(get_package_share_directory("depai")) / "config" / "stack.yaml"
    except (ImportError, PackageNotFoundError):
        return REPO_ROOT / "config" / "stack.yaml"


def _parse_overrides(items: list[str]) -> dict[str, dict]:
    overrides: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not node or not param:
            raise SystemExit(f"depai: --set expects node.parameter=value, got '{item}'")
        overrides.setdefault(node, {})[param] = yaml.safe_load(value)
    return overrides


def _load(args):
    from depai_nodes.bringup.stack import StackError, load_stack, parse_robots, with_robots

    try:
        return with_robots(load_stack(args.stack), parse_robots(args.robots))
    except (StackError, ValueError) as error:
        raise SystemExit(f"depai: {error}") from None


def _instances(args, stack=None):
    from depai_nodes.bringup.stack import StackError, expand

    stack = stack or _load(args)
    try:
        only = [n for n in args.only.split(",") if n] if args.only else None
        enable = [n for n in args.enable.split(",") if n] if args.enable else None
        return expand(stack, only=only, enable=enable, overrides=_parse_overrides(args.set),
                      chain=not getattr(args, "no_chain", False))
    except (StackError, ValueError) as error:
        raise SystemExit(f"depai: {error}") from None


def launch_locks(instances, stack: Path, domain: str):
    """The locks one launch must own alone (bringup/lock.py): its DDS domain, its wallets' keys."""
    from depai_nodes.bringup.lock import LaunchLock, domain_lock_path, key_lock_path

    what = {domain_lock_path(domain): f"ROS_DOMAIN_ID={domain}"}
    for inst in instances:
        if inst.concern == "wallet":
            from depai_nodes.chain.config import default_config_path

            config = Path(inst.parameters.get("chain_config") or default_config_path())
            what[key_lock_path(config)] = f"the wallet key of chain config {config}"
    return LaunchLock(what, info={"stack": str(stack), "domain": domain, "cwd": os.getcwd()})


def cmd_launch(args) -> int:
    from depai_nodes.bringup.chain import ChainLaunchError, ChainRun, bring_up, resolve_network
    from depai_nodes.bringup.console import Console
    from depai_nodes.bringup.lock import LaunchLockedError
    from depai_nodes.bringup.supervisor import Supervisor

    if getattr(args, "view", False):  # the live view (depai_nodes/view): its extra on first use, then its stack entry
        from depai_nodes.view.install import ViewExtraError, ensure_view_extra

        try:
            ensure_view_extra()
        except ViewExtraError as error:
            raise SystemExit(f"depai: {error}") from None
        args.enable = ",".join(n for n in (args.enable, "view") if n)
    stack = _load(args)
    instances = _instances(args, stack)
    from depai_nodes.bringup.stack import uses_chain

    with_chain = not args.no_chain and uses_chain(stack, instances)
    network = args.chain or (stack.chain.network if stack.chain.network != "local" else None)
    if with_chain:  # every node of this launch, and its key lock, on one chain config
        try:
            if network:
                os.environ["DEPAI_CHAIN_CONFIG"] = str(resolve_network(network, REPO_ROOT))
            else:
                from depai_nodes.chain.config import default_config_path

                os.environ["DEPAI_CHAIN_CONFIG"] = str(default_config_path().absolute())
        except ChainLaunchError as error:
            print(f"depai: {error}", file=sys.stderr, flush=True)
            return 2
    domain = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"  # unset or empty: DDS uses domain 0
    locks = launch_locks(instances, args.stack, domain)
    try:
        locks.acquire()
    except LaunchLockedError as error:
        print(f"depai: {error}", file=sys.stderr, flush=True)
        return 3
    chain = ChainRun("none")
    console = Console(sys.stdout, tty=sys.stdout.isatty())
    supervisor = Supervisor(instances, lock_fds=tuple(locks.fds), console=console)
    try:
        if with_chain:
            try:
                spec = stack.chain if args.chain_port is None else stack.chain.model_copy(update={"port": args.chain_port})
                chain = bring_up(spec, network=network, fresh=args.fresh,
                                 wallets=[i for i in instances if i.concern == "wallet"], robots=stack.robots,
                                 repo=REPO_ROOT, say=lambda text: supervisor.say("depai", text))
            except ChainLaunchError as error:
                supervisor.say("depai", f"{error}")
                return 1
            except KeyboardInterrupt:
                supervisor.say("depai", "interrupted while the chain came up; stopping")
                return 0
        elif args.fresh or args.chain:
            supervisor.say("depai", "no node of this launch uses a chain: --fresh / --chain have nothing to do")
        signal.signal(signal.SIGINT, supervisor.stop)
        signal.signal(signal.SIGTERM, supervisor.stop)
        signal.signal(signal.SIGHUP, supervisor.stop)  # the terminal closed: an orderly stop too
        what = {"local": "on the local chain", "network": "on chain " + str(network), "none": "without a chain"}[chain.mode]
        supervisor.say("depai", f"launching {len(instances)} node(s) from {args.stack} {what}, robots "
                                f"{','.join(stack.robots)}, on ROS_DOMAIN_ID={domain}; Ctrl-C stops")
        dao_round = _dao_round(args, stack, chain, instances, console, lambda text: supervisor.say("dao", text))
        try:
            return supervisor.run(duration_s=args.duration)
        finally:
            if dao_round is not None:
                dao_round.stop()  # before the chain goes down
    finally:
        chain.down(lambda text: supervisor.say("depai", text))  # after every node: anvil writes its state as it exits
        locks.release()


def _dao_round(args, stack, chain, instances, console, say):
    """The DAO's mid-run Governor round (bringup/dao_round.py), started; None when there is none."""
    at = stack.dao_round.at if args.vote_at is None else args.vote_at
    if at <= 0:
        return None
    if chain.mode != "local" or chain.config_path is None:
        if chain.mode == "network":
            say("no demo vote on a real network (it mines blocks and moves time): vote with `depai dao propose/vote/queue/execute`")
        return None
    from depai_nodes.bringup.dao_round import DaoRound, DaoRoundError, plan_round
    from depai_nodes.chain.signer import demo_signer

    try:
        plan_round(stack.dao_round)
    except DaoRoundError as error:
        say(f"no vote: {error}")
        return None
    machines = {}
    for inst in instances:  # machine address -> robot, for the log (public demo keys: addresses only)
        index = inst.parameters.get("demo_index")
        if inst.concern == "wallet" and inst.namespace in stack.robots and isinstance(index, int) and index > 0:
            machines[demo_signer(index, 31337).address.lower()] = inst.namespace
    dao_round = DaoRound(stack.dao_round, at, str(chain.config_path), list(stack.robots), say, machines)
    console.watch(dao_round.on_line)
    return dao_round.start()


def cmd_nodes(args) -> int:
    for inst in _instances(args):
        print(f"{inst.fqn:<32} depai_nodes.{inst.concern}.node  respawn={inst.respawn}  {inst.parameters}")
    return 0


def cmd_test(args) -> int:
    command = [sys.executable, "-m", "pytest", *args.pytest_args]
    return subprocess.call(command, cwd=REPO_ROOT)


def cmd_bench(args) -> int:
    path = REPO_ROOT / "bench" / f"{args.name}.py"
    if not path.exists():
        available = sorted(p.stem for p in (REPO_ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
        print(f"depai: no benchmark '{args.name}'; available: {', '.join(available) or 'none'}", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(path), *args.bench_args], cwd=REPO_ROOT)


def _add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", type=Path, default=None, help="stack file (default: the package's config/stack.yaml)")
    parser.add_argument("--robots", default="", help="a count (3: robot1..robot3) or comma-separated robot namespaces (default: the stack's)")
    parser.add_argument("--only", default="", help="comma-separated node names to run (default: all enabled)")
    parser.add_argument("--enable", default="", help="comma-separated node names to run although the stack disables them")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE", help="override a parameter (YAML value)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depai", description="DePAI: decentralized physical AI on ROS 2.")
    sub = parser.add_subparsers(dest="command", required=True)

    launch = sub.add_parser("launch", help="bring the stack up until Ctrl-C")
    _add_stack_arguments(launch)
    launch.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    launch.add_argument("--view", action="store_true",
                        help="also run the live view (Rerun in the browser, a Foxglove endpoint; installs requirements/view.txt on first use)")
    chain = launch.add_mutually_exclusive_group()
    chain.add_argument("--chain", default=None, metavar="NAME|FILE",
                       help="run on this network (chain/networks/NAME.yaml or a config file): no local chain is started")
    chain.add_argument("--no-chain", action="store_true", help="no chain: the stack without the nodes that need one (patrol under config/policy.yaml)")
    launch.add_argument("--chain-port", type=int, default=None, metavar="PORT",
                        help="RPC port of a new local chain (default: the stack's chain.port, 8545; 0: any free port)")
    launch.add_argument("--fresh", action="store_true", help="start a new local chain (default: the saved one is restored: balances, DIDs, tasks, batches)")
    launch.add_argument("--vote-at", type=float, default=None, metavar="SECONDS",
                        help="local chain: the DAO's Governor round (slower speed limit, a station closed; the stack's "
                             "dao_round) this many s after the nodes start (default: the stack's dao_round.at; 0: no vote)")
    launch.set_defaults(func=cmd_launch)

    nodes = sub.add_parser("nodes", help="list the node instances the stack would run")
    _add_stack_arguments(nodes)
    nodes.add_argument("--no-chain", action="store_true", help="as `depai launch --no-chain` would run")
    nodes.set_defaults(func=cmd_nodes)

    test = sub.add_parser("test", help="run the test suite (arguments go to pytest)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)

    bench = sub.add_parser("bench", help="run a benchmark from bench/")
    bench.add_argument("name")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)

    for module in pkgutil.iter_modules(depai_nodes.__path__):
        if module.ispkg and (Path(depai_nodes.__path__[0]) / module.name / "cli.py").exists():
            importlib.import_module(f"depai_nodes.{module.name}.cli").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "stack", "unset") is None:
        args.stack = default_stack_path()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
