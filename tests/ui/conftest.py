"""A live soclite server (uvicorn in a thread, loopback, free port) with seeded data, for browser tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Host, HostType, Level, Unit, fingerprint, new_id, severity_of
from soclite.runtime import Runtime

PASSWORD = "analyst-password-1"


@dataclass
class LiveServer:
    url: str
    runtime: Runtime
    alert_ids: list[str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(runtime: Runtime) -> list[str]:
    store = runtime.store
    store.put_unit(Unit(code="PROV", name="Tỉnh"))
    store.put_unit(Unit(code="SO", name="Sở Tài chính", parent="PROV"))
    now = datetime.now(UTC)
    store.put_host(Host(id="tc-ws01", name="TC-WS01", type=HostType.WORKSTATION, unit="SO", last_seen=now))
    store.put_host(Host(id="tc-srv01", name="TC-SRV01", type=HostType.SERVER, unit="SO", last_seen=now))
    alerts, events = [], []
    titles = ["Mimikatz credential dumping", "Encoded PowerShell command", "Suspicious scheduled task",
              "Outbound connection to known bad IP"]
    levels = [Level.CRITICAL, Level.HIGH, Level.MEDIUM, Level.LOW]
    for i in range(24):
        ts = now - timedelta(hours=i * 7)
        host = "tc-ws01" if i % 2 else "tc-srv01"
        event = {"@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "event.id": new_id(), "host.name": host,
                 "soclite.unit": "SO", "Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": f"cmd /c step{i}",
                 "event.original": f"sample event {i}", "logsource.product": "windows",
                 "logsource.category": "process_creation"}
        events.append(event)
        level = levels[i % 4]
        alerts.append(Alert(fingerprint=fingerprint(f"r{i % 4}", host, {"i": i}), rule_id=f"rule-{i % 4}",
                            rule_title=titles[i % 4], level=level, severity=severity_of(level), host=host, unit="SO",
                            first_seen=ts, last_seen=ts, event_ids=[event["event.id"]], event=event))
    store.write_events(events)
    store.put_alerts(alerts)
    return [a.id for a in alerts]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("ui")
    runtime = Runtime.build(Settings(environment="test", data_dir=data,
                                     auth=AuthSettings(secret_key="ui-test-secret-0123456789", secure_cookies=False)))
    ids = _seed(runtime)
    UserStore(runtime.control).add("lan", PASSWORD, role="analyst", display_name="Nguyễn Thị Lan")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", runtime, ids)
    server.should_exit = True
    thread.join(10)
    runtime.close()
