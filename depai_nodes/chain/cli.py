"""`depai chain ...`: a local chain in one command, and the same deployment code for real networks.

    depai chain up        start anvil, deploy everything, fund and register the demo machines,
                          write the config the nodes read (.depai/chain.local.json); after a
                          crash (anvil killed) it restores the same chain from its state file
    depai chain up --fresh  a new chain, deliberately (the old one's state is discarded)
    depai chain down      stop the anvil that `up` started (pid file), remove its config, state
                          and log
    depai chain status    endpoint, chain id, head, contracts, current fleet policy
    depai chain deploy    deploy to the network a config names (peaq, agung...), signed with
                          its keystore, and write the addresses back
    depai chain keystore  create an encrypted keystore for a machine or deployer key
    depai chain policy    show the fleet policy; change it through the DAO (a full round on the
                          local chain, a proposal on a real one); pause the fleet (guardian)
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import time
from pathlib import Path

from .config import LOCAL_CHAIN_ID, ChainConfig, KeySource, default_config_path, load_config, save_config
from .errors import ChainError
from .units import TOKEN



def _cfg_path(args) -> Path:
    return Path(args.config) if getattr(args, "config", None) else default_config_path()


def _pid_file(cfg_path: Path) -> Path:
    """The anvil pid file sits beside the config it belongs to (so several local chains can coexist)."""
    return cfg_path.with_name(cfg_path.name + ".anvil.pid")


def _state_dir(cfg_path: Path) -> Path:
    """anvil's state file and (with --log) its redacted log: 0700, removed by `chain down`."""
    return cfg_path.with_name(cfg_path.name + ".anvil")


def _state_file(cfg_path: Path) -> Path:
    return _state_dir(cfg_path) / "state.json"


def _private_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    return d


def _stop_pid(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)


def _say(msg: str) -> None:
    print(f"[depai chain] {msg}", file=sys.stderr, flush=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return "anvil" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True


def _read_pid(cfg_path: Path) -> dict | None:
    try:
        info = json.loads(_pid_file(cfg_path).read_text())
        return info if _alive(int(info["pid"])) else None
    except (OSError, ValueError, KeyError):
        return None


def cmd_up(args) -> int:
    from .anvil import Anvil
    from .client import ChainClient
    from .deploy import DeployParams, deploy_all, fund_machines
    from .fleet import Fleet
    from .signer import demo_signer

    cfg_path = _cfg_path(args)
    running = _read_pid(cfg_path)
    if running and args.fresh:
        _stop_pid(int(running["pid"]))
        _say(f"--fresh: stopped the running anvil (pid {running['pid']})")
        running = None
    if running:
        try:
            cfg = load_config(cfg_path)
            ChainClient(cfg)  # reachable and the right chain (id and genesis)
            _say(f"already up (anvil pid {running['pid']} on {running['rpc_url']}); `depai chain down` stops it")
            _summary(cfg, cfg_path)
            return 0
        except ChainError as e:
            _say(f"a local anvil (pid {running['pid']}) runs but its config is unusable ({e}); run `depai chain down` first")
            return 1
    state = _state_file(cfg_path)
    port = args.port
    if args.fresh:
        try:  # the same endpoint as before: running nodes keep their URL and notice the new genesis
            from urllib.parse import urlparse

            port = urlparse(load_config(cfg_path).rpc_url).port or port
        except ChainError:
            pass
        for old in (state, _state_dir(cfg_path) / "anvil.log", cfg_path):
            old.unlink(missing_ok=True)
    elif cfg_path.exists():
        return _restore(args, cfg_path, state)
    _private_dir(_state_dir(cfg_path))
    log_path = _state_dir(cfg_path) / "anvil.log"
    t0 = time.monotonic()
    node = Anvil(port=port, block_time=args.block_time, log_path=log_path if args.log else None,
                 state_path=state, state_interval=args.state_interval)
    try:
        node.start(detach=True, die_with_parent=getattr(args, "die_with_parent", False))
    except ChainError as e:
        _say(f"cannot start anvil: {e}" + (" (try --port 0 for any free port)" if port else ""))
        try:
            _state_dir(cfg_path).rmdir()  # only if nothing is in it
        except OSError:
            pass
        return 1
    _write_pid(cfg_path, node)
    _say(f"anvil pid {node.proc.pid} listening on {node.rpc_url} (chain id {LOCAL_CHAIN_ID}, hardfork cancun), "
         f"state saved every {max(1, round(args.state_interval))} s to {state}")
    try:
        base = ChainConfig(name="local", rpc_url=node.rpc_url, ws_url=node.ws_url, chain_id=LOCAL_CHAIN_ID,
                           key=KeySource(kind="demo", demo_index=0))
        deployer = ChainClient(base, demo_signer(0, LOCAL_CHAIN_ID))
        params = DeployParams(voting_delay_blocks=args.voting_delay, voting_period_blocks=args.voting_period,
                              timelock_delay_s=args.timelock_delay, admit_demo_machines=args.machines)
        cfg = deploy_all(deployer, params, progress=_say)
        deployer = ChainClient(cfg, demo_signer(0, LOCAL_CHAIN_ID))
        machines = [demo_signer(i, LOCAL_CHAIN_ID) for i in range(1, args.machines + 1)]
        if machines:
            _say(f"funding {len(machines)} demo machine(s) with {args.fund} FLEET each")
            fund_machines(deployer, [m.address for m in machines], args.fund * TOKEN)
            for i, m in enumerate(machines, start=1):
                f = Fleet(ChainClient(cfg, m))
                f.register_did(f"demo-machine-{i}".encode())
                f.register_machine(params.min_stake)
            _say(f"registered their DIDs and staked {params.min_stake // TOKEN} FLEET each in the TaskMarket")
        save_config(cfg, cfg_path)
        _await_dump(state, time.time(), args.state_interval)
    except ChainError as e:
        _say(f"failed: {e}; stopping anvil")
        node.stop()
        _pid_file(cfg_path).unlink(missing_ok=True)
        state.unlink(missing_ok=True)
        return 1
    _say(f"up in {time.monotonic() - t0:.1f} s (genesis {cfg.genesis_hash[:10]}, deploy block {cfg.deploy_block})")
    _summary(cfg, cfg_path, machines=[m.address for m in machines])
    return 0


def _await_dump(state: Path, since: float, interval: float) -> None:
    """Return once anvil has dumped its state after ``since`` (the deployment is then on disk:
    a crash right after `up` restores it), at most a few intervals."""
    deadline = time.monotonic() + 3 * max(1.0, interval) + 2.0
    while time.monotonic() < deadline:
        try:
            if state.stat().st_mtime >= since - 0.05:
                return
        except OSError:
            pass
        time.sleep(0.05)
    _say(f"warning: anvil has not written its state to {state} yet; a crash now would lose the deployment")


def _write_pid(cfg_path: Path, node) -> None:
    _pid_file(cfg_path).write_text(json.dumps({"pid": node.proc.pid, "rpc_url": node.rpc_url, "config": str(cfg_path),
                                               "redactor_pid": node.redactor.pid if node.redactor else None}))


def _restore(args, cfg_path: Path, state: Path) -> int:
    """The config names a chain whose anvil is gone (crash, kill -9, reboot): bring that chain
    back from its state file, at the same endpoint, or refuse. Never a silent fresh chain."""
    from urllib.parse import urlparse

    from .anvil import Anvil, genesis_timestamp_in_state
    from .client import ChainClient

    try:
        cfg = load_config(cfg_path)
    except ChainError as e:
        _say(f"{e}; `depai chain up --fresh` starts a new chain")
        return 1
    if not state.is_file():
        _say(f"the chain in {cfg_path} (genesis {(cfg.genesis_hash or '?')[:10]}) is not running and has no saved state "
             f"({state}); `depai chain up --fresh` starts a new chain (its DIDs, policy and anchored batches will not be there)")
        return 1
    port = urlparse(cfg.rpc_url).port or args.port
    stamp = cfg.genesis_timestamp if cfg.genesis_timestamp is not None else genesis_timestamp_in_state(state)
    node = Anvil(port=port, block_time=args.block_time, log_path=_state_dir(cfg_path) / "anvil.log" if args.log else None,
                 state_path=state, state_interval=args.state_interval, genesis_timestamp=stamp)
    try:
        node.start(detach=True, die_with_parent=getattr(args, "die_with_parent", False))
    except ChainError as e:
        _say(f"cannot restart anvil on {cfg.rpc_url}: {e}")
        return 1
    _write_pid(cfg_path, node)
    if node.geneses_dropped > 1:  # one is the previous start's (every start makes one): more, a dump of an older version
        _say(f"removed {node.geneses_dropped} stray genesis block(s) from {state} (left by restores of an older "
             "version: any of them could have been loaded as block 0)")
    try:
        client = ChainClient(cfg)  # raises ChainResetError when the restored genesis is not the config's
        codes = client.rpc.batch([("eth_getCode", [a, "latest"]) for a in cfg.contracts.model_dump().values() if a])
        if any(not r.ok or r.result in (None, "0x") for r in codes):
            raise ChainError("the restored chain lacks the configured contracts")
        head = client.block_number()
        if cfg.genesis_timestamp is None:  # an older config: the timestamp is known now, for the next restore
            save_config(cfg.model_copy(update={"genesis_timestamp": int(client.get_block(0)["timestamp"], 16)}), cfg_path)
    except ChainError as e:
        _say(f"the saved state does not restore the configured chain ({e}); stopping anvil. "
             "`depai chain up --fresh` starts a new chain")
        node.stop()
        _pid_file(cfg_path).unlink(missing_ok=True)
        return 1
    _say(f"restored the chain from {state} (genesis {client.genesis_hash()[:10]}, head block {head}; transactions of the "
         f"last <= {max(1, round(args.state_interval))} s before a kill -9 may be missing) on {node.rpc_url}, anvil pid {node.proc.pid}")
    _summary(cfg, cfg_path)
    return 0


def _summary(cfg: ChainConfig, path: Path, machines: list[str] | None = None) -> None:
    print(f"chain      {cfg.name} (chain id {cfg.chain_id})")
    print(f"rpc        {cfg.rpc_url}")
    print(f"ws         {cfg.ws_url or '-'}")
    print(f"config     {path}")
    print(f"genesis    {cfg.genesis_hash or '-'} (deploy block {cfg.deploy_block})")
    for name, addr in cfg.contracts.model_dump().items():
        print(f"{name:<14} {addr or '-'}")
    print(f"{'DID':<14} {cfg.did_address}")
    for i, m in enumerate(machines or [], start=1):
        print(f"machine {i:<6} {m}  (DEMO key #{i}: public anvil test key, local chain only)")


def cmd_down(args) -> int:
    import shutil

    info = None
    cfg_path = _cfg_path(args)
    try:
        info = json.loads(_pid_file(cfg_path).read_text())
    except (OSError, ValueError):
        pass
    if info:
        pid = int(info["pid"])
        if _alive(pid):
            _stop_pid(pid)
            _say(f"stopped anvil pid {pid}")
        else:
            _say(f"anvil pid {pid} was not running")
        _pid_file(cfg_path).unlink(missing_ok=True)
        cfg_path = Path(info.get("config") or cfg_path)
    elif not _state_dir(cfg_path).exists():
        _say("no local chain started by `depai chain up` (no pid file)")
        return 0
    if cfg_path.exists():
        cfg_path.unlink()
        _say(f"removed {cfg_path}")
    if _state_dir(cfg_path).exists():
        shutil.rmtree(_state_dir(cfg_path), ignore_errors=True)
        _say(f"removed {_state_dir(cfg_path)} (the local chain's state and log are gone with it)")
    return 0


def cmd_status(args) -> int:
    from .client import ChainClient
    from .fleet import read_policy

    path = _cfg_path(args)
    try:
        cfg = load_config(path)
        client = ChainClient(cfg)
        head = client.block_number()
    except ChainError as e:
        print(f"down: {e}")
        return 1
    _summary(cfg, path)
    print(f"head       block {head}")
    codes = client.rpc.batch([("eth_getCode", [a, "latest"]) for a in cfg.contracts.model_dump().values() if a])
    missing = sum(1 for r in codes if not r.ok or r.result in (None, "0x"))
    print(f"contracts  {len(codes) - missing} with code, {missing} missing")
    if cfg.contracts.FleetPolicy:
        try:
            snap = read_policy(client)
            print(f"policy     v{snap.version}: max_speed {snap.max_speed} m/s, paused {snap.paused}, "
                  f"{len(snap.keep_out_zones)} keep-out zone(s), min task price {snap.min_task_price}, cap {snap.spending_cap}")
        except ChainError as e:
            print(f"policy     unreadable: {e}")
    return 0 if missing == 0 else 1


def cmd_deploy(args) -> int:
    from .client import ChainClient
    from .deploy import DeployParams, deploy_all
    from .signer import Signer

    try:
        cfg = load_config(args.config)
        signer = Signer.from_source(cfg.key, cfg.chain_id)
        _say(f"deploying to {cfg.name} (chain id {cfg.chain_id}) at {cfg.rpc_url} as {signer.address} ({signer.origin})")
        client = ChainClient(cfg, signer)
        overrides = json.loads(args.params) if args.params else {}
        out = deploy_all(client, DeployParams(**overrides), progress=_say)
        path = save_config(out, args.out or args.config)
    except (ChainError, ValueError) as e:
        _say(f"failed: {e}")
        return 1
    _summary(out, path)
    return 0


def cmd_keystore(args) -> int:
    from .signer import create_keystore

    passphrase = os.environ.get(args.passphrase_env) if args.passphrase_env else None
    if passphrase is None:
        passphrase = getpass.getpass("new keystore passphrase: ")
        if getpass.getpass("repeat: ") != passphrase:
            _say("passphrases differ")
            return 1
    try:
        address = create_keystore(args.path, passphrase)
    except (ChainError, FileExistsError) as e:
        _say(f"failed: {e}")
        return 1
    print(address)
    _say(f"wrote {args.path} (mode 0600, scrypt); fund {address} and point key.keystore at it")
    return 0


def _zone(text: str) -> tuple[str, list[tuple[float, float]]]:
    """'dock:0,0;2,0;2,2' -> ('dock', [(0, 0), (2, 0), (2, 2)]) (metres, map frame)."""
    zid, sep, rest = text.partition(":")
    try:
        pts = [tuple(float(v) for v in p.split(",")) for p in rest.split(";") if p.strip()]
        if not sep or not zid or len(pts) < 3 or any(len(p) != 2 for p in pts):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"zone must be ID:x,y;x,y;x,y[;...] in metres, got {text!r}") from None
    return zid, pts


def _signed_client(cfg: ChainConfig):
    from .client import ChainClient
    from .signer import Signer

    return ChainClient(cfg, Signer.from_source(cfg.key, cfg.chain_id))


def cmd_policy_show(args) -> int:
    from .client import ChainClient
    from .fleet import read_policy

    try:
        cfg = load_config(_cfg_path(args))
        snap = read_policy(ChainClient(cfg))
    except ChainError as e:
        _say(f"failed: {e}")
        return 1
    print(f"FleetPolicy {snap.address} on {cfg.name} (chain {cfg.chain_id}), block {snap.block_number}")
    print(f"version          {snap.version} (changed in block {snap.updated_at_block})")
    print(f"max_speed        {snap.max_speed} m/s")
    print(f"paused           {snap.paused}")
    print(f"min_task_price   {snap.min_task_price}")
    print(f"spending_cap     {snap.spending_cap or 'none'}")
    for z in snap.keep_out_zones:
        print(f"keep-out {z.id:<8} " + " ".join(f"({x:g}, {y:g})" for x, y in z.polygon))
    return 0


def cmd_policy_set(args) -> int:
    from . import governance as g

    try:
        actions = g.policy_actions(max_speed=args.max_speed, paused=args.paused, min_task_price=args.min_task_price,
                                   spending_cap=args.spending_cap, zones=dict(args.zone or []), remove_zones=args.remove_zone)
    except ValueError as e:
        _say(str(e))
        return 2
    description = args.description or "depai chain policy set: " + ", ".join(f"{a.fn}{a.args}" for a in actions)[:400]
    try:
        cfg = load_config(_cfg_path(args))
        client = _signed_client(cfg)
        if cfg.is_local and not args.propose_only:
            g.local_round(client, actions, description, progress=_say)
        else:
            p = g.propose(client, actions, description)
            print(p.proposal_id)
            _say(f"proposed on {cfg.name}: state {g.state(client, p)}; vote when it is Active, then queue and execute "
                 "(depai_nodes.chain.governance.vote / queue / execute)")
            return 0
    except ChainError as e:
        _say(f"failed: {e}")
        return 1
    return cmd_policy_show(args)


def cmd_policy_pause(args) -> int:
    try:
        cfg = load_config(_cfg_path(args))
        client = _signed_client(cfg)
        r = client.contract("FleetPolicy").transact("setPaused", True)
    except ChainError as e:
        _say(f"failed: {e}")
        return 1
    _say(f"fleet PAUSED in block {r.block_number} ({r.tx_hash}); only a DAO vote unpauses")
    return 0


def register(subparsers) -> None:
    chain = subparsers.add_parser("chain", help="local EVM chain, deployment and status (machine economy)")
    sub = chain.add_subparsers(dest="chain_command", required=True)

    up = sub.add_parser("up", help="start anvil, deploy, fund demo machines, write the config")
    up.add_argument("--config", default=None, help="where to write the config (default: .depai/chain.local.json)")
    up.add_argument("--port", type=int, default=8545, help="RPC port (0: any free port; default 8545)")
    up.add_argument("--machines", type=int, default=3, choices=range(0, 10), metavar="N", help="demo machines 1..N (default 3)")
    up.add_argument("--fund", type=int, default=10_000, help="FLEET per demo machine (default 10000)")
    up.add_argument("--block-time", type=float, default=None, help="mine every S seconds instead of per transaction")
    up.add_argument("--voting-delay", type=int, default=1, help="governor voting delay, blocks")
    up.add_argument("--voting-period", type=int, default=20, help="governor voting period, blocks")
    up.add_argument("--timelock-delay", type=int, default=10, help="timelock delay, seconds")
    up.add_argument("--log", action="store_true", help="keep anvil's log, private keys redacted, in <config>.anvil/anvil.log (0600)")
    up.add_argument("--fresh", action="store_true", help="start a NEW chain, discarding the saved one (default: restore it)")
    up.add_argument("--state-interval", type=float, default=1.0, help="s between anvil state dumps (what a kill -9 can lose; default 1)")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the anvil started by `up`")
    down.add_argument("--config", default=None, help="the config `up` wrote (default: .depai/chain.local.json)")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="show endpoint, contracts and the current fleet policy")
    status.add_argument("--config", default=None)
    status.set_defaults(func=cmd_status)

    deploy = sub.add_parser("deploy", help="deploy the contracts to the network a config names")
    deploy.add_argument("--config", required=True, help="chain config (e.g. chain/networks/agung.yaml, with key.keystore)")
    deploy.add_argument("--out", default=None, help="write the config with addresses here (default: over --config)")
    deploy.add_argument("--params", default=None, help='JSON DeployParams overrides, e.g. \'{"timelock_delay_s": 86400}\'')
    deploy.set_defaults(func=cmd_deploy)

    pol = sub.add_parser("policy", help="show or change the fleet policy (through the DAO)")
    psub = pol.add_subparsers(dest="policy_command", required=True)
    show = psub.add_parser("show", help="the policy in force")
    show.add_argument("--config", default=None)
    show.set_defaults(func=cmd_policy_show)
    pset = psub.add_parser("set", help="change it by a DAO vote (local chain: the whole round at once)")
    pset.add_argument("--config", default=None)
    pset.add_argument("--max-speed", type=float, default=None, help="m/s")
    grp = pset.add_mutually_exclusive_group()
    grp.add_argument("--pause", dest="paused", action="store_const", const=True, default=None)
    grp.add_argument("--unpause", dest="paused", action="store_const", const=False)
    pset.add_argument("--min-task-price", type=int, default=None, help="token base units")
    pset.add_argument("--spending-cap", type=int, default=None, help="per machine per day, token base units; 0: none")
    pset.add_argument("--zone", type=_zone, action="append", metavar="ID:x,y;x,y;x,y", help="add/replace a keep-out polygon (metres)")
    pset.add_argument("--remove-zone", action="append", metavar="ID")
    pset.add_argument("--description", default=None, help="proposal text")
    pset.add_argument("--propose-only", action="store_true", help="only propose, also on the local chain")
    pset.set_defaults(func=cmd_policy_set)
    pause = psub.add_parser("pause", help="e-stop the whole fleet now (the guardian's key); a vote unpauses")
    pause.add_argument("--config", default=None)
    pause.set_defaults(func=cmd_policy_pause)

    ks = sub.add_parser("keystore", help="create an encrypted keystore (new random key)")
    ks.add_argument("path")
    ks.add_argument("--passphrase-env", default=None, help="read the passphrase from this env var (default: prompt)")
    ks.set_defaults(func=cmd_keystore)
