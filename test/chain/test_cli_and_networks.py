"""`depai chain up/status/down` as a user runs them (real processes), and the shipped network
configs (peaq, agung) load and refuse demo keys."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import load_config, repo_root
from depai_nodes.chain.errors import SignerError
from depai_nodes.chain.fleet import Fleet, read_policy
from depai_nodes.chain.signer import Signer, demo_signer


def _depai(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=repo_root())


def _running(pid: int) -> bool:
    """Alive and not a zombie (the detached anvil's parent is whatever reaps orphans here)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_up_status_down(tmp_path):
    cfg_path = tmp_path / "chain.json"
    up = _depai("up", "--port", "0", "--config", str(cfg_path), "--machines", "2")
    try:
        assert up.returncode == 0, up.stderr
        assert "TaskMarket" in up.stdout and "DEMO key #2" in up.stdout
        cfg = load_config(cfg_path)
        pid = json.loads((tmp_path / "chain.json.anvil.pid").read_text())["pid"]
        client = ChainClient(cfg)
        for i in (1, 2):  # demo machines funded, DID written, staked
            f = Fleet(ChainClient(cfg, demo_signer(i, 31337)))
            info = f.machine_info()
            assert info.registered and info.stake == 100 * 10**18
            assert f.attribute(f.me, b"depai:machine")["value"] == f"demo-machine-{i}".encode()
        assert read_policy(client).max_speed == 1.0
        again = _depai("up", "--port", "0", "--config", str(cfg_path))
        assert again.returncode == 0 and "already up" in again.stderr
        st = _depai("status", "--config", str(cfg_path))
        assert st.returncode == 0 and "8 with code, 0 missing" in st.stdout and "max_speed 1.0 m/s" in st.stdout
    finally:
        down = _depai("down", "--config", str(cfg_path))
    assert down.returncode == 0 and f"stopped anvil pid {pid}" in down.stderr
    assert not cfg_path.exists() and not _running(pid)
    st = _depai("status", "--config", str(cfg_path))
    assert st.returncode == 1 and "no chain config" in st.stdout


@pytest.mark.parametrize("name,chain_id", [("peaq", 3338), ("agung", 9990)])
def test_network_configs(name, chain_id, monkeypatch):
    cfg = load_config(repo_root() / "chain" / "networks" / f"{name}.yaml")
    assert cfg.chain_id == chain_id and cfg.name == name and cfg.confirmations >= 1
    assert cfg.did_address == "0x0000000000000000000000000000000000000800" and cfg.key.kind == "keystore"
    with pytest.raises(SignerError):
        demo_signer(1, cfg.chain_id)
    monkeypatch.delenv("DEPAI_KEYSTORE_PASSPHRASE", raising=False)
    with pytest.raises(SignerError, match="no passphrase"):
        Signer.from_source(cfg.key, cfg.chain_id)


def test_up_on_a_busy_port_fails_and_touches_nothing(anvil_node, tmp_path):
    cfg_path = tmp_path / "chain.json"
    r = _depai("up", "--port", str(anvil_node.port), "--config", str(cfg_path))
    assert r.returncode == 1 and "already in use" in r.stderr
    assert not cfg_path.exists() and not (tmp_path / "chain.json.anvil.pid").exists()


def test_deploy_with_a_keystore_like_a_real_network(chain, tmp_path):
    """`depai chain deploy` as on peaq/agung: a config naming an encrypted keystore, the passphrase
    from the environment, addresses written back (here against the local anvil)."""
    from depai_nodes.chain.signer import create_keystore

    key0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's public demo key #0
    ks = tmp_path / "deployer.json"
    create_keystore(ks, "a long passphrase", kdf="pbkdf2", private_key=key0)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(f"name: testnet\nrpc_url: {chain.config.rpc_url}\nchain_id: 31337\n"
                   f"key: {{kind: keystore, keystore: {ks}, passphrase_env: DEPLOY_PASS}}\n")
    out = tmp_path / "deployed.json"
    env = dict(os.environ, DEPLOY_PASS="a long passphrase")
    r = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", "deploy", "--config", str(cfg), "--out", str(out),
                        "--params", '{"timelock_delay_s": 3600, "max_speed": 0.7}'],
                       capture_output=True, text=True, timeout=60, cwd=repo_root(), env=env)
    assert r.returncode == 0, r.stderr
    assert f"keystore:{ks}" in r.stderr and key0[2:] not in r.stderr + r.stdout
    deployed = load_config(out)
    assert deployed.key.kind == "keystore" and deployed.contracts.TaskMarket
    client = ChainClient(deployed)
    assert read_policy(client).max_speed == 0.7
    assert client.contract("FleetTimelock").call("getMinDelay") == 3600
    bad = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", "deploy", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60, cwd=repo_root(), env=dict(env, DEPLOY_PASS="wrong"))
    assert bad.returncode == 1 and "wrong passphrase" in bad.stderr and key0[2:] not in bad.stderr


def test_policy_commands_run_a_real_dao_round(chain, tmp_path):
    from depai_nodes.chain.config import KeySource, save_config

    cfg = save_config(chain.config.model_copy(update={"key": KeySource(kind="demo", demo_index=0)}), tmp_path / "c.json")
    r = _depai("policy", "set", "--config", str(cfg), "--max-speed", "0.5", "--zone", "dock:0,0;2,0;2,2", "--spending-cap", "7")
    assert r.returncode == 0, r.stderr
    assert "voted for" in r.stderr and "executed: Executed" in r.stderr
    assert "max_speed        0.5 m/s" in r.stdout and "keep-out dock" in r.stdout and "(2, 2)" in r.stdout
    snap = read_policy(ChainClient(chain.config))
    assert snap.max_speed == 0.5 and snap.spending_cap == 7 and [z.id for z in snap.keep_out_zones] == ["dock"]
    r = _depai("policy", "pause", "--config", str(cfg))
    assert r.returncode == 0 and "PAUSED" in r.stderr and read_policy(ChainClient(chain.config)).paused
    r = _depai("policy", "set", "--config", str(cfg), "--zone", "bad:0,0;1,1")
    assert r.returncode == 2 and "zone must be" in r.stderr
    r = _depai("policy", "set", "--config", str(cfg))
    assert r.returncode == 2 and "no policy change" in r.stderr
