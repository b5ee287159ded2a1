"""GET /api/v1/actions, approve/reject/retry, GET /api/v1/connector — through the real app and tokens."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # starlette prefers its httpx fork (httpx2); plain httpx is what the project declares and works the same.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from soclite.api.app import create_app
from soclite.models import Host, IsolationState
from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.playbooks.support import make_alert


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_actions_api(runtime: Runtime) -> None:
    runtime.store.put_host(Host(id="ws-002", name="WS-002", isolation=IsolationState.REQUESTED))
    # an isolation of a host without an enrolled agent fails now (tests/api/test_api_response.py): ws-001 has one
    # of the alert's unit: a response action is authorised against the target host's unit (issue 13)
    runtime.store.put_host(Host(id="ws-001", name="WS-001", agent_id="agent-ws-001", unit="so-a"))
    admin = runtime.identity.create_token(role="admin", name="admin1")
    viewer = runtime.identity.create_token(role="viewer", name="viewer1")
    alert = make_alert()
    outbox = runtime.outbox
    isolate = outbox.submit(
        "isolate_host",
        {"host_id": "ws-001", "reason": "malware"},
        idempotency_key="a1",
        alert_id=alert.id,
        requested_by="playbook:malware",
        requires_approval=True,
        payload=alert.model_dump(mode="json"),
    )
    other = outbox.submit(
        "isolate_host",
        {"host_id": "ws-002"},
        idempotency_key="a2",
        requested_by="playbook:malware",
        requires_approval=True,
    )
    dead = outbox.submit(
        "notify_webhook", {"url": "http://127.0.0.1:9/"}, idempotency_key="a3", requested_by="t"
    )
    outbox.claim_due()
    outbox.fail(dead.id, "HTTP 404", permanent=True)
    with TestClient(create_app(runtime)) as client:
        assert client.get("/api/v1/actions").status_code == 401
        listed = client.get("/api/v1/actions", params={"alert_id": alert.id}, headers=auth(viewer)).json()
        assert [i["id"] for i in listed["items"]] == [isolate.id]
        dead_letters = client.get("/api/v1/actions", params={"status": "dead"}, headers=auth(viewer)).json()
        assert [i["id"] for i in dead_letters["items"]] == [dead.id]
        detail = client.get(f"/api/v1/actions/{isolate.id}", headers=auth(viewer)).json()
        assert (
            detail["status"] == "awaiting_approval" and detail["history"][0]["status"] == "awaiting_approval"
        )
        # Only an admin approves; the approval is audited.
        assert client.post(f"/api/v1/actions/{isolate.id}/approve", headers=auth(viewer)).status_code == 403
        approved = client.post(f"/api/v1/actions/{isolate.id}/approve", headers=auth(admin))
        assert approved.status_code == 200 and approved.json()["approved_by"] == "admin1"
        assert client.post(f"/api/v1/actions/{isolate.id}/approve", headers=auth(admin)).status_code == 409
        rejected = client.post(
            f"/api/v1/actions/{other.id}/reject", json={"reason": "server"}, headers=auth(admin)
        )
        assert rejected.json()["status"] == "rejected"
        assert runtime.store.get_host("ws-002").isolation == IsolationState.NONE
        assert (
            client.post(f"/api/v1/actions/{other.id}/reject", json={}, headers=auth(admin)).status_code == 422
        )
        retried = client.post(f"/api/v1/actions/{dead.id}/retry", headers=auth(admin))
        assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
        assert client.post("/api/v1/actions/nope/retry", headers=auth(admin)).status_code == 404
        state = client.get("/api/v1/connector", headers=auth(viewer)).json()
        assert state["enabled"] is False and state["backlog"] == 0
        audit = [e.action for e in runtime.store.list_audit(limit=100).items]
        assert {"action.approve", "action.reject", "action.retry"} <= set(audit)
    Worker(runtime).run_once()
    assert outbox.get(isolate.id).status == ActionStatus.SUCCEEDED
    assert [c.kind for c in runtime.commands.list_for_host("ws-001")] == ["isolate"]


def test_unit_admin_cannot_change_other_units_actions(runtime: Runtime) -> None:
    """A unit-bound admin gets 404 (as on GET) approving/rejecting/retrying another unit's action."""
    from soclite.models import Unit

    for unit in (Unit(code="prov", name="Tỉnh"), Unit(code="so-tc", name="Sở TC", parent="prov"),
                 Unit(code="ttdl", name="TTDL", parent="prov")):
        runtime.store.put_unit(unit)
    alert = make_alert().model_copy(update={"unit": "ttdl"})
    outbox = runtime.outbox
    foreign = outbox.submit("isolate_host", {"host_id": "ws-001"}, idempotency_key="f1", alert_id=alert.id,
                            requested_by="playbook:x", requires_approval=True, payload=alert.model_dump(mode="json"))
    dead = outbox.submit("notify_webhook", {"url": "http://127.0.0.1:9/"}, idempotency_key="f2", requested_by="t",
                         payload=alert.model_dump(mode="json"))
    outbox.claim_due()
    outbox.fail(dead.id, "HTTP 404", permanent=True)
    admin_tc = runtime.identity.create_token(role="admin", unit="so-tc", name="admin-tc")
    admin_dl = runtime.identity.create_token(role="admin", unit="ttdl", name="admin-dl")
    with TestClient(create_app(runtime)) as client:
        assert client.post(f"/api/v1/actions/{foreign.id}/approve", headers=auth(admin_tc)).status_code == 404
        r = client.post(f"/api/v1/actions/{foreign.id}/reject", json={"reason": "x"}, headers=auth(admin_tc))
        assert r.status_code == 404
        assert client.post(f"/api/v1/actions/{dead.id}/retry", headers=auth(admin_tc)).status_code == 404
        assert outbox.get(foreign.id).status == ActionStatus.AWAITING_APPROVAL
        assert outbox.get(dead.id).status == ActionStatus.DEAD
        # The unit's own admin may.
        assert client.post(f"/api/v1/actions/{foreign.id}/approve", headers=auth(admin_dl)).status_code == 200


def test_manual_isolation_is_visible_to_the_hosts_unit(runtime: Runtime) -> None:
    """POST /hosts/{id}/isolate by a province admin: the host's unit sees the action, other units do not."""
    from soclite.models import Unit

    for unit in (Unit(code="prov", name="Tỉnh"), Unit(code="so-tc", name="Sở TC", parent="prov"),
                 Unit(code="ttdl", name="TTDL", parent="prov")):
        runtime.store.put_unit(unit)
    # with an agent: isolating an agentless host is refused now (tests/api/test_api_response.py)
    runtime.store.put_host(Host(id="tc-ws1", name="TC-WS1", unit="so-tc", agent_id="agent-tc-ws1"))
    admin = runtime.identity.create_token(role="admin", name="root")
    viewer_tc = runtime.identity.create_token(role="viewer", unit="so-tc", name="v-tc")
    viewer_dl = runtime.identity.create_token(role="viewer", unit="ttdl", name="v-dl")
    # An action recorded before the unit was stored (payload null) is found through its host.
    old = runtime.outbox.submit("release_host", {"host_id": "tc-ws1"}, idempotency_key="old", requested_by="root")
    with TestClient(create_app(runtime)) as client:
        r = client.post("/api/v1/hosts/tc-ws1/isolate", json={"reason": "malware"}, headers=auth(admin))
        assert r.status_code == 202, r.text
        action_id = r.json()["action"]["id"]
        seen = {i["id"] for i in client.get("/api/v1/actions", headers=auth(viewer_tc)).json()["items"]}
        assert seen == {action_id, old.id}
        assert client.get(f"/api/v1/actions/{action_id}", headers=auth(viewer_tc)).status_code == 200
        assert client.get("/api/v1/actions", headers=auth(viewer_dl)).json()["items"] == []
        assert client.get(f"/api/v1/actions/{action_id}", headers=auth(viewer_dl)).status_code == 404
