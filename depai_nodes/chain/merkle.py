"""Merkle trees over telemetry messages, verifiable on chain by DataRegistry.

Convention (OpenZeppelin MerkleProof): leaf = keccak256(keccak256(message)) (the double hash
keeps a 64-byte inner node from passing as a leaf), parent = keccak256(min(a,b) || max(a,b)).
A level with an odd count carries its last node up unchanged, so no node is ever duplicated
and a proof is just the siblings met on the way up.
"""

from __future__ import annotations

try:  # safe-pysha3: keccak-256 in C behind a thin binding, ~10x less per-call overhead
    from sha3 import keccak_256 as _k256

    def keccak(data: bytes) -> bytes:
        return _k256(data).digest()
except ImportError:  # pragma: no cover - same results, slower (pycryptodome through eth-utils)
    from eth_utils import keccak

__all__ = ["keccak", "leaf_hash", "MerkleTree", "verify"]


def leaf_hash(message: bytes) -> bytes:
    return keccak(keccak(bytes(message)))


def _parent(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


class MerkleTree:
    """A tree over ``messages`` (raw bytes, in order); ``root`` and ``proof(i)``."""

    def __init__(self, messages: list[bytes] | None = None, *, leaves: list[bytes] | None = None):
        if (messages is None) == (leaves is None):
            raise ValueError("give either messages or leaves")
        base = [keccak(keccak(m)) for m in messages] if messages is not None else [bytes(x) for x in leaves]
        if not base:
            raise ValueError("a Merkle tree needs at least one message")
        if any(len(x) != 32 for x in base):
            raise ValueError("leaves must be 32-byte hashes")
        self.levels: list[list[bytes]] = [base]
        while len(self.levels[-1]) > 1:
            cur = self.levels[-1]
            k = keccak
            nxt = [k(a + b) if a <= b else k(b + a) for a, b in zip(cur[0::2], cur[1::2])]
            if len(cur) % 2:
                nxt.append(cur[-1])
            self.levels.append(nxt)

    def __len__(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index]

    def proof(self, index: int) -> list[bytes]:
        if not 0 <= index < len(self):
            raise IndexError(f"leaf index {index} out of range 0..{len(self) - 1}")
        out = []
        for level in self.levels[:-1]:
            sib = index ^ 1
            if sib < len(level):
                out.append(level[sib])
            index //= 2
        return out


def verify(leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    h = leaf
    for p in proof:
        h = _parent(h, p)
    return h == root
