"""The fleet policy from the chain: FleetPolicy's events, re-read as a whole at each change.

ROS-free. ``ChainPolicySource`` connects read-only (no key: the listener never signs), reads the
current policy, then follows FleetPolicy's ``PolicyChanged`` events (WebSocket subscription, or
paged eth_getLogs polling as the fallback, with the config's confirmations depth) and after
each one reads the whole policy pinned to the event's block, so a robot never sees half an
update. A policy that fails DePAI's own validation (e.g. a speed beyond the robots' limit) is
reported and skipped: the last valid policy stays in force. While the chain is unreachable the
source retries with a capped backoff; every attempt is bounded by the RPC timeout.
"""

from __future__ import annotations

import threading
from typing import Callable

from pydantic import ValidationError

from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import ChainConfig, load_config
from depai_nodes.chain.errors import ChainError
from depai_nodes.chain.events import EventStream
from depai_nodes.chain.fleet import read_policy
from depai_nodes.chain.models import PolicySnapshot

from .core import KeepOutZone, Policy, PolicyError

__all__ = ["snapshot_to_policy", "ChainPolicySource"]


def snapshot_to_policy(snap: PolicySnapshot) -> Policy:
    """On-chain FleetPolicy snapshot -> the validated Policy model the node publishes."""
    try:
        return Policy(
            max_speed=snap.max_speed,
            paused=snap.paused,
            keep_out_zones=[KeepOutZone(id=z.id, polygon=z.polygon) for z in snap.keep_out_zones],
            min_task_price=snap.min_task_price,
            spending_cap=snap.spending_cap,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise PolicyError(f"on-chain policy v{snap.version} rejected: {where}: {first['msg']}") from None


class ChainPolicySource:
    """Calls ``on_policy(policy, version, source)`` for the current policy and every change.

    ``on_error(message)`` hears about connection trouble and rejected policies. Callbacks run on
    the source's threads: hand the data to the ROS executor (the node uses a queue and a timer).
    """

    def __init__(self, config: ChainConfig | str | None, on_policy: Callable[[Policy, int, str], None],
                 on_error: Callable[[str], None], *, transport: str = "auto", retry_max_s: float = 30.0):
        self.config = config if isinstance(config, ChainConfig) else load_config(config or None)
        self.on_policy = on_policy
        self.on_error = on_error
        self.transport = transport
        self.retry_max_s = retry_max_s
        self.client: ChainClient | None = None
        self.stream: EventStream | None = None
        self.source = ""
        self._last_version = -1
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chain-policy", daemon=True)

    def start(self) -> "ChainPolicySource":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.stream is not None:
            self.stream.stop()
        self._thread.join(5.0)

    def _publish(self, block: int | str) -> None:
        snap = read_policy(self.client, block)
        with self._lock:
            if snap.version <= self._last_version:
                return  # already published (a duplicate or an older event)
            self._last_version = snap.version
        try:
            policy = snapshot_to_policy(snap)
        except PolicyError as e:
            self.on_error(f"{e}; keeping the last valid policy")
            return
        self.on_policy(policy, snap.version, self.source)

    def _on_event(self, ev: dict) -> None:
        if ev.get("event") != "PolicyChanged":
            return
        try:
            # a removed (reorged) log: re-read at the head; otherwise pinned to the change's block
            self._publish("latest" if ev.get("removed") else ev["block_number"])
        except ChainError as e:
            self.on_error(f"cannot read the policy after change v{ev.get('version')}: {e}")

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.client = ChainClient(self.config)  # read-only: no key
                policy = self.client.contract("FleetPolicy")
                self.source = f"chain:{self.config.chain_id}:{policy.address}"
                head = self.client.block_number()
                self._publish(max(head - self.config.confirmations, 0))
                self.stream = EventStream(self.client, policy, self._on_event, events=["PolicyChanged"],
                                          from_block=head - self.config.confirmations + 1, mode=self.transport,
                                          on_error=lambda e: self.on_error(str(e))).start()
                return  # the stream's own thread carries on (and falls back to polling by itself)
            except ChainError as e:
                self.on_error(f"chain policy source: {e}; retrying in {delay:.1f} s")
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.retry_max_s)
