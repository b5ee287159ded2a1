"""Helpers for the playbook tests: alerts, settings, a real runtime (SQLite store, outbox, command queue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from soclite.config import Settings
from soclite.models import Alert, Level, new_id, severity_of
from soclite.playbooks.outbox import Outbox
from soclite.runtime import Runtime

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"


def make_alert(**overrides: Any) -> Alert:
    now = datetime(2026, 11, 23, 3, 4, 5, 123000, tzinfo=UTC)
    level = overrides.pop("level", "high")
    data: dict[str, Any] = {
        "id": new_id(),
        "fingerprint": new_id(),
        "rule_id": "rule-1",
        "rule_title": "Suspicious thing",
        "level": Level(level),
        "severity": severity_of(level),
        "host": "ws-001",
        "unit": "so-a",
        "first_seen": now,
        "last_seen": now + timedelta(seconds=5),
        "created_at": now,
        "updated_at": now,
        "event": {"host.name": "ws-001", "user.name": "nguyenvana", "source.ip": "10.0.0.5"},
    }
    data.update(overrides)
    return Alert(**data)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "environment": "test",
        "data_dir": tmp_path / "data",
        "playbooks": [SHIPPED],
        "correlator": {"rules": [], "ioc_files": []},
    }
    data.update(overrides)
    return Settings(**data)


def build_runtime(settings: Settings) -> Runtime:
    runtime = Runtime.build(settings)
    runtime.outbox = Outbox.from_settings(settings, runtime.control)
    return runtime


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class ScriptedHTTP:
    """A local HTTP(S) server answering from a script of status codes; records every request it got."""

    def __init__(
        self,
        statuses: list[int] | None = None,
        default: int = 200,
        ssl_context: Any = None,
        delay: float = 0.0,
    ) -> None:
        import http.server
        import threading

        self.statuses = list(statuses or [])
        self.default = default
        self.delay = delay
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                code = outer.respond(self.path, dict(self.headers.items()), body)
                payload = b'{"ok": true}' if code < 400 else b'{"error": "refused"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def respond(self, path: str, headers: dict[str, str], body: bytes) -> int:
        self.requests.append((path, headers, body))
        if self.delay:
            import time

            time.sleep(self.delay)
        return self.statuses.pop(0) if self.statuses else self.default

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
