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

__all__ = ["find_anvil", "Anvil"]


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
                 state_path: str | Path | None = None, state_interval: float = 1.0):
        self.requested_port = port
        self.port = 0
        self.chain_id = chain_id
        self.block_time = block_time
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = list(extra_args or [])
        self.state_path = Path(state_path) if state_path else None
        self.state_interval = state_interval
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
            if self.state_path is not None:
                cmd += ["--state", str(self.state_path), "--state-interval", f"{max(1, round(self.state_interval))}"]
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
                return self
            code = self.proc.poll()
            self.stop()
            if code is None:
                raise AnvilError(f"anvil did not answer on {self.rpc_url} within {timeout_s:g} s")
            if self.requested_port:
                raise AnvilError(f"anvil exited with code {code} (port {self.port} in use?)")
        raise AnvilError("anvil could not start after 3 attempts")

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
