"""Information systems (issue 17, part 3): CRUD by admins, audited, unit-scoped; retention from the level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from soclite.config import ComplianceSettings, Settings
from soclite.control.systems import host_retention_until, months_before, retention_cutoff
from soclite.runtime import Runtime

Client = Any


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SYSTEM = {
    "name": "Cổng dịch vụ công tỉnh", "owner": "UBND tỉnh", "operator": "Trung tâm Chuyển đổi số",
    "level": 4, "approval_status": "approved", "approval_decision": "123/QĐ-UBND ngày 01/02/2026",
    "hosts": ["ha-ser"], "units": ["SO"],
}


def _audit(client: Client, token: str, action: str) -> list[dict[str, Any]]:
    items = client.get("/api/v1/audit?limit=500", headers=auth(token)).json()["items"]
    return [e for e in items if e["action"] == action]


def test_admin_crud_is_audited(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    r = client.post("/api/v1/systems", json=SYSTEM, headers=admin)
    assert r.status_code == 201, r.text
    system = r.json()
    assert system["level"] == 4 and system["retention_months"] == 6
    assert system["hosts"] == ["ha-ser"] and system["units"] == ["SO"]
    listed = client.get("/api/v1/systems", headers=admin).json()
    assert [s["id"] for s in listed["items"]] == [system["id"]]

    r = client.patch(f"/api/v1/systems/{system['id']}", json={"level": 5, "review_done": True}, headers=admin)
    assert r.status_code == 200 and r.json()["retention_months"] == 12 and r.json()["review_done"] is True
    update = _audit(client, tokens["admin"], "system.update")
    assert update and update[0]["before"]["level"] == 4 and update[0]["after"]["level"] == 5
    assert update[0]["actor"].endswith(":root") and update[0]["target"] == f"system:{system['id']}"

    assert client.delete(f"/api/v1/systems/{system['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).status_code == 404
    assert _audit(client, tokens["admin"], "system.create") and _audit(client, tokens["admin"], "system.delete")


def test_roles_and_unit_scope(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    so = client.post("/api/v1/systems", json=SYSTEM | {"unit": "SO", "hosts": []}, headers=admin).json()
    ha = client.post("/api/v1/systems", json=SYSTEM | {"name": "Một cửa huyện", "unit": "HA", "units": []},
                     headers=admin).json()
    assert client.post("/api/v1/systems", json=SYSTEM, headers=auth(tokens["analyst"])).status_code == 403
    assert client.patch(f"/api/v1/systems/{ha['id']}", json={"level": 1},
                        headers=auth(tokens["viewer"])).status_code == 403
    admin_ha = auth(tokens["admin_ha"])
    # a unit-bound admin cannot place a system in, or extend it to, another unit or its hosts
    assert client.post("/api/v1/systems", json=SYSTEM | {"unit": "SO", "hosts": [], "units": []},
                       headers=admin_ha).status_code == 404
    assert client.post("/api/v1/systems", json=SYSTEM | {"hosts": ["so-ser"], "units": []},
                       headers=admin_ha).status_code == 404
    assert client.patch(f"/api/v1/systems/{so['id']}", json={"level": 1}, headers=admin_ha).status_code == 404
    seen = {s["id"] for s in client.get("/api/v1/systems", headers=admin_ha).json()["items"]}
    assert seen == {ha["id"]}
    seen_so = {s["id"] for s in client.get("/api/v1/systems", headers=auth(tokens["viewer_so"])).json()["items"]}
    assert seen_so == {so["id"]}
    own = client.post("/api/v1/systems", json=SYSTEM | {"hosts": ["ha-xa-ser"], "units": ["HA-XA"]},
                      headers=admin_ha)
    assert own.status_code == 201 and own.json()["unit"] == "HA"  # the creator's unit by default


def test_bad_input_is_refused_and_nothing_is_created(
    seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]
) -> None:
    admin = auth(tokens["admin"])
    assert client.post("/api/v1/systems", json=SYSTEM | {"level": 6}, headers=admin).status_code == 422
    assert client.post("/api/v1/systems", json=SYSTEM | {"approval_status": "maybe"}, headers=admin).status_code == 422
    r = client.post("/api/v1/systems", json=SYSTEM | {"hosts": ["no-such-host"]}, headers=admin)
    assert r.status_code == 404 and "no-such-host" in r.text
    system = client.post("/api/v1/systems", json=SYSTEM, headers=admin).json()
    r = client.patch(f"/api/v1/systems/{system['id']}", json={"name": None}, headers=admin)
    assert r.status_code == 400 and "name cannot be emptied" in r.text
    assert client.get("/api/v1/systems", headers=admin).json()["total"] == 1


def test_host_retention_follows_the_highest_level(seeded: dict[str, list[str]], runtime: Runtime) -> None:
    from soclite.control.systems import SystemCreate

    settings = runtime.settings.model_copy(update={"store": runtime.settings.store.model_copy(
        update={"retention_days": 30})})
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    systems = runtime.systems
    assert systems.highest_level() is None
    assert host_retention_until(systems, settings, "ha-ser", "HA", now) == now - timedelta(days=30)
    systems.create(SystemCreate(name="A", owner="o", operator="p", level=3, hosts=["ha-ser"]), actor="t", unit=None,
                   scope=None)
    systems.create(SystemCreate(name="B", owner="o", operator="p", level=5, units=["SO"]), actor="t", unit=None,
                   scope=None)
    assert systems.host_level("ha-ser", "HA") == 3 and systems.host_level("so-wor", "SO") == 5
    assert systems.host_level("ha-wor", "HA") is None
    # level 3: three months back from 31 March is 31 December; level 5: twelve months
    assert host_retention_until(systems, settings, "ha-ser", "HA", now) == datetime(2025, 12, 31, 12, tzinfo=UTC)
    assert host_retention_until(systems, settings, "so-wor", "SO", now) == datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert host_retention_until(systems, settings, "ha-wor", "HA", now) == now - timedelta(days=30)
    # the store deletes for all hosts at once: the longest requirement decides
    assert retention_cutoff(systems, settings, now) == datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert months_before(datetime(2026, 5, 31, tzinfo=UTC), 3) == datetime(2026, 2, 28, tzinfo=UTC)


def test_apply_retention_keeps_what_the_level_requires(seeded: dict[str, list[str]], runtime: Runtime) -> None:
    from soclite.control.systems import SystemCreate, apply_retention
    from soclite.store.base import EventQuery

    settings = runtime.settings.model_copy(update={"store": runtime.settings.store.model_copy(
        update={"retention_days": 30})})
    now = datetime.now(UTC)
    store = runtime.store
    stamp = lambda days: (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    store.write_events([
        {"@timestamp": stamp(40), "event.id": "ev-40d", "host.name": "ha-ser", "soclite.unit": "HA"},
        {"@timestamp": stamp(400), "event.id": "ev-400d", "host.name": "ha-ser", "soclite.unit": "HA"},
    ])

    def ids() -> set[str]:
        page = store.query_events(EventQuery(host="ha-ser", limit=1000))
        return {str(e.get("event.id")) for e in page.items}

    runtime.systems.create(SystemCreate(name="A", owner="o", operator="p", level=3, hosts=["ha-ser"]), actor="t",
                           unit=None, scope=None)
    apply_retention(runtime.systems, store, settings, now)
    kept = ids()
    assert "ev-40d" in kept and "ev-400d" not in kept  # 3 months kept although retention_days is 30


def test_retention_is_configurable_upward_only() -> None:
    assert ComplianceSettings(retention_months_by_level={3: 6}).retention_months_by_level[3] == 6
    with pytest.raises(ValidationError, match="at least 3 months"):
        ComplianceSettings(retention_months_by_level={3: 2})
    with pytest.raises(ValidationError, match="levels are 1 to 5"):
        ComplianceSettings(retention_months_by_level={6: 24})
    assert Settings(environment="test").compliance.retention_months_by_level == {2: 1, 3: 3, 4: 6, 5: 12}
