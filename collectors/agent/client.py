"""A small HTTPS client for the agent, on the standard library.

Why not httpx (which the server side uses): importing it costs ~19 MB of RSS,
half the agent's budget. ``http.client`` with an ``ssl`` context gives the same
guarantees: certificate and host name verification on (the system store or the
configured CA file), and the optional pin is checked on the peer certificate
right after the handshake, *before* a request byte (or the bearer key) is sent.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from soclite.errors import ConnectorError


class PinMismatch(ConnectorError):
    """The server certificate is not the pinned one: nothing was sent."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


class ServerClient:
    """One keep-alive connection to the server; use one instance per thread."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_file: Path | None = None,
        pin_sha256: str | None = None,
        timeout: float = 30.0,
        api_key: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectorError(f"server URL must be http(s)://host[:port], got {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.pin = pin_sha256
        self.api_key = api_key
        self._context: ssl.SSLContext | None = None
        if self.scheme == "https":
            # create_default_context: CERT_REQUIRED and check_hostname on; a CA file narrows trust to it.
            self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._conn: http.client.HTTPConnection | None = None
        #: addresses the server name last resolved to: an isolated host may have no DNS left,
        #: yet must keep reaching the manager (the isolation policy allows those addresses).
        self._known_addresses: list[str] = []

    def _create_connection(
        self, address: tuple[str, int], timeout: float | None = None, source: tuple[str, int] | None = None
    ) -> socket.socket:
        try:
            sock = socket.create_connection(address, timeout, source)
        except socket.gaierror:
            for ip in self._known_addresses:
                try:
                    return socket.create_connection((ip, address[1]), timeout, source)
                except OSError:
                    continue
            raise
        peer = str(sock.getpeername()[0])
        if peer not in self._known_addresses:
            self._known_addresses = [peer, *self._known_addresses][:4]
        return sock

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is not None:
            return self._conn
        conn: http.client.HTTPConnection
        if self._context is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn._create_connection = self._create_connection  # type: ignore[attr-defined]  # DNS fallback, see above
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ConnectorError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        if self.pin is not None:
            sock = conn.sock
            der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
            if der is None or hashlib.sha256(der).hexdigest() != self.pin:
                conn.close()
                raise PinMismatch(
                    f"server certificate of {self.host}:{self.port} does not match the pinned sha256"
                )
        self._conn = conn
        return conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request; raise ConnectorError on any transport failure (the caller retries)."""
        all_headers = {"Accept": "application/json", "User-Agent": "soclite-agent"}
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        all_headers.update(headers or {})
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connect()
            try:
                conn.request(method, self.prefix + path, body=body, headers=all_headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the server closed while idle fails on first use: retry once on a
                # fresh one (safe: ingest dedups on X-Batch-Id, results and heartbeats are idempotent).
                if reused and attempt == 1:
                    continue
                raise ConnectorError(f"{method} {path}: {exc}") from exc
        if resp.getheader("connection", "").lower() == "close":
            self.close()
        return Response(resp.status, data)

    def post_json(self, path: str, payload: Any) -> Response:
        return self.request(
            "POST", path, json.dumps(payload).encode("utf-8"), {"Content-Type": "application/json"}
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
