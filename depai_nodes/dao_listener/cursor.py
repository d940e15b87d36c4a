"""The DAO listener's persisted cursor: which policy decisions it has applied, so that a restart
applies none twice and a chain reorganisation can be unwound. ROS-free.

One JSON file per policy source (the chain identity of INTERFACES item 3), in the state directory
(``$DEPAI_STATE_DIR`` or ``.depai/state``): ``dao_listener/<sha256(source)[:16]>.json``. Written
atomically (temporary file, fsync, rename, 0600), so a crash leaves the old cursor or the new
one, never half of one. A file that does not parse, or that names another source, is reported and
replaced by a fresh cursor (nothing is applied twice because of it: a fresh cursor applies no
past decision, it only takes the policy in force).

Contents: the block, block hash and policy version of the last applied decision (or of the
baseline: the policy in force when the listener first saw this source), and the last
``KEEP`` applied decisions with their block hashes, which is how a reorg is unwound.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Decision", "Cursor", "cursor_path", "load_cursor", "save_cursor", "KEEP"]

KEEP = 64  # decisions remembered (a reorg deeper than the last 64 decisions re-bases the cursor)


@dataclass
class Decision:
    """One applied policy change: a PolicyChanged log of the configured FleetPolicy."""

    version: int
    what: str
    block: int
    block_hash: str
    tx_hash: str
    log_index: int
    via: str = ""                   # "proposal", "timelock", "guardian pause", "owner call"
    proposal_id: int | None = None

    def describe(self) -> str:
        how = f"proposal {self.proposal_id}" if self.proposal_id is not None else self.via
        return f"v{self.version} ({self.what}) by {how}, tx {self.tx_hash}, block {self.block}"


@dataclass
class Cursor:
    source: str
    block: int
    block_hash: str
    version: int
    recent: list[Decision] = field(default_factory=list)

    def applied(self, d: Decision) -> None:
        self.recent.append(d)
        del self.recent[:-KEEP]
        self.block, self.block_hash, self.version = d.block, d.block_hash, d.version


def cursor_path(state_dir: str | Path, source: str) -> Path:
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return Path(state_dir) / "dao_listener" / f"{digest}.json"


def load_cursor(path: Path, source: str) -> tuple[Cursor | None, str]:
    """(the cursor, "") or (None, why there is none usable; "" when the file does not exist)."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as e:
        return None, f"cursor {path} unreadable ({type(e).__name__}: {e})"
    try:
        if raw["source"] != source:
            return None, f"cursor {path} belongs to {raw['source']}, not {source}"
        recent = [Decision(**d) for d in raw.get("recent", [])]
        cur = Cursor(source=str(raw["source"]), block=int(raw["block"]), block_hash=str(raw["block_hash"]),
                     version=int(raw["version"]), recent=recent)
    except (KeyError, TypeError, ValueError) as e:
        return None, f"cursor {path} malformed ({type(e).__name__}: {e})"
    if cur.block < 0 or cur.version < 0 or not cur.block_hash.startswith("0x"):
        return None, f"cursor {path} malformed (negative block/version or bad hash)"
    return cur, ""


def save_cursor(path: Path, cursor: Cursor) -> None:
    """Atomic write: a reader (or a restart after a crash) sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"source": cursor.source, "block": cursor.block, "block_hash": cursor.block_hash,
            "version": cursor.version, "recent": [asdict(d) for d in cursor.recent]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
