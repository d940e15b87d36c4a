"""The viewer extra (requirements/view.txt), installed into the project's venv on first use.

`ensure_view_extra()` is called by `./depai launch --view` (and by the view tests): when the
requirements file's hash matches the stamp left by the last install and the packages import, it
returns at once; otherwise it runs `pip install -r requirements/view.txt` in this interpreter's
environment, showing pip's progress, under a lock (two launches never install at once), and
writes the stamp. Offline without a package cache it fails with `ViewExtraError` naming the
command to run, never a traceback.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "requirements" / "view.txt"
MODULES = ("rerun", "foxglove", "google.protobuf")

__all__ = ["ViewExtraError", "ensure_view_extra", "view_extra_ready"]


class ViewExtraError(RuntimeError):
    """The viewer extra could not be installed."""


def _stamp_path() -> Path:
    return Path(sys.prefix) / ".depai-view-extra.stamp"


def _wanted() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def _importable() -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in MODULES)
    except (ImportError, ValueError):
        return False


def view_extra_ready() -> bool:
    stamp = _stamp_path()
    return stamp.exists() and stamp.read_text().strip() == _wanted() and _importable()


def ensure_view_extra(say=lambda text: print(f"[depai view] {text}", file=sys.stderr, flush=True)) -> bool:
    """Install requirements/view.txt unless already installed; True when it installed now."""
    if view_extra_ready():
        return False
    lock_path = Path(sys.prefix) / ".depai-view-extra.lock"
    try:
        lock = open(lock_path, "w")
    except OSError as error:
        raise ViewExtraError(f"cannot lock {lock_path}: {error}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if view_extra_ready():  # another launch installed it while we waited
            return False
        say(f"installing the viewer extra into {sys.prefix} (pip install -r {REQUIREMENTS.relative_to(REPO_ROOT)}; "
            "first use only, about 200 MB)")
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on", "-r", str(REQUIREMENTS)]
        code = subprocess.call(command, stdout=sys.stderr)
        if code != 0 or not _importable():
            raise ViewExtraError(f"installing the viewer extra failed (pip exit {code}); run: {' '.join(command)}")
        _stamp_path().write_text(_wanted())
        say("viewer extra installed")
        return True
