"""Anchoring throughput and latency: DePAI's chain bridge vs. plain web3 send-and-wait.

One run, a fresh anvil per method (automine: every transaction is mined on arrival), the same kind of signed
DataRegistry.anchor payloads for every method (EIP-712 batch signatures made beforehand; the
transaction signing is inside the timed region for all methods):

  web3 send-and-wait   web3 8 defaults: build_transaction (estimate, fees, nonce from the
                       node), sign, send_raw_transaction, wait_for_transaction_receipt (0.1 s poll)
  bridge transact      ChainClient.transact: estimate, local nonce, sign, send, 20 ms receipt poll
  bridge send_many     ChainClient.send_many: one batch of estimates, local nonces, one JSON-RPC
                       batch of raw transactions, receipts polled in one batch per interval
  ... gas preset       the same with Call.gas set from one estimate (skips the per-call
                       estimates, and with them the revert pre-check; a revert still comes back
                       typed, from the mined receipt)

    python bench/chain_anchoring.py [--quick] [-n N] [--chunk C]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depai_nodes.chain.anvil import Anvil  # noqa: E402
from depai_nodes.chain.client import ChainClient  # noqa: E402
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig  # noqa: E402
from depai_nodes.chain.deploy import deploy_all  # noqa: E402
from depai_nodes.chain.fleet import Fleet  # noqa: E402
from depai_nodes.chain.signer import demo_signer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def make_payloads(fleet: Fleet, n: int, tag: str) -> list[tuple]:
    out = []
    for i in range(n):
        msgs = [f"{tag}:{i}:{j}".encode() for j in range(64)]
        batch, _ = fleet.make_batch(msgs, f"{tag}-{i}", 1_700_000_000 + i, 1_700_000_060 + i, uri=f"file:///bags/{tag}-{i}.mcap")
        out.append((batch.as_tuple(), fleet.sign_batch(batch)))
    return out


def bench_web3(cfg: ChainConfig, key_index: int, payloads: list[tuple]) -> tuple[float, list[float]]:
    from eth_account import Account
    from web3 import Web3

    from depai_nodes.chain.abi import load_abi

    w3 = Web3(Web3.HTTPProvider(cfg.rpc_url))
    signer = demo_signer(key_index, LOCAL_CHAIN_ID)
    acct = Account.from_mnemonic("test test test test test test test test test test test junk",
                                 account_path=f"m/44'/60'/0'/0/{key_index}")
    assert acct.address == signer.address
    contract = w3.eth.contract(address=cfg.contracts.DataRegistry, abi=load_abi("DataRegistry").abi)
    lat = []
    t0 = time.perf_counter()
    for batch, sig in payloads:
        s = time.perf_counter()
        tx = contract.functions.anchor(batch, sig).build_transaction(
            {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address)})
        signed = acct.sign_transaction(tx)
        h = w3.eth.send_raw_transaction(signed.raw_transaction)
        r = w3.eth.wait_for_transaction_receipt(h)
        assert r["status"] == 1
        lat.append(time.perf_counter() - s)
    return time.perf_counter() - t0, lat


def bench_transact(cfg: ChainConfig, key_index: int, payloads: list[tuple]) -> tuple[float, list[float]]:
    client = ChainClient(cfg, demo_signer(key_index, LOCAL_CHAIN_ID))
    data = client.contract("DataRegistry")
    lat = []
    t0 = time.perf_counter()
    for batch, sig in payloads:
        s = time.perf_counter()
        assert data.transact("anchor", batch, sig).status == 1
        lat.append(time.perf_counter() - s)
    return time.perf_counter() - t0, lat


def bench_send_many(cfg: ChainConfig, key_index: int, payloads: list[tuple], chunk: int, preset_gas: bool = False) -> tuple[float, list[float]]:
    client = ChainClient(cfg, demo_signer(key_index, LOCAL_CHAIN_ID))
    data = client.contract("DataRegistry")
    gas = None
    if preset_gas:  # one estimate, outside the timed region; 1.5x headroom (unused gas is not charged)
        gas = int(client.estimate_gas(data.prepare("anchor", *payloads[0])) * 1.5)
    lat = []
    t0 = time.perf_counter()
    for k in range(0, len(payloads), chunk):
        part = payloads[k:k + chunk]
        s = time.perf_counter()
        out = client.send_many([data.prepare("anchor", b, sig, gas=gas) for b, sig in part])
        e = time.perf_counter() - s
        assert all(o.ok for o in out), [str(o.error) for o in out if not o.ok][:3]
        lat.extend([e] * len(part))  # every tx of a chunk is confirmed when the chunk returns
    return time.perf_counter() - t0, lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    ap.add_argument("-n", type=int, default=None, help="anchors per method (default 300, quick 40)")
    ap.add_argument("--chunk", type=int, default=100, help="transactions per send_many batch")
    args = ap.parse_args()
    n = args.n or (40 if args.quick else 300)
    rows = []
    labels = [("web3 send-and-wait (defaults)", "web3"), ("bridge transact (sequential)", "transact"),
              (f"bridge send_many (batch of {min(args.chunk, n)})", "many"),
              (f"bridge send_many, gas preset (batch of {min(args.chunk, n)})", "preset")]
    for label, kind in labels:
        # a fresh chain per method: no method pays for the blocks another one left behind
        with Anvil() as node:
            base = ChainConfig(name="bench", rpc_url=node.rpc_url, chain_id=LOCAL_CHAIN_ID)
            cfg = deploy_all(ChainClient(base, demo_signer(0, LOCAL_CHAIN_ID)))
            f = Fleet(ChainClient(cfg, demo_signer(1, LOCAL_CHAIN_ID)))
            payloads = make_payloads(f, n, kind)
            print(f"running {label}: {n} anchors ...", file=sys.stderr, flush=True)
            if kind == "web3":
                total, lat = bench_web3(cfg, 1, payloads)
            elif kind == "transact":
                total, lat = bench_transact(cfg, 1, payloads)
            else:
                total, lat = bench_send_many(cfg, 1, payloads, args.chunk, preset_gas=kind == "preset")
            rows.append((label, n, total, n / total, 1000 * statistics.median(lat), 1000 * pct(lat, 99)))
    print()
    print(f"Anchoring {n} telemetry batches (DataRegistry.anchor, EIP-712-signed, 64-leaf Merkle roots) on a local anvil (automine)")
    print()
    print("| method | tx | total s | tx/s | latency p50 ms | latency p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, cnt, total, tps, p50, p99 in rows:
        print(f"| {label} | {cnt} | {total:.2f} | {tps:.0f} | {p50:.1f} | {p99:.1f} |")
    print()
    print("latency: send to receipt per transaction (send_many: per chunk, i.e. the time until every tx in it is mined)")
    from eth_keys.backends import get_backend

    print(f"secp256k1 backend (all methods): {type(get_backend()).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
