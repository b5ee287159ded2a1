"""End to end with the real `soclite server` process: syslog from `logger`, and HTTP ingest across a SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from soclite.store.journal import Journal
from tests.collectors.conftest import free_port

pytestmark = pytest.mark.e2e
CHECK = "e2e-check"  # a consumer registered before the server starts: compaction keeps what it has not read


class ServerProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.syslog_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def token(self, role: str, unit: str | None = None) -> str:
        args = [sys.executable, "-m", "soclite.cli", "token", "create", "--data-dir", str(self.data_dir), "--role", role]
        if unit:
            args += ["--unit", unit]
            # `token create` refuses a unit that does not exist: create it in the store first.
            code = ("import sys; from soclite.config import load_cli_settings; from soclite.store import open_store; "
                    "from soclite.models import Unit; s = open_store(load_cli_settings(None, data_dir=sys.argv[1])); "
                    "s.put_unit(Unit(code=sys.argv[2], name=sys.argv[2])); s.close()")
            subprocess.run([sys.executable, "-c", code, str(self.data_dir), unit], check=True, env=self.env)
        return subprocess.run(args, capture_output=True, text=True, check=True, env=self.env).stdout.strip()

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "soclite.cli", "server", "--data-dir", str(self.data_dir),
             "--http-port", str(self.http_port), "--syslog-port", str(self.syslog_port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data_dir / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    data = tmp_path / "data"
    data.mkdir()
    journal = Journal(data / "journal.db", max_bytes=2 * 1024**3)
    journal.register(CHECK)
    journal.close()
    srv = ServerProcess(data)
    yield srv
    srv.stop()


def journal_events(data_dir: Path) -> list[dict[str, object]]:
    journal = Journal(data_dir / "journal.db", max_bytes=2 * 1024**3)
    try:
        return [e for _, e in journal.read(CHECK, 1_000_000)]
    finally:
        journal.close()


@pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger not installed")
def test_logger_to_running_server(server: ServerProcess) -> None:
    server.start()
    for transport, fmt, n in (("--udp", "--rfc5424", 1), ("--udp", "--rfc3164", 2), ("--tcp", "--rfc5424", 3),
                              ("--tcp", "--rfc3164", 4), ("--tcp", "--octet-count", 5)):  # fmt: skip
        subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(server.syslog_port), transport, fmt, "-t", "sshd",
                        f"Invalid user e2e{n} from 192.0.2.{n} port 5{n}"], check=True, timeout=10)  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        events = [e for e in journal_events(server.data_dir) if str(e.get("user.name", "")).startswith("e2e")]
        if len(events) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(e["user.name"] for e in events) == [f"e2e{n}" for n in range(1, 6)]
    assert all(e["event.action"] == "ssh_invalid_user" and e["logsource.service"] == "sshd" for e in events)


def test_http_ingest_survives_sigkill_exactly_once(server: ServerProcess) -> None:
    """Stream batches, SIGKILL mid-stream, restart, resend whatever was not acknowledged: every
    acknowledged event is in the journal exactly once (and every batch, in the end, is)."""
    token = server.token("agent", unit="so-tttt")
    server.start()
    batches = {f"batch-{b:04d}": [{"@timestamp": "2026-11-23T10:00:00Z", "logsource.product": "linux",
                                   "event.id": f"ev-{b:04d}-{i:03d}", "message": f"event {b}/{i}"} for i in range(50)]
               for b in range(400)}  # fmt: skip
    acked: set[str] = set()
    killed = threading.Event()
    headers = {"Authorization": f"Bearer {token}"}

    def stream() -> None:
        with httpx.Client(timeout=10) as client:
            for batch_id, events in batches.items():
                if killed.is_set():
                    return
                try:
                    r = client.post(f"{server.url}/api/v1/ingest", headers={**headers, "X-Batch-Id": batch_id},
                                    content=b"\n".join(orjson.dumps(e) for e in events))  # fmt: skip
                except httpx.HTTPError:
                    return  # the server died under us: this batch is unacknowledged
                if r.status_code == 200:
                    acked.add(batch_id)

    sender = threading.Thread(target=stream)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL mid-stream
    killed.set()
    sender.join(30)
    acked_before = set(acked)
    assert 60 <= len(acked_before) < len(batches)

    server.start()
    with httpx.Client(timeout=30) as client:
        # The client resends every batch it has no acknowledgement for (some may have committed before the kill).
        for batch_id, events in batches.items():
            if batch_id in acked_before:
                continue
            r = client.post(f"{server.url}/api/v1/ingest", headers={**headers, "X-Batch-Id": batch_id},
                            content=b"\n".join(orjson.dumps(e) for e in events))  # fmt: skip
            assert r.status_code == 200 and r.json()["accepted"] in (0, 50)
        # A resend of an acknowledged batch is a duplicate, not new data.
        first = next(iter(sorted(acked_before)))
        r = client.post(f"{server.url}/api/v1/ingest", headers={**headers, "X-Batch-Id": first},
                        content=b"\n".join(orjson.dumps(e) for e in batches[first]))  # fmt: skip
        assert r.json() == {"accepted": 0, "duplicate": True}
    server.stop()

    counts = Counter(str(e["event.id"]) for e in journal_events(server.data_dir))
    for batch_id in acked_before:
        b = batch_id.split("-")[1]
        assert all(counts[f"ev-{b}-{i:03d}"] == 1 for i in range(50)), batch_id
    assert len(counts) == 400 * 50 and set(counts.values()) == {1}
