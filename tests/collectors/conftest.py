"""Fixtures for the collectors tests: settings in a tmp data dir, a runtime with a journal, an API client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from soclite.config import Settings
from soclite.runtime import Runtime
from soclite.store.journal import Journal


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path / "data")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db", max_bytes=64 * 1024 * 1024, warn_ratio=0.8)
    yield j
    j.close()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    rt.journal = Journal(settings.data_dir / "journal.db", settings.journal.max_bytes, settings.journal.warn_ratio)
    yield rt
    rt.journal.close()
    rt.close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client(runtime: Runtime) -> Iterator[httpx.Client]:
    """The real app served by uvicorn on a loopback port (a real HTTP peer, no test transport)."""
    from soclite.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        yield c
    server.should_exit = True
    thread.join(10)
