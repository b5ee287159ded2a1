"""A tiny HTTP proxy in front of an OpenSearch-API server that injects faults at the transport.

It forwards every request unchanged, except that a queued fault for ``_bulk``
rewrites the answer the way a busy or failing cluster does: a whole-request 429,
or per-item statuses (429, 500) for chosen positions while the rest of the batch
is really written upstream — the half-success the store must handle.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        #: each fault: ("reject", status) for the whole request, or ("items", {position: status})
        self.bulk_faults: deque[tuple[str, Any]] = deque()
        self.bulk_requests = 0
        #: every request's path, in order (what the store asked the cluster, and how often)
        self.paths: list[str] = []
        #: answer every request with 503, as a cluster without a master does
        self.away = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path
                proxy.paths.append(urlsplit(path).path)
                if proxy.away:
                    self._reply(503, {"error": {"type": "cluster_block_exception", "reason": "no master"}, "status": 503})
                    return
                fault = None
                if urlsplit(path).path.endswith("/_bulk"):
                    proxy.bulk_requests += 1
                    if proxy.bulk_faults:
                        fault = proxy.bulk_faults.popleft()
                if fault and fault[0] == "reject":
                    self._reply(
                        fault[1],
                        {
                            "error": {"type": "es_rejected_execution_exception", "reason": "queue full"},
                            "status": fault[1],
                        },
                    )
                    return
                lines = body.splitlines()
                if fault and fault[0] == "items":
                    # Keep the refused items from reaching upstream, like a cluster that did not write them.
                    kept: list[bytes] = []
                    for pos in range(len(lines) // 2):
                        if pos not in fault[1]:
                            kept += lines[2 * pos : 2 * pos + 2]
                    body = b"\n".join(kept) + b"\n"
                status, headers, data = self._forward(path, body)
                if fault and fault[0] == "items":
                    answer = json.loads(data)
                    upstream_items = iter(answer["items"])
                    items = []
                    for pos in range(len(lines) // 2):
                        action = json.loads(lines[2 * pos])
                        op = next(iter(action))
                        if pos in fault[1]:
                            code = fault[1][pos]
                            err = {
                                "type": "es_rejected_execution_exception"
                                if code == 429
                                else "internal_error",
                                "reason": "injected",
                            }
                            items.append(
                                {
                                    op: {
                                        "_index": action[op]["_index"],
                                        "_id": action[op]["_id"],
                                        "status": code,
                                        "error": err,
                                    }
                                }
                            )
                        else:
                            items.append(next(upstream_items))
                    answer["items"] = items
                    answer["errors"] = True
                    self._reply(status, answer)
                    return
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, path: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                conn = proxy.connect()
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                conn.request(self.command, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                return resp.status, resp.getheaders(), data

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def connect(self) -> http.client.HTTPConnection:
        """A connection upstream: https (a secured cluster) checked against OPENSEARCH_CA_CERTS, as the store does."""
        host, port = self.upstream.hostname or "127.0.0.1", self.upstream.port
        if self.upstream.scheme != "https":
            return http.client.HTTPConnection(host, port, timeout=30)
        context = ssl.create_default_context(cafile=os.environ.get("OPENSEARCH_CA_CERTS") or None)
        if os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") == "0":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, port, timeout=30, context=context)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
