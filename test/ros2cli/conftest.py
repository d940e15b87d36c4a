"""The upstream ROS 2 Jazzy `ros2` CLI and launch system, as an external client of the project.

The PyPI ROS wheels have no `launch`, `launch_ros` nor `ros2` CLI. `../shared/tools/ros2-cli-jazzy/`
holds them built from the jazzy sources, with an idempotent `install.sh DIR`. The session fixture
`ros2_kit` installs that kit once into a cache directory outside the project's environment (keyed
by the interpreter, locked against concurrent runs); `ros2` runs `ros2 ...` with the kit's
environment on top of the project's, from a scratch directory: run from the repository root,
`ros2 launch depai FILE` would take the `./depai` script for the launch file.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros2kit import KIT, Ros2, cache_dir, without_overlay


@pytest.fixture(scope="session")
def ros2_kit() -> Path:
    """The kit installed into the cache (idempotent: about 20 s the first time, then instant)."""
    if not (KIT / "install.sh").is_file():
        pytest.fail(f"the ros2 CLI test kit is missing: {KIT}/install.sh (set DEPAI_ROS2CLI_KIT to a copy)", pytrace=False)
    target = cache_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["bash", str(KIT / "install.sh"), str(target)], env=without_overlay(dict(os.environ)),
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        pytest.fail(f"ros2 CLI kit install failed: {result.stderr.strip().splitlines()[-1:]}", pytrace=False)
    return target


@pytest.fixture
def ros2(ros2_kit, ros_domain, tmp_path) -> Iterator[Ros2]:
    """`ros2` on this test's domain, run from a scratch directory; its daemon stopped afterwards."""
    scratch = tmp_path / "cwd"
    scratch.mkdir()
    cli = Ros2(ros2_kit, scratch)
    try:
        yield cli
    finally:
        # Verbs without --no-daemon (topic hz) spawn the CLI's daemon for this domain.
        cli.run("daemon", "stop", check=False, timeout=30)


