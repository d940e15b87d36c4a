"""Which chain is this? A cheap, periodic identity check that notices a reset or another chain.

ROS-free. A chain id says which *network*; it does not say which *chain*: a local anvil started
fresh, or a re-created test network, serves the same id at the same contract addresses with none
of the old state (DIDs, the guardian's pause, anchored batches, nonces). The genesis block hash
does. ``ChainWatch.check(client)`` asks the node for block 0 (one small RPC) and compares it with
the genesis this process works on:

- the same: nothing changed (returns None), unless the head went back (an older state restored:
  a ``ChainChange`` with ``rewound``; nonces and what was written lately must be re-read);
- another one: the deployment config is read again from its file (``depai chain up --fresh`` or a
  redeploy rewrites it). When the file now names this genesis (or names none), the change is
  adopted and returned as a ``ChainChange`` carrying the new config: the caller re-synchronises
  (re-reads the policy, re-syncs its nonce, re-ensures its DID, re-checks anchored batches);
- a genesis neither we nor the config file know: ``ChainResetError`` (fail closed: nothing is
  signed for, or believed from, a chain nobody deployed to).

A config without ``genesis_hash`` (written by hand, or before it was recorded) is pinned to the
genesis seen first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .client import ChainClient
from .config import ChainConfig, load_config
from .errors import ChainError, ChainResetError

__all__ = ["ChainChange", "ChainWatch"]


@dataclass(frozen=True)
class ChainChange:
    """The chain at the endpoint is another one than before (a reset, or a redeploy)."""

    old_genesis: str
    new_genesis: str
    config: ChainConfig
    rewound_from: int = -1  # same genesis, but the head went back from this block (an older state restored)

    @property
    def rewound(self) -> bool:
        return self.rewound_from >= 0

    def describe(self) -> str:
        if self.rewound:
            return (f"chain went back from block {self.rewound_from} (same genesis {self.new_genesis[:10]}: "
                    "restored from an older state?)")
        return (f"chain reset detected: genesis {self.old_genesis[:10]} -> {self.new_genesis[:10]} "
                f"(chain id {self.config.chain_id}, deploy block {self.config.deploy_block})")


class ChainWatch:
    """Tracks the genesis of the chain a process works on. Not thread-safe: one owner thread."""

    def __init__(self, config: ChainConfig, config_path: str | Path | None = None, *, period_s: float = 5.0,
                 clock=time.monotonic):
        self.config = config
        self.config_path = config_path
        self.period_s = period_s
        self.genesis: str | None = config.genesis_hash
        self.head = -1
        self._clock = clock
        self._next = 0.0

    def due(self) -> bool:
        """True when the periodic check is due (call ``check`` then)."""
        return self._clock() >= self._next

    def check(self, client: ChainClient) -> ChainChange | None:
        """One identity check (RpcError when the node is down; ChainResetError: unknown chain)."""
        self._next = self._clock() + self.period_s
        actual = client.genesis_hash(refresh=True)
        head = client.block_number()
        if self.genesis is None:
            self.genesis, self.head = actual, head
            return None
        if actual == self.genesis:
            before, self.head = self.head, head
            if head < before:
                return ChainChange(actual, actual, self.config, rewound_from=before)
            return None
        self.head = head
        fresh = self._reload(actual)
        if fresh.genesis_hash is not None and fresh.genesis_hash != actual:
            raise ChainResetError(fresh.genesis_hash, actual, fresh.rpc_url)
        fresh = fresh.model_copy(update={"genesis_hash": actual})
        change = ChainChange(self.genesis, actual, fresh)
        self.genesis, self.config = actual, fresh
        return change

    def _reload(self, actual: str) -> ChainConfig:
        if self.config_path is None:
            return self.config.model_copy(update={"genesis_hash": None})
        try:
            return load_config(self.config_path)
        except ChainError:
            # the file is gone or half-written (e.g. `chain down` then `up` in progress): not adoptable yet
            raise ChainResetError(self.genesis or "", actual, self.config.rpc_url) from None
