"""The real agent against the real ingest route and journal (COLL's), served by uvicorn on
loopback; the HTTP server is stopped mid-stream and started again on the same port while the agent
tails a growing file. The journal must hold every line exactly once, in file order."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from soclite.api.routes import agents as agents_routes
from soclite.api.routes import ingest as ingest_routes
from soclite.collectors.agent.config import AgentConfig, FileInput
from soclite.collectors.agent.runner import Agent
from soclite.config import Settings
from soclite.control.agents import AgentRegistry
from soclite.runtime import Runtime
from soclite.store.journal import Journal

from .agent_support import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Uvicorn:
    def __init__(self, app: FastAPI, port: int) -> None:
        self.app, self.port = app, port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_for(lambda: self.server is not None and self.server.started, 10)

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    rt = Runtime.build(settings)
    rt.journal = Journal(
        settings.data_dir / "journal.db", settings.journal.max_bytes, settings.journal.warn_ratio
    )
    yield rt
    rt.close()


def journal_lines(journal: Journal) -> list[tuple[str, dict[str, object]]]:
    events = journal.read("agent-test", 100_000)
    return [(str(e.get("event.original")), e) for _, e in events]


def test_http_outage_while_tailing_every_line_once_in_order(runtime: Runtime, tmp_path: Path) -> None:
    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(ingest_routes.router)
    app.include_router(agents_routes.router)
    server = Uvicorn(app, free_port())
    server.start()
    registry = AgentRegistry.open(runtime.settings.data_dir)
    token = registry.create_enroll_token(unit="U9")
    registry.close()

    log = tmp_path / "app.log"
    log.touch()
    config = AgentConfig(
        files=[FileInput(path=log)], flush_interval=0.1, poll_interval=0.02, batch_size=100,
        backoff_initial=0.05, backoff_max=0.5, heartbeat_interval=0.5, command_poll_interval=0.5,
    )  # fmt: skip
    agent = Agent(f"http://127.0.0.1:{server.port}", tmp_path / "state", config, enroll_token=token)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    total = 900
    expected = [f"<13>Nov 23 10:00:00 ws-01 app[1]: line {i:05d}" for i in range(total)]
    try:
        for i, line in enumerate(expected):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            if i == 300:
                server.stop()  # the server goes away mid-stream
            if i == 600:
                server.start()
            time.sleep(0.002)
        assert runtime.journal is not None
        journal = runtime.journal
        assert wait_for(lambda: len(journal_lines(journal)) >= total, 30)
        time.sleep(0.5)  # anything more would be a duplicate
    finally:
        agent.stop()
        thread.join(15)
        server.stop()
    got = journal_lines(journal)
    assert [raw for raw, _ in got] == expected  # exactly once, in file order
    first = got[0][1]
    assert first["soclite.unit"] == "U9" and first["soclite.agent_id"] == agent.identity.agent_id  # type: ignore[union-attr]
    assert agent.spool.pending() == (0, 0)
    assert agent.last_error is not None  # the outage was real: sends failed and were retried
