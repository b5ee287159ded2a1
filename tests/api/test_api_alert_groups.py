"""Alerts counted per value of any field: /api/v1/alerts/groups (rule, host, user, source IP, unit...)."""

from __future__ import annotations

from soclite.runtime import Runtime

from .conftest import auth, seed


def test_alert_groups_by_field_with_counts_and_names(runtime: Runtime, client: object,
                                                     tokens: dict[str, str]) -> None:
    seed(runtime)
    h = auth(tokens["admin"])
    by_unit = client.get("/api/v1/alerts/groups?by=unit", headers=h).json()  # type: ignore[attr-defined]
    assert by_unit["total"] == 18 and by_unit["distinct"] == 3
    assert {(g["value"], g["label"], g["count"]) for g in by_unit["groups"]} == {
        ("SO", "Sở TT&TT", 6), ("HA", "Huyện A", 6), ("HA-XA", "Xã A1", 6)}
    by_rule = client.get("/api/v1/alerts/groups?by=rule&unit=SO&top=2", headers=h).json()  # type: ignore[attr-defined]
    assert by_rule["total"] == 6 and len(by_rule["groups"]) == 2 and by_rule["distinct"] == 3
    assert all(g["count"] == 2 and g["label"].startswith("Suspicious PowerShell") for g in by_rule["groups"])
    scoped = client.get("/api/v1/alerts/groups?by=host", headers=auth(tokens["analyst_ha"])).json()  # type: ignore[attr-defined]
    assert {g["value"] for g in scoped["groups"]} == {"ha-ser", "ha-wor", "ha-xa-ser", "ha-xa-wor"}
    bad = client.get("/api/v1/alerts/groups?by=colour", headers=h)  # type: ignore[attr-defined]
    assert bad.status_code == 422
