"""The wallet's durable memory: the request ledger and the daily spend, one file per machine.

ROS-free. Without it a restarted wallet forgot which request ids it had executed (the same
payment request was paid again) and what it had spent today (the DAO's daily cap was exceeded).
Now every state change of a payment request is written *before* the wallet acts on it:

- ``PENDING``   accepted and counted against the cap; not signed yet;
- ``SUBMITTED`` signed; the tx hash, nonce and the signed raw transaction are on disk *before*
  it is sent, so after a crash the request is resolved by that hash (mined? in the pool? its
  nonce used by something else?) and, if the node never got it, the *same* signed transaction
  is sent again (same nonce: it can be mined at most once). Never signed anew;
- ``CONFIRMED`` / ``REVERTED`` / ``FAILED`` final; a request id is executed at most once, and a
  request id seen again is answered from here. FAILED and REVERTED spends are released.

The file is ``<state_dir>/wallet-<address>.json``: JSON, written to a temporary file created
with mode 0600, fsync'ed, renamed over the old one and the directory fsync'ed (a crash leaves the
old or the new file, never half of one). It holds no key (a signed transaction is public once
sent); it is 0600 anyway, since it describes the machine's payments. A write that fails is
fatal (``WalletStateError``): a wallet that cannot remember what it paid must not pay.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

__all__ = ["WalletStateError", "WalletState", "state_path", "FINAL", "DAY_S"]

DAY_S = 86_400
PENDING, SUBMITTED, CONFIRMED, REVERTED, FAILED = "pending", "submitted", "confirmed", "reverted", "failed"
FINAL = frozenset({CONFIRMED, REVERTED, FAILED})
_FORMAT = 1
MAX_REQUESTS = 100_000  # finished requests beyond this are forgotten oldest first (their ids too)
KEEP_DAYS = 8


class WalletStateError(Exception):
    """The state file cannot be read or written: the wallet must not go on paying."""


def state_path(state_dir: str | Path, address: str) -> Path:
    return Path(state_dir) / f"wallet-{address.lower()}.json"


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``: tmp file (0600) + fsync + rename + dir fsync."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        data = text.encode()
        while data:
            n = os.write(fd, data)
            data = data[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class WalletState:
    """Request ledger + spend per UTC day, persisted on every change. Thread-safe."""

    def __init__(self, path: str | Path | None, machine: str, *, clock=time.time):
        self.path = Path(path) if path is not None else None  # None: in memory only (tests of the core)
        self.machine = machine
        self._clock = clock
        self._lock = threading.RLock()
        self.requests: dict[str, dict] = {}
        self.spent: dict[int, int] = {}
        self.cap: int | None = None  # the last fleet cap seen (None: never), so a restart starts capped
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
            if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
                raise ValueError(f"unknown format {raw.get('format') if isinstance(raw, dict) else type(raw).__name__}")
            if str(raw.get("machine", "")).lower() != self.machine.lower():
                raise ValueError(f"belongs to {raw.get('machine')}, not {self.machine}")
            requests = raw.get("requests", {})
            spent = {int(k): int(v) for k, v in raw.get("spent", {}).items()}
            if not isinstance(requests, dict) or not all(isinstance(v, dict) and "state" in v for v in requests.values()):
                raise ValueError("malformed requests")
        except (OSError, ValueError, TypeError) as e:
            raise WalletStateError(f"wallet state {self.path} unreadable ({e}); refusing to pay without it "
                                   "(move it away only if you know no payment is in flight)") from None
        self.requests, self.spent = requests, spent
        cap = raw.get("cap")
        self.cap = int(cap) if cap is not None else None

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            self._prune()
            text = json.dumps({"format": _FORMAT, "machine": self.machine, "saved_at": self._clock(),
                               "cap": None if self.cap is None else str(self.cap),
                               "spent": {str(k): str(v) for k, v in self.spent.items()}, "requests": self.requests},
                              separators=(",", ":"))
            try:
                write_private(self.path, text)
            except OSError as e:
                raise WalletStateError(f"cannot write wallet state {self.path}: {e}") from None

    def _prune(self) -> None:
        today = int(self._clock() // DAY_S)
        for d in [d for d in self.spent if d < today - KEEP_DAYS]:
            del self.spent[d]
        if len(self.requests) > MAX_REQUESTS:
            done = sorted((v.get("t", 0), k) for k, v in self.requests.items() if v["state"] in FINAL)
            for _, k in done[: len(self.requests) - MAX_REQUESTS]:
                del self.requests[k]

    # ------------------------------------------------------------------ spend

    def day(self, now_s: float | None = None) -> int:
        return int((self._clock() if now_s is None else now_s) // DAY_S)

    def set_cap(self, cap: int) -> None:
        with self._lock:
            if cap != self.cap:
                self.cap = cap
                self.save()

    def spent_today(self) -> int:
        with self._lock:
            return self.spent.get(self.day(), 0)

    # ------------------------------------------------------------------ requests

    def get(self, request_id: str) -> dict | None:
        with self._lock:
            r = self.requests.get(request_id)
            return dict(r) if r is not None else None

    def accept(self, request_id: str, to: str, amount: int, cap: int, *, kind: str = "transfer",
               **extra) -> tuple[bool, str, int]:
        """Record a new request and reserve its amount (saved). (accepted, why not, day).

        ``kind``: "transfer" (the payment worker's) or another intent's (e.g. "post": a task
        posted with its reward escrowed), which the payment worker never resumes; the day's
        spend is shared, so the DAO's cap holds over all of them."""
        with self._lock:
            if request_id in self.requests:
                r = self.requests[request_id]
                return False, f"duplicate request_id {request_id!r}: already {r['state']}" + (
                    f" ({r['tx_hash']})" if r.get("tx_hash") else "") + "; a request id is executed at most once", 0
            day = self.day()
            would = self.spent.get(day, 0) + amount
            if cap and would > cap:
                return False, f"spending cap exceeded: {would} > {cap} today (cap set by the fleet DAO)", day
            self.spent[day] = would
            rec = {"state": PENDING, "to": to, "amount": str(amount), "day": day, "t": self._clock(), **extra}
            if kind != "transfer":
                rec["kind"] = kind
            self.requests[request_id] = rec
            self.save()
            return True, "", day

    def update(self, request_id: str, state: str, **fields) -> dict:
        """Move a request on (saved). Final FAILED/REVERTED release the reserved spend once."""
        with self._lock:
            r = self.requests[request_id]
            was = r["state"]
            r.update({k: v for k, v in fields.items() if v is not None})
            r["state"] = state
            r["t"] = self._clock()
            if state in (FAILED, REVERTED) and was not in (FAILED, REVERTED) and not r.get("released"):
                d = int(r["day"])
                self.spent[d] = max(0, self.spent.get(d, 0) - int(r["amount"]))
                r["released"] = True
            self.save()
            return dict(r)

    def open_requests(self, state: str, kind: str = "transfer") -> list[tuple[str, dict]]:
        with self._lock:
            return sorted(((k, dict(v)) for k, v in self.requests.items()
                           if v["state"] == state and v.get("kind", "transfer") == kind), key=lambda kv: kv[1].get("t", 0))

    def committed(self, kind: str) -> int:
        """What the requests of ``kind`` hold or spent, all days (FAILED/REVERTED released): a budget's use."""
        with self._lock:
            return sum(int(v["amount"]) for v in self.requests.values()
                       if v.get("kind", "transfer") == kind and not v.get("released"))

    def forget(self, request_id: str) -> None:
        """Drop a FAILED request (never signed, or its transaction can no longer be mined), so its
        id may be asked again: at most once still holds, nothing of it is on chain."""
        with self._lock:
            r = self.requests.get(request_id)
            if r is not None and r["state"] == FAILED:
                del self.requests[request_id]
                self.save()
