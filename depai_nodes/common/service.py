"""Service calls that survive a server's restart: one request, sent again while it is unanswered.

Why one send is not enough over DDS: `wait_for_service` / `service_is_ready` only say that *some*
server is in the graph. A server killed with `kill -9` says no goodbye and stays discovered until
its lease ends; a respawned one is listed before all of its endpoints have matched this client.
A request sent in either window is dropped with nobody to answer it, and a caller that sent it
once waits out its whole timeout (telemetry's anchors: 90 s, the robot parked unpaid at its goal).

`PendingCall` sends the request, and while no answer has come sends the same request again after
``resend_s``, then after twice that, and so on, until ``timeout_s``; the first answer wins and the
other copies are dropped from the client. Only for idempotent requests (the wallet's intents carry
their batch, task or request id; get_state and parameter reads are reads): a repeat is answered as
the first was, never executed twice. ``resend_s=None`` sends once (a lifecycle transition).

Two ways to use it: ``wait()`` blocks (a node's worker thread; the executor delivers the answer
meanwhile), ``poll()`` never blocks (a timer callback checks it every tick). Deadlines are on the
steady wall clock: they measure a process answering, not simulated time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PendingCall", "ANSWERED", "PENDING", "EXPIRED"]

ANSWERED, PENDING, EXPIRED = "answered", "pending", "expired"


class PendingCall:
    def __init__(self, client, request, timeout_s: float, resend_s: float | None = 5.0, *, kind: str = "",
                 data: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.request, self.kind, self.data = client, request, kind, data
        self.timeout_s = timeout_s
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + timeout_s
        self._gap = resend_s
        self._next_send = self.started + resend_s if resend_s is not None else math.inf
        self._futures: list = []
        self._event = threading.Event()
        self.result: Any = None
        self.state = PENDING
        self._send()

    @property
    def sends(self) -> int:
        return len(self._futures)

    def _send(self) -> None:
        future = self.client.call_async(self.request)
        future.add_done_callback(lambda _f: self._event.set())
        self._futures.append(future)

    def _finish(self, state: str, result: Any = None) -> str:
        self.state, self.result = state, result
        for f in self._futures:
            if not f.done() or f.result() is not result:
                self.client.remove_pending_request(f)
        return state

    def poll(self) -> str:
        """ANSWERED (``.result`` holds the response), PENDING, or EXPIRED (no answer in time)."""
        if self.state != PENDING:
            return self.state
        answered = next((f for f in self._futures if f.done() and f.result() is not None), None)
        if answered is not None:
            return self._finish(ANSWERED, answered.result())
        now = self._clock()
        if now >= self.deadline:
            return self._finish(EXPIRED)
        if now >= self._next_send:
            if self.client.service_is_ready():
                self._send()
                self._gap *= 2
                self._next_send = now + self._gap
            else:
                self._next_send = now + 0.5  # no server matched right now: send once one is
        return PENDING

    def wait(self) -> str:
        """Block until answered or expired; the same states as poll()."""
        while self.poll() == PENDING:
            self._event.wait(max(0.0, min(self.deadline, self._next_send) - self._clock()) + 0.001)
            self._event.clear()
        return self.state

    def cancel(self) -> None:
        if self.state == PENDING:
            self._finish(EXPIRED)
