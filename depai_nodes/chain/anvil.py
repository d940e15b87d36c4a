"""Finding, starting and stopping a local anvil node.

The binary comes from the npm package @foundry-rs/anvil-linux-amd64 in chain/node_modules
(installed by scripts/setup.sh); $ANVIL or an `anvil` on PATH (a Foundry install) wins.
With ``--silent`` anvil prints nothing, not even the port of ``--port 0``, so a free port is
picked here and anvil's own readiness is awaited by polling eth_chainId (observed: < 0.1 s).

``log_path``: anvil's output goes through ``redact.py`` (its printed private keys and mnemonic
removed) into that file, mode 0600. ``state_path``: anvil loads its state from the file when it
exists (``--state``: same genesis, blocks, contracts, balances) and dumps it every
``state_interval`` s and on a clean exit, so a chain killed with ``kill -9`` loses at most the
last interval's transactions when started again on the same file.

Restoring has two traps (anvil 1.x, measured): every start creates a genesis block of its own,
stamped with the start time, and the dump keeps it beside the loaded ones, so from the third or
fourth restore block 0 is whichever of them anvil loaded last: another genesis hash, a chain that
no longer matches its config. And the clock restarts from the wall clock, behind a chain whose
time was moved ahead (a DAO round on the local chain moves it past the timelock delay): block
times would go back. So a restore (``genesis_timestamp`` given) first removes from the dump the
block-0 headers other than the first genesis's, so that the one loaded is always it, and then
sets the clock to no earlier than the restored head's time. (Not anvil's ``--timestamp``: it
also starts the clock at the genesis time, and a transaction that arrives before the clock is
set is mined back there.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .config import LOCAL_CHAIN_ID, repo_root
from .errors import AnvilError

__all__ = ["find_anvil", "Anvil", "genesis_timestamp_in_state", "drop_extra_geneses"]


def find_anvil() -> str:
    env = os.environ.get("ANVIL")
    if env:
        if not os.access(env, os.X_OK):
            raise AnvilError(f"$ANVIL={env} is not an executable file")
        return env
    local = repo_root() / "chain" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise AnvilError(f"anvil not found: run scripts/setup.sh (installs it under {local.parent}), install Foundry, or set $ANVIL")


def _in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Anvil:
    """One anvil process on 127.0.0.1. Use as a context manager or call start()/stop()."""

    def __init__(self, *, port: int = 0, chain_id: int = LOCAL_CHAIN_ID, block_time: float | None = None,
                 log_path: str | Path | None = None, extra_args: list[str] | None = None,
                 state_path: str | Path | None = None, state_interval: float = 1.0,
                 genesis_timestamp: int | None = None):
        self.requested_port = port
        self.port = 0
        self.chain_id = chain_id
        self.block_time = block_time
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = list(extra_args or [])
        self.state_path = Path(state_path) if state_path else None
        self.state_interval = state_interval
        self.genesis_timestamp = genesis_timestamp  # a restore: the first genesis's (see the module's doc)
        self.geneses_dropped = 0  # stray block-0 headers removed from the dump by the last start
        self.proc: subprocess.Popen | None = None
        self.redactor: subprocess.Popen | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"Anvil(pid={self.proc.pid if self.proc else None}, {self.rpc_url})"

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, *, timeout_s: float = 10.0, detach: bool = False, die_with_parent: bool = False) -> "Anvil":
        """``detach``: its own session (a terminal's Ctrl-C does not reach it). ``die_with_parent``
        (Linux): the kernel sends it SIGTERM when the calling thread exits, kill -9 included
        (PR_SET_PDEATHSIG; anvil then dumps its state and exits): `depai launch` owns its chain."""
        binary = find_anvil()
        preexec = None
        if die_with_parent and sys.platform.startswith("linux"):
            from depai_nodes.bringup.supervisor import _death_signal_preexec

            preexec = _death_signal_preexec()  # setsid + PR_SET_PDEATHSIG(SIGTERM)
        if self.requested_port and _in_use(self.requested_port):
            # checked first: otherwise the readiness poll would be answered by whoever holds the port
            raise AnvilError(f"port {self.requested_port} on 127.0.0.1 is already in use")
        for attempt in range(3):  # a picked free port can be taken in between: retry, bounded
            self.port = self.requested_port or _free_port()
            cmd = [binary, "--host", "127.0.0.1", "--port", str(self.port), "--hardfork", "cancun",
                   "--chain-id", str(self.chain_id)]
            if self.block_time:
                cmd += ["--block-time", str(self.block_time)]
            if self.log_path is None:
                cmd.append("--silent")
            restoring = self.state_path is not None and self.state_path.is_file()
            if self.state_path is not None:
                cmd += ["--state", str(self.state_path), "--state-interval", f"{max(1, round(self.state_interval))}"]
            if restoring and self.genesis_timestamp is not None and attempt == 0:
                # the dump then holds the first genesis alone: loaded over the one this start makes
                self.geneses_dropped = drop_extra_geneses(self.state_path, int(self.genesis_timestamp))
            cmd += self.extra_args
            out = subprocess.DEVNULL
            if self.log_path is not None:
                # anvil prints its accounts' private keys: only a redacted copy reaches the file
                self.redactor = subprocess.Popen([sys.executable, str(Path(__file__).with_name("redact.py")), str(self.log_path)],
                                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                 start_new_session=detach)
                out = self.redactor.stdin
            try:
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=detach and preexec is None, preexec_fn=preexec)
            except OSError as e:
                if self.redactor is not None:
                    self.redactor.kill()
                raise AnvilError(f"cannot start {binary}: {e}") from None
            finally:
                if out is not subprocess.DEVNULL:
                    out.close()  # anvil holds the pipe now; the redactor ends when anvil does
            if self._wait_ready(timeout_s) and self.proc.poll() is None:
                if restoring:
                    self._resume_clock()
                return self
            code = self.proc.poll()
            self.stop()
            if code is None:
                raise AnvilError(f"anvil did not answer on {self.rpc_url} within {timeout_s:g} s")
            if self.requested_port:
                raise AnvilError(f"anvil exited with code {code} (port {self.port} in use?)")
        raise AnvilError("anvil could not start after 3 attempts")

    def _rpc(self, method: str, params: list) -> object:
        r = requests.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=5.0)
        r.raise_for_status()
        body = r.json()
        if "error" in body:
            raise AnvilError(f"anvil {method}: {body['error']}")
        return body["result"]

    def _resume_clock(self) -> None:
        """The restored chain's clock: no earlier than its head's time (block times never go back)."""
        try:
            head = int(self._rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            self._rpc("anvil_setTime", [max(int(time.time()), head)])
        except (requests.exceptions.RequestException, KeyError, TypeError, ValueError) as e:
            self.stop()
            raise AnvilError(f"anvil restored its state but its clock could not be set: {e}") from None

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if requests.post(self.rpc_url, json=body, timeout=1.0).ok:
                    return True
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.02)
        return False

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        self.proc = None
        if self.redactor is not None:
            try:
                self.redactor.wait(timeout_s)  # drains anvil's last lines, then sees end of input
            except subprocess.TimeoutExpired:
                self.redactor.kill()
            self.redactor = None


def genesis_timestamp_in_state(state_path: str | Path) -> int | None:
    """The first genesis's timestamp in an anvil state dump, for a chain whose config predates
    ``genesis_timestamp``: the dump may hold several block-0 headers (one per earlier start, each
    stamped with its start time); the first genesis is the earliest. None: no block 0 in it."""
    import json

    try:
        state = json.loads(Path(state_path).read_text())
        stamps = [int(b["header"]["timestamp"], 16) for b in state.get("blocks") or []
                  if int(b["header"]["number"], 16) == 0]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return min(stamps) if stamps else None


def drop_extra_geneses(state_path: str | Path, timestamp: int) -> int:
    """Remove from an anvil state dump the block-0 headers not stamped ``timestamp`` (the ones
    earlier starts made: any of them could be loaded as block 0); the number removed. The file is replaced atomically, and only when there is something to remove."""
    import json
    import os
    import tempfile

    path = Path(state_path)
    try:
        state = json.loads(path.read_text())
        blocks = state.get("blocks") or []
        keep = [b for b in blocks if int(b["header"]["number"], 16) != 0 or int(b["header"]["timestamp"], 16) == timestamp]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    removed = len(blocks) - len(keep)
    if removed <= 0 or not any(int(b["header"]["number"], 16) == 0 for b in keep):
        return 0  # nothing extra, or no block 0 would be left: leave the file as it is
    state["blocks"] = keep
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return 0
    return removed
