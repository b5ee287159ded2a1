"""Signed JSON over HTTPS to a local national endpoint (mutual TLS, self-signed CA made here).

The receiver verifies every detached JWS with the unit's public key, refuses one object with a 400, and
goes away for a while: every other alert arrives once, in order, and a tampered body fails verification.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from jwcrypto import jwk, jws

from soclite.playbooks.connectors.signed_json import SIGNATURE_HEADER, verify_detached
from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.runner import PlaybookRunner
from soclite.playbooks.schema import load_playbooks
from soclite.playbooks.worker import Worker
from tests.playbooks.pki import make_pki
from tests.playbooks.support import build_runtime, make_alert, make_settings, wait_for

PLAYBOOK = """\
id: national-fast
trigger: {on: [created], match: {severity: [high, medium]}}
steps:
  - name: national
    action: national_sync
    retry: {count: 2, backoff: 0.1, factor: 2, max_backoff: 0.4}
    timeout: 10
"""


class NationalReceiver:
    """The national side: mTLS HTTPS, verifies each signature, drops resends by message id."""

    def __init__(self, pki: dict[str, Path]) -> None:
        self.public = jwk.JWK.from_pem(pki["signing_pub"].read_bytes())
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
        self.context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the province must present its certificate
        self.context.load_cert_chain(str(pki["server_cert"]), str(pki["server_key"]))
        self.received: list[dict[str, Any]] = []
        self.raw: list[tuple[bytes, str]] = []
        self.posts = 0
        self.bad_signatures = 0
        self.heartbeats: list[dict[str, Any]] = []
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None

    def verify(self, body: bytes, signature: str) -> bool:
        token = jws.JWS()
        try:
            token.deserialize(signature)
            token.verify(self.public, detached_payload=body)
        except (jws.InvalidJWSSignature, jws.InvalidJWSObject, ValueError):
            return False
        return True

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signature = self.headers.get(SIGNATURE_HEADER, "")
                outer.posts += 1
                if not outer.verify(body, signature):
                    outer.bad_signatures += 1
                    return self._answer(401)
                message = orjson.loads(body)
                outer.raw.append((body, signature))
                if self.path == "/heartbeat":
                    outer.heartbeats.append(message)
                    return self._answer(200)
                if message["alert"]["rule_id"] == "bad-object":
                    return self._answer(400, b'{"error": "rule_id not accepted"}')
                if message["id"] not in {m["id"] for m in outer.received}:
                    outer.received.append(message)
                return self._answer(200)

            def _answer(self, code: int, payload: bytes = b"{}") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = self.context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_signed_json_delivery_in_order_through_an_outage(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    receiver = NationalReceiver(pki)
    receiver.start()
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "national.yml").write_text(PLAYBOOK, encoding="utf-8")
    settings = make_settings(
        tmp_path,
        playbooks=[tmp_path / "pb"],
        national={
            "enabled": True,
            "kind": "signed_json",
            "https_url": f"https://127.0.0.1:{receiver.port}",
            "signing_key": str(pki["signing_key"]),
            "ca_certs": str(pki["ca"]),
            "client_cert": str(pki["client_cert"]),
            "client_key": str(pki["client_key"]),
            "pseudonymize_users": True,
            "hmac_secret": "x" * 32,
            "heartbeat_seconds": 3600,
        },
    )
    runtime = build_runtime(settings)
    playbooks, problems = load_playbooks([tmp_path / "pb"])
    assert problems == []
    runner = PlaybookRunner(runtime, playbooks)
    worker = Worker(runtime, poll_seconds=0.05)
    worker.start()
    alerts = []
    try:

        def emit(n: int, **kw: Any) -> None:
            for _ in range(n):
                alert = make_alert(level="high", **kw)
                alerts.append(alert)
                runner.on_alert(alert, "created")

        emit(5)
        wait_for(lambda: len(receiver.received) == 5)
        receiver.stop()  # the national system goes away; alerts keep coming
        emit(5)
        emit(1, rule_id="bad-object")
        emit(5)
        wait_for(lambda: runtime.outbox.connector_status("signed_json").last_error is not None)
        state = runtime.outbox.connector_status("signed_json")
        assert state.backlog == 11 and "ConnectError" in (state.last_error or "")
        assert any("signed_json" in w for w in runtime.outbox.health_warnings())
        receiver.start()  # back on the same port
        wait_for(lambda: runtime.outbox.connector_status("signed_json").backlog == 0, timeout=30)
    finally:
        worker.stop()
        receiver.stop()
    good = [a.id for a in alerts if a.rule_id != "bad-object"]
    assert [m["alert"]["id"] for m in receiver.received] == good  # every one, once, in order
    assert receiver.bad_signatures == 0
    bad = next(a for a in alerts if a.rule_id == "bad-object")
    (dead,) = runtime.outbox.list_actions(status="dead")
    assert (
        dead.alert_id == bad.id
        and "HTTP 400" in (dead.last_error or "")
        and "rule_id not accepted" in dead.last_error
    )
    state = runtime.outbox.connector_status("signed_json")
    assert state.sent == 15 and state.dead == 1 and state.backlog == 0
    # Personal data kept to the minimum: the account name is a pseudonym, the raw record is not sent.
    event = receiver.received[0]["alert"]["event"]
    assert (
        event["user.name"].startswith("pseud-")
        and "nguyenvana" not in orjson.dumps(receiver.received).decode()
    )
    # A heartbeat went out at start, signed like everything else.
    assert receiver.heartbeats and receiver.heartbeats[0]["stats"]["province"] == settings.province
    # Tampering with one byte of a received body breaks its signature.
    body, signature = next((b, s) for b, s in receiver.raw if b'"type":"alert"' in b)
    assert receiver.verify(body, signature) and verify_detached(body, signature, receiver.public)
    tampered = body.replace(b'"high"', b'"low"', 1)
    assert tampered != body
    assert not receiver.verify(tampered, signature)
    assert not verify_detached(tampered, signature, receiver.public)
    runtime.outbox.close()
    runtime.commands.close()
    runtime.close()


def test_http_status_classification_and_verify_on(tmp_path: Path) -> None:
    """Without the CA the self-signed server is refused (TLS verification is on by default)."""
    pki = make_pki(tmp_path)
    receiver = NationalReceiver(pki)
    receiver.start()
    settings = make_settings(
        tmp_path,
        national={
            "enabled": True,
            "kind": "signed_json",
            "https_url": f"https://127.0.0.1:{receiver.port}",
            "hmac_secret": "y" * 32,
        },
    )
    runtime = build_runtime(settings)
    try:
        record = runtime.outbox.submit(
            "national_sync",
            {},
            idempotency_key="v1",
            requested_by="t",
            payload=make_alert().model_dump(mode="json"),
        )
        Worker(runtime).run_once()
        row = runtime.outbox.get(record.id)
        assert row.status == ActionStatus.FAILED and "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")
        assert receiver.posts == 0
    finally:
        receiver.stop()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()
