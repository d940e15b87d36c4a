"""Typed errors of the chain bridge.

Every failure the bridge can meet maps to one class here, so callers (nodes, the CLI, tests)
branch on the type rather than on message text. Messages and reprs never contain key material:
errors are built from addresses, hashes, RPC URLs and decoded revert data only.
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "ConfigError",
    "ArtifactError",
    "InvalidAddressError",
    "SignerError",
    "RpcError",
    "RpcUnavailableError",
    "RpcTimeoutError",
    "RpcResponseError",
    "WrongChainError",
    "ChainResetError",
    "ContractRevertError",
    "TxRejectedError",
    "TxTimeoutError",
    "NonceError",
    "EventStreamError",
    "AnvilError",
    "DeployError",
]


class ChainError(Exception):
    """Base of every error raised by depai_nodes.chain."""


class ConfigError(ChainError):
    """A chain config file or field is missing or invalid (the message names which)."""


class ArtifactError(ChainError):
    """A compiled contract artifact is missing or unreadable (run scripts/setup.sh)."""


class InvalidAddressError(ChainError, ValueError):
    """A malformed address: not 20 bytes of hex, or a mixed-case address with a bad checksum."""

    def __init__(self, value: object, reason: str):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        super().__init__(f"invalid address {shown}: {reason}")
        self.reason = reason


class SignerError(ChainError):
    """No usable signing key: keystore missing, wrong passphrase, demo key on a real network."""



class RpcError(ChainError):
    """The JSON-RPC endpoint failed to answer a request properly."""

    def __init__(self, message: str, *, url: str = "", method: str = ""):
        super().__init__(message)
        self.url = url
        self.method = method


class RpcUnavailableError(RpcError):
    """The endpoint refused or dropped the connection (node down, wrong port, network gone)."""


class RpcTimeoutError(RpcError):
    """The endpoint did not answer within the configured timeout (node slow or stalled)."""


class RpcResponseError(RpcError):
    """The endpoint answered with a JSON-RPC error object that is not a revert."""

    def __init__(self, message: str, *, code: int | None = None, data: object = None, url: str = "", method: str = ""):
        super().__init__(message, url=url, method=method)
        self.code = code
        self.data = data


class WrongChainError(ChainError):
    """The endpoint serves another chain than the config names (would sign for the wrong chain)."""

    def __init__(self, expected: int, actual: int, url: str = ""):
        super().__init__(f"chain id mismatch at {url or 'endpoint'}: config expects {expected}, node reports {actual}")
        self.expected = expected
        self.actual = actual


class ChainResetError(ChainError):
    """The endpoint serves the configured chain id but not the configured chain: its genesis block
    differs (a local chain restarted fresh, or another network with the same id). Everything the
    node knew from that chain (nonce, policy versions, anchored batches, DIDs) must be re-read."""

    def __init__(self, expected: str, actual: str, url: str = ""):
        super().__init__(f"chain reset at {url or 'endpoint'}: config expects genesis {expected[:18]}..., node reports {actual[:18]}...")
        self.expected = expected
        self.actual = actual


class ContractRevertError(ChainError):
    """A call or transaction reverted. Carries the decoded reason.

    Attributes: ``error`` (custom error name such as ``NotDidOwner``, ``Error`` for
    require-strings, ``Panic`` for asserts, ``""`` when undecodable), ``args`` as a dict,
    ``reason`` (a readable one-line summary), ``data`` (raw revert bytes, hex), ``tx_hash``
    when a mined transaction reverted (empty for calls and gas estimation).
    """

    def __init__(self, *, contract: str, function: str, error: str, args: dict | None, reason: str, data: str = "", tx_hash: str = ""):
        where = f"{contract}.{function}" if contract else function
        super().__init__(f"{where} reverted: {reason}" + (f" (tx {tx_hash})" if tx_hash else ""))
        self.contract = contract
        self.function = function
        self.error = error
        self.error_args = args or {}
        self.reason = reason
        self.data = data
        self.tx_hash = tx_hash


class TxRejectedError(ChainError):
    """The node refused a signed transaction (underpriced, insufficient funds, bad nonce...)."""

    def __init__(self, message: str, *, tx_hash: str = ""):
        super().__init__(message)
        self.tx_hash = tx_hash


class TxTimeoutError(ChainError):
    """No receipt (or not enough confirmations) within the timeout. The transaction may still be
    mined later: ``tx_hash`` lets the caller keep tracking it, so nothing is lost."""

    def __init__(self, tx_hash: str, timeout_s: float, *, confirmations: int = 0):
        what = f"{confirmations} confirmation(s)" if confirmations > 1 else "a receipt"
        super().__init__(f"no {what} for {tx_hash} within {timeout_s:g} s; it may still be mined")
        self.tx_hash = tx_hash
        self.timeout_s = timeout_s


class NonceError(ChainError):
    """The local nonce and the chain disagree and could not be reconciled."""


class EventStreamError(ChainError):
    """The event stream could not be (re)established within its retry budget."""


class AnvilError(ChainError):
    """The local anvil node could not be found, started or stopped."""


class DeployError(ChainError):
    """Deploying or wiring the contracts failed (the message names the step)."""
