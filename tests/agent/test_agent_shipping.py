"""The agent end to end against a local HTTP server speaking the ingest contract: outages, lost
acknowledgements, restarts and a full spool — every line arrives exactly once, in order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from soclite.collectors.agent.config import AgentConfig, FileInput
from soclite.collectors.agent.runner import Agent
from soclite.errors import AuthError

from .agent_support import FakeSoc, ServerThread, wait_for


def fast_config(*files: Path, **extra: object) -> AgentConfig:
    options: dict[str, object] = {
        "files": [FileInput(path=f) for f in files],
        "flush_interval": 0.1,
        "poll_interval": 0.02,
        "backoff_initial": 0.05,
        "backoff_max": 0.3,
        "heartbeat_interval": 0.3,
        "command_poll_interval": 0.3,
        "request_timeout": 5,
        "batch_size": 50,
    }
    options.update(extra)
    return AgentConfig.model_validate(options)


class Running:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.thread = threading.Thread(target=agent.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


@pytest.fixture
def soc() -> FakeSoc:
    return FakeSoc()


@pytest.fixture
def server(soc: FakeSoc):  # type: ignore[no-untyped-def]
    srv = ServerThread(soc).start()
    yield srv
    srv.stop()


def append(path: Path, lines: list[str], delay: float = 0.0) -> None:
    for line in lines:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if delay:
            time.sleep(delay)


def test_enrollment_stores_key_0600_and_is_not_repeated(tmp_path: Path, server: ServerThread) -> None:
    state = tmp_path / "state"
    agent = Agent(server.url, state, fast_config(), enroll_token="se_good")
    identity = agent.enroll()
    assert identity.agent_id == "agent1" and identity.unit == "U1"
    key = state / "agent.key"
    assert key.read_text().strip() == identity.api_key
    assert key.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    agent.spool.close()
    again = Agent(server.url, state, fast_config(), enroll_token=None)
    assert again.enroll().api_key == identity.api_key  # no second enrollment needed
    again.spool.close()


def test_bad_enrollment_token_is_refused(tmp_path: Path, server: ServerThread) -> None:
    agent = Agent(server.url, tmp_path / "s", fast_config(), enroll_token="se_wrong")
    with pytest.raises(AuthError):
        agent.enroll()
    assert not (tmp_path / "s" / "agent.key").exists()
    agent.spool.close()


def test_server_outage_then_every_line_exactly_once_in_order(
    tmp_path: Path, soc: FakeSoc, server: ServerThread
) -> None:
    log = tmp_path / "app.log"
    log.touch()
    running = Running(Agent(server.url, tmp_path / "state", fast_config(log), enroll_token="se_good"))
    expected = [f"event {i:04d}" for i in range(600)]
    append(log, expected[:200], delay=0.001)
    assert wait_for(lambda: len(soc.lines()) == 200)
    server.stop()  # the server goes away while the file keeps growing
    append(log, expected[200:400], delay=0.001)
    assert wait_for(lambda: running.agent.spool.pending()[0] > 0)
    server.start()
    append(log, expected[400:], delay=0.001)
    assert wait_for(lambda: len(soc.lines()) >= 600, timeout=20)
    running.stop()
    assert soc.lines() == expected
    assert all(r["host.name"] and r["log.file.path"] == str(log) for r in soc.records)
    assert running.agent.spool.pending() == (0, 0)


def test_lost_acknowledgements_are_resent_and_deduplicated(
    tmp_path: Path, soc: FakeSoc, server: ServerThread
) -> None:
    log = tmp_path / "app.log"
    expected = [f"line {i}" for i in range(120)]
    append(log, expected)
    soc.lose_next_acks = 2  # the server stores two batches but the agent never hears back
    running = Running(Agent(server.url, tmp_path / "state", fast_config(log), enroll_token="se_good"))
    assert wait_for(lambda: len(soc.lines()) >= 120 and running.agent.spool.pending()[0] == 0, timeout=20)
    running.stop()
    assert soc.duplicates >= 2  # same X-Batch-Id resent, recognised
    assert soc.lines() == expected


def test_agent_restart_resumes_without_loss_or_duplicates(
    tmp_path: Path, soc: FakeSoc, server: ServerThread
) -> None:
    log = tmp_path / "app.log"
    state = tmp_path / "state"
    append(log, [f"a{i}" for i in range(30)])
    running = Running(Agent(server.url, state, fast_config(log), enroll_token="se_good"))
    assert wait_for(lambda: len(soc.lines()) == 30)
    running.stop()
    append(log, [f"b{i}" for i in range(30)])
    running = Running(Agent(server.url, state, fast_config(log)))  # no token: already enrolled
    assert wait_for(lambda: len(soc.lines()) == 60)
    running.stop()
    assert soc.lines() == [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)]


def test_full_spool_evicts_oldest_and_reports_the_count(
    tmp_path: Path, soc: FakeSoc, server: ServerThread
) -> None:
    import os

    log = tmp_path / "app.log"
    state = tmp_path / "state"
    agent = Agent(server.url, state, fast_config(log, spool_max_bytes=64 * 1024), enroll_token="se_good")
    agent.enroll()
    server.stop()
    lines = [os.urandom(60).hex() for _ in range(3000)]  # ~360 KB, barely compressible
    append(log, lines)
    for _ in range(200):
        if agent.collect_once(force=True) == 0:
            break
    dropped = agent.spool.dropped()
    assert dropped > 0 and agent.spool.pending()[1] <= 64 * 1024
    agent.spool.close()
    server.start()
    running = Running(Agent(server.url, state, fast_config(log, spool_max_bytes=64 * 1024)))
    assert wait_for(lambda: any(h["dropped"] == dropped for h in soc.heartbeats), timeout=10)
    assert wait_for(lambda: running.agent.spool.pending()[0] == 0)
    running.stop()
    delivered = soc.lines()
    assert len(delivered) + dropped == len(lines)
    assert delivered == lines[dropped:]  # the oldest went, the newest were kept, in order
    assert running.agent.spool.dropped() == 0  # acknowledged by the heartbeat


def test_heartbeat_carries_inventory_and_commands_are_answered(
    tmp_path: Path, soc: FakeSoc, server: ServerThread
) -> None:
    soc.commands = [
        {"id": "c1", "kind": "isolate", "params": {}},
        {"id": "c2", "kind": "reboot", "params": {}},
    ]
    # a platform without an isolation backend must report failure, not pretend
    agent = Agent(
        server.url,
        tmp_path / "state",
        fast_config(host_type="server"),
        enroll_token="se_good",
        platform="sunos5",
    )
    running = Running(agent)
    assert wait_for(lambda: len(soc.results) == 2)
    running.stop()
    beat = soc.heartbeats[0]
    assert beat["host_type"] == "server" and beat["hostname"] and beat["agent_version"]
    assert isinstance(beat["ips"], list) and isinstance(beat["macs"], list)
    assert beat["isolation"] == {"state": "none"}
    results = dict(soc.results)
    assert results["c1"]["ok"] is False and "not implemented" in results["c1"]["detail"]
    assert results["c2"]["ok"] is False and "unknown command" in results["c2"]["detail"]


def test_refused_batch_is_set_aside_not_retried_forever(
    tmp_path: Path, soc: FakeSoc, server: ServerThread
) -> None:
    log = tmp_path / "app.log"
    append(log, ["x"])
    soc.fail_with = 422
    running = Running(Agent(server.url, tmp_path / "state", fast_config(log), enroll_token="se_good"))
    assert wait_for(lambda: running.agent.spool.rejected() == 1)
    soc.fail_with = None
    append(log, ["y"])
    assert wait_for(lambda: soc.lines() == ["y"])
    running.stop()
