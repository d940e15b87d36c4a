"""Contract ABIs from the compiled artifacts: encode calls, decode results, events and reverts.

Built on eth-abi / eth-utils (what web3 itself uses) without a provider, so encoding is a pure
function and the same objects serve the HTTP client, the batch path and the event stream.
Revert data is decoded against the custom errors of *every* artifact, because a revert often
comes from a contract the caller did not address directly (e.g. the token inside TaskMarket).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import eth_abi
from eth_utils import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
    to_checksum_address,
)

from .config import artifacts_dir
from .errors import ArtifactError, ChainError

__all__ = ["ContractABI", "load_abi", "decode_revert", "DecodedLog"]

_PANIC = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to zero-initialised function",
}


def _sig(entry: dict) -> str:
    def t(c: dict) -> str:
        if c["type"].startswith("tuple"):
            return "(" + ",".join(t(x) for x in c["components"]) + ")" + c["type"][5:]
        return c["type"]

    return f"{entry['name']}({','.join(t(i) for i in entry.get('inputs', []))})"


def _named(components: list[dict], values: tuple | list) -> dict:
    """Turn a decoded tuple into a dict keyed by the ABI's component names (recursively)."""
    out = {}
    for i, (c, v) in enumerate(zip(components, values)):
        out[c.get("name") or f"arg{i}"] = _pythonic(c, v)
    return out


def _pythonic(c: dict, v: Any) -> Any:
    """Decoded ABI value -> plain Python: structs as dicts, arrays as lists, checksummed addresses."""
    typ = c["type"]
    if typ.endswith("]"):
        inner = dict(c, type=typ[: typ.rindex("[")])
        return [_pythonic(inner, x) for x in v]
    if typ == "tuple":
        return _named(c["components"], v)
    if typ == "address":
        return to_checksum_address(v)
    return v


class DecodedLog(dict):
    """An event's arguments by name, plus ``event``, ``address``, ``block_number``, ``tx_hash``, ``log_index``."""


class ContractABI:
    """One contract's ABI (and bytecode, when compiled here)."""

    def __init__(self, name: str, abi: list[dict], bytecode: str = "0x"):
        self.name = name
        self.abi = abi
        self.bytecode = bytecode
        self.functions: dict[str, dict] = {}
        self.events: dict[str, dict] = {}
        self.errors: dict[bytes, dict] = {}
        self._topics: dict[bytes, dict] = {}
        for e in abi:
            if e["type"] == "function":
                if e["name"] in self.functions:  # overloads: keep the first, address others by signature
                    self.functions[_sig(e)] = e
                else:
                    self.functions[e["name"]] = e
            elif e["type"] == "event":
                self.events[e["name"]] = e
                self._topics[event_abi_to_log_topic(e)] = e
            elif e["type"] == "error":
                self.errors[function_abi_to_4byte_selector(e)] = e

    def __repr__(self) -> str:
        return f"ContractABI({self.name!r}, {len(self.functions)} functions, {len(self.events)} events)"

    def _fn(self, fn: str) -> dict:
        try:
            return self.functions[fn]
        except KeyError:
            raise ChainError(f"{self.name} has no function {fn!r}") from None

    def encode_call(self, fn: str, args: tuple | list = ()) -> str:
        """0x-hex calldata for ``fn(*args)``."""
        entry = self._fn(fn)
        types = get_abi_input_types(entry)
        if len(args) != len(types):
            raise ChainError(f"{self.name}.{fn} takes {len(types)} argument(s), got {len(args)}")
        try:
            return "0x" + (function_abi_to_4byte_selector(entry) + eth_abi.encode(types, list(args))).hex()
        except (TypeError, ValueError, OverflowError) as e:  # eth_abi's EncodingError is a ValueError-like
            raise ChainError(f"{self.name}.{fn}: cannot encode arguments: {e}") from None
        except Exception as e:  # eth_abi raises its own EncodingTypeError hierarchy
            raise ChainError(f"{self.name}.{fn}: cannot encode arguments: {e}") from None

    def encode_deploy(self, args: tuple | list = ()) -> str:
        if not self.bytecode or self.bytecode == "0x":
            raise ArtifactError(f"{self.name}: artifact has no bytecode")
        ctor = next((e for e in self.abi if e["type"] == "constructor"), None)
        tail = b"" if ctor is None else eth_abi.encode(get_abi_input_types(ctor), list(args))
        return self.bytecode + tail.hex()

    def decode_output(self, fn: str, data: str | bytes) -> Any:
        """Decode a call's return data: one output -> that value, several -> dict by name."""
        entry = self._fn(fn)
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else data
        outputs = entry.get("outputs", [])
        if not outputs:
            return None
        values = eth_abi.decode(get_abi_output_types(entry), raw)
        if len(outputs) == 1:
            return _pythonic(outputs[0], values[0])
        return _named(outputs, values)

    def topic(self, event: str) -> str:
        try:
            return "0x" + event_abi_to_log_topic(self.events[event]).hex()
        except KeyError:
            raise ChainError(f"{self.name} has no event {event!r}") from None

    def decode_log(self, log: dict) -> DecodedLog | None:
        """Decode a raw JSON-RPC log object; None when it is not one of this ABI's events."""
        topics = log.get("topics") or []
        if not topics:
            return None
        entry = self._topics.get(bytes.fromhex(topics[0][2:]))
        if entry is None:
            return None
        indexed = [i for i in entry["inputs"] if i.get("indexed")]
        plain = [i for i in entry["inputs"] if not i.get("indexed")]
        out = DecodedLog()
        for comp, topic in zip(indexed, topics[1:]):
            raw = bytes.fromhex(topic[2:])
            if comp["type"] in ("string", "bytes") or comp["type"].endswith("]") or comp["type"].startswith("tuple"):
                out[comp["name"]] = raw  # a hash of the value, by the ABI's rules
            else:
                out[comp["name"]] = _pythonic(comp, eth_abi.decode([comp["type"]], raw)[0])
        data = log.get("data") or "0x"
        if plain:
            values = eth_abi.decode([_sig({"name": "", "inputs": [p]})[1:-1] for p in plain], bytes.fromhex(data[2:]))
            for comp, v in zip(plain, values):
                out[comp["name"]] = _pythonic(comp, v)
        out["event"] = entry["name"]
        out["address"] = to_checksum_address(log["address"])
        out["block_number"] = int(log["blockNumber"], 16) if log.get("blockNumber") else None
        out["tx_hash"] = log.get("transactionHash")
        out["log_index"] = int(log["logIndex"], 16) if log.get("logIndex") else None
        out["removed"] = bool(log.get("removed", False))
        return out


@lru_cache(maxsize=None)
def _load(path: str) -> ContractABI:
    p = Path(path)
    try:
        art = json.loads(p.read_text())
        return ContractABI(art["contractName"], art["abi"], art.get("bytecode", "0x"))
    except FileNotFoundError:
        raise ArtifactError(f"no artifact {p} (run scripts/setup.sh to compile chain/contracts)") from None
    except (ValueError, KeyError) as e:
        raise ArtifactError(f"artifact {p} unreadable: {e}") from None


def load_abi(name: str, directory: str | Path | None = None) -> ContractABI:
    """The compiled artifact ``chain/artifacts/<name>.json`` (cached)."""
    return _load(str(Path(directory or artifacts_dir()) / f"{name}.json"))


@lru_cache(maxsize=None)
def _all_errors(directory: str) -> dict[bytes, tuple[str, dict]]:
    table: dict[bytes, tuple[str, dict]] = {}
    d = Path(directory)
    if d.is_dir():
        for f in sorted(d.glob("*.json")):
            try:
                c = _load(str(f))
            except ArtifactError:
                continue
            for sel, e in c.errors.items():
                table.setdefault(sel, (c.name, e))
    return table


def decode_revert(data: str | bytes | None, directory: str | Path | None = None) -> tuple[str, dict, str]:
    """(error name, args, readable reason) for revert data; ('', {}, ...) when undecodable."""
    if data is None:
        return "", {}, "reverted without data"
    if isinstance(data, str):
        if not data.startswith("0x"):
            return "", {}, data
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            return "", {}, data
    else:
        raw = data
    if len(raw) < 4:
        return "", {}, "reverted without a reason"
    sel, body = raw[:4], raw[4:]
    try:
        if sel == bytes.fromhex("08c379a0"):
            (msg,) = eth_abi.decode(["string"], body)
            return "Error", {"message": msg}, msg
        if sel == bytes.fromhex("4e487b71"):
            (code,) = eth_abi.decode(["uint256"], body)
            return "Panic", {"code": code}, f"panic 0x{code:02x}: {_PANIC.get(code, 'unknown')}"
        found = _all_errors(str(directory or artifacts_dir())).get(sel)
        if found:
            _, entry = found
            args = _named(entry["inputs"], eth_abi.decode(get_abi_input_types(entry), body))
            shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
            return entry["name"], args, f"{entry['name']}({shown})"
    except Exception:  # malformed revert payload: fall through to the raw form
        pass
    return "", {}, f"unknown revert data 0x{raw.hex()}"


def _show(v: Any) -> str:
    if isinstance(v, bytes):
        try:
            text = v.rstrip(b"\0").decode("ascii")
            if text.isprintable() and text:
                return repr(text)
        except UnicodeDecodeError:
            pass
        return "0x" + v.hex()
    return str(v)
