"""The scan response action through the API: refused without an agent, paths checked, its state in the queue
moving with the agent's command channel (queued → running → infected), audited. The real agent and
clamscan run in tests/netns/test_scan.py; here the agent's side is its HTTP API, called as an agent does."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.api.conftest import auth

Client = Any


def enrolled_agent(runtime: Runtime, client: Client, host: str) -> str:
    """Enrol an agent for ``host`` (unit SO) through the API; returns its key."""
    token = runtime.agents.create_enroll_token(unit="SO")
    r = client.post("/api/v1/agents/enroll", json={"enroll_token": token, "hostname": host})
    assert r.status_code in (200, 201), r.text
    key = str(r.json()["api_key"])
    r = client.post("/api/v1/agents/heartbeat", headers=auth(key), json={"hostname": host, "agent_version": "t"})
    assert r.status_code == 200, r.text
    return key


def test_scan_is_refused_without_an_agent_and_paths_must_be_absolute(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    r = client.post("/api/v1/hosts/so-ser/scan", headers=h, json={"paths": ["/home"]})
    assert r.status_code == 409 and "no enrolled agent" in r.json()["detail"]
    assert client.post("/api/v1/hosts/so-ser/scan", headers=h, json={"paths": ["home"]}).status_code == 422
    assert client.post("/api/v1/hosts/so-ser/scan", headers=h, json={"paths": []}).status_code == 422
    assert client.post("/api/v1/hosts/so-ser/scan", headers=auth(tokens["viewer"]),
                       json={"paths": ["/home"]}).status_code == 403  # fmt: skip
    assert client.post("/api/v1/hosts/so-ser/scan", headers=auth(tokens["analyst_ha"]),
                       json={"paths": ["/home"]}).status_code == 404  # fmt: skip
    assert runtime.outbox.list_actions(action="scan_host") == []


def test_the_scan_state_follows_the_agent_from_queued_to_infected(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    key = enrolled_agent(runtime, client, "so-scan01")
    h = auth(tokens["analyst"])
    r = client.post("/api/v1/hosts/so-scan01/scan", headers=h, json={"paths": ["/home", "C:\\Users"]})
    assert r.status_code == 202, r.text
    action_id = r.json()["action"]["id"]
    assert r.json()["action"]["scan"] == {"state": "not_sent"}  # the worker has not run yet

    Worker(runtime).run_once()
    state = lambda: client.get(f"/api/v1/actions/{action_id}", headers=h).json()["scan"]  # noqa: E731
    assert state()["state"] == "queued"
    polled = client.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]
    assert [(c["kind"], c["params"]["paths"]) for c in polled] == [("scan", ["/home", "C:\\Users"])]
    assert state()["state"] == "running"
    # the scan never moves the host's isolation
    assert runtime.store.get_host("so-scan01").isolation.value == "none"
    detail = json.dumps({"scan": "infected", "engine": "clamscan", "paths": ["/home"], "findings": 2,
                         "found": [{"path": "/home/a/x.exe", "signature": "Win.Trojan.X"}], "error": None})  # fmt: skip
    r = client.post(f"/api/v1/agents/commands/{polled[0]['id']}/result", headers=auth(key),
                    json={"ok": True, "detail": detail})  # fmt: skip
    assert r.status_code == 200
    assert state() | {"completed_at": None} == {
        "state": "infected", "findings": 2, "engine": "clamscan", "error": None, "completed_at": None,
        "found": [{"path": "/home/a/x.exe", "signature": "Win.Trojan.X"}]}  # fmt: skip
    assert runtime.store.get_host("so-scan01").isolation.value == "none"
    listed = client.get("/api/v1/actions", headers=h, params={"action": "scan_host"}).json()["items"]
    assert [a["scan"]["state"] for a in listed] == ["infected"]
    assert client.get("/api/v1/actions", headers=auth(tokens["analyst_ha"]),
                      params={"action": "scan_host"}).json()["items"] == []  # fmt: skip
    assert "host.scan" in [e.action for e in runtime.store.iter_audit()]


def test_not_available_on_the_host_is_shown_as_such(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    key = enrolled_agent(runtime, client, "so-scan02")
    h = auth(tokens["analyst"])
    action_id = client.post("/api/v1/hosts/so-scan02/scan", headers=h, json={"paths": ["/"]}).json()["action"]["id"]
    Worker(runtime).run_once()
    [command] = client.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]
    detail = json.dumps({"scan": "not_available", "engine": None, "paths": ["/"], "findings": 0, "found": [],
                         "error": "not available: clamdscan or clamscan is not installed on this host"})  # fmt: skip
    client.post(f"/api/v1/agents/commands/{command['id']}/result", headers=auth(key), json={"ok": False, "detail": detail})
    scan = client.get(f"/api/v1/actions/{action_id}", headers=h).json()["scan"]
    assert scan["state"] == "not_available" and "not installed" in scan["error"]


def test_a_scan_whose_agent_went_silent_expires_with_the_reason_and_a_late_result_still_counts(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    key = enrolled_agent(runtime, client, "so-scan04")
    h = auth(tokens["analyst"])
    runtime.settings.response.scan_timeout_minutes = 0.02  # 1.2 s, for the test
    action_id = client.post("/api/v1/hosts/so-scan04/scan", headers=h, json={"paths": ["/srv"]}).json()["action"]["id"]
    worker = Worker(runtime, tick_seconds=0.05)
    worker.run_once()
    [command] = client.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]  # fetched, then silence
    state = lambda: client.get(f"/api/v1/actions/{action_id}", headers=h).json()["scan"]  # noqa: E731
    assert state()["state"] == "running"
    worker.start()  # the real worker's periodic job, as the server runs it
    try:
        deadline = time.monotonic() + 60
        while state()["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    expired = state()
    assert expired["state"] == "expired", expired
    assert "no result from the agent" in expired["error"] and "fetched the scan" in expired["error"]
    # the agent no longer gets it handed out again
    assert client.get("/api/v1/agents/commands", headers=auth(key)).json()["items"] == []
    # an agent that comes back and reports after all is believed: the result replaces "expired"
    detail = json.dumps({"scan": "clean", "engine": "clamscan", "paths": ["/srv"], "findings": 0, "found": [],
                         "error": None})  # fmt: skip
    r = client.post(f"/api/v1/agents/commands/{command['id']}/result", headers=auth(key), json={"ok": True, "detail": detail})
    assert r.status_code == 200 and state()["state"] == "clean"


def test_a_scan_still_within_its_deadline_stays_running(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    key = enrolled_agent(runtime, client, "so-scan05")
    h = auth(tokens["analyst"])
    action_id = client.post("/api/v1/hosts/so-scan05/scan", headers=h, json={"paths": ["/srv"]}).json()["action"]["id"]
    worker = Worker(runtime)
    worker.run_once()
    client.get("/api/v1/agents/commands", headers=auth(key))
    assert worker.expire_stalled_scans() == 0  # the default deadline (120 min) is far away
    command = runtime.commands.by_key(runtime.outbox.get(action_id).idempotency_key)
    assert command is not None and command.delivered_at is not None
    # just before the deadline nothing moves; just after it, the scan expires (a controlled clock)
    timeout = timedelta(minutes=runtime.settings.response.scan_timeout_minutes)
    assert runtime.commands.expire_stalled_scans(timeout, now=command.delivered_at + timeout - timedelta(seconds=1)) == []
    [gone] = runtime.commands.expire_stalled_scans(timeout, now=command.delivered_at + timeout + timedelta(seconds=1))
    assert gone.id == command.id and gone.status == "expired"
