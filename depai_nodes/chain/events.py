"""Contract events delivered to a Python callback: WebSocket ``eth_subscribe`` first, paged
``eth_getLogs`` polling as the fallback, a confirmations depth for reorg safety.

Delivery rules (what a caller can rely on):
- in chain order, each (tx hash, log index) at most once, from ``from_block`` on;
- nothing is lost when the WebSocket is absent or drops: the stream continues by polling from
  the block after the last one it delivered;
- with ``confirmations`` = N > 0 an event is delivered only once N blocks sit on top of it
  (polling up to head - N), so a shallow reorg never reaches the callback; with N = 0 the
  WebSocket path delivers at once and a reorged-out log arrives again with ``removed`` True.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Callable

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from .client import BoundContract, ChainClient
from .errors import ChainError, EventStreamError

__all__ = ["EventStream"]

log = logging.getLogger("depai.chain.events")


class EventStream:
    """Streams decoded events of one contract to ``on_event(decoded_log)`` from a thread.

    ``mode``: "auto" (WebSocket when the config has ws_url, else polling; falls back to polling
    when the socket fails), "ws" (same, and ``start`` fails if the socket cannot open) or "poll".
    ``on_error(exc)`` hears about transport trouble; the stream keeps going (each poll has the
    RPC timeout; failed polls are retried at the poll interval, never in a tight loop).
    """

    def __init__(self, client: ChainClient, contract: BoundContract, on_event: Callable[[dict], None], *,
                 events: list[str] | None = None, from_block: int | None = None, mode: str = "auto",
                 confirmations: int | None = None, poll_s: float | None = None,
                 on_error: Callable[[Exception], None] | None = None):
        if mode not in ("auto", "ws", "poll"):
            raise ValueError("mode must be auto, ws or poll")
        self.client = client
        self.contract = contract
        self.on_event = on_event
        self.on_error = on_error or (lambda e: log.warning("event stream: %s", e))
        names = events or list(contract.abi.events)
        self.topics = [[contract.abi.topic(n) for n in names]]
        self.confirmations = client.config.confirmations if confirmations is None else confirmations
        self.poll_s = client.config.event_poll_s if poll_s is None else poll_s
        self.mode = mode
        self.next_block = from_block
        self.transport = "none"  # "ws" or "poll", for status and tests
        self._seen: OrderedDict = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws = None
        self._behind = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EventStream({self.contract.name}, transport={self.transport}, next_block={self.next_block})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "EventStream":
        if self.next_block is None:
            self.next_block = self.client.config.deploy_block
        use_ws = self.mode in ("auto", "ws") and self.client.config.ws_url and self.confirmations == 0
        if self.mode == "ws" and not self.client.config.ws_url:
            raise EventStreamError("mode 'ws' needs ws_url in the chain config")
        if use_ws:
            try:
                self._open_ws()
                self.transport = "ws"
            except (OSError, WebSocketException, ChainError, TimeoutError) as e:
                if self.mode == "ws":
                    raise EventStreamError(f"cannot subscribe over {self.client.config.ws_url}: {e}") from None
                self.on_error(EventStreamError(f"WebSocket unavailable ({e}); polling eth_getLogs instead"))
                self.transport = "poll"
        else:
            self.transport = "poll"
        self._thread = threading.Thread(target=self._run, name=f"events-{self.contract.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> "EventStream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ delivery

    def _deliver(self, raw: dict) -> None:
        key = (raw.get("transactionHash"), raw.get("logIndex"), bool(raw.get("removed", False)))
        with self._lock:
            if key in self._seen:
                return
            self._seen[key] = True
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)
        try:
            decoded = self.contract.abi.decode_log(raw)
        except Exception as e:  # a malformed log (wrong data for its topic) must not kill the stream
            self.on_error(EventStreamError(f"ignored a malformed {self.contract.name} log in tx "
                                           f"{raw.get('transactionHash')}: {type(e).__name__}: {e}"))
            return
        if decoded is None:
            return
        bn = decoded["block_number"] or 0
        if not decoded["removed"] and bn + 1 > (self.next_block or 0):
            self.next_block = bn + 1
        try:
            self.on_event(decoded)
        except Exception as e:  # a faulty callback must not kill the stream
            self.on_error(e)

    def _catch_up(self) -> None:
        """Deliver every log from next_block up to head - confirmations (paged)."""
        head = self.client.block_number()
        safe = head - self.confirmations
        if head + 1 < (self.next_block or 0) - self.confirmations:
            # the chain is behind what was already delivered: reset or restored from an older
            # state. Waiting would silently skip every event until it catches up: say so (once).
            if not self._behind:
                self._behind = True
                self.on_error(EventStreamError(f"chain head {head} is behind block {self.next_block - 1} already delivered "
                                               "(chain reset or rewound?); the owner must re-read its state"))
            return
        self._behind = False
        if safe < self.next_block:
            return
        logs = self.client.get_logs(self.contract.address, self.topics, self.next_block, safe)
        for raw in sorted(logs, key=lambda l: (int(l["blockNumber"], 16), int(l["logIndex"], 16))):
            self._deliver(raw)
        self.next_block = max(self.next_block, safe + 1)

    # ------------------------------------------------------------------ transports

    def _open_ws(self) -> None:
        cfg = self.client.config
        # entered explicitly (it is closed in stop()/on failure): the context-manager protocol
        # is what websockets 17 expects, and works the same on older versions
        ws = ws_connect(cfg.ws_url, open_timeout=cfg.rpc_timeout_s, close_timeout=1, max_size=2**24).__enter__()
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                            "params": ["logs", {"address": self.contract.address, "topics": self.topics}]}))
        deadline = time.monotonic() + cfg.rpc_timeout_s
        while True:
            reply = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if reply.get("id") == 1:
                break
        if reply.get("error"):
            ws.close()
            raise EventStreamError(f"eth_subscribe refused: {reply['error'].get('message')}")
        self._ws = ws

    def _run(self) -> None:
        # Subscribed first, then caught up: events in between arrive twice and are deduplicated.
        try:
            self._catch_up()
        except ChainError as e:
            self.on_error(e)
        while not self._stop.is_set():
            if self.transport == "ws":
                self._run_ws()
            else:
                self._poll_once()
                self._stop.wait(self.poll_s)

    def _run_ws(self) -> None:
        ws = self._ws
        try:
            while not self._stop.is_set():
                try:
                    msg = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                body = json.loads(msg)
                if body.get("method") == "eth_subscription":
                    self._deliver(body["params"]["result"])
        except (WebSocketException, OSError, ValueError) as e:
            if self._stop.is_set():
                return
            self.on_error(EventStreamError(f"WebSocket dropped ({type(e).__name__}); continuing by polling"))
            self._ws = None
            self.transport = "poll"

    def _poll_once(self) -> None:
        try:
            self._catch_up()
        except ChainError as e:
            self.on_error(e)
