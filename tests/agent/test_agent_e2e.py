"""End to end with real processes: `soclite server` (ingest → journal → store) and `soclite agent`
tailing a growing file. The server is stopped mid-stream and restarted; every line must be stored
exactly once, and batches must have arrived in file order."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOCLITE = str(ROOT / ".venv" / "bin" / "soclite")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.env = {**os.environ, "SOCLITE_AUTH__SECRET_KEY": secrets.token_hex(32)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [SOCLITE, "server", "--data-dir", str(self.data_dir), "--http-port", str(self.port), "--syslog-port", "0"],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("server did not become healthy")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def cli(*args: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [SOCLITE, *args], capture_output=True, text=True, check=True, env=env, cwd=ROOT
    ).stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data", free_port(), tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()


def fetch_lines(base: str, token: str, tag: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"q": tag, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(
            f"{base}/api/v1/events", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        page.raise_for_status()
        data = page.json()
        items.extend(data["items"])
        cursor = data.get("next")
        if not cursor:
            return items


def test_server_stopped_while_agent_tails_every_line_once_in_order(
    server: ServerProcess, tmp_path: Path
) -> None:
    env = server.env
    admin = cli("token", "create", "--data-dir", str(server.data_dir), "--role", "admin", env=env)
    enroll = cli(
        "agent", "enroll-token", "create", "--data-dir", str(server.data_dir), "--unit", "U1", env=env
    )
    log = tmp_path / "app.log"
    log.touch()
    config = tmp_path / "agent.yml"
    config.write_text(
        f"files:\n  - path: {log}\nflush_interval: 0.2\npoll_interval: 0.05\nbatch_size: 100\n"
        "backoff_initial: 0.1\nbackoff_max: 1\nheartbeat_interval: 1\n"
    )
    base = f"http://127.0.0.1:{server.port}"
    with open(tmp_path / "agent.log", "wb") as out:
        agent = subprocess.Popen(
            [SOCLITE, "agent", "--server", base, "--enroll-token", enroll, "--state-dir", str(tmp_path / "state"),
             "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    tag = f"e2e{secrets.token_hex(4)}"
    total = 1500
    stop_writing = threading.Event()

    def writer() -> None:
        for i in range(total):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{tag} line {i:05d}\n")
            time.sleep(0.004)
        stop_writing.set()

    thread = threading.Thread(target=writer, daemon=True)
    try:
        thread.start()
        time.sleep(1.5)
        server.stop()  # the server goes away mid-stream
        time.sleep(2.0)
        server.start()
        thread.join(60)
        assert stop_writing.is_set()
        deadline = time.monotonic() + 90
        events: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            events = fetch_lines(base, admin, tag)
            if len(events) >= total:
                break
            time.sleep(1)
        time.sleep(1.0)
        events = fetch_lines(base, admin, tag)
    finally:
        agent.terminate()
        agent.wait(20)
    numbers = [int(str(e["event.original"]).rsplit(" ", 1)[1]) for e in events]
    assert sorted(numbers) == list(range(total)), (
        f"missing or duplicated: {len(numbers)} events for {total} lines"
    )
    assert all(e.get("soclite.unit") == "U1" and e.get("soclite.agent_id") for e in events)
    # delivered in file order: a later line never reached the journal in an earlier batch
    received = {int(str(e["event.original"]).rsplit(" ", 1)[1]): str(e["soclite.received"]) for e in events}
    ordered = [received[i] for i in range(total)]
    assert ordered == sorted(ordered)
