"""The fleet policy from the chain: FleetPolicy's events, re-read as a whole at each change.

ROS-free. ``ChainPolicySource`` connects read-only (no key: the listener never signs), reads the
current policy, then follows FleetPolicy's ``PolicyChanged`` events (WebSocket subscription, or
paged eth_getLogs polling as the fallback, with the config's confirmations depth) and after
each one reads the whole policy pinned to the event's block, so a robot never sees half an
update. A policy that fails DePAI's own validation (e.g. a speed beyond the robots' limit) is
reported and skipped: the last valid policy stays in force.

Which chain: the source identity is "chain:<chain id>:<genesis hash, first 10 chars>:<FleetPolicy
address>" (INTERFACES item 3). Every ``check_period_s`` (and whenever the event stream reports
trouble) the genesis is checked (one small RPC, ``ChainWatch``): after a reset (a fresh local
chain, a redeploy) the config file is read again, the policy re-read and published under the new
source identity as a new version sequence, and the event stream restarted from the new chain's
head. A chain that went back in time (restored from a state file older than what was seen) is
re-read too. Each of these is reported once.

Outages are reported once when they start and once when they end (``Outage``), not per failed
poll; reconnecting uses a bounded exponential backoff, every attempt bounded by the RPC timeout.
"""

from __future__ import annotations

import threading
from typing import Callable

from pydantic import ValidationError

from depai_nodes.chain.backoff import Backoff
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import ChainConfig, default_config_path, load_config
from depai_nodes.chain.errors import ChainError
from depai_nodes.chain.events import EventStream
from depai_nodes.chain.fleet import read_policy
from depai_nodes.chain.models import PolicySnapshot
from depai_nodes.chain.watch import ChainWatch
from depai_nodes.common.logthrottle import Outage

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

    ``on_error(message)`` hears about trouble (the first failure of an outage, rejected policies,
    a chain reset); ``on_info(message)`` (default: ``on_error``) about recoveries. Callbacks run
    on the source's threads: hand the data to the ROS executor (the node uses a queue and a timer).
    ``config``: a ChainConfig, or a path (None: the default config path), which is re-read after a
    chain reset.
    """

    def __init__(self, config: ChainConfig | str | None, on_policy: Callable[[Policy, int, str], None],
                 on_error: Callable[[str], None], *, transport: str = "auto", retry_max_s: float = 5.0,
                 check_period_s: float = 2.0, on_info: Callable[[str], None] | None = None):
        if isinstance(config, ChainConfig):
            self.config, self.config_path = config, None
        else:
            self.config_path = config or default_config_path()
            self.config = load_config(self.config_path)
        self.on_policy = on_policy
        self.on_error = on_error
        self.on_info = on_info or on_error
        self.transport = transport
        self.retry_max_s = retry_max_s
        self.check_period_s = check_period_s
        self.client: ChainClient | None = None
        self.stream: EventStream | None = None
        self.source = ""
        self.watch = ChainWatch(self.config, self.config_path, period_s=check_period_s)
        self.outage = Outage(f"chain policy source ({self.config.rpc_url})")
        self.resets = 0
        self._last_version = -1
        self._stop = threading.Event()
        self._trouble = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chain-policy", daemon=True)

    def start(self) -> "ChainPolicySource":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._trouble.set()
        self._stop_stream()
        self._thread.join(5.0)

    def _stop_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.stop()

    def _failed(self, text: str) -> None:
        line = self.outage.failed(text)
        if line:
            self.on_error(line)

    def _recovered(self) -> None:
        line = self.outage.recovered()
        if line:
            self.on_info(line)

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
            self._failed(f"cannot read the policy after change v{ev.get('version')}: {e}")
            self._trouble.set()

    def _on_stream_error(self, e: Exception) -> None:
        if not self.outage.down:
            self._trouble.set()  # check the chain now rather than at the next period
        self._failed(f"event stream: {e}")

    def _connect(self) -> None:
        """(Re)connect to the chain the config names: read the policy, start following it."""
        self._stop_stream()
        if self.config_path is not None:
            try:  # `chain up --fresh` / a redeploy rewrites it (atomically)
                self.config = load_config(self.config_path)
            except ChainError as e:
                self._failed(f"{type(e).__name__}: {e}")
        self.client = ChainClient(self.config)  # read-only: no key; verifies chain id and genesis
        policy = self.client.contract("FleetPolicy")
        genesis = self.client.genesis_hash()
        self.watch.genesis, self.watch.config = genesis, self.config
        source = f"chain:{self.config.chain_id}:{genesis[:10]}:{policy.address}"
        if source != self.source:
            if self.source:
                self.resets += 1
                self.on_error(f"chain reset detected: policy source {self.source} -> {source} (genesis, deploy block "
                              f"{self.config.deploy_block}); re-reading the policy as a new version sequence")
            with self._lock:
                self._last_version = -1  # a new source identity starts a new version sequence
            self.source = source
        head = self.client.block_number()
        self.watch.head = head
        self._publish(max(head - self.config.confirmations, 0))
        self.stream = EventStream(self.client, policy, self._on_event, events=["PolicyChanged"],
                                  from_block=head - self.config.confirmations + 1, mode=self.transport,
                                  on_error=self._on_stream_error).start()

    def _check(self) -> bool:
        """One identity/progress check; True when the source must reconnect (reset or rewind)."""
        change = self.watch.check(self.client)
        if change is not None and change.rewound:
            self.on_error(f"{change.describe()}: re-reading the policy")
            with self._lock:
                self._last_version = -1
            return True
        if change is not None:
            self.config = change.config  # reported by _connect, once
            return True
        return False

    def _run(self) -> None:
        backoff = Backoff(0.5, self.retry_max_s)
        connected = False
        while not self._stop.is_set():
            try:
                if not connected:
                    self._connect()
                    connected = True
                    backoff.reset()
                    self._recovered()
                self._trouble.wait(self.check_period_s)
                self._trouble.clear()
                if self._stop.is_set():
                    return
                if self._check():
                    connected = False
                    continue
                self._recovered()
            except ChainError as e:
                # reconnect (config re-read, policy re-read at the head: nothing missed meanwhile);
                # after ChainResetError nothing is believed from that chain until the config names it
                self._failed(f"{type(e).__name__}: {e}")
                if connected:
                    self._stop_stream()
                    connected = False
                self._stop.wait(backoff.next())
