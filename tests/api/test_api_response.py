"""Isolation as an honest state machine, and the response queue's approve/reject/cancel/two-person rule.

Through the real app: tokens, the real outbox and worker, the agent's real enrol/heartbeat/result routes;
the firewall of a network-level isolation is a real HTTP server on a socket (faked only at its transport).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from soclite.config import FirewallWebhook
from soclite.control.outbox import ActionStatus
from soclite.models import utcnow
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.api.conftest import auth

Client = Any


def enrol(client: Client, runtime: Runtime, hostname: str, unit: str) -> str:
    """Enrol a real agent for ``hostname`` through the API and send one heartbeat; returns its key."""
    token = runtime.agents.create_enroll_token(unit=unit)
    r = client.post("/api/v1/agents/enroll", json={"enroll_token": token, "hostname": hostname,
                                                   "agent_version": "1.4.2"})  # fmt: skip
    assert r.status_code == 200, r.text
    key: str = r.json()["api_key"]
    beat = client.post("/api/v1/agents/heartbeat", json={"hostname": hostname, "agent_version": "1.4.2"},
                       headers=auth(key))  # fmt: skip
    assert beat.status_code == 200, beat.text
    return key


def test_isolating_a_host_without_an_agent_is_refused_with_the_reason(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    r = client.post("/api/v1/hosts/so-wor/isolate", headers=auth(tokens["admin"]), json={"reason": "malware"})
    assert r.status_code == 409
    assert "no enrolled agent" in r.json()["detail"] and "firewall_webhook" in r.json()["detail"]
    # nothing was queued, the host did not move, nothing claims a request was made
    assert runtime.outbox.list_actions() == []
    assert runtime.store.get_host("so-wor").isolation == "none"
    assert "host.isolate" not in [e.action for e in runtime.store.iter_audit()]


def test_hosts_show_an_agent_only_where_there_is_one(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    enrol(client, runtime, "so-wor", "SO")
    hosts = {h["id"]: h for h in client.get("/api/v1/hosts", headers=auth(tokens["admin"])).json()["items"]}
    # so-ser is "online" from its logs, but it has no agent: no "agent online" for it
    assert hosts["so-ser"]["online"] is True and hosts["so-ser"]["agent"] is None
    agent = hosts["so-wor"]["agent"]
    assert agent["online"] is True and agent["version"] == "1.4.2" and agent["last_heartbeat"]


def test_isolation_walks_awaiting_approval_requested_sent_verified(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    runtime.settings.response.api_isolation_requires_approval = True
    key = enrol(client, runtime, "so-wor", "SO")
    admin = auth(tokens["admin"])

    def state() -> dict[str, Any]:
        data: dict[str, Any] = client.get("/api/v1/hosts/so-wor", headers=admin).json()
        return data

    r = client.post("/api/v1/hosts/so-wor/isolate", headers=admin, json={"reason": "ransomware"})
    assert r.status_code == 202, r.text
    action_id = r.json()["action"]["id"]
    assert r.json()["action"]["status"] == "awaiting_approval"
    assert state()["isolation"] == "awaiting_approval" and state()["isolation_age_seconds"] is not None
    # a heartbeat saying "not isolated" does not wipe the request in flight
    client.post("/api/v1/agents/heartbeat", json={"hostname": "so-wor"}, headers=auth(key))
    assert state()["isolation"] == "awaiting_approval"
    # a second request while one is under way is refused, with what is under way
    again = client.post("/api/v1/hosts/so-wor/isolate", headers=admin, json={"reason": "again"})
    assert again.status_code == 409 and "awaiting_approval" in again.json()["detail"]
    # nothing goes to the agent before the approval
    Worker(runtime).run_once()
    assert runtime.commands.list_for_host("so-wor") == []
    other_admin = runtime.identity.create_token(role="admin", name="root2")
    assert client.post(f"/api/v1/actions/{action_id}/approve", headers=auth(other_admin)).status_code == 200
    assert state()["isolation"] == "requested"
    Worker(runtime).run_once()
    assert state()["isolation"] == "pending"  # sent: a command waits for the agent
    [command] = client.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]
    ruleset = "table inet soclite_isolation { }"
    client.post(f"/api/v1/agents/commands/{command['id']}/result", json={"ok": True, "detail": ruleset},
                headers=auth(key))  # fmt: skip
    assert state()["isolation"] == "isolated" and state()["isolation_detail"] == ruleset
    # release: the same path; the agent's failure is shown with its reason and the ruleset still in force
    r = client.post("/api/v1/hosts/so-wor/release", headers=admin, json={"reason": "cleaned"})
    assert state()["isolation"] == "release_awaiting_approval"
    client.post(f"/api/v1/actions/{r.json()['action']['id']}/approve", headers=auth(other_admin))
    Worker(runtime).run_once()
    assert state()["isolation"] == "release_pending"
    [command] = client.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]
    client.post(f"/api/v1/agents/commands/{command['id']}/result", json={"ok": False, "detail": "nft: busy"},
                headers=auth(key))  # fmt: skip
    host = state()
    assert host["isolation"] == "release_failed" and "nft: busy" in host["isolation_detail"]
    assert ruleset in host["isolation_detail"]


def test_undelivered_commands_expire_visibly(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    enrol(client, runtime, "so-wor", "SO")
    queue = runtime.commands
    queue.enqueue("so-wor", "isolate", {}, 10, "k-iso")
    queue.expire(now=utcnow() + timedelta(seconds=11))
    host = runtime.store.get_host("so-wor")
    assert host.isolation == "expired" and "did not fetch" in (host.isolation_detail or "")
    runtime.store.update_host("so-wor", {"isolation": "isolated", "isolation_detail": "ruleset-1"})
    queue.enqueue("so-wor", "release", {}, 10, "k-rel")
    queue.expire(now=utcnow() + timedelta(seconds=11))
    host = runtime.store.get_host("so-wor")
    assert host.isolation == "release_expired" and "ruleset-1" in (host.isolation_detail or "")


def test_two_person_rule_refuses_the_requester_and_lets_another_admin_approve(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    runtime.settings.response.two_person_rule = True
    runtime.settings.response.api_isolation_requires_approval = True
    enrol(client, runtime, "so-wor", "SO")
    r = client.post("/api/v1/hosts/so-wor/isolate", headers=auth(tokens["admin"]), json={"reason": "x"})
    action_id = r.json()["action"]["id"]
    own = client.post(f"/api/v1/actions/{action_id}/approve", headers=auth(tokens["admin"]))
    assert own.status_code == 403 and "two-person rule" in own.json()["detail"]
    assert runtime.outbox.get(action_id).status == ActionStatus.AWAITING_APPROVAL
    second = runtime.identity.create_token(role="admin", name="second-admin")
    ok = client.post(f"/api/v1/actions/{action_id}/approve", headers=auth(second))
    assert ok.status_code == 200 and ok.json()["approved_by"] == "second-admin"


def test_cancel_withdraws_a_request_and_is_audited(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    enrol(client, runtime, "so-wor", "SO")
    admin = auth(tokens["admin"])
    r = client.post("/api/v1/hosts/so-wor/isolate", headers=admin, json={"reason": "x"})
    action_id = r.json()["action"]["id"]
    assert runtime.store.get_host("so-wor").isolation == "requested"
    assert client.post(f"/api/v1/actions/{action_id}/cancel", headers=admin, json={}).status_code == 422
    done = client.post(f"/api/v1/actions/{action_id}/cancel", headers=admin, json={"reason": "wrong host"})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert runtime.store.get_host("so-wor").isolation == "none"
    Worker(runtime).run_once()
    assert runtime.commands.list_for_host("so-wor") == []  # a cancelled action never runs
    again = client.post(f"/api/v1/actions/{action_id}/cancel", headers=admin, json={"reason": "twice"})
    assert again.status_code == 409
    history = client.get(f"/api/v1/actions/{action_id}", headers=admin).json()["history"]
    assert history[-1]["status"] == "cancelled" and "root" in history[-1]["detail"]
    assert "action.cancel" in [e.action for e in runtime.store.iter_audit()]


def test_playbook_isolation_of_an_agentless_host_fails_visibly(
    seeded: dict[str, list[str]], runtime: Runtime
) -> None:
    record = runtime.outbox.submit("isolate_host", {"host_id": "so-ser", "reason": "malware"},
                                   idempotency_key="pb-1", requested_by="playbook:malware")  # fmt: skip
    Worker(runtime).run_once()
    after = runtime.outbox.get(record.id)
    assert after.status == ActionStatus.DEAD and "no enrolled agent" in (after.last_error or "")
    host = runtime.store.get_host("so-ser")
    assert host.isolation == "failed" and "no enrolled agent" in (host.isolation_detail or "")
    assert runtime.commands.list_for_host("so-ser") == []


class _Firewall(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"blocked": true}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def firewall() -> Iterator[tuple[str, type[_Firewall]]]:
    handler = type("Firewall", (_Firewall,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/block", handler
    server.shutdown()
    server.server_close()


def test_a_firewall_webhook_isolates_agentless_hosts_at_the_network(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str],
    firewall: tuple[str, type[_Firewall]],
) -> None:
    url, handler = firewall
    runtime.settings.response.firewall_webhook = FirewallWebhook(url=url)
    r = client.post("/api/v1/hosts/so-ser/isolate", headers=auth(tokens["admin"]), json={"reason": "worm"})
    assert r.status_code == 202, r.text
    Worker(runtime).run_once()
    assert handler.received[0]["action"] == "isolate" and handler.received[0]["ips"] == ["10.0.0.1"]
    host = runtime.store.get_host("so-ser")
    assert host.isolation == "isolated" and "firewall webhook" in (host.isolation_detail or "")
    # the firewall refusing is a visible failure, not "succeeded"
    handler.status = 403
    runtime.store.update_host("so-wor", {"isolation": "none"})
    client.post("/api/v1/hosts/so-wor/isolate", headers=auth(tokens["admin"]), json={"reason": "worm"})
    Worker(runtime).run_once()
    host = runtime.store.get_host("so-wor")
    assert host.isolation == "failed" and "HTTP 403" in (host.isolation_detail or "")


def test_cancelling_an_isolation_waiting_for_a_retry_clears_the_host(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str],
    firewall: tuple[str, type[_Firewall]],
) -> None:
    url, handler = firewall
    handler.status = 503  # the firewall is busy: the action fails and a retry is scheduled
    runtime.settings.response.firewall_webhook = FirewallWebhook(url=url)
    r = client.post("/api/v1/hosts/so-ser/isolate", headers=auth(tokens["admin"]), json={"reason": "worm"})
    Worker(runtime).run_once()
    action_id = r.json()["action"]["id"]
    assert runtime.outbox.get(action_id).status == ActionStatus.FAILED
    assert runtime.store.get_host("so-ser").isolation == "requested"
    client.post(f"/api/v1/actions/{action_id}/cancel", headers=auth(tokens["admin"]), json={"reason": "not needed"})
    assert runtime.store.get_host("so-ser").isolation == "none"
