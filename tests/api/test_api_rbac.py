"""Roles and unit scope: a unit-bound caller sees nothing of another unit, in every read path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from soclite.runtime import Runtime

Client = Any


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Every list/search/count/export endpoint, as the HA analyst sees it (HA + HA-XA; never SO).
LIST_ENDPOINTS = [
    "/api/v1/alerts?limit=1000",
    "/api/v1/alerts?q=marker-SO",
    "/api/v1/alerts?unit=SO",
    "/api/v1/alerts?host=so-ser",
    "/api/v1/alerts?rule_id=rule-0&severity=high,medium,low",
    "/api/v1/events?limit=1000",
    "/api/v1/events?q=marker-SO",
    "/api/v1/events?host=so-ser",
    "/api/v1/events?unit=SO",
    "/api/v1/hosts",
    "/api/v1/hosts?q=so",
    "/api/v1/hosts?unit=SO",
    "/api/v1/units",
    "/api/v1/cases",
    "/api/v1/exceptions",
    "/api/v1/stats/top?by=host",
    "/api/v1/stats/top?by=unit",
    "/api/v1/stats/top?by=rule_id",
    "/api/v1/alerts/export?format=jsonl",
    "/api/v1/alerts/export?format=csv",
    "/api/v1/stats/histogram?group_by=unit&interval=hour",
    "/api/v1/stats/histogram?group_by=host&interval=day",
]


@pytest.fixture
def foreign(seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]) -> list[str]:
    """Markers that must never appear for the HA analyst: SO's alert ids, host ids, unit code, event text."""
    # Give SO a case and an exception too, so those lists have something to leak.
    admin = auth(tokens["admin"])
    r = client.post("/api/v1/cases", headers=admin, json={"title": "SO case", "unit": "SO",
                                                             "alert_ids": seeded["SO"][:2]})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/exceptions", headers=admin, json={
        "alert_id": seeded["SO"][0], "owner": "so-admin", "reason": "backup tool", "match": {"Image": "x.exe"}})
    assert r.status_code == 201, r.text
    return [*seeded["SO"], "so-ser", "so-wor", '"SO"', "marker-SO", "SO case", r.json()["id"]]


@pytest.mark.parametrize("url", LIST_ENDPOINTS)
def test_unit_scoped_token_sees_nothing_of_another_unit(
    url: str, foreign: list[str], client: Client, tokens: dict[str, str]
) -> None:
    r = client.get(url, headers=auth(tokens["analyst_ha"]))
    assert r.status_code == 200, r.text
    body = r.text
    for marker in foreign:
        assert marker not in body, f"{url} leaks {marker}"
    # ...while the province-wide admin sees SO on the same endpoint (the check is not vacuous).
    if url != "/api/v1/stats/top?by=rule_id":  # rule ids are shared by all units: nothing unit-specific
        full = client.get(url, headers=auth(tokens["admin"])).text
        assert any(m in full for m in foreign), f"{url}: admin should see SO data"


def test_scoped_lists_contain_exactly_the_subtree(seeded: dict[str, list[str]], client: Client,
                                                  tokens: dict[str, str]) -> None:
    ha = auth(tokens["analyst_ha"])
    got = {a["id"] for a in client.get("/api/v1/alerts?limit=1000", headers=ha).json()["items"]}
    assert got == set(seeded["HA"]) | set(seeded["HA-XA"])
    units = {u["code"] for u in client.get("/api/v1/units", headers=ha).json()["items"]}
    assert units == {"HA", "HA-XA"}
    hosts = {h["id"] for h in client.get("/api/v1/hosts", headers=ha).json()["items"]}
    assert hosts == {"ha-ser", "ha-wor", "ha-xa-ser", "ha-xa-wor"}
    events = client.get("/api/v1/events?limit=1000", headers=ha).json()
    assert {e["soclite.unit"] for e in events["items"]} == {"HA", "HA-XA"} and events["total"] == 12
    so = client.get("/api/v1/alerts?limit=1000", headers=auth(tokens["viewer_so"])).json()
    assert {a["id"] for a in so["items"]} == set(seeded["SO"]) and so["total"] == 6


def test_counts_and_histograms_are_scoped(seeded: dict[str, list[str]], client: Client,
                                          tokens: dict[str, str]) -> None:
    ha = client.get("/api/v1/stats/summary", headers=auth(tokens["analyst_ha"])).json()
    full = client.get("/api/v1/stats/summary", headers=auth(tokens["admin"])).json()
    assert full["alerts"]["total"] == 18 and ha["alerts"]["total"] == 12
    assert sum(ha["alerts"]["by_severity"].values()) == 12
    assert ha["hosts"] == {"servers": 2, "workstations": 2, "online": 2}
    assert full["hosts"] == {"servers": 3, "workstations": 3, "online": 3}
    # a unit filter outside the scope gives nothing, not the other unit's numbers
    other = client.get("/api/v1/stats/summary?unit=SO", headers=auth(tokens["analyst_ha"])).json()
    assert other["alerts"]["total"] == 0 and other["hosts"]["servers"] == 0
    hist = client.get("/api/v1/stats/histogram?interval=hour", headers=auth(tokens["analyst_ha"])).json()
    assert sum(sum(b["counts"].values()) for b in hist["buckets"]) == 12
    export = client.get("/api/v1/alerts/export?format=jsonl", headers=auth(tokens["analyst_ha"])).text
    assert len([line for line in export.splitlines() if line]) == 12
    assert {json.loads(line)["unit"] for line in export.splitlines()} == {"HA", "HA-XA"}


def test_detail_outside_scope_is_404(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                                     tokens: dict[str, str]) -> None:
    ha = auth(tokens["analyst_ha"])
    so_alert = seeded["SO"][0]
    event_id = runtime.store.get_alert(so_alert).event_ids[0]
    for url in (f"/api/v1/alerts/{so_alert}", f"/api/v1/alerts/{so_alert}/comments", "/api/v1/hosts/so-ser",
                f"/api/v1/events/{event_id}"):
        r = client.get(url, headers=ha)
        assert r.status_code == 404, (url, r.text)
        assert "not found" in r.json()["detail"]
    # writes outside the scope are 404 too and change nothing
    r = client.patch(f"/api/v1/alerts/{so_alert}", headers=ha, json={"status": "acknowledged"})
    assert r.status_code == 404
    assert runtime.store.get_alert(so_alert).status == "new"
    r = client.post("/api/v1/alerts/bulk", headers=ha, json={"ids": [so_alert, seeded["HA"][0]],
                                                              "status": "acknowledged"})
    assert r.json() == {"updated": [seeded["HA"][0]], "failed": [{"id": so_alert, "error": "not found"}]}
    # the same detail works in scope
    assert client.get(f"/api/v1/alerts/{seeded['HA-XA'][0]}", headers=ha).status_code == 200


def test_unit_scoped_auditor_sees_only_its_units_audit(seeded: dict[str, list[str]], client: Client,
                                                       tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    client.patch(f"/api/v1/alerts/{seeded['SO'][0]}", headers=admin, json={"status": "acknowledged"})
    client.patch(f"/api/v1/alerts/{seeded['HA'][0]}", headers=admin, json={"status": "acknowledged"})
    entries = client.get("/api/v1/audit", headers=auth(tokens["auditor_so"])).json()["items"]
    assert entries and all(e["unit"] == "SO" for e in entries)
    everything = client.get("/api/v1/audit", headers=auth(tokens["auditor"])).json()["items"]
    assert {e["unit"] for e in everything} >= {"SO", "HA"}


def test_viewer_write_is_403_and_audited(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                                         tokens: dict[str, str]) -> None:
    viewer = auth(tokens["viewer"])
    alert_id = seeded["SO"][0]
    attempts = [
        ("PATCH", f"/api/v1/alerts/{alert_id}", {"status": "acknowledged"}),
        ("POST", f"/api/v1/alerts/{alert_id}/comments", {"body": "hi"}),
        ("POST", "/api/v1/alerts/bulk", {"ids": [alert_id], "status": "acknowledged"}),
        ("POST", "/api/v1/cases", {"title": "x"}),
        ("POST", "/api/v1/exceptions", {"alert_id": alert_id, "owner": "a", "reason": "b"}),
        ("POST", "/api/v1/hosts/so-ser/isolate", {"reason": "x"}),
        ("POST", "/api/v1/units", {"code": "NEW", "name": "New"}),
    ]
    for method, url, body in attempts:
        r = client.request(method, url, headers=viewer, json=body)
        assert r.status_code == 403, (url, r.text)
        assert "viewer" in r.json()["detail"]
    assert runtime.store.get_alert(alert_id).status == "new"
    denied = [e for e in runtime.store.iter_audit() if e.action == "access.denied"]
    assert len(denied) == len(attempts)
    assert {e.target for e in denied} == {f"{m} {u}" for m, u, _ in attempts}
    assert all(e.actor == "token:leader" for e in denied)
    # the viewer still reads dashboards
    assert client.get("/api/v1/stats/summary", headers=viewer).status_code == 200
    # but not the audit log (auditor/admin only)
    assert client.get("/api/v1/audit", headers=viewer).status_code == 403


def test_agent_token_refused_outside_agent_routes(seeded: dict[str, list[str]], client: Client,
                                                  tokens: dict[str, str]) -> None:
    agent = auth(tokens["agent"])
    for url in ("/api/v1/alerts", "/api/v1/events", "/api/v1/hosts", "/api/v1/stats/summary", "/api/v1/audit",
                "/metrics", "/api/v1/units", "/api/v1/exceptions"):
        r = client.get(url, headers=agent)
        assert r.status_code == 403, url
    r = client.patch(f"/api/v1/alerts/{seeded['HA'][0]}", headers=agent, json={"status": "acknowledged"})
    assert r.status_code == 403


def test_no_or_bad_credentials_is_401(client: Client) -> None:
    assert client.get("/api/v1/alerts").status_code == 401
    r = client.get("/api/v1/alerts", headers={"Authorization": "Bearer sl_nope_nope"})
    assert r.status_code == 401 and "unknown or revoked token" in r.json()["detail"]
    r = client.get("/api/v1/alerts", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    assert client.get("/metrics").status_code == 401


def test_unit_bound_admin_cannot_act_outside_its_unit(seeded: dict[str, list[str]], client: Client,
                                                      tokens: dict[str, str]) -> None:
    admin_ha = auth(tokens["admin_ha"])
    r = client.post("/api/v1/units", headers=admin_ha, json={"code": "SO-X", "name": "x", "parent": "SO"})
    assert r.status_code == 403
    r = client.post("/api/v1/units", headers=admin_ha, json={"code": "HA-XB", "name": "Xã B", "parent": "HA"})
    assert r.status_code == 201
    assert client.post("/api/v1/hosts/so-ser/isolate", headers=admin_ha, json={"reason": "x"}).status_code == 404
