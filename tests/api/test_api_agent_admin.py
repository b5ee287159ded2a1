"""Admin API for agents and units (issue 16): the UI's operations, unit-scoped, audited, agents refused."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.models import Host, Unit
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="agent-admin-secret-0123456789")))
    for unit in (Unit(code="PROV", name="Tỉnh"), Unit(code="SO", name="Sở", parent="PROV"),
                 Unit(code="HA", name="Huyện A", parent="PROV")):
        rt.store.put_unit(unit)
    with TestClient(create_app(rt)) as client:
        yield client, rt
    rt.close()


def bearer(rt: Runtime, role: str, unit: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {rt.identity.create_token(role=role, unit=unit)}"}


def test_enrolment_tokens_and_agents_are_scoped(api: tuple[Any, Runtime]) -> None:
    client, rt = api
    ha = bearer(rt, "admin", "HA")
    assert client.post("/api/v1/agents/enroll-tokens", json={"unit": "SO"}, headers=ha).status_code == 403
    assert client.post("/api/v1/agents/enroll-tokens", json={}, headers=ha).status_code == 403
    assert client.post("/api/v1/agents/enroll-tokens", json={"unit": "NOPE"},
                       headers=bearer(rt, "admin")).status_code == 422
    mine = client.post("/api/v1/agents/enroll-tokens", json={"unit": "HA", "uses": 1}, headers=ha).json()
    theirs = rt.agents.create_enroll_token(unit="SO")
    enrolled = client.post("/api/v1/agents/enroll", json={"enroll_token": theirs, "hostname": "so-1"}).json()
    assert [t["id"] for t in client.get("/api/v1/agents/enroll-tokens", headers=ha).json()["items"]] == [mine["id"]]
    assert client.get("/api/v1/agents", headers=ha).json()["items"] == []
    assert client.post(f"/api/v1/agents/{enrolled['agent_id']}/rekey", headers=ha).status_code == 404
    assert client.post(f"/api/v1/agents/{enrolled['agent_id']}/revoke", headers=ha).status_code == 404
    key = {"Authorization": f"Bearer {enrolled['api_key']}"}
    assert client.get("/api/v1/agents", headers=key).status_code == 403  # an agent key is not an admin
    root = bearer(rt, "admin")
    assert client.post(f"/api/v1/agents/{enrolled['agent_id']}/revoke", headers=root).status_code == 200
    assert client.post(f"/api/v1/agents/{enrolled['agent_id']}/revoke", headers=root).status_code == 409
    assert client.post("/api/v1/agents/heartbeat", json={"hostname": "so-1"}, headers=key).status_code == 401
    assert client.get("/api/v1/agents", headers=root).json()["items"][0]["key"] == "revoked"


def test_unit_delete_refuses_a_unit_in_use(api: tuple[Any, Runtime]) -> None:
    client, rt = api
    root = bearer(rt, "admin")
    rt.store.put_host(Host(id="ha-1", name="HA-1", unit="HA"))
    r = client.delete("/api/v1/units/HA", headers=root)
    assert r.status_code == 409 and "hosts" in r.json()["detail"]
    assert client.delete("/api/v1/units/SO", headers=bearer(rt, "admin", "HA")).status_code == 404
    assert client.delete("/api/v1/units/SO", headers=bearer(rt, "analyst")).status_code == 403
    assert client.delete("/api/v1/units/SO", headers=root).status_code == 204
    assert "SO" not in {u.code for u in rt.store.list_units()}
    assert client.post("/api/v1/units", json={"code": "PROV", "name": "Tỉnh", "parent": "HA"},
                       headers=root).status_code == 422  # a cycle
