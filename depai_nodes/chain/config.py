"""Chain configuration: which network, which contracts, how to sign, how patient to be.

One file (YAML or JSON) describes a deployment; the same code targets the local anvil, peaq
(chain id 3338) or agung (9990) by configuration alone. `depai chain up` writes the local one
(default ``.depai/chain.local.json``); examples for real networks are in ``chain/networks/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import yaml
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from depai_nodes.common.yamlfile import safe_load_unique

from .errors import ConfigError, InvalidAddressError

__all__ = [
    "PEAQ_DID_PRECOMPILE",
    "LOCAL_CHAIN_ID",
    "CONTRACT_NAMES",
    "KeySource",
    "ContractAddresses",
    "ChainConfig",
    "repo_root",
    "default_config_path",
    "artifacts_dir",
    "load_config",
    "save_config",
    "checksum",
]

PEAQ_DID_PRECOMPILE = "0x0000000000000000000000000000000000000800"
LOCAL_CHAIN_ID = 31337  # anvil's default; demo keys are allowed on it only
PEAQ_CHAIN_ID = 3338
AGUNG_CHAIN_ID = 9990
CONTRACT_NAMES = ("FleetToken", "FleetTimelock", "FleetGovernor", "FleetPolicy", "MachineDID", "DataRegistry", "TaskMarket",
                  "RevenueDistributor")


def repo_root() -> Path:
    """The source tree (DEPAI_ROOT when set by scripts/env.sh, else this file's checkout)."""
    env = os.environ.get("DEPAI_ROOT")
    return Path(env) if env else Path(__file__).resolve().parents[2]


def default_config_path() -> Path:
    env = os.environ.get("DEPAI_CHAIN_CONFIG")
    return Path(env) if env else repo_root() / ".depai" / "chain.local.json"


def artifacts_dir() -> Path:
    env = os.environ.get("DEPAI_CHAIN_ARTIFACTS")
    return Path(env) if env else repo_root() / "chain" / "artifacts"


def checksum(value: object) -> str:
    """Validate an address and return its EIP-55 checksum form.

    All-lowercase or all-uppercase hex is accepted (no checksum to check); mixed case must carry
    a correct checksum, since a typo there is exactly what EIP-55 exists to catch.
    """
    if isinstance(value, bytes) and len(value) == 20:
        return to_checksum_address(value)
    if not isinstance(value, str):
        raise InvalidAddressError(value, f"expected a 0x-prefixed hex string, got {type(value).__name__}")
    if not value.startswith(("0x", "0X")):
        raise InvalidAddressError(value, "missing 0x prefix")
    if not is_hex_address(value):
        raise InvalidAddressError(value, "not 20 bytes of hex")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise InvalidAddressError(value, "bad EIP-55 checksum (mixed case that does not match)")
    return to_checksum_address(value)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KeySource(_Model):
    """Where this process's one signing key comes from. Never the key itself.

    - ``keystore``: an encrypted JSON keystore (eth-account / geth format, scrypt or pbkdf2);
      the passphrase comes from the environment variable ``passphrase_env`` or the file
      ``passphrase_file`` (first line), never from this config.
    - ``demo``: account ``demo_index`` of anvil's public test mnemonic. Allowed only on the
      local chain id 31337: those keys are published and anyone can spend from them.
    """

    kind: Literal["keystore", "demo", "none"] = "none"
    keystore: str | None = Field(None, description="path to the encrypted JSON keystore")
    passphrase_env: str | None = Field("DEPAI_KEYSTORE_PASSPHRASE", description="env var holding the passphrase")
    passphrase_file: str | None = Field(None, description="file holding the passphrase (first line)")
    demo_index: int = Field(0, ge=0, le=9, description="anvil test account index (local chain only)")

    @model_validator(mode="after")
    def _complete(self) -> "KeySource":
        if self.kind == "keystore" and not self.keystore:
            raise ValueError("key.kind 'keystore' needs key.keystore (a path)")
        return self


class ContractAddresses(_Model):
    FleetToken: str | None = None
    FleetTimelock: str | None = None
    FleetGovernor: str | None = None
    FleetPolicy: str | None = None
    MachineDID: str | None = None
    DataRegistry: str | None = None
    TaskMarket: str | None = None
    RevenueDistributor: str | None = None

    @field_validator("*")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return None if v is None else checksum(v)


class ChainConfig(_Model):
    """A deployment: endpoint, chain id, contract addresses, signing and patience settings."""

    name: str = Field("local", description="label shown in logs and FleetPolicy.source")
    rpc_url: str = Field(..., description="HTTP(S) JSON-RPC endpoint")
    ws_url: str | None = Field(None, description="WebSocket endpoint for eth_subscribe; None: poll get_logs")
    chain_id: int = Field(..., gt=0, description="the bridge refuses an endpoint reporting another id")
    contracts: ContractAddresses = Field(default_factory=ContractAddresses)
    did_address: str = Field(PEAQ_DID_PRECOMPILE, description="DID registry: peaq's precompile, or MachineDID locally")
    deploy_block: int = Field(0, ge=0, description="first block to scan for events")
    genesis_hash: str | None = Field(None, description="0x hash of block 0 of the chain deployed to; another genesis: ChainResetError")
    genesis_timestamp: int | None = Field(None, ge=0, description="unix time of block 0 (a local chain restored from its state is started with it: the same genesis)")
    confirmations: int = Field(0, ge=0, le=1000, description="blocks on top before a tx/event counts (reorg safety)")
    rpc_timeout_s: float = Field(10.0, gt=0, le=300, description="per JSON-RPC request")
    receipt_timeout_s: float = Field(60.0, gt=0, le=3600, description="wait for a receipt at most this long")
    receipt_poll_s: float = Field(0.02, gt=0, le=30, description="receipt poll interval")
    log_page_blocks: int = Field(2000, ge=1, le=1_000_000, description="block range per eth_getLogs page")
    event_poll_s: float = Field(0.25, gt=0, le=60, description="get_logs polling interval (fallback)")
    gas_multiplier: float = Field(1.2, ge=1.0, le=5.0, description="headroom over eth_estimateGas")
    key: KeySource = Field(default_factory=KeySource)

    @field_validator("did_address")
    @classmethod
    def _did(cls, v: str) -> str:
        return checksum(v)

    @field_validator("genesis_hash")
    @classmethod
    def _genesis(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not (isinstance(v, str) and len(v) == 66 and v[:2] == "0x" and all(c in "0123456789abcdefABCDEF" for c in v[2:])):
            raise ValueError("genesis_hash must be 0x + 64 hex")
        return v.lower()

    @field_validator("rpc_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("rpc_url must start with http:// or https://")
        return v

    @field_validator("ws_url")
    @classmethod
    def _ws(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("ws_url must start with ws:// or wss://")
        return v

    @property
    def is_local(self) -> bool:
        return self.chain_id == LOCAL_CHAIN_ID

    def address(self, contract: str) -> str:
        """The configured address of ``contract`` (ConfigError when the config lacks it)."""
        if contract == "DID":
            return self.did_address
        addr = getattr(self.contracts, contract, None) if contract in CONTRACT_NAMES else None
        if addr is None:
            raise ConfigError(f"chain config '{self.name}' has no address for {contract} (deploy first: depai chain deploy)")
        return addr


def _expand(path: str | Path) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(path))))


def load_config(path: str | Path | None = None) -> ChainConfig:
    """Read a chain config from YAML or JSON; ConfigError names the bad field."""
    p = _expand(path) if path is not None else default_config_path()
    if not p.is_file():
        hint = " (start a local chain with: depai chain up)" if path is None else ""
        raise ConfigError(f"no chain config at {p}{hint}")
    try:
        raw = safe_load_unique(p.read_text())  # YAML is a superset of JSON; a key twice is an error
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML/JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping at top level")
    try:
        return ChainConfig.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{p}: {problems}") from None
    except InvalidAddressError as e:
        raise ConfigError(f"{p}: {e}") from None


def save_config(config: ChainConfig, path: str | Path | None = None) -> Path:
    """Write the config as JSON (atomically: a reader never sees half a file)."""
    p = _expand(path) if path is not None else default_config_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    # 0600: it names the key source (keystore path, passphrase file) and the fleet's addresses
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    return p
