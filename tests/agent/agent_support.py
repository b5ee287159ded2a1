"""A small local HTTP server speaking the soclite agent/ingest contract (the remote system faked at
its transport), and helpers shared by the agent tests."""

from __future__ import annotations

import contextlib
import gzip
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeSoc:
    """State of the fake server: what it durably 'stored', in arrival order, deduplicated by batch id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.batch_ids: set[str] = set()
        self.requests = 0
        self.duplicates = 0
        self.heartbeats: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.results: list[tuple[str, dict[str, Any]]] = []
        #: batch ids whose answer is swallowed once (stored, then the connection is dropped)
        self.lose_ack_once: set[str] = set()
        self.lose_next_acks = 0
        self.fail_with: int | None = None

    def lines(self) -> list[str]:
        with self.lock:
            return [r["message"] for r in self.records]


def make_handler(soc: FakeSoc, key: str = "sl_agent1_secret") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # silence
            pass

        def setup(self) -> None:
            super().setup()
            self.server.open_sockets.add(self.connection)  # type: ignore[attr-defined]

        def finish(self) -> None:
            self.server.open_sockets.discard(self.connection)  # type: ignore[attr-defined]
            super().finish()

        def _reply(self, code: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _auth(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {key}":
                self._reply(401, {"detail": "unknown or revoked token"})
                return False
            return True

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self) -> None:
            data = self._body()
            if self.path == "/api/v1/agents/enroll":
                payload = json.loads(data)
                if payload.get("enroll_token") != "se_good":
                    self._reply(401, {"detail": "unknown enrollment token"})
                    return
                self._reply(200, {"agent_id": "agent1", "api_key": key, "unit": "U1"})
                return
            if not self._auth():
                return
            if self.path == "/api/v1/ingest":
                with soc.lock:
                    soc.requests += 1
                    if soc.fail_with:
                        self._reply(soc.fail_with, {"detail": "injected"})
                        return
                    batch_id = self.headers["X-Batch-Id"]
                    if batch_id in soc.batch_ids:
                        soc.duplicates += 1
                        self._reply(200, {"accepted": 0, "duplicate": True})
                        return
                    assert self.headers.get("Content-Encoding") == "gzip"
                    lines = gzip.decompress(data).decode().splitlines()
                    records = [json.loads(line) for line in lines if line]
                    soc.records.extend(records)
                    soc.batch_ids.add(batch_id)
                    lose = batch_id in soc.lose_ack_once or soc.lose_next_acks > 0
                    soc.lose_ack_once.discard(batch_id)
                    if soc.lose_next_acks > 0:
                        soc.lose_next_acks -= 1
                if lose:  # stored, but the answer never reaches the agent
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._reply(200, {"accepted": len(records), "duplicate": False})
                return
            if self.path == "/api/v1/agents/heartbeat":
                with soc.lock:
                    soc.heartbeats.append(json.loads(data))
                    pending = len(soc.commands)
                self._reply(200, {"ok": True, "commands_pending": pending})
                return
            if self.path.startswith("/api/v1/agents/commands/") and self.path.endswith("/result"):
                command_id = self.path.split("/")[-2]
                with soc.lock:
                    soc.results.append((command_id, json.loads(data)))
                    soc.commands = [c for c in soc.commands if c["id"] != command_id]
                self._reply(200, {"ok": True})
                return
            self._reply(404, {"detail": "no route"})

        def do_GET(self) -> None:
            if not self._auth():
                return
            if self.path.startswith("/api/v1/agents/commands"):
                with soc.lock:
                    self._reply(200, {"items": list(soc.commands)})
                return
            self._reply(404, {"detail": "no route"})

    return Handler


class ServerThread:
    """Start/stop the fake server on a fixed port (stopping refuses connections, like a server down)."""

    def __init__(self, soc: FakeSoc, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.soc = soc
        self.port = port
        self.ssl_context = ssl_context
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> ServerThread:
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), make_handler(self.soc))
        httpd.daemon_threads = True
        httpd.open_sockets = set()  # type: ignore[attr-defined]
        if self.ssl_context is not None:
            httpd.socket = self.ssl_context.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self.httpd = httpd
        self.thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            for sock in list(self.httpd.open_sockets):  # type: ignore[attr-defined]
                with contextlib.suppress(OSError):  # a stopped server also drops its keep-alive connections
                    sock.shutdown(2)
            self.httpd = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
