"""The design rule, proven on running processes: only the wallet process ever holds a private key.

A fresh machine key lives in an encrypted keystore; only the wallet is given its path and (in
its environment) the passphrase. The identity and telemetry nodes get neither, yet the machine
registers its DID and stake and anchors a telemetry batch: the wallet signed for them. Then the
processes themselves are inspected: the key's bytes are in the wallet's memory (the control)
and nowhere in the identity's or telemetry's memory, environment, parameters or logs."""

from __future__ import annotations

import os
import re
import time

from chainkit import DEPLOYER
from eth_account import Account

from depai.msg import MachineAccount, MachineIdentity, TxStatus
from depai_nodes.chain.config import KeySource, save_config
from depai_nodes.chain.deploy import TOKEN
from depai_nodes.chain.deploy import admit_machines
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.models import id32
from depai_nodes.chain.signer import create_keystore
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.telemetry.core import list_batches, prove

PASS_ENV = "DEPAI_KEYSTORE_PASSPHRASE"
KEYLIKE = re.compile(r"key|keystore|passphrase|demo|mnemonic|private|secret|seed", re.I)


def _memory_contains(pid: int, needles: list[bytes]) -> dict[bytes, bool]:
    """Whether each needle occurs anywhere in the readable memory of process ``pid`` (our child)."""
    found = dict.fromkeys(needles, False)
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            for n in needles:
                if not found[n] and n in chunk:
                    found[n] = True
    return found


def _parameter_names(ros_node, fqn: str) -> list[str]:
    from rcl_interfaces.srv import ListParameters

    return list(ros_node.call(ListParameters, f"{fqn}/list_parameters", ListParameters.Request(), timeout=10).result.names)


def test_only_the_wallet_process_holds_the_key(chain, tmp_path, start_node, ros_node, monkeypatch):
    from nav_msgs.msg import Odometry

    # a fresh machine key (not one of anvil's public ones), in an encrypted keystore, funded
    account = Account.create()
    key = bytes(account.key)
    passphrase = "only the wallet knows this"
    keystore = tmp_path / "machine.json"
    assert create_keystore(keystore, passphrase, kdf="pbkdf2", private_key=account.key.hex()) == account.address
    deployer = chain.client(DEPLOYER)
    deployer.rpc_local("anvil_setBalance", [account.address, hex(10**20)])
    Fleet(deployer).token.transact("transfer", account.address, 1_000 * TOKEN)
    admit_machines(deployer, [account.address])  # the fleet owner admits the new machine to the market
    cfg = save_config(chain.config.model_copy(update={"key": KeySource(kind="none")}), tmp_path / "chain.json")

    monkeypatch.setenv(PASS_ENV, passphrase)  # the wallet's environment only
    wallet = start_node("wallet", namespace="rover", parameters={
        "chain_config": str(cfg), "keystore": str(keystore), "max_stake": str(100 * TOKEN)})
    wallet.wait_for_log("wallet of", timeout=30)
    monkeypatch.delenv(PASS_ENV)
    identity = start_node("identity", namespace="rover", parameters={"chain_config": str(cfg), "stake": str(100 * TOKEN), "period": 0.5})
    telemetry = start_node("telemetry", namespace="rover", parameters={
        "batch_period": 0.5, "output_dir": str(tmp_path / "tlm"), "topics": ["odom nav_msgs/msg/Odometry"],
        "chain_config": str(cfg)})

    accounts = ros_node.subscribe(MachineAccount, "/rover/wallet/account", LATCHED_QOS)
    standing = ros_node.subscribe(MachineIdentity, "/rover/identity", LATCHED_QOS)
    anchored = ros_node.subscribe(TxStatus, "/rover/anchor_status", RELIABLE_QOS)
    announced = accounts.wait_for(timeout=20)
    assert announced.address == account.address and announced.key_kind == "keystore"

    # the nodes without a key get their on-chain work done through the wallet
    me = standing.wait_for(lambda m: m.market_registered, timeout=30)
    assert me.address == account.address and me.machine_name == "rover" and me.stake == str(100 * TOKEN) and me.error == ""
    telemetry.wait_for_log("recording", timeout=20)
    pub = ros_node.publisher(Odometry, "/rover/odom", RELIABLE_QOS)
    ros_node.wait_for_subscribers(pub)
    for i in range(10):
        pub.publish(Odometry())
        time.sleep(0.02)
    done = anchored.wait_for(lambda s: s.status == TxStatus.CONFIRMED, timeout=30)
    reader = Fleet(chain.client(DEPLOYER))
    folder = next(f for f, s in list_batches(tmp_path / "tlm") if s and s.get("batch_id") == done.request_id)
    record, proof, root = prove(folder, 0)
    assert reader.batch_record(account.address, id32(done.request_id)).root == root
    assert reader.verify_message(account.address, id32(done.request_id), record, proof)

    # the processes: the key is in the wallet's memory only
    hex_key = key.hex().encode()
    assert _memory_contains(wallet.process.pid, [key])[key], "control: the wallet must hold the key"
    for node in (identity, telemetry):
        assert _memory_contains(node.process.pid, [key, hex_key]) == {key: False, hex_key: False}, node.label
        env = open(f"/proc/{node.process.pid}/environ", "rb").read()
        assert PASS_ENV.encode() not in env and passphrase.encode() not in env, node.label
        assert str(keystore) not in open(f"/proc/{node.process.pid}/cmdline", "rb").read().decode(errors="replace")
    assert passphrase.encode() in open(f"/proc/{wallet.process.pid}/environ", "rb").read()

    # nothing key-like among their parameters (the wallet's keystore path is the control)
    assert "keystore" in _parameter_names(ros_node, "/rover/wallet")
    for fqn in ("/rover/identity", "/rover/telemetry"):
        names = _parameter_names(ros_node, fqn)
        assert names and not [n for n in names if KEYLIKE.search(n)], (fqn, names)

    # and the key or passphrase is in no log, the wallet's included
    for node in (wallet, identity, telemetry):
        log = node.log()
        assert key.hex() not in log.lower() and passphrase not in log, node.label
    assert os.path.getsize(keystore) > 0
