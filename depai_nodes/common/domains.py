"""ROS domains for runs that must not hear each other: tests, benchmarks, soaks on one machine.

Two stacks on one ROS_DOMAIN_ID are one system to DDS: a second dao_listener's policy reaches
the first stack's controllers, a second status node counts as a duplicate. Every tool that brings
up its own stack takes a domain here for as long as it runs: a lock file per id (flock, released
by the kernel when the process dies, kill -9 included) under ``DEPAI_DOMAIN_LOCKS``
(default /tmp/depai-ros-domains), ids 1..100 (their DDS ports are valid on Linux).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

__all__ = ["DomainBusyError", "acquire_domain"]

FIRST, COUNT = 1, 100


class DomainBusyError(RuntimeError):
    """The asked-for ROS domain is held by another run (or every domain is)."""


def _lock_dir() -> Path:
    path = Path(os.environ.get("DEPAI_DOMAIN_LOCKS", "/tmp/depai-ros-domains"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _try(domain: int) -> IO | None:
    handle = open(_lock_dir() / f"{domain}.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return handle
    except BlockingIOError:
        handle.close()
        return None


def acquire_domain(wanted: int | None = None) -> tuple[int, IO]:
    """(domain, lock handle): keep the handle open for as long as the run lasts. ``wanted``: that
    domain or DomainBusyError; None: a free one, starting from one derived from the pid."""
    if wanted is not None:
        handle = _try(wanted)
        if handle is None:
            raise DomainBusyError(f"ROS_DOMAIN_ID {wanted} is in use by another DePAI run on this machine "
                                  f"(lock {_lock_dir() / f'{wanted}.lock'}); choose another or leave it unset")
        return wanted, handle
    start = os.getpid() % COUNT
    for i in range(COUNT):
        domain = FIRST + (start + i) % COUNT
        handle = _try(domain)
        if handle is not None:
            return domain, handle
    raise DomainBusyError(f"no free ROS_DOMAIN_ID: {COUNT} runs hold one each")
