"""Hostile or broken inputs of the DAO listener's chain path: its cursor file (corrupt, foreign,
half-written) and malformed logs under the event stream (a contract of raw EVM code emitting
logs whose data does not decode: ignored with a line, the stream goes on)."""

from __future__ import annotations

import json
import threading

from chainkit import DEPLOYER, wait_for
from eth_utils import keccak

from depai_nodes.chain.events import EventStream
from depai_nodes.dao_listener.cursor import Cursor, Decision, cursor_path, load_cursor, save_cursor

SOURCE = "chain:31337:0xabcdef0123:0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _decision(v: int) -> Decision:
    return Decision(version=v, what="maxSpeed", block=10 + v, block_hash="0x" + f"{v:064x}", tx_hash="0x" + "ab" * 32,
                    log_index=0, via="proposal", proposal_id=123456789012345678901234567890)


def test_cursor_roundtrip_keeps_the_last_decisions_and_is_private(tmp_path):
    path = cursor_path(tmp_path, SOURCE)
    cur = Cursor(SOURCE, 5, "0x" + "00" * 32, 3)
    for v in range(4, 4 + 70):
        cur.applied(_decision(v))
    save_cursor(path, cur)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o077 == 0
    back, why = load_cursor(path, SOURCE)
    assert why == "" and back.version == 73 and back.block == 83 and len(back.recent) == 64
    assert back.recent[-1] == _decision(73) and back.recent[0].version == 10  # big proposal ids survive JSON
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_cursor_that_is_corrupt_foreign_or_truncated_is_refused_with_the_reason(tmp_path):
    path = cursor_path(tmp_path, SOURCE)
    assert load_cursor(path, SOURCE) == (None, "")  # none yet: not an error
    save_cursor(path, Cursor(SOURCE, 5, "0x" + "11" * 32, 3, [_decision(3)]))
    text = path.read_text()
    for bad, expect in [(text[: len(text) // 2], "unreadable"), ("[]", "malformed"),
                        (json.dumps({"source": SOURCE, "block": -1, "block_hash": "0x00", "version": 1}), "malformed"),
                        (json.dumps({"source": SOURCE, "block": "x", "block_hash": "0x00", "version": 1}), "malformed"),
                        (text.replace(SOURCE, "chain:1:0x0:0x0"), "belongs to chain:1:0x0:0x0")]:
        path.write_text(bad)
        cur, why = load_cursor(path, SOURCE)
        assert cur is None and expect in why, (bad[:40], why)
    # another source has its own file: two chains never share a cursor
    assert cursor_path(tmp_path, SOURCE) != cursor_path(tmp_path, SOURCE.replace("31337", "3338"))


def _raw_emitter(client, topic0: bytes) -> str:
    """Deploy EVM code that emits LOG1(topic0, calldata) for every call (no Solidity needed)."""
    runtime = bytes.fromhex("365f5f37") + b"\x7f" + topic0 + bytes.fromhex("365fa100")
    init = bytes([0x60, len(runtime), 0x80, 0x60, 9, 0x5F, 0x39, 0x5F, 0xF3]) + runtime
    tx = {"from": client.signer.address, "data": "0x" + init.hex(), "gas": hex(200_000)}
    r = client.wait_receipt(client.rpc.call("eth_sendTransaction", [tx]))
    assert r.status == 1 and r.contract_address
    return r.contract_address


def test_a_malformed_log_is_reported_and_the_stream_goes_on(chain):
    c = chain.client(DEPLOYER)
    abi = c.abi("FleetPolicy")
    topic = keccak(text="MaxSpeedSet(uint32)")
    assert "0x" + topic.hex() == abi.topic("MaxSpeedSet")
    addr = _raw_emitter(c, topic)
    contract = c.contract("FleetPolicy", addr)  # a look-alike: FleetPolicy's ABI at the emitter
    seen, errors, lock = [], [], threading.Lock()
    stream = EventStream(c, contract, lambda ev: seen.append(ev), events=["MaxSpeedSet"], mode="ws",
                         from_block=c.block_number() + 1, on_error=lambda e: errors.append(str(e))).start()
    try:
        send = lambda data: c.wait_receipt(c.rpc.call("eth_sendTransaction", [{"from": c.signer.address, "to": addr,
                                                                              "data": data, "gas": hex(100_000)}]))
        send("0x" + "00" * 7)                 # 7 bytes where a uint32 word (32) is due: does not decode
        send("0x" + (1234).to_bytes(32, "big").hex())  # a well-formed one after it
        wait_for(lambda: seen, timeout_s=10)
    finally:
        stream.stop()
    assert [e["maxSpeedMmPerS"] for e in seen] == [1234]
    assert any("ignored a malformed FleetPolicy log" in e for e in errors), errors
