"""The one signing key of a process, held so that it never leaks.

Real networks have no unlocked accounts, so everything is signed locally. The key is loaded
from an encrypted keystore (eth-account's JSON keystore: scrypt or pbkdf2, passphrase from an
environment variable or a file), or, on the local chain only, derived from anvil's published
test mnemonic ("demo keys", clearly labelled as such). The Signer's repr/str show the address
and where the key came from, never the key; errors never carry it either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data

from .config import LOCAL_CHAIN_ID, KeySource
from .errors import SignerError

__all__ = ["Signer", "ANVIL_MNEMONIC", "demo_signer", "create_keystore", "signer_for"]

# Foundry/Hardhat's public test mnemonic: every key derived from it is PUBLIC. Local chain only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"

Account.enable_unaudited_hdwallet_features()


class Signer:
    """Signs transactions and EIP-712 messages with one key; shows only its address."""

    __slots__ = ("_account", "address", "origin")

    def __init__(self, account, origin: str):
        self._account = account
        self.address: str = account.address
        self.origin = origin  # e.g. "keystore:/path" or "DEMO key #3 (public anvil mnemonic)"

    def __repr__(self) -> str:
        return f"Signer(address={self.address}, origin={self.origin!r})"

    __str__ = __repr__

    def __reduce__(self):  # refuse pickling: it would write the key out in plain text
        raise TypeError("Signer cannot be pickled (it holds a private key)")

    @property
    def is_demo(self) -> bool:
        return self.origin.startswith("DEMO")

    def sign_transaction(self, tx: dict) -> tuple[str, str]:
        """(raw transaction hex, transaction hash hex)."""
        try:
            signed = self._account.sign_transaction(tx)
        except Exception as e:  # eth-account validation errors mention fields, not the key
            raise SignerError(f"cannot sign transaction: {type(e).__name__}: {e}") from None
        return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()

    def sign_typed_data(self, domain: dict, types: dict, message: dict) -> bytes:
        """65-byte EIP-712 signature (r || s || v) for the contracts' SignatureChecker."""
        try:
            signable = encode_typed_data(domain_data=domain, message_types=types, message_data=message)
            return bytes(self._account.sign_message(signable).signature)
        except Exception as e:
            raise SignerError(f"cannot sign typed data: {type(e).__name__}: {e}") from None

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_keystore(cls, path: str | Path, passphrase: str) -> "Signer":
        p = Path(path).expanduser()
        try:
            blob = json.loads(p.read_text())
        except FileNotFoundError:
            raise SignerError(f"keystore {p} does not exist") from None
        except (OSError, ValueError) as e:
            raise SignerError(f"keystore {p} unreadable: {type(e).__name__}") from None
        try:
            key = Account.decrypt(blob, passphrase)
        except ValueError:
            raise SignerError(f"keystore {p}: wrong passphrase or corrupt keystore") from None
        except Exception as e:
            raise SignerError(f"keystore {p}: cannot decrypt ({type(e).__name__})") from None
        account = Account.from_key(key)
        del key
        return cls(account, f"keystore:{p}")

    @classmethod
    def from_source(cls, source: KeySource, chain_id: int) -> "Signer":
        """The key a config names. Demo keys are refused on any chain but the local one."""
        if source.kind == "demo":
            return demo_signer(source.demo_index, chain_id)
        if source.kind == "keystore":
            passphrase = None
            if source.passphrase_file:
                try:
                    passphrase = Path(source.passphrase_file).expanduser().read_text().splitlines()[0]
                except (OSError, IndexError):
                    raise SignerError(f"passphrase file {source.passphrase_file} unreadable or empty") from None
            elif source.passphrase_env:
                passphrase = os.environ.get(source.passphrase_env)
            if passphrase is None:
                raise SignerError(
                    f"keystore {source.keystore}: no passphrase (set ${source.passphrase_env} or key.passphrase_file)"
                )
            return cls.from_keystore(source.keystore, passphrase)
        raise SignerError("no signing key configured (key.kind is 'none'); read-only use only")


def demo_signer(index: int, chain_id: int) -> Signer:
    """Anvil test account ``index`` (0..9). PUBLIC key: refused unless chain_id is 31337."""
    if chain_id != LOCAL_CHAIN_ID:
        raise SignerError(f"demo keys are public and only allowed on the local chain {LOCAL_CHAIN_ID}, not {chain_id}")
    if not 0 <= index < 20:
        raise SignerError(f"demo key index must be 0..19, got {index}")
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return Signer(account, f"DEMO key #{index} (public anvil mnemonic, local chain only)")


def create_keystore(path: str | Path, passphrase: str, *, kdf: str = "scrypt", private_key: str | None = None) -> str:
    """Write a new (or given) key as an encrypted keystore file (mode 0600); returns its address."""
    if len(passphrase) < 8:
        raise SignerError("keystore passphrase must have at least 8 characters")
    account = Account.from_key(private_key) if private_key else Account.create()
    blob = Account.encrypt(account.key, passphrase, kdf=kdf)
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(blob, f)
    return account.address


def signer_for(config, *, demo_index: int = -1, keystore: str = "", passphrase_env: str = "") -> Signer:
    """The key a node uses: its own parameters win over the chain config's ``key`` section.

    ``demo_index`` >= 0 picks an anvil demo key (local chain only); ``keystore`` a keystore file
    (passphrase from ``passphrase_env`` or the config's). Otherwise the config's key.
    """
    if demo_index >= 0:
        return demo_signer(demo_index, config.chain_id)
    if keystore:
        env = passphrase_env or config.key.passphrase_env or "DEPAI_KEYSTORE_PASSPHRASE"
        return Signer.from_source(KeySource(kind="keystore", keystore=keystore, passphrase_env=env), config.chain_id)
    return Signer.from_source(config.key, config.chain_id)
