"""Alert lifecycle, detail, comments, bulk, SLA, cases, stats contract, hosts, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soclite.models import Alert, Host, HostType, Level, fingerprint
from soclite.runtime import Runtime

Client = Any


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_contract_filters_and_cursor(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    body = client.get("/api/v1/alerts", headers=h).json()
    assert set(body) == {"total", "items", "next"} and body["total"] == 18 and body["next"] is None
    item = body["items"][0]
    assert {"id", "rule_id", "severity", "status", "host", "unit", "sla"} <= set(item)
    high = client.get("/api/v1/alerts?severity=high", headers=h).json()
    assert high["total"] == 9 and {a["severity"] for a in high["items"]} == {"high"}
    lv = client.get("/api/v1/alerts?level=critical&level=low", headers=h).json()
    assert {a["level"] for a in lv["items"]} == {"critical", "low"}
    window = client.get("/api/v1/alerts?from=2026-01-10T09:00:00Z&to=2026-01-10T11:00:00Z", headers=h).json()
    assert window["total"] == 6  # hours 1 and 2 of each of 3 units
    assert client.get("/api/v1/alerts?host=SO-SER", headers=h).json()["total"] == 3
    assert client.get("/api/v1/alerts?rule_id=rule-1", headers=h).json()["total"] == 6
    assert client.get("/api/v1/alerts?unit=HA", headers=h).json()["total"] == 12  # HA and its commune
    # cursor pagination walks everything exactly once, in order
    seen: list[str] = []
    url = "/api/v1/alerts?limit=5&sort=first_seen&order=asc"
    while url:
        page = client.get(url, headers=h).json()
        seen += [a["id"] for a in page["items"]]
        url = f"/api/v1/alerts?limit=5&sort=first_seen&order=asc&cursor={page['next']}" if page["next"] else ""
    assert len(seen) == len(set(seen)) == 18


def test_lifecycle_with_close_reason_and_timestamps(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                                                    tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    alert_id = seeded["HA"][0]
    r = client.patch(f"/api/v1/alerts/{alert_id}", headers=h, json={"status": "acknowledged", "assignee": "ana"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["acknowledged_at"]
    assert r.json()["assignee"] == "ana"
    r = client.patch(f"/api/v1/alerts/{alert_id}", headers=h, json={"status": "resolved"})
    assert r.status_code == 422 and "close_reason is required" in r.json()["detail"]
    r = client.patch(f"/api/v1/alerts/{alert_id}", headers=h, json={"status": "in_progress"})
    assert r.status_code == 200
    r = client.patch(f"/api/v1/alerts/{alert_id}", headers=h,
                     json={"status": "false_positive", "close_reason": "admin backup script"})
    data = r.json()
    assert r.status_code == 200 and data["closed_at"] and data["close_reason"] == "admin backup script"
    assert data["sla"]["state"] in ("on_time", "late")
    # closed → acknowledged is not a transition; reopening goes through in_progress
    r = client.patch(f"/api/v1/alerts/{alert_id}", headers=h, json={"status": "acknowledged"})
    assert r.status_code == 409 and "allowed: in_progress" in r.json()["detail"]
    r = client.patch(f"/api/v1/alerts/{alert_id}", headers=h, json={"status": "in_progress"})
    assert r.status_code == 200 and r.json()["closed_at"] is None
    stored = runtime.store.get_alert(alert_id)
    assert stored.status == "in_progress" and stored.acknowledged_at is not None
    detail = client.get(f"/api/v1/alerts/{alert_id}", headers=h).json()
    statuses = [entry["changes"].get("status") for entry in detail["history"] if "status" in entry["changes"]]
    assert statuses == [["new", "acknowledged"], ["acknowledged", "in_progress"],
                        ["in_progress", "false_positive"], ["false_positive", "in_progress"]]
    audit = [e for e in runtime.store.iter_audit() if e.target == f"alert:{alert_id}"]
    assert len(audit) == 4 and audit[0].before == {"status": "new", "assignee": None, "close_reason": None}
    assert audit[0].actor == "token:ana"


def test_detail_has_matched_and_context_events_and_comments(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    alert_id = seeded["SO"][2]
    alert = runtime.store.get_alert(alert_id)
    r = client.post(f"/api/v1/alerts/{alert_id}/comments", headers=h, json={"body": "Đã liên hệ quản trị Sở"})
    assert r.status_code == 201
    detail = client.get(f"/api/v1/alerts/{alert_id}", headers=h).json()
    assert [e["event.id"] for e in detail["events"]] == alert.event_ids
    # the host so-ser has events at hours 0, 2, 4: ±15 min around hour 2 holds only its own
    assert [e["event.id"] for e in detail["context_events"]] == alert.event_ids
    assert detail["comments"][0]["body"] == "Đã liên hệ quản trị Sở"
    assert [t["kind"] for t in detail["timeline"]] == ["first_seen", "comment"]
    assert client.post(f"/api/v1/alerts/{alert_id}/comments", headers=h, json={"body": ""}).status_code == 422


def test_bulk_and_cases(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    ids = seeded["SO"][:3]
    r = client.post("/api/v1/alerts/bulk", headers=h, json={"ids": ids, "status": "resolved", "close_reason": "patched"})
    assert r.json() == {"updated": ids, "failed": []}
    r = client.post("/api/v1/alerts/bulk", headers=h, json={"ids": [*ids, "nope"], "status": "acknowledged"})
    assert r.json()["updated"] == [] and len(r.json()["failed"]) == 4
    closed = client.get("/api/v1/alerts?status=resolved", headers=h).json()
    assert {a["id"] for a in closed["items"]} == set(ids)
    r = client.post("/api/v1/cases", headers=h, json={"title": "Chiến dịch PowerShell", "alert_ids": ids[:2],
                                                      "unit": "SO", "severity": "high"})
    assert r.status_code == 201
    case = r.json()
    assert case["alert_ids"] == ids[:2] and case["status"] == "open"
    r = client.post(f"/api/v1/cases/{case['id']}/alerts", headers=h, json={"alert_ids": [ids[2]]})
    assert r.json()["alert_ids"] == ids
    # closing needs a close reason since issue 16 (tests/api/test_api_cases_work.py)
    r = client.patch(f"/api/v1/cases/{case['id']}", headers=h, json={"status": "closed",
                                                                     "close_reason": "true_positive"})
    assert r.json()["status"] == "closed"
    assert client.get(f"/api/v1/alerts/{ids[0]}", headers=h).json()["cases"][0]["id"] == case["id"]
    assert client.post("/api/v1/cases", headers=h, json={"title": "x", "alert_ids": ["missing"]}).status_code == 404


def test_sla_states(runtime: Runtime, client: Client, tokens: dict[str, str]) -> None:
    now = datetime.now(UTC)
    fresh = Alert(fingerprint=fingerprint("r", "h"), rule_id="r", rule_title="fresh", level=Level.HIGH,
                  severity="high", first_seen=now - timedelta(minutes=10), last_seen=now)
    # the SLA runs from the alert's creation (issue 13): "old" was created when it was first seen
    old = Alert(fingerprint=fingerprint("r", "h2"), rule_id="r", rule_title="old", level=Level.HIGH,
                severity="high", first_seen=now - timedelta(minutes=300), last_seen=now,
                created_at=now - timedelta(minutes=300))
    late = old.model_copy(update={"id": "late1", "status": "resolved", "closed_at": now, "close_reason": "x"})
    runtime.store.put_alerts([fresh, old, late])
    h = auth(tokens["admin"])
    states = {a["rule_title"] + a["id"][:4]: a["sla"] for a in client.get("/api/v1/alerts", headers=h).json()["items"]}
    by_id = {a["id"]: a["sla"] for a in client.get("/api/v1/alerts", headers=h).json()["items"]}
    assert states and by_id[fresh.id]["state"] == "open" and by_id[fresh.id]["on_time"] is True
    assert by_id[old.id]["state"] == "overdue" and by_id[old.id]["minutes"] == 240
    assert by_id["late1"]["state"] == "late" and by_id["late1"]["on_time"] is False


def test_stats_summary_contract(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    h = auth(tokens["viewer"])
    body = client.get("/api/v1/stats/summary?from=2026-01-10T00:00:00Z&to=2026-01-11T00:00:00Z", headers=h).json()
    assert set(body) == {"alerts", "hosts"}
    assert set(body["alerts"]) == {"total", "by_severity", "by_status"}
    assert body["alerts"]["by_severity"] == {"high": 9, "medium": 3, "low": 6}
    assert body["alerts"]["by_status"]["new"] == 18
    assert body["hosts"] == {"servers": 3, "workstations": 3, "online": 3}
    empty = client.get("/api/v1/stats/summary?from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z", headers=h).json()
    assert empty["alerts"]["total"] == 0
    hist = client.get("/api/v1/stats/histogram?interval=day", headers=h).json()
    assert hist["buckets"][0]["counts"] == {"high": 9, "medium": 3, "low": 6}


def test_hosts_inventory_and_isolation_needs_an_admin(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                                                      tokens: dict[str, str]) -> None:
    h = auth(tokens["admin"])
    hosts = {x["id"]: x for x in client.get("/api/v1/hosts", headers=h).json()["items"]}
    assert hosts["so-ser"]["online"] is True and hosts["so-wor"]["status"] == "offline"
    assert client.get("/api/v1/hosts?type=server", headers=h).json()["total"] == 3
    assert client.get("/api/v1/hosts/SO-SER", headers=h).json()["isolation"] == "none"
    # Every server process has its outbox now (Runtime.build opens it), so the old "no outbox: 503" state is
    # gone; what remains to check here is that an analyst cannot isolate and that the refusal changes nothing.
    r = client.post("/api/v1/hosts/so-ser/isolate", headers=auth(tokens["analyst"]), json={"reason": "x"})
    assert r.status_code == 403
    assert runtime.store.get_host("so-ser").isolation == "none"


def test_isolation_records_an_outbox_action(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                                            tokens: dict[str, str]) -> None:
    from soclite.playbooks.outbox import Outbox

    runtime.outbox = Outbox(runtime.control)
    # isolating a host without an enrolled agent is refused now (tests/api/test_api_response.py): give it one
    runtime.store.update_host("so-wor", {"agent_id": "agent-so-wor"})
    try:
        h = {**auth(tokens["admin"]), "Idempotency-Key": "click-1"}
        r = client.post("/api/v1/hosts/so-wor/isolate", headers=h, json={"reason": "ransomware"})
        assert r.status_code == 202, r.text
        action = r.json()["action"]
        assert action["action"] == "isolate_host" and action["params"]["host_id"] == "so-wor"
        assert action["requested_by"] == "root"
        again = client.post("/api/v1/hosts/so-wor/isolate", headers=h, json={"reason": "ransomware"})
        assert again.json()["action"]["id"] == action["id"]  # a double click is one action
        assert runtime.store.get_host("so-wor").isolation == "requested"
        assert [e.action for e in runtime.store.iter_audit()][-1] == "host.isolate"
        r = client.post("/api/v1/hosts/so-wor/release", headers=auth(tokens["admin"]), json={"reason": "clean"})
        assert r.status_code == 202 and r.json()["action"]["action"] == "release_host"
    finally:
        runtime.outbox.close()


def test_validation_errors_are_clear_4xx(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    cases = [
        ("GET", "/api/v1/alerts?severity=extreme", None, 422, "unknown severity"),
        ("GET", "/api/v1/alerts?status=done", None, 422, "unknown status"),
        ("GET", "/api/v1/alerts?limit=0", None, 422, "greater than or equal to 1"),
        ("GET", "/api/v1/alerts?from=yesterday", None, 422, "datetime"),
        ("GET", "/api/v1/alerts?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", None, 422, "'to' must not"),
        ("GET", "/api/v1/alerts?cursor=garbage", None, 400, "cursor"),
        ("GET", "/api/v1/alerts/nope", None, 404, "not found"),
        ("PATCH", f"/api/v1/alerts/{seeded['SO'][0]}", {"status": "closed"}, 422, "status"),
        ("PATCH", f"/api/v1/alerts/{seeded['SO'][0]}", {"colour": "red"}, 422, "Extra inputs"),
        ("POST", "/api/v1/alerts/bulk", {"ids": []}, 422, "at least 1"),
        ("GET", "/api/v1/events?field=novalue", None, 422, "NAME=VALUE"),
        ("POST", "/api/v1/units", {"code": "X", "name": "x", "parent": "NOPE"}, 403, "admin"),
    ]
    for method, url, body, code, text in cases:
        r = client.request(method, url, headers=h, json=body)
        assert r.status_code == code, (url, r.status_code, r.text)
        assert text in r.text, (url, r.text)
    admin = auth(tokens["admin"])
    r = client.post("/api/v1/units", headers=admin, json={"code": "X", "name": "x", "parent": "NOPE"})
    assert r.status_code == 422 and "does not exist" in r.json()["detail"]
    r = client.post("/api/v1/units", headers=admin, json={"code": "PROV", "name": "x", "parent": "HA-XA"})
    assert r.status_code == 422 and "cycle" in r.json()["detail"]
    r = client.post("/api/v1/exceptions", headers=admin, json={"rule_id": "r", "owner": "o", "reason": "x"})
    assert r.status_code == 422 and "match" in r.text


def test_events_search(seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]) -> None:
    runtime.store.put_host(Host(id="extra", name="EXTRA", type=HostType.SERVER, unit="SO"))
    h = auth(tokens["analyst"])
    body = client.get("/api/v1/events?q=MARKER-so", headers=h).json()
    assert body["total"] == 6 and all(e["soclite.unit"] == "SO" for e in body["items"])
    body = client.get("/api/v1/events?field=CommandLine=powershell -enc 3", headers=h).json()
    assert body["total"] == 3
    assert client.get("/api/v1/events?limit=2", headers=h).json()["next"]


def test_csv_export_neutralises_formula_cells(runtime: Runtime, client: Any, tokens: dict[str, str]) -> None:
    """Rule titles and host names come from logs: no exported cell may start a spreadsheet formula."""
    import csv
    import io

    from soclite.models import severity_of

    seen = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
    evil = [("=cmd|' /C calc'!A0", "+ws1"), ("@SUM(1+1)", "-ws2"), ("\tx", "\rws3")]
    runtime.store.put_alerts([
        Alert(fingerprint=fingerprint(f"r{i}", host, {}), rule_id=f"r{i}", rule_title=title, level=Level.HIGH,
              severity=severity_of(Level.HIGH), host=host, unit=None, first_seen=seen, last_seen=seen,
              event_ids=[f"e{i}"], event={}, tags=[])
        for i, (title, host) in enumerate(evil)
    ])
    r = client.get("/api/v1/alerts/export?format=csv", headers=auth(tokens["admin"]))
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert sorted((row["rule_title"], row["host"]) for row in rows) == sorted(
        ("'" + title, "'" + host) for title, host in evil)
