"""The view tests need the viewer extra: installed here through the project's own files
(requirements/view.txt, depai_nodes/view/install.py), as `./depai launch --view` does."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(scope="session", autouse=True)
def view_extra() -> None:
    from depai_nodes.view.install import ensure_view_extra

    ensure_view_extra()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ports() -> dict[str, int]:
    return {"rerun_web_port": free_port(), "rerun_grpc_port": free_port(), "foxglove_port": free_port()}
