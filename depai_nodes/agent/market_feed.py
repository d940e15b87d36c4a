"""What the task agent reads of TaskMarket, read-only (no key), ROS-free, from one thread.

At start (and after every outage) every task is read (``Fleet.tasks``, pinned to one block), so
nothing is missed and a restarted agent sees what it accepted before; from then on an
``EventStream`` (WebSocket, polling fallback) names the tasks that changed (TaskPosted,
TaskAccepted, TaskCompleted, TaskRefunded, TaskCancelled, MachineSlashed) and each is read again
(``Fleet.task``). The chain's time (the latest block's timestamp: deadlines are judged by it) is
read every ``poll_s``. Everything goes to ``put(item)``:

- ``("tasks", [TaskInfo...], block_time)`` a full read, then ``("synced", head)``
- ``("task", TaskInfo)`` one task that an event named
- ``("time", block_time)`` the latest block's timestamp
- ``("chain_error", text)`` a failed read (the feed goes on; a full read follows the recovery)
- ``("stream_error", text)`` the event stream's own trouble (it falls back to polling itself)
"""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["MarketFeed", "EVENTS"]

EVENTS = ["TaskPosted", "TaskAccepted", "TaskCompleted", "TaskRefunded", "TaskCancelled", "MachineSlashed"]


class MarketFeed:
    def __init__(self, config_path: str | None, put: Callable[[tuple], None], *, poll_s: float = 1.0,
                 event_mode: str = "auto") -> None:
        self.config_path = config_path or None
        self.put = put
        self.poll_s = poll_s
        self.event_mode = event_mode
        self._stop = threading.Event()
        self._changed: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stream = None
        self._client = None
        self._fleet = None
        self._synced = False

    def start(self) -> "MarketFeed":
        self._thread = threading.Thread(target=self._run, name="market-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.stop(timeout_s=2.0)
        if self._thread is not None:
            self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the thread

    def _on_event(self, decoded: dict) -> None:
        tid = (decoded.get("args") or {}).get("taskId")
        if tid is None:
            tid = decoded.get("taskId")
        if tid is not None and not decoded.get("removed"):
            with self._lock:
                self._changed.add(int(tid))

    def _connect(self) -> None:
        from depai_nodes.chain.client import ChainClient
        from depai_nodes.chain.config import load_config
        from depai_nodes.chain.fleet import Fleet

        config = load_config(self.config_path)
        config.address("TaskMarket")
        self._client = ChainClient(config, None, verify_chain=False)
        self._fleet = Fleet(self._client)

    def _sync(self) -> None:
        from depai_nodes.chain.events import EventStream

        head = self._client.block_number()
        tasks = self._fleet.tasks(block=head)
        block_time = int(self._client.get_block(head)["timestamp"], 16)
        with self._lock:
            self._changed.clear()
        if self._stream is None:
            self._stream = EventStream(self._client, self._fleet.market, self._on_event, events=EVENTS, from_block=head + 1,
                                       mode=self.event_mode, confirmations=0, poll_s=self.poll_s,
                                       on_error=lambda e: self.put(("stream_error", str(e))))
            self._stream.start()
        self.put(("tasks", tasks, block_time))
        self.put(("synced", head))
        self._synced = True

    def _step(self) -> None:
        if self._client is None:
            self._connect()
        if not self._synced:
            self._sync()
            return
        with self._lock:
            changed, self._changed = sorted(self._changed), set()
        try:
            for tid in changed:
                self.put(("task", self._fleet.task(tid)))
        except Exception:
            with self._lock:
                self._changed.update(changed)
            raise
        block = self._client.get_block("latest")
        self.put(("time", int(block["timestamp"], 16)))

    def _run(self) -> None:
        from depai_nodes.chain.errors import ChainError

        while not self._stop.is_set():
            try:
                self._step()
            except ChainError as e:
                self._synced = False  # read everything again once the chain answers
                self.put(("chain_error", f"{type(e).__name__}: {e}"))
            except Exception as e:  # noqa: BLE001 - a malformed answer must not end the feed
                self._synced = False
                self.put(("chain_error", f"{type(e).__name__}: {e}"))
            self._stop.wait(self.poll_s)
