"""The Python bridge's behaviour at the edges: RPC down, slow, wrong chain, malformed input,
keys never leaking, batch sending that loses nothing, receipts/confirmations with deadlines,
and the event stream's fallback and reorg-safety depth."""

import pickle
import socket
import threading
import time

import pytest
from chainkit import DEPLOYER, MACHINE, _as_timelock_sender, fleet, wait_for

from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import ChainConfig, KeySource, checksum, load_config, save_config
from depai_nodes.chain.errors import (
    ChainError,
    ConfigError,
    ContractRevertError,
    InvalidAddressError,
    RpcTimeoutError,
    RpcUnavailableError,
    SignerError,
    TxRejectedError,
    TxTimeoutError,
    WrongChainError,
)
from depai_nodes.chain.events import EventStream
from depai_nodes.chain.signer import Signer, create_keystore, demo_signer

DEMO0_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's public key #0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def silent_server():
    """A TCP server that accepts connections and never answers: a stalled RPC node."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_rpc_down_is_a_typed_error():
    cfg = ChainConfig(rpc_url=f"http://127.0.0.1:{_free_port()}", chain_id=31337, rpc_timeout_s=2)
    with pytest.raises(RpcUnavailableError) as e:
        ChainClient(cfg)
    assert e.value.method == "eth_chainId" and "cannot reach" in str(e.value)


def test_rpc_slow_times_out(silent_server):
    cfg = ChainConfig(rpc_url=silent_server, chain_id=31337, rpc_timeout_s=0.3)
    with pytest.raises(RpcTimeoutError) as e:
        ChainClient(cfg)
    assert "0.3 s" in str(e.value)


def test_wrong_chain_id_is_refused(chain):
    cfg = chain.config.model_copy(update={"chain_id": 3338})
    with pytest.raises(WrongChainError) as e:
        ChainClient(cfg)
    assert e.value.expected == 3338 and e.value.actual == 31337
    with pytest.raises(SignerError):  # and demo keys are refused for a real network
        demo_signer(0, 3338)


def test_malformed_addresses(chain):
    good = chain.address(MACHINE)
    assert checksum(good.lower()) == good and checksum(good[:2] + good[2:].upper()) == good
    i = next(k for k in range(2, 42) if good[k].isalpha())
    bad_checksum = good[:i] + good[i].swapcase() + good[i + 1:]  # one letter's case flipped
    for value, reason in [("0x123", "not 20 bytes"), (good[2:], "missing 0x"), (good + "00", "not 20 bytes"),
                          ("0x" + "g" * 40, "not 20 bytes"), (12345, "expected a 0x-prefixed hex string")]:
        with pytest.raises(InvalidAddressError) as e:
            checksum(value)
        assert reason in str(e.value)
    with pytest.raises(InvalidAddressError, match="checksum"):
        checksum(bad_checksum)
    c = chain.client()
    with pytest.raises(InvalidAddressError):
        c.contract("FleetToken", "0xnothex")
    with pytest.raises(ChainError, match="cannot encode"):
        c.contract("FleetToken").call("balanceOf", "0x1234")
    with pytest.raises(ChainError, match="empty return data"):  # no contract there
        c.contract("FleetToken", "0x000000000000000000000000000000000000dEaD").call("totalSupply")


def test_config_files(tmp_path, chain):
    p = save_config(chain.config, tmp_path / "c.json")
    assert load_config(p) == chain.config
    (tmp_path / "y.yaml").write_text("rpc_url: http://127.0.0.1:1\nchain_id: 3338\nconfirmations: 3\n")
    y = load_config(tmp_path / "y.yaml")
    assert y.chain_id == 3338 and y.did_address == "0x0000000000000000000000000000000000000800"
    with pytest.raises(ConfigError, match="no address for TaskMarket"):
        y.address("TaskMarket")
    cases = {"missing.json": None, "bad.yaml": "rpc_url: [unclosed", "extra.yaml": "rpc_url: http://x\nchain_id: 1\ncolour: red\n",
             "addr.yaml": "rpc_url: http://x\nchain_id: 1\ncontracts: {FleetToken: '0x12'}\n",
             "neg.yaml": "rpc_url: http://x\nchain_id: -5\n", "ws.yaml": "rpc_url: http://x\nchain_id: 1\nws_url: http://y\n"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError) as e:
            load_config(tmp_path / name)
        assert name in str(e.value)
    with pytest.raises(ConfigError, match="colour"):
        load_config(tmp_path / "extra.yaml")
    with pytest.raises(ConfigError, match="contracts.FleetToken"):
        load_config(tmp_path / "addr.yaml")


def test_keys_never_leak(tmp_path, monkeypatch, chain):
    ks = tmp_path / "machine.json"
    addr = create_keystore(ks, "correct horse battery", kdf="pbkdf2", private_key="0x" + DEMO0_KEY)
    assert (ks.stat().st_mode & 0o777) == 0o600 and DEMO0_KEY not in ks.read_text()
    monkeypatch.setenv("DEPAI_TEST_PASS", "correct horse battery")
    s = Signer.from_source(KeySource(kind="keystore", keystore=str(ks), passphrase_env="DEPAI_TEST_PASS"), 31337)
    assert s.address == addr == chain.address(DEPLOYER)
    errors = []
    for attempt in (lambda: Signer.from_keystore(ks, "wrong passphrase"),
                    lambda: Signer.from_keystore(tmp_path / "nope.json", "x"),
                    lambda: Signer.from_source(KeySource(kind="keystore", keystore=str(ks), passphrase_env="UNSET_VAR_X"), 1),
                    lambda: demo_signer(0, 9990),
                    lambda: create_keystore(tmp_path / "k2.json", "short"),
                    lambda: s.sign_transaction({"nonce": "not a number"})):
        with pytest.raises(SignerError) as e:
            attempt()
        errors.append(e.value)
    c = ChainClient(chain.config, s)
    with pytest.raises(ContractRevertError) as e:
        c.contract("FleetPolicy").transact("setMaxSpeed", 5)
    errors.append(e.value)
    texts = [repr(s), str(s), repr(c), repr(demo_signer(0, 31337))] + [str(x) for x in errors] + [repr(x) for x in errors]
    for t in texts:
        assert DEMO0_KEY not in t.lower()
    assert "wrong passphrase" in str(errors[0]) and "DEMO" in repr(demo_signer(0, 31337))
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_send_many_reports_every_item_and_fills_nonce_gaps(chain):
    m = fleet(chain, MACHINE)
    batches = [m.make_batch([f"m{i}".encode()], f"sm{i}", 0, 1)[0] for i in range(12)]
    m.anchor(batches[3])  # already anchored: its call would revert
    calls = [m.data.prepare("anchor", b.as_tuple(), m.sign_batch(b)) for b in batches]
    calls[7] = m.data.prepare("anchor", batches[7].as_tuple(), m.sign_batch(batches[7]), gas=1000)  # below intrinsic gas
    out = m.client.send_many(calls)
    assert len(out) == 12
    assert isinstance(out[3].error, ContractRevertError) and out[3].error.error == "BatchExists"
    assert isinstance(out[7].error, TxRejectedError)
    ok = [i for i, o in enumerate(out) if o.ok]
    assert ok == [0, 1, 2, 4, 5, 6, 8, 9, 10, 11]  # the ones after the refused nonce were not stuck
    assert m.data.call("batchCount", m.me) == 11
    # and the client's nonce is still right afterwards
    assert m.anchor(m.make_batch([b"after"], "after", 0, 1)[0]).status == 1


def test_receipt_timeout_keeps_the_hash_and_nothing_is_lost(chain):
    c = chain.client(MACHINE)
    f = fleet(chain, MACHINE)
    c.rpc_local("evm_setAutomine", [False])
    batch = f.make_batch([b"x"], "late", 0, 1)[0]
    call = f.data.prepare("anchor", batch.as_tuple(), f.sign_batch(batch))
    with pytest.raises(TxTimeoutError) as e:
        f.client.transact(call, timeout_s=0.3)
    assert e.value.tx_hash.startswith("0x") and e.value.tx_hash in str(e.value)
    c.rpc_local("evm_mine")
    r = c.wait_receipt(e.value.tx_hash, timeout_s=5)
    assert r.status == 1 and f.batch_record(f.me, batch.batch_id).message_count == 1


def test_confirmations_depth(chain):
    c = chain.client(MACHINE, confirmations=2)
    f = fleet(chain, MACHINE)
    h = f.data.transact("anchor", *(lambda b: (b.as_tuple(), f.sign_batch(b)))(f.make_batch([b"c"], "conf", 0, 1)[0]), wait=False)
    with pytest.raises(TxTimeoutError, match="2 confirmation"):
        c.wait_receipt(h, timeout_s=0.3)
    c.mine(2)
    assert c.wait_receipt(h, timeout_s=5).status == 1


def test_event_stream_falls_back_to_polling_and_respects_depth(chain):
    cfg = chain.config.model_copy(update={"ws_url": f"ws://127.0.0.1:{_free_port()}", "rpc_timeout_s": 1})
    c = ChainClient(cfg, chain.signer(DEPLOYER))
    policy = c.contract("FleetPolicy")
    seen, errors = [], []
    start = c.block_number() + 1
    s1 = EventStream(c, policy, seen.append, events=["PausedSet"], from_block=start, poll_s=0.05, on_error=errors.append).start()
    deep = []
    s2 = EventStream(c, policy, deep.append, events=["PausedSet"], from_block=start, poll_s=0.05, confirmations=3).start()
    try:
        assert s1.transport == "poll" and any("WebSocket unavailable" in str(e) for e in errors)
        policy.transact("setPaused", True)  # the guardian's e-stop
        wait_for(lambda: seen)
        assert seen[0]["paused"] is True and deep == []
        c.mine(2)
        time.sleep(0.3)
        assert deep == []  # 2 blocks on top: not deep enough yet
        c.mine(1)
        wait_for(lambda: deep)
        assert deep[0]["tx_hash"] == seen[0]["tx_hash"] and len(seen) == 1
    finally:
        s1.stop()
        s2.stop()


def test_ws_mode_fails_loudly_without_a_socket(chain):
    cfg = chain.config.model_copy(update={"ws_url": f"ws://127.0.0.1:{_free_port()}", "rpc_timeout_s": 1})
    c = ChainClient(cfg)
    from depai_nodes.chain.errors import EventStreamError

    with pytest.raises(EventStreamError):
        EventStream(c, c.contract("FleetPolicy"), print, mode="ws").start()


def test_revert_without_signer_is_read_only(chain):
    c = ChainClient(chain.config)  # no key: read-only
    assert c.contract("FleetPolicy").call("maxSpeedMmPerS") == 1500
    with pytest.raises(SignerError, match="read-only"):
        c.contract("FleetPolicy").transact("setPaused", True)


class _CuttableProxy:
    """A TCP proxy to anvil whose connections the test can cut: a WebSocket that drops."""

    def __init__(self, port: int):
        self.target = port
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.open:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.open = False
        self.srv.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_websocket_drop_mid_stream_falls_back_to_polling_without_loss(chain):
    proxy = _CuttableProxy(chain.anvil.port)
    cfg = chain.config.model_copy(update={"ws_url": f"ws://127.0.0.1:{proxy.port}"})
    c = ChainClient(cfg, chain.signer(DEPLOYER))
    policy = c.contract("FleetPolicy")
    seen, errors = [], []
    stream = EventStream(c, policy, seen.append, events=["PausedSet"], from_block=c.block_number() + 1, poll_s=0.05,
                         on_error=errors.append).start()
    try:
        assert stream.transport == "ws"
        policy.transact("setPaused", True)
        wait_for(lambda: len(seen) == 1)
        proxy.cut()
        wait_for(lambda: stream.transport == "poll")
        assert any("WebSocket dropped" in str(e) for e in errors)
        send = _as_timelock_sender(chain, "FleetPolicy")
        send("setPaused", False)
        policy.transact("setPaused", True)
        wait_for(lambda: len(seen) == 3)
        time.sleep(0.2)
    finally:
        stream.stop()
    assert [e["paused"] for e in seen] == [True, False, True]  # in order, none lost, none twice


def test_reorged_out_transaction_is_never_reported_confirmed(chain):
    """A tx mined then dropped by a 2-block reorg (anvil_reorg) before it was 3 deep: the receipt
    wait times out instead of confirming it, and a depth-3 event stream never delivers its event."""
    c = chain.client(DEPLOYER, confirmations=3)
    policy = c.contract("FleetPolicy")
    deep = []
    stream = EventStream(c, policy, deep.append, events=["PausedSet"], from_block=c.block_number() + 1, poll_s=0.02).start()
    try:
        h = policy.transact("setPaused", True, wait=False)
        outcome = {}

        def waiter():  # already holds the receipt, waiting for depth, when the reorg happens
            try:
                outcome["result"] = c.wait_receipt(h, timeout_s=2)
            except TxTimeoutError as e:
                outcome["error"] = e

        t = threading.Thread(target=waiter)
        t.start()
        assert c.wait_receipt(h, confirmations=0, timeout_s=5).block_number > 0
        time.sleep(0.1)
        c.mine(1)
        c.rpc_local("anvil_reorg", [2, []])  # replaces the last two blocks, without our tx
        c.mine(3)
        t.join()
        assert "result" not in outcome and outcome["error"].tx_hash == h
        time.sleep(0.2)
        assert deep == [] and policy.call("paused") is False
    finally:
        stream.stop()
