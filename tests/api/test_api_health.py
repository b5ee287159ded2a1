"""Failures are seen: /health checks, and the UI's badge, banner and notification centre.

The mail server is a real closed port on 127.0.0.1 (connection refused, as in the demo), the worker the real one.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

from soclite.control.identity import UserStore
from soclite.control.outbox import RetryPolicy
from soclite.models import isoformat, utcnow
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.api.conftest import auth

Client = Any
PASSWORD = "health-test-password"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: connecting is refused


def fail_seven_emails(runtime: Runtime, unit: str = "SO") -> None:
    runtime.settings.smtp.host = "127.0.0.1"
    runtime.settings.smtp.port = closed_port()
    for i in range(7):
        runtime.outbox.submit("notify_email", {"to": [f"leader{i}@example.vn"]}, idempotency_key=f"mail-{i}",
                              requested_by="playbook:demo", retry=RetryPolicy(count=1),
                              payload={"unit": unit})  # fmt: skip
    Worker(runtime).run_once()


def test_health_is_ok_and_says_so_per_check(runtime: Runtime, client: Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["overall"] == "ok"
    assert body["checks"]["playbook_actions"] == {"status": "ok", "reason": None}


def test_failing_emails_make_health_degraded_with_the_reason(runtime: Runtime, client: Client) -> None:
    fail_seven_emails(runtime)
    body = client.get("/health").json()
    assert body["status"] == "ok"  # liveness, the DESIGN.md contract
    assert body["overall"] == "degraded"
    check = body["checks"]["playbook_actions"]
    assert check["status"] == "degraded" and "7 notify_email" in check["reason"]
    assert "refused" in check["reason"].lower()


def test_a_national_connector_that_is_down_is_a_degraded_check(runtime: Runtime, client: Client) -> None:
    runtime.settings.national.enabled = True
    name = runtime.settings.national.kind
    assert client.get("/health").json()["checks"]["national_connector"]["status"] == "ok"
    runtime.outbox.connector_update(name, last_error="connect timeout", last_error_at=isoformat(utcnow()))
    check = client.get("/health").json()["checks"]["national_connector"]
    assert check["status"] == "degraded" and "connect timeout" in check["reason"]
    runtime.outbox.connector_update(name, last_success=isoformat(utcnow()))
    assert client.get("/health").json()["checks"]["national_connector"]["status"] == "ok"


def login(client: Client, user: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303


def test_the_ui_shows_a_badge_a_banner_and_the_failures_in_scope(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client
) -> None:
    UserStore(runtime.control).add("boss", PASSWORD, role="admin")
    UserStore(runtime.control).add("ha-viewer", PASSWORD, role="viewer", unit="HA")
    login(client, "boss")
    quiet = client.get("/alerts").text
    assert 'id="health-banner"' not in quiet and '<span class="count">0</span>' in quiet
    fail_seven_emails(runtime, unit="SO")
    page = client.get("/alerts").text
    assert 'id="health-banner"' in page and '<span class="count">1</span>' in page
    centre = client.get("/notifications").text
    assert 'data-kind="action_dead"' in centre and ">7<" in centre and "notify_email" in centre
    client.post("/logout")
    login(client, "ha-viewer")  # another unit's failures are not theirs
    assert 'id="health-banner"' not in client.get("/alerts").text
    assert 'id="no-notices"' in client.get("/notifications").text


def test_dismissing_the_dead_letters_clears_the_check(runtime: Runtime, client: Client,
                                                      tokens: dict[str, str]) -> None:
    fail_seven_emails(runtime)
    for record in runtime.outbox.list_actions(status="dead"):
        r = client.post(f"/api/v1/actions/{record.id}/cancel", headers=auth(tokens["admin"]),
                        json={"reason": "mail server was down for the demo"})  # fmt: skip
        assert r.status_code == 200
    assert client.get("/health").json()["checks"]["playbook_actions"]["status"] == "ok"


def test_rules_that_fail_to_load_are_a_degraded_check(runtime: Runtime, client: Client, tmp_path: Path) -> None:
    from soclite.correlator.engine import Engine

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text(GOOD_RULE, encoding="utf-8")
    (rules / "broken.yml").write_text("title: broken\nlogsource: {product: windows}\ndetection: {}\n",
                                      encoding="utf-8")  # fmt: skip
    runtime.settings.correlator.rules = [rules]
    engine = Engine.from_settings(runtime.settings, state_dir=tmp_path / "state")
    runtime.engine = engine
    try:
        check = client.get("/health").json()["checks"]["rules"]
        assert check["status"] == "degraded" and "1 rule(s) failed to load" in check["reason"]
        assert "broken.yml" in check["reason"]
    finally:
        engine.close()


GOOD_RULE = """
title: Good rule
id: 0e8f4f7a-4f0c-4d7e-9a43-3f1f0d2a9b11
status: test
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\cmd.exe'}
  condition: selection
level: low
"""
