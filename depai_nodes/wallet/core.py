"""The machine's wallet: validated token payments under the DAO's spending cap.

ROS-free. One process holds the machine's key (the wallet node); other nodes ask it to pay.
Every request is validated (address, amount), checked against the per-machine daily spending
cap that the DAO sets in FleetPolicy (0: no cap), de-duplicated by request id, queued (bounded)
and sent from one worker thread, so nonces stay in order. Progress is reported per request.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from depai_nodes.chain.config import checksum
from depai_nodes.chain.errors import ChainError, InvalidAddressError
from depai_nodes.chain.fleet import Fleet

__all__ = ["WalletError", "SpendingLedger", "parse_transfer", "Wallet", "Status"]

DAY_S = 86_400


class WalletError(ValueError):
    """A transfer request is invalid or not allowed (the message says why)."""


class Status:
    PENDING, SUBMITTED, CONFIRMED, REVERTED, FAILED = 0, 1, 2, 3, 4  # = depai/TxStatus constants


def parse_transfer(to: str, amount: str) -> tuple[str, int]:
    try:
        address = checksum(to)
    except InvalidAddressError as e:
        raise WalletError(f"InvalidAddressError: {e}") from None
    if not isinstance(amount, str) or not amount.isdigit() or len(amount) > 78:
        raise WalletError(f"amount must be a decimal integer of token base units, got {amount!r}")
    value = int(amount)
    if value <= 0 or value >= 2**256:
        raise WalletError(f"amount must be in 1..2**256-1, got {amount}")
    if int(address, 16) == 0:
        raise WalletError("refusing to pay the zero address (tokens would be burnt)")
    return address, value


@dataclass
class SpendingLedger:
    """What was spent per UTC day; ``reserve`` refuses what would exceed the cap (0: no cap)."""

    cap: int = 0
    spent: dict[int, int] = field(default_factory=dict)

    def reserve(self, amount: int, now_s: float | None = None) -> int:
        day = int((time.time() if now_s is None else now_s) // DAY_S)
        would = self.spent.get(day, 0) + amount
        if self.cap and would > self.cap:
            raise WalletError(f"spending cap exceeded: {would} > {self.cap} today (cap set by the fleet DAO)")
        self.spent[day] = would
        return day

    def release(self, day: int, amount: int) -> None:
        self.spent[day] = max(0, self.spent.get(day, 0) - amount)


class Wallet:
    """Queue of validated transfers, sent by one worker; ``on_status(request_id, status, tx_hash, block, error)``."""

    def __init__(self, fleet: Fleet, on_status: Callable[[str, int, str, int, str], None], *, max_queue: int = 100):
        self.fleet = fleet
        self.on_status = on_status
        self.ledger = SpendingLedger()
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wallet", daemon=True)

    def start(self) -> "Wallet":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(5.0)

    def set_cap(self, cap: int) -> None:
        with self._lock:
            self.ledger.cap = cap

    def request(self, request_id: str, to: str, amount: str) -> bool:
        """Validate and queue; False (with a FAILED status) when refused."""
        try:
            if not request_id:
                raise WalletError("empty request_id")
            with self._lock:
                if request_id in self._seen:
                    raise WalletError(f"duplicate request_id {request_id!r} (already handled)")
                address, value = parse_transfer(to, amount)
                day = self.ledger.reserve(value)
                self._seen.add(request_id)
            try:
                self._q.put_nowait((request_id, address, value, day))
            except queue.Full:
                with self._lock:
                    self.ledger.release(day, value)
                raise WalletError(f"wallet queue full ({self._q.maxsize} pending); try again later") from None
        except WalletError as e:
            self.on_status(request_id, Status.FAILED, "", 0, f"WalletError: {e}")
            return False
        self.on_status(request_id, Status.PENDING, "", 0, "")
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._q.get()
            if item is None:
                return
            request_id, address, value, day = item
            try:
                call = self.fleet.token.prepare("transfer", address, value)
                tx_hash = self.fleet.client.transact(call, wait=False)
                self.on_status(request_id, Status.SUBMITTED, tx_hash, 0, "")
                r = self.fleet.client.wait_receipt(tx_hash)
                if r.status != 1:
                    raise self.fleet.client._mined_revert(call, r)
                self.on_status(request_id, Status.CONFIRMED, tx_hash, r.block_number, "")
            except ChainError as e:
                with self._lock:
                    self.ledger.release(day, value)  # not spent after all
                status = Status.REVERTED if type(e).__name__ == "ContractRevertError" else Status.FAILED
                self.on_status(request_id, status, getattr(e, "tx_hash", ""), 0, f"{type(e).__name__}: {e}")
