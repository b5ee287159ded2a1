"""Rules and exceptions against the real correlator engine: hits, enable/disable, test, suppression."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.models import new_id
from soclite.runtime import Runtime

Client = Any

RULE = """
title: Encoded PowerShell
id: 6b0d8c1e-0f4a-4c55-9a51-4d1c7c0e1a01
status: test
level: high
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\\\\powershell.exe'
    CommandLine|contains: ' -enc '
  condition: selection
tags:
  - attack.t1059.001
"""
RULE_ID = "6b0d8c1e-0f4a-4c55-9a51-4d1c7c0e1a01"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(host: str, image: str, unit: str = "SO") -> dict[str, Any]:
    return {"@timestamp": "2026-01-10T08:00:00.000Z", "event.id": new_id(), "host.name": host,
            "soclite.unit": unit, "Image": image, "CommandLine": "powershell.exe -enc SQBFAFgA",
            "logsource.product": "windows", "logsource.category": "process_creation", "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational"}


@pytest.fixture
def engine(runtime: Runtime, tmp_path: Path) -> Iterator[Any]:
    from soclite.correlator.engine import Engine

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ps.yml").write_text(RULE, encoding="utf-8")
    runtime.settings.correlator.rules = [rules]
    eng = Engine.from_settings(runtime.settings, state_dir=tmp_path / "state")
    runtime.engine = eng
    yield eng
    eng.close()


def test_rules_list_toggle_and_test(engine: Any, runtime: Runtime, client: Client, tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    assert len(engine.process(event("ws1", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"))) == 1
    rules = client.get("/api/v1/rules", headers=h).json()["items"]
    assert [(r["id"], r["hits"], r["enabled"]) for r in rules] == [(RULE_ID, 1, True)]
    admin = auth(tokens["admin"])
    r = client.patch(f"/api/v1/rules/{RULE_ID}", headers=admin, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert engine.process(event("ws1", "C:\\x\\powershell.exe")) == []
    assert client.patch("/api/v1/rules/nope", headers=admin, json={"enabled": False}).status_code == 404
    assert client.patch(f"/api/v1/rules/{RULE_ID}", headers=auth(tokens["viewer"]), json={"enabled": True}).status_code == 403
    r = client.post("/api/v1/rules/test", headers=h, json={"rule": RULE, "event": event("ws2", "C:\\a\\powershell.exe")})
    assert r.status_code == 200 and r.json()["matched"] is True and r.json()["alerts"][0]["severity"] == "high"
    r = client.post("/api/v1/rules/test", headers=h, json={"rule": RULE, "event": event("ws2", "C:\\a\\cmd.exe")})
    assert r.json() == {"matched": False, "alerts": []}
    r = client.post("/api/v1/rules/test", headers=h, json={"rule": "title: x\ndetection: {}", "event": {}})
    assert r.status_code == 422 and r.json()["detail"]
    assert [e.action for e in runtime.store.iter_audit()][-2:] == ["rule.disable", "access.denied"]


def test_exception_from_alert_suppresses_without_restart(engine: Any, runtime: Runtime, client: Client,
                                                         tokens: dict[str, str]) -> None:
    from soclite.models import Unit

    runtime.store.put_unit(Unit(code="SO", name="Sở"))
    backup = "C:\\Tools\\backup\\powershell.exe"
    alerts = engine.process(event("srv-backup", backup))
    assert len(alerts) == 1
    runtime.store.put_alerts(alerts)
    h = auth(tokens["analyst"])
    r = client.post("/api/v1/exceptions", headers=h, json={
        "alert_id": alerts[0].id, "match": {"Image": backup}, "owner": "lan.nt", "reason": "nightly backup job",
        "expires_at": "2099-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    exc = r.json()
    assert exc["rule_id"] == RULE_ID and exc["active"] and "condition: not selection" in exc["filter_yaml"]
    assert "category: process_creation" in exc["filter_yaml"]
    # Same activity again: suppressed; other hosts' PowerShell still alerts.
    assert engine.process(event("srv-backup", backup)) == []
    assert engine.process(event("srv-backup", backup)) == []
    assert len(engine.process(event("ws9", "C:\\Windows\\powershell.exe"))) == 1
    listed = client.get("/api/v1/exceptions", headers=h).json()["items"]
    assert [(x["id"], x["suppressed"], x["owner"], x["reason"]) for x in listed] == [
        (exc["id"], 2, "lan.nt", "nightly backup job")]
    # Disabling it brings the alerts back, again without restart.
    r = client.patch(f"/api/v1/exceptions/{exc['id']}", headers=h, json={"enabled": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert len(engine.process(event("srv-backup", backup))) == 1
    r = client.post("/api/v1/exceptions", headers=h, json={
        "rule_id": RULE_ID, "match": {"Image": "x"}, "owner": "a", "reason": "b", "expires_at": "2001-01-01T00:00:00Z"})
    assert r.status_code == 422 and "future" in r.text


def test_unit_bound_exception_only_suppresses_its_units(engine: Any, runtime: Runtime, client: Client,
                                                        tokens: dict[str, str]) -> None:
    """An so-tc analyst's exception must not silence the rule for ttdl (another unit) — real engine."""
    from soclite.models import Unit

    for unit in (Unit(code="PROV", name="Tỉnh"), Unit(code="so-tc", name="Sở Tài chính", parent="PROV"),
                 Unit(code="so-tc-a", name="Phòng A", parent="so-tc"), Unit(code="ttdl", name="TT dữ liệu", parent="PROV")):
        runtime.store.put_unit(unit)
    token = runtime.identity.create_token(role="analyst", unit="so-tc", name="ana-sotc")
    image = "C:\\Tools\\backup\\powershell.exe"
    r = client.post("/api/v1/exceptions", headers=auth(token), json={
        "rule_id": RULE_ID, "match": {"Image": image}, "owner": "lan.nt", "reason": "backup job"})
    assert r.status_code == 201, r.text
    assert "soclite.unit" in r.json()["filter_yaml"]
    assert engine.process(event("srv-tc", image, unit="so-tc")) == []
    assert engine.process(event("srv-tc-a", image, unit="so-tc-a")) == []
    assert len(engine.process(event("srv-dl", image, unit="ttdl"))) == 1
    # A province-wide analyst's exception stays global.
    r = client.post("/api/v1/exceptions", headers=auth(tokens["analyst"]), json={
        "rule_id": RULE_ID, "match": {"Image": "C:\\Other\\powershell.exe"}, "owner": "a", "reason": "b"})
    assert r.status_code == 201 and "soclite.unit" not in r.json()["filter_yaml"]
    assert engine.process(event("srv-dl", "C:\\Other\\powershell.exe", unit="ttdl")) == []


def test_rule_toggle_is_province_admin_only_and_survives_restart(engine: Any, runtime: Runtime, client: Client,
                                                                 tokens: dict[str, str], tmp_path: Path) -> None:
    from soclite.api.app import create_app
    from soclite.correlator.engine import Engine
    from tests.api.conftest import TestClient

    image = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    for who in ("analyst", "analyst_ha", "admin_ha"):  # analysts, and admins bound to one unit, may not
        r = client.patch(f"/api/v1/rules/{RULE_ID}", headers=auth(tokens[who]), json={"enabled": False})
        assert r.status_code == 403, who
    assert len(engine.process(event("ws1", image))) == 1
    assert [e.action for e in runtime.store.iter_audit()][-3:] == ["access.denied"] * 3
    r = client.patch(f"/api/v1/rules/{RULE_ID}", headers=auth(tokens["admin"]), json={"enabled": False})
    assert r.status_code == 200
    # "Restart": a fresh engine from the same rules, a fresh app on the same control DB.
    engine.close()
    fresh = Engine.from_settings(runtime.settings, state_dir=tmp_path / "state2")
    runtime.engine = fresh
    assert len(fresh.process(event("ws1", image))) == 1  # the engine alone does not remember
    with TestClient(create_app(runtime)) as again:
        assert fresh.process(event("ws1", image)) == []
        rules = again.get("/api/v1/rules", headers=auth(tokens["viewer"])).json()["items"]
        assert [(r["id"], r["enabled"]) for r in rules] == [(RULE_ID, False)]
    fresh.close()
    runtime.engine = engine  # the fixture closes it (closing twice is harmless)


def test_exception_for_an_unknown_rule_id_is_refused(engine: Any, runtime: Runtime, client: Client,
                                                     tokens: dict[str, str]) -> None:
    """Issue 13 item 15: an exception naming no loaded rule was stored (and audited) as if it worked."""
    h = {"Authorization": f"Bearer {tokens['analyst']}"}
    r = client.post("/api/v1/exceptions", headers=h, json={
        "rule_id": "no-such-rule-0000", "match": {"Image": "x"}, "owner": "a", "reason": "b"})
    assert r.status_code == 422 and "no-such-rule-0000" in r.json()["detail"]
    assert client.get("/api/v1/exceptions", headers=h).json()["total"] == 0
    assert not [e for e in runtime.store.iter_audit() if e.action == "exception.create"]
