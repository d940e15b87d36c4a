"""A small JSON-RPC 2.0 client over HTTP with typed failures and batching.

Why not web3's provider: the bridge needs (a) one JSON-RPC *batch* carrying hundreds of
pre-signed transactions or receipt queries, (b) a hard per-request timeout, and (c) every
failure mapped to one typed error (down, slow, error object). A keep-alive session gives
sub-millisecond round trips to a local node.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any, Iterable

import requests

from .errors import RpcResponseError, RpcTimeoutError, RpcUnavailableError

__all__ = ["RpcClient", "RpcReply"]


@dataclass(frozen=True)
class RpcReply:
    """One answer inside a batch: either ``result`` or ``error`` (the JSON-RPC error object)."""

    result: Any = None
    error: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class RpcClient:
    """Thread-safe JSON-RPC over HTTP. ``call`` raises typed errors; ``batch`` returns replies."""

    def __init__(self, url: str, timeout_s: float = 10.0, *, pool: int = 4):
        self.url = url
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"RpcClient({self.url!r}, timeout_s={self.timeout_s})"

    def close(self) -> None:
        self._session.close()

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _post(self, payload: object, method: str) -> Any:
        try:
            resp = self._session.post(
                self.url,
                data=json.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=(min(self.timeout_s, 5.0), self.timeout_s),
            )
        except requests.exceptions.Timeout:
            raise RpcTimeoutError(
                f"{method}: no answer from {self.url} within {self.timeout_s:g} s", url=self.url, method=method
            ) from None
        except requests.exceptions.ConnectionError as e:
            raise RpcUnavailableError(
                f"{method}: cannot reach {self.url} ({type(e).__name__})", url=self.url, method=method
            ) from None
        except requests.exceptions.RequestException as e:
            raise RpcUnavailableError(f"{method}: request to {self.url} failed: {e}", url=self.url, method=method) from None
        if resp.status_code >= 500 or resp.status_code in (502, 503, 504):
            raise RpcUnavailableError(f"{method}: {self.url} answered HTTP {resp.status_code}", url=self.url, method=method)
        try:
            return resp.json()
        except ValueError:
            raise RpcResponseError(
                f"{method}: {self.url} answered HTTP {resp.status_code} with non-JSON", url=self.url, method=method
            ) from None

    def call(self, method: str, params: list | None = None) -> Any:
        """One request; returns ``result`` or raises RpcResponseError carrying code and data."""
        body = self._post({"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": params or []}, method)
        if not isinstance(body, dict):
            raise RpcResponseError(f"{method}: malformed JSON-RPC answer", url=self.url, method=method)
        if "error" in body and body["error"] is not None:
            err = body["error"]
            raise RpcResponseError(
                f"{method}: {err.get('message', err)}", code=err.get("code"), data=err.get("data"), url=self.url, method=method
            )
        return body.get("result")

    def batch(self, calls: Iterable[tuple[str, list]]) -> list[RpcReply]:
        """Many requests in one HTTP round trip; replies in the order of ``calls``.

        Transport failures (down, slow) raise for the whole batch; per-call JSON-RPC errors come
        back as ``RpcReply.error`` so one bad transaction does not hide the others' results.
        """
        calls = list(calls)
        if not calls:
            return []
        with self._lock:  # ids unique per client, so replies can be matched under concurrency
            ids = [next(self._ids) for _ in range(len(calls))]
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, calls)]
        body = self._post(payload, f"batch[{len(calls)}]")
        if isinstance(body, dict):  # some servers answer a whole-batch failure with one object
            err = body.get("error") or {"message": "batch rejected"}
            raise RpcResponseError(f"batch: {err.get('message')}", code=err.get("code"), url=self.url, method="batch")
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        out = []
        for i in ids:
            item = by_id.get(i)
            if item is None:
                out.append(RpcReply(error={"code": -32603, "message": "no reply in batch"}))
            elif item.get("error") is not None:
                out.append(RpcReply(error=item["error"]))
            else:
                out.append(RpcReply(result=item.get("result")))
        return out
