"""Issue 8, invariant 3 with real processes: the local chain survives `kill -9` (anvil's state
file), `chain up` restores it (DIDs, the guardian's pause, an anchored batch are still there) and
only `chain up --fresh` makes a new chain, which a running ChainPolicySource and a running wallet
detect (new policy sequence, nonce re-synchronised, each logged once). An outage in between is
logged once and so is its recovery. `--log` keeps no private key; `down` removes state and log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import load_config, repo_root
from depai_nodes.chain.fleet import Fleet, read_policy
from depai_nodes.chain.intents import AnchorRequest, content_batch_id
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.chain.models import id32
from depai_nodes.chain.signer import demo_signer
from depai_nodes.chain.watch import ChainWatch
from depai_nodes.dao_listener.chain_source import ChainPolicySource
from depai_nodes.wallet.core import Intents, IntentPolicy, Status, Wallet
from depai_nodes.wallet.state import WalletState

from chainkit import wait_for

TOKEN = 10**18
DEMO_KEYS = ["ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
             "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
             "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"]


def _depai(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=repo_root())


def _pid(cfg_path: Path) -> int:
    return json.loads(cfg_path.with_name(cfg_path.name + ".anvil.pid").read_text())["pid"]


def _alive(pid: int) -> bool:
    from depai_nodes.common.procs import pid_alive

    return pid_alive(pid)


def test_kill9_restore_then_fresh_is_detected(tmp_path):
    cfg_path = tmp_path / "chain.json"
    up = _depai("up", "--port", "0", "--config", str(cfg_path), "--machines", "2", "--log")
    assert up.returncode == 0, up.stderr
    source = wallet = None
    try:
        cfg = load_config(cfg_path)
        assert cfg.genesis_hash and cfg.deploy_block >= 0
        state_dir = tmp_path / "chain.json.anvil"
        wait_for(lambda: (state_dir / "state.json").exists(), timeout_s=10)  # dumped every second
        assert state_dir.stat().st_mode & 0o077 == 0 and cfg_path.stat().st_mode & 0o777 == 0o600

        # what must survive: the guardian's pause, an anchored batch, the DIDs `up` wrote
        ChainClient(cfg, demo_signer(0, 31337)).contract("FleetPolicy").transact("setPaused", True)
        m1 = Fleet(ChainClient(cfg, demo_signer(1, 31337)))
        root = "0x" + MerkleTree([b"r1", b"r2"]).root.hex()
        now = int(time.time())
        bid = content_batch_id(root, 2, now - 5, now)
        assert Intents(m1, IntentPolicy()).anchor(AnchorRequest(bid, root, 2, now - 5, now)).ok

        # a running policy source and a running wallet (machine 2, paying machine 1)
        errors, infos, policies = [], [], []
        source = ChainPolicySource(str(cfg_path), on_policy=lambda p, v, s: policies.append((p, v, s)),
                                   on_error=errors.append, on_info=infos.append, transport="poll", check_period_s=0.2).start()
        first = wait_for(lambda: policies and policies[-1], timeout_s=20)
        assert first[0].paused and first[2] == f"chain:31337:{cfg.genesis_hash[:10]}:{cfg.contracts.FleetPolicy}"
        statuses, logs = [], []
        m2 = demo_signer(2, 31337)
        wallet = Wallet(Fleet(ChainClient(cfg, m2)), lambda *a: statuses.append(a), state=WalletState(tmp_path / "w.json", m2.address),
                        allowed_payees=[m1.me], on_log=lambda lvl, t: logs.append((lvl, t)), maintain_period_s=0.2,
                        watch=ChainWatch(cfg, cfg_path, period_s=0.2))
        wallet.set_cap(0)
        wallet.start()
        assert wallet.request("pay-before", m1.me, str(TOKEN))
        wait_for(lambda: any(s[0] == "pay-before" and s[1] == Status.CONFIRMED for s in statuses), timeout_s=20)
        time.sleep(2.5)  # > the 1 s state interval: the dump holds all of the above

        # crash: kill -9 of anvil; an outage of ~2 s is seen by both, logged once each
        old_pid = _pid(cfg_path)
        os.kill(old_pid, signal.SIGKILL)
        wait_for(lambda: any("failed" in e for e in errors), timeout_s=10)
        wait_for(lambda: any("wallet: chain failed" in t for _, t in logs), timeout_s=10)
        time.sleep(1.5)
        again = _depai("up", "--config", str(cfg_path))
        assert again.returncode == 0, again.stderr
        assert "restored the chain" in again.stderr and "kill -9 may be missing" in again.stderr
        restored = ChainClient(load_config(cfg_path))
        assert restored.genesis_hash() == cfg.genesis_hash and _pid(cfg_path) != old_pid
        assert read_policy(restored).paused
        assert Fleet(restored, m1.me).batch_record(m1.me, id32(bid)).root.hex() == root[2:]
        assert Fleet(restored, m1.me).attribute(m1.me, b"depai:machine")["value"] == b"demo-machine-1"
        wait_for(lambda: any("recovered after" in i for i in infos), timeout_s=20)
        wait_for(lambda: any("recovered after" in t for _, t in logs), timeout_s=20)
        outage_lines = [e for e in errors if "chain policy source" in e and "failed" in e]
        assert len(outage_lines) == 1, errors  # once, not per poll
        assert len([t for _, t in logs if "wallet: chain failed" in t]) == 1, logs
        assert not any("reset" in e for e in errors) and source.resets == 0  # the same chain: the same sequence

        # the same request id after all this: reported as done, never paid again
        before = Fleet(restored, m1.me).token.call("balanceOf", m1.me)
        assert not wallet.request("pay-before", m1.me, str(TOKEN))
        assert statuses[-1][1] == Status.CONFIRMED and "DuplicateRequest" in statuses[-1][4]
        time.sleep(0.5)
        assert Fleet(restored, m1.me).token.call("balanceOf", m1.me) == before

        # `--log` kept anvil's log without its keys, 0600
        log = state_dir / "anvil.log"
        log_text = log.read_text()
        assert "Private Keys" in log_text and "<redacted private key>" in log_text and "<redacted mnemonic>" in log_text
        assert log.stat().st_mode & 0o777 == 0o600 and "eth_sendRawTransaction" in log_text
        assert not any(k in log_text.lower() for k in DEMO_KEYS) and "test test test" not in log_text

        # a deliberate fresh start: a new chain at the same endpoint (the old chain's log goes with it)
        fresh = _depai("up", "--fresh", "--config", str(cfg_path), "--machines", "2")
        assert fresh.returncode == 0, fresh.stderr
        assert not log.exists()
        new_cfg = load_config(cfg_path)
        assert new_cfg.genesis_hash != cfg.genesis_hash and new_cfg.rpc_url == cfg.rpc_url
        new_source = f"chain:31337:{new_cfg.genesis_hash[:10]}:{new_cfg.contracts.FleetPolicy}"
        got = wait_for(lambda: [p for p in policies if p[2] == new_source], timeout_s=30)
        assert not got[0][0].paused  # the new chain's policy, as a new sequence
        assert len([e for e in errors if "chain reset detected" in e]) == 1 and source.resets == 1
        wait_for(lambda: any("chain reset detected" in t for _, t in logs), timeout_s=20)
        assert len([t for _, t in logs if "chain reset detected" in t]) == 1
        # the wallet's nonce follows the new chain: a payment there goes through
        assert wallet.request("pay-after", m1.me, str(TOKEN))
        done = wait_for(lambda: [s for s in statuses if s[0] == "pay-after" and s[1] in (Status.CONFIRMED, Status.FAILED)], timeout_s=30)
        assert done[0][1] == Status.CONFIRMED, done
        assert wallet.alive
    finally:
        if source is not None:
            source.stop()
        if wallet is not None:
            wallet.stop()
        down = _depai("down", "--config", str(cfg_path))
    assert down.returncode == 0 and not (tmp_path / "chain.json.anvil").exists() and not cfg_path.exists()


def test_restored_again_and_again_the_chain_keeps_its_genesis_and_its_clock(tmp_path):
    """anvil makes a genesis block of its own at every start and its dump keeps them all: from
    the third or fourth restore block 0 was any of them (a "reset" chain that no longer matched
    its config, the main job refused to start). And its clock restarted from the wall clock,
    behind a chain whose time a DAO round had moved ahead. Both, over four restores (SIGTERM and
    SIGKILL); then a state dump left by the old behaviour is repaired."""
    from depai_nodes.chain.anvil import Anvil
    from depai_nodes.chain.config import save_config

    cfg_path = tmp_path / "chain.json"
    state = tmp_path / "chain.json.anvil" / "state.json"
    assert _depai("up", "--port", "0", "--config", str(cfg_path), "--machines", "0").returncode == 0
    try:
        cfg = load_config(cfg_path)
        assert cfg.genesis_timestamp == int(ChainClient(cfg).get_block(0)["timestamp"], 16)
        c = ChainClient(cfg)
        c.rpc_local("evm_increaseTime", [3600])  # what a DAO round's timelock step does
        c.mine(1)
        ahead = int(c.get_block("latest")["timestamp"], 16)
        assert ahead > time.time() + 3000
        last = ahead
        for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM, signal.SIGKILL):
            time.sleep(1.2)  # the state is dumped every second
            os.kill(_pid(cfg_path), sig)
            wait_for(lambda: not _alive(_pid(cfg_path)), timeout_s=10)
            r = _depai("up", "--config", str(cfg_path))
            assert r.returncode == 0 and "restored the chain" in r.stderr, r.stderr
            c = ChainClient(load_config(cfg_path))  # raises ChainResetError on another genesis
            assert c.genesis_hash(refresh=True) == cfg.genesis_hash
            c.mine(1)
            now = int(c.get_block("latest")["timestamp"], 16)
            assert now >= last, f"block time went back after a restore: {now} < {last}"
            last = now
        assert last >= ahead  # still ahead of the wall clock: time moved on from the head, not from now
    finally:
        _depai("down", "--config", str(cfg_path))

    # The old behaviour (no --timestamp) leaves extra genesis blocks in the dump; a config of that
    # time has no genesis_timestamp. `up` repairs the dump and restores the first genesis.
    assert _depai("up", "--port", "0", "--config", str(cfg_path), "--machines", "0").returncode == 0
    cfg = load_config(cfg_path)
    os.kill(_pid(cfg_path), signal.SIGTERM)
    wait_for(lambda: not _alive(_pid(cfg_path)), timeout_s=10)
    for _ in range(3):
        time.sleep(1.1)  # each start stamps its own genesis with another second
        old = Anvil(state_path=state).start()
        old.stop()
    blocks = json.loads(state.read_text())["blocks"]
    assert sum(1 for b in blocks if int(b["header"]["number"], 16) == 0) > 1  # what the old starts left
    save_config(cfg.model_copy(update={"genesis_timestamp": None}), cfg_path)
    try:
        r = _depai("up", "--config", str(cfg_path))
        assert r.returncode == 0 and "stray genesis block" in r.stderr and "restored the chain" in r.stderr, r.stderr
        assert ChainClient(load_config(cfg_path)).genesis_hash(refresh=True) == cfg.genesis_hash
        assert load_config(cfg_path).genesis_timestamp == cfg.genesis_timestamp  # recorded for the next restore
        blocks = json.loads(state.read_text())["blocks"]
        assert sum(1 for b in blocks if int(b["header"]["number"], 16) == 0) == 1
    finally:
        _depai("down", "--config", str(cfg_path))


def test_up_without_saved_state_refuses_to_replace_the_chain(tmp_path):
    """A config whose chain is gone and has no state file: `up` refuses; it never silently
    deploys a new chain over the old one's config."""
    cfg_path = tmp_path / "chain.json"
    up = _depai("up", "--port", "0", "--config", str(cfg_path), "--machines", "0")
    assert up.returncode == 0, up.stderr
    try:
        genesis = load_config(cfg_path).genesis_hash
        os.kill(_pid(cfg_path), signal.SIGKILL)
        time.sleep(0.3)
        (tmp_path / "chain.json.anvil" / "state.json").unlink()
        r = _depai("up", "--config", str(cfg_path))
        assert r.returncode == 1 and "--fresh" in r.stderr and "no saved state" in r.stderr
        assert load_config(cfg_path).genesis_hash == genesis  # untouched
    finally:
        _depai("down", "--config", str(cfg_path))


def test_a_chain_that_lost_recent_blocks_is_noticed_by_identity_and_wallet(chain, tmp_path, start_node, ros_node):
    """What `chain up` after a kill -9 can do (up to the last state interval lost), made exact
    with evm_revert: the DID and stake the wallet wrote are gone, the wallet's nonce is ahead of
    the chain. Identity notices and asks again, the wallet takes the node's nonce: registered again."""
    from depai.msg import MachineIdentity
    from depai_nodes.chain.config import save_config
    from depai_nodes.common.qos import LATCHED_QOS

    from chainkit import MACHINE2

    cfg = save_config(chain.config.model_copy(update={"receipt_timeout_s": 5.0}), tmp_path / "chain.json")
    c = chain.client()
    snap = c.rpc_local("evm_snapshot")
    c.mine(3)  # the head must really go back below what the nodes saw first
    wallet = start_node("wallet", namespace="robot2", parameters={"chain_config": str(cfg), "demo_index": MACHINE2,
                                                                 "max_stake": str(100 * TOKEN), "chain_check_period": 0.5})
    inbox = ros_node.subscribe(MachineIdentity, "/robot2/identity", LATCHED_QOS)
    identity = start_node("identity", namespace="robot2", parameters={"chain_config": str(cfg), "stake": str(100 * TOKEN), "period": 0.5})
    me = inbox.wait_for(lambda m: m.market_registered and m.machine_name == "robot2", timeout=40).address
    mark = inbox.mark()
    assert c.rpc_local("evm_revert", [snap]) is True  # the writes are gone, the head is back
    identity.wait_for_log("chain went back", timeout=20)
    # Whether a report of the lost registration goes out first depends on who reads first (the
    # wallet may be answering a resent request at that moment): what must hold is on chain.
    again = inbox.wait_for(lambda m: m.market_registered and m.machine_name == "robot2" and m.error == "",
                           timeout=60, after=mark)
    assert again.stake == str(100 * TOKEN)
    info = c.contract("TaskMarket").call("machineInfo", me)
    assert info["registered"] and info["stake"] == 100 * TOKEN  # written again after the revert
    assert identity.log().count("chain went back") == 1
    assert "TIMEOUT" not in wallet.log()  # its nonce followed the chain at once: nothing got stuck
    assert wallet.process.poll() is None and identity.process.poll() is None
    assert "Traceback" not in wallet.log() + identity.log()
