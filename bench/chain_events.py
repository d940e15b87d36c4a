"""Event delivery latency: a FleetPolicy change -> the Python callback.

The change is a direct call by the policy's owner, the timelock (anvil impersonation stands in
for the end of a governance round, which test/chain runs for real). Latency = from just before
eth_sendTransaction to the moment the callback sees the MaxSpeedSet event, on a local anvil
(automine). Transports of depai_nodes.chain.events.EventStream, side by side:

  WebSocket eth_subscribe          pushed by the node
  get_logs polling (fallback)      eth_blockNumber + paged eth_getLogs every poll interval

    python bench/chain_events.py [--quick] [-n N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depai_nodes.chain.anvil import Anvil  # noqa: E402
from depai_nodes.chain.client import ChainClient  # noqa: E402
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig  # noqa: E402
from depai_nodes.chain.deploy import deploy_all  # noqa: E402
from depai_nodes.chain.events import EventStream  # noqa: E402
from depai_nodes.chain.signer import demo_signer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def measure(client: ChainClient, mode: str, poll_s: float, n: int, start_speed: int) -> list[float]:
    policy = client.contract("FleetPolicy")
    timelock = client.contract("FleetTimelock").address
    arrived: dict[int, float] = {}
    cond = threading.Condition()

    def on_event(ev):
        if ev["event"] == "MaxSpeedSet":
            with cond:
                arrived[ev["maxSpeedMmPerS"]] = time.perf_counter()
                cond.notify_all()

    stream = EventStream(client, policy, on_event, events=["MaxSpeedSet"], mode=mode, poll_s=poll_s,
                         from_block=client.block_number() + 1).start()
    assert stream.transport == mode
    lat = []
    try:
        for i in range(n):
            speed = start_speed + i
            data = policy.abi.encode_call("setMaxSpeed", (speed,))
            time.sleep(0.013 * (i % 7))  # de-phase from the poll timer
            t0 = time.perf_counter()
            client.rpc.call("eth_sendTransaction", [{"from": timelock, "to": policy.address, "data": data, "gas": hex(200_000)}])
            with cond:
                if not cond.wait_for(lambda: speed in arrived, timeout=10):
                    raise RuntimeError(f"{mode}: event for speed {speed} not delivered within 10 s")
            lat.append(arrived[speed] - t0)
    finally:
        stream.stop()
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=None, help="policy changes per transport (default 100, quick 15)")
    args = ap.parse_args()
    n = args.n or (15 if args.quick else 100)
    with Anvil() as node:
        base = ChainConfig(name="bench", rpc_url=node.rpc_url, ws_url=node.ws_url, chain_id=LOCAL_CHAIN_ID)
        cfg = deploy_all(ChainClient(base, demo_signer(0, LOCAL_CHAIN_ID)))
        client = ChainClient(cfg)
        tl = cfg.contracts.FleetTimelock
        client.rpc_local("anvil_impersonateAccount", [tl])
        client.rpc_local("anvil_setBalance", [tl, hex(10**20)])
        rows = []
        for label, mode, poll in [("WebSocket eth_subscribe", "ws", 0.25), ("get_logs polling, 250 ms (default)", "poll", 0.25),
                                  ("get_logs polling, 50 ms", "poll", 0.05)]:
            print(f"running {label}: {n} changes ...", file=sys.stderr, flush=True)
            lat = measure(client, mode, poll, n, 1000 + 1000 * len(rows))
            rows.append((label, n, 1000 * statistics.median(lat), 1000 * pct(lat, 99), 1000 * max(lat)))
    print()
    print(f"Policy change (FleetPolicy.setMaxSpeed by its timelock owner) -> Python callback, {n} changes per transport, local anvil (automine)")
    print()
    print("| transport | changes | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for label, cnt, p50, p99, mx in rows:
        print(f"| {label} | {cnt} | {p50:.1f} | {p99:.1f} | {mx:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
