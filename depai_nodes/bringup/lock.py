"""One stack, one owner: a `depai launch` holds locks on what it must not share.

Two launches conflict when

- they join the same ROS_DOMAIN_ID on this host: every node would run twice under the same name
  (two controllers driving one robot, two planners answering one service); and
- both run a wallet on the same chain config: two processes would sign with the same machine
  key, race for its nonce and write one request ledger.

Each is an advisory `flock` on a small file (the domain's in a private per-user directory,
`$XDG_RUNTIME_DIR/depai-launch-<uid>` or the temp directory's; the key's next to the chain
config). Lock files are opened without following symbolic links and must be regular files, and
the per-user directory must be ours and not a link: a lock in a world-writable place must not let
another user make a launch truncate one of our files. The locks are inherited
by the launch's node processes (their file descriptor is passed on), so they are released only
when the launcher *and every one of its nodes* are gone: a second launch refuses while the first
one's nodes still live, even after the first launcher was killed with -9, and starts as soon as
they are gone. A lock file left behind by a dead launch holds no lock (the kernel drops a flock
with its last holder), so it never blocks; its text only says who held it last.

DDS discovery reaches past this host when ROS_AUTOMATIC_DISCOVERY_RANGE allows it, and the
domain lock is per user; a lock file cannot see another machine or another user's launches, so
keep robots on separate domains (or discovery ranges) there.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from depai_nodes.common.procs import pid_alive

__all__ = ["LaunchLockedError", "LaunchLock", "domain_lock_path", "key_lock_path"]


class LaunchLockedError(RuntimeError):
    """Another launch owns this domain or key; the message names it."""


def _lock_root() -> Path:
    if os.environ.get("DEPAI_LAUNCH_LOCKS"):
        return Path(os.environ["DEPAI_LAUNCH_LOCKS"])
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"depai-launch-{os.getuid()}"


def _private_dir(path: Path) -> None:
    """Create `path` 0700, or check that an existing one is a real directory of ours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise LaunchLockedError(f"refusing to use lock directory {path}: not a directory owned by this user")


def domain_lock_path(domain: str) -> Path:
    return _lock_root() / f"domain-{domain}.lock"


def key_lock_path(chain_config: Path) -> Path:
    chain_config = Path(chain_config).expanduser().absolute()
    return chain_config.with_name(chain_config.name + ".launch.lock")



@dataclass
class LaunchLock:
    """Acquire with `acquire()`; `fds` go to every node process (`pass_fds`); `release()` at exit."""

    what: dict[Path, str]  # lock file -> what it guards, for messages ("ROS_DOMAIN_ID=7")
    info: dict = field(default_factory=dict)  # written into the lock files: who holds them
    fds: list[int] = field(default_factory=list, init=False)

    def acquire(self) -> None:
        try:
            for path, what in self.what.items():
                self.fds.append(self._take(path, what))
        except BaseException:
            self.release()
            raise

    def _take(self, path: Path, what: str) -> int:
        if path.parent == _lock_root():
            _private_dir(path.parent)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:  # ELOOP: a symbolic link where the lock file should be
            raise LaunchLockedError(f"cannot open lock file {path} ({what}): {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LaunchLockedError(f"refusing lock file {path} ({what}): not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._read(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LaunchLockedError(f"cannot lock {path} ({what}): {exc.strerror}") from None
            raise LaunchLockedError(self._refusal(path, what, holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({**self.info, "pid": os.getpid(), "since": time.time()}) + "\n").encode(), 0)
        return fd

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _refusal(path: Path, what: str, holder: dict) -> str:
        pid = holder.get("pid")
        since = holder.get("since")
        started = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
        if isinstance(pid, int) and pid_alive(pid):
            who = f"`depai launch` pid {pid} (started {started}"
            who += f", stack {holder['stack']})" if holder.get("stack") else ")"
            hint = f"stop it first (Ctrl-C there, or kill {pid})"
        elif isinstance(pid, int):
            who = f"the nodes of `depai launch` pid {pid} (started {started}), which has exited"
            hint = "they are still stopping; try again in a few seconds"
        else:
            who, hint = "another process", f"see {path}"
        return f"{what} is already in use by {who}; {hint}. Refusing to start a second stack."

    def release(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()
