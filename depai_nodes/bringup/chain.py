"""The chain the main job brings with it: `depai launch` starts, funds and stops it.

`chain:` in the stack file (ChainSpec) says which chain the stack runs on:

- `local` (the default): the pinned anvil of `depai chain up`, brought up by that same code
  (`depai_nodes.chain.cli.cmd_up`): a new chain is deployed, an existing one is restored from its
  state file (balances, DIDs, tasks, anchored batches survive a Ctrl-C or a crash and relaunch),
  `--fresh` starts over. The launch then funds, with the deployer's (public demo) key, every
  wallet of the stack whose account holds no FLEET yet: each robot with `fund_robot`, the
  requester with `fund_requester`. DIDs and stakes are not written here: each robot's identity
  node asks its own wallet for them. The anvil dies with the launcher (PR_SET_PDEATHSIG, kill -9
  included) and is stopped at the end with SIGTERM, after every node (anvil writes its state as it
  exits). A chain already running from `depai chain up` is used as it is and left running.
- a network NAME (`chain/networks/NAME.yaml`) or a config FILE (`--chain`): nothing is started or
  funded; the nodes use that config (its wallets need keystores: demo keys exist on 31337 only).
- none (`depai launch --no-chain`): the stack without the nodes that need a chain.

Every node of the launch gets the config through `DEPAI_CHAIN_CONFIG`, which is also what the
launch's key lock (bringup/lock.py) is taken on.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .stack import ChainSpec, NodeInstance

__all__ = ["ChainLaunchError", "ChainRun", "resolve_network", "bring_up"]


class ChainLaunchError(RuntimeError):
    """The launch's chain could not be brought up (the message says why and what to do)."""


def resolve_network(name_or_file: str, repo: Path) -> Path:
    """`agung` -> chain/networks/agung.yaml; a path is taken as it is. ChainLaunchError if absent."""
    path = Path(name_or_file).expanduser()
    if path.is_file():
        return path.absolute()
    candidate = repo / "chain" / "networks" / f"{name_or_file}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in (repo / "chain" / "networks").glob("*.yaml"))
    raise ChainLaunchError(f"--chain {name_or_file}: no such file, nor a network in chain/networks/ (known: {', '.join(known)})")


@dataclass
class ChainRun:
    """What the launch did about its chain, and how to undo it at exit."""

    mode: str  # local | network | none
    config_path: Path | None = None
    pid: int | None = None  # the anvil this launch started (stopped by down()); None: not ours

    def down(self, say: Callable[[str], None]) -> None:
        if self.pid is None or self.config_path is None:
            return
        from depai_nodes.chain import cli as chain_cli

        chain_cli._stop_pid(self.pid)  # SIGTERM (anvil dumps its state), SIGKILL after 5 s
        # The pid file is ours only while it names our anvil: after a crash the user may have
        # restored the chain with `depai chain up` (a new anvil, its own pid file), which is theirs
        # and stays up; removing its pid file would leave it running where no command finds it.
        current = chain_cli._read_pid(self.config_path)
        if current and int(current["pid"]) != self.pid:
            say(f"the local chain this launch started (anvil pid {self.pid}) is gone; the one running now (anvil pid "
                f"{current['pid']}, restored by `depai chain up`) stays up: `depai chain down` stops it")
        else:
            chain_cli._pid_file(self.config_path).unlink(missing_ok=True)
            say(f"stopped the local chain (anvil pid {self.pid}); its state stays in "
                f"{chain_cli._state_file(self.config_path)} for the next launch (`--fresh` starts over)")
        self.pid = None


def _wallet_demo_indices(wallets: list[NodeInstance]) -> dict[str, int]:
    """label -> demo key index of each wallet; two wallets on one key is a configuration error."""
    seen: dict[int, str] = {}
    out: dict[str, int] = {}
    for w in wallets:
        index = w.parameters.get("demo_index", -1)
        if not isinstance(index, int) or index < 0:
            continue
        if index in seen:
            raise ChainLaunchError(f"{w.label} and {seen[index]} would both sign with demo key #{index}; "
                                   "give each wallet its own (at most 8 robots next to the requester's key #9)")
        if index == 0:
            raise ChainLaunchError(f"{w.label}: demo key #0 is the deployer's, not a machine's")
        seen[index] = w.label
        out[w.label] = index
    return out


def bring_up(spec: ChainSpec, *, network: str | None, fresh: bool, wallets: list[NodeInstance], robots: list[str],
             repo: Path, say: Callable[[str], None]) -> ChainRun:
    """Bring the launch's chain up (see the module doc); sets DEPAI_CHAIN_CONFIG for the nodes."""
    from depai_nodes.chain.config import default_config_path, load_config
    from depai_nodes.chain.errors import ChainError

    target = network or spec.network
    if target != "local":
        path = resolve_network(target, repo)
        try:
            cfg = load_config(path)
        except ChainError as e:
            raise ChainLaunchError(str(e)) from None
        os.environ["DEPAI_CHAIN_CONFIG"] = str(path)
        say(f"chain: {cfg.name} (chain id {cfg.chain_id}) at {cfg.rpc_url} from {path}; nothing started, nothing funded")
        return ChainRun("network", path)

    indices = _wallet_demo_indices(wallets)
    cfg_path = default_config_path().absolute()
    os.environ["DEPAI_CHAIN_CONFIG"] = str(cfg_path)
    from depai_nodes.chain import cli as chain_cli

    running = chain_cli._read_pid(cfg_path)
    run = ChainRun("local", cfg_path)
    deploys = fresh or not cfg_path.exists()  # cmd_up deploys anew (else it restores or reuses)
    if running and not fresh:
        say(f"chain: using the local chain started by `depai chain up` (anvil pid {running['pid']}); it stays up after this launch")
    else:
        args = argparse.Namespace(config=str(cfg_path), port=spec.port, machines=0, fund=0, block_time=None,
                                  voting_delay=spec.voting_delay, voting_period=spec.voting_period,
                                  timelock_delay=spec.timelock_delay, log=False, fresh=fresh,
                                  state_interval=spec.state_interval, die_with_parent=True)
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            code = chain_cli.cmd_up(args)
        started = chain_cli._read_pid(cfg_path)
        if code != 0:
            if started:
                ChainRun("local", cfg_path, int(started["pid"])).down(say)
            raise ChainLaunchError("the local chain did not come up (see the [depai chain] lines above); "
                                   "`depai launch --fresh` starts a new one, `--chain-port 0` takes any free port for it, "
                                   "`--no-chain` runs without")
        run.pid = int(started["pid"]) if started else None
        for line in summary.getvalue().splitlines():
            say(f"chain: {line}")
    stale = _record_or_check_contracts(cfg_path, deploys)
    if stale:
        run.down(say)
        raise ChainLaunchError(f"the saved local chain runs older builds of {', '.join(stale)} than chain/artifacts "
                               "(the contracts changed since it was deployed); `depai launch --fresh` deploys them anew")
    try:
        _fund(load_config(cfg_path), spec, indices, robots, say)
    except ChainError as e:
        run.down(say)
        raise ChainLaunchError(f"funding the demo accounts failed: {e}") from None
    return run


def _artifact_digests() -> dict[str, str]:
    import hashlib
    import json

    from depai_nodes.chain.config import CONTRACT_NAMES, artifacts_dir

    out = {}
    for name in CONTRACT_NAMES:
        try:
            out[name] = hashlib.sha256(json.loads((artifacts_dir() / f"{name}.json").read_text())["bytecode"].encode()).hexdigest()
        except (OSError, ValueError, KeyError):
            continue
    return out


def _record_or_check_contracts(cfg_path: Path, deployed_now: bool) -> list[str]:
    """Beside the config, the digests of the contract builds a launch deployed; on a restore, the
    contracts whose build changed since (a restored chain would run the old code). A chain this
    launcher did not deploy (no record: `depai chain up`) is not checked."""
    import json

    record = cfg_path.with_name(cfg_path.name + ".contracts.json")
    now = _artifact_digests()
    if deployed_now:
        record.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        return []
    try:
        then = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    return sorted(n for n, d in now.items() if n in then and then[n] != d)


def _fund(cfg, spec: ChainSpec, indices: dict[str, int], robots: list[str], say: Callable[[str], None]) -> None:
    """Give each wallet's demo account its FLEET when it has none (a restored chain keeps its balances)."""
    from depai_nodes.chain.client import ChainClient
    from depai_nodes.chain.deploy import fund_machines
    from depai_nodes.chain.fleet import Fleet
    from depai_nodes.chain.signer import demo_signer
    from depai_nodes.chain.units import fleet as fleet_amount
    from depai_nodes.chain.units import format_amount

    deployer = ChainClient(cfg, demo_signer(0, cfg.chain_id))
    fleet = Fleet(deployer)
    groups: dict[int, list[tuple[str, str]]] = {}
    for label, index in indices.items():
        address = demo_signer(index, cfg.chain_id).address  # public anvil test keys: the address only
        namespace = label.split("/", 1)[0]
        amount = int(spec.fund_robot if namespace in robots else spec.fund_requester)
        balance = fleet.token.call("balanceOf", address)
        stake = fleet.machine_info(address).stake if namespace in robots else 0
        if balance == 0 and stake == 0 and amount > 0:
            groups.setdefault(amount, []).append((namespace, address))
        else:
            say(f"chain: {namespace} ({address}, demo key #{index}) holds {fleet_amount(balance)}"
                + (f" + {format_amount(stake)} staked" if stake else ""))
    for amount, who in groups.items():
        fund_machines(deployer, [a for _, a in who], amount)
        for namespace, address in who:
            say(f"chain: funded {namespace} ({address}) with {fleet_amount(amount)}")
    # Fleet membership (TaskMarket admits only machines the fleet owner or the DAO granted): the
    # deployer is the local fleet's owner; the robots are its members, the requester is not.
    if "admitMachines" in fleet.market.abi.functions:
        machines = [demo_signer(i, cfg.chain_id).address for label, i in indices.items() if label.split("/", 1)[0] in robots]
        new = [m for m in machines if not fleet.market.call("admitted", m)]
        if new:
            fleet.market.transact("admitMachines", new)
            say(f"chain: admitted {len(new)} robot account(s) to the fleet (TaskMarket membership, by the fleet owner)")
