"""Report schedules and recipients managed from the reports page and /api/v1/reports/schedules (issue 16):
stored in control.db, run by the scheduler beside the settings file's, admins only, unit-scoped, audited."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, ReportSchedule, ReportSettings, Settings
from soclite.models import Unit
from soclite.reports.scheduler import ReportScheduler
from soclite.runtime import Runtime
from tests.ui.forms import csrf_of, login_as

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

Client = Any
PASSWORD = "schedule-test-password"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Client, Runtime]]:
    settings = Settings(environment="test", data_dir=tmp_path,
                        auth=AuthSettings(secret_key="schedules-secret-0123456789", secure_cookies=False),
                        reports=ReportSettings(schedules=[ReportSchedule(name="tu-cau-hinh", every="monthly")]))
    rt = Runtime.build(settings)
    for unit in (Unit(code="PROV", name="Tỉnh"), Unit(code="SO", name="Sở", parent="PROV"),
                 Unit(code="HA", name="Huyện A", parent="PROV")):
        rt.store.put_unit(unit)
    rt.users.add("root", PASSWORD, role="admin")
    rt.users.add("admin-ha", PASSWORD, role="admin", unit="HA")
    rt.users.add("lan", PASSWORD, role="analyst")
    with TestClient(create_app(rt)) as client:
        yield client, rt
    rt.close()


def login(client: Client, user: str) -> Client:
    return login_as(client, user, PASSWORD)


def save(client: Client, **data: Any) -> Any:
    form = {"csrf_token": csrf_of(client, "/reports"), "every": "monthly", "lang": "vi", "formats": ["csv"]} | data
    return client.post("/reports/schedules", data=form, follow_redirects=False)


def test_admin_adds_a_schedule_that_the_scheduler_runs(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "root")
    r = save(client, name="quy-so", every="quarterly", lang="en", formats=["csv", "html"], unit="SO",
             recipients="lanhdao@tinh.gov.vn\nvanthu@tinh.gov.vn")
    assert r.status_code == 303
    page = client.get("/reports").text
    assert 'id="schedule-quy-so"' in page and "lanhdao@tinh.gov.vn" in page
    assert 'id="schedule-tu-cau-hinh"' in page  # the settings file's, read-only
    scheduler = ReportScheduler(rt)
    try:
        assert {"quy-so", "tu-cau-hinh"} <= set(scheduler.schedules)
        [report_id] = scheduler.run("quy-so", now=datetime(2026, 4, 2, 3, 0, tzinfo=UTC))
        report = scheduler.archive.get(report_id)
        assert report.period == "2026-Q1" and report.lang == "en" and report.scope_unit == "SO"
        assert sorted(f.format for f in report.files) == ["csv", "html"]
    finally:
        scheduler.shutdown()
    # edit (same name) then remove; both audited
    assert save(client, name="quy-so", every="monthly", unit="SO", recipients="a@tinh.gov.vn").status_code == 303
    assert rt.report_schedules.get("quy-so").schedule.every == "monthly"  # type: ignore[union-attr]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/reports").text)
    assert token
    assert client.post("/reports/schedules/quy-so/delete", data={"csrf_token": token.group(1)},
                       follow_redirects=False).status_code == 303
    assert rt.report_schedules.get("quy-so") is None
    actions = [e.action for e in rt.store.iter_audit()]
    assert actions.count("report_schedule.put") == 2 and "report_schedule.delete" in actions


def test_a_running_scheduler_picks_up_changes_at_once(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    rt.scheduler = ReportScheduler(rt)
    rt.scheduler.start()
    try:
        login(client, "root")
        assert save(client, name="thang", recipients="").status_code == 303
        assert "report:thang" in rt.scheduler.next_run_times()
        assert client.delete("/api/v1/reports/schedules/thang").status_code in (401, 403)  # a session needs CSRF
        rt.report_schedules.delete("thang")
        rt.scheduler.reconcile()
        assert "report:thang" not in rt.scheduler.next_run_times()
        assert "report:tu-cau-hinh" in rt.scheduler.next_run_times()
    finally:
        rt.scheduler.shutdown()
        rt.scheduler = None


def test_bad_input_is_refused_with_its_reason_and_nothing_is_stored(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "root")
    r = save(client, name="x", recipients="not-an-address")
    assert r.status_code == 422 and "not-an-address" in r.text
    assert save(client, name="tu-cau-hinh").status_code == 422  # the settings file's name
    assert save(client, name="c", cron="99 99 * * *").status_code == 422
    assert save(client, name="x y").status_code == 422
    assert save(client, name="f", formats=[]).status_code == 422
    assert rt.report_schedules.list_all() == []


def test_unit_admin_manages_only_its_subtree_and_analysts_none(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "root")
    assert save(client, name="so-thang", unit="SO").status_code == 303
    ha = login(TestClient(client.app), "admin-ha")
    page = ha.get("/reports").text
    assert 'id="schedule-so-thang"' not in page and 'id="schedule-tu-cau-hinh"' not in page
    assert save(ha, name="toan-tinh", unit="").status_code == 422  # province-wide: not a unit admin's
    assert save(ha, name="cua-so", unit="SO").status_code == 422
    assert save(ha, name="so-thang", unit="HA").status_code == 422  # cannot take over another unit's name
    token = re.search(r'name="csrf_token" value="([^"]+)"', ha.get("/reports").text)
    assert token
    assert ha.post("/reports/schedules/so-thang/delete", data={"csrf_token": token.group(1)},
                   follow_redirects=False).status_code == 404
    assert save(ha, name="ha-thang", unit="HA").status_code == 303
    assert {m.schedule.name for m in rt.report_schedules.list_all()} == {"so-thang", "ha-thang"}
    lan = login(TestClient(client.app), "lan")
    assert 'id="schedules"' not in lan.get("/reports").text
    assert save(lan, name="lan", unit="SO").status_code == 403


def test_schedules_api_same_rules(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    admin = {"Authorization": f"Bearer {rt.identity.create_token(role='admin', unit='HA')}"}
    analyst = {"Authorization": f"Bearer {rt.identity.create_token(role='analyst')}"}
    body = {"every": "monthly", "formats": ["pdf"], "recipients": ["a@tinh.gov.vn"], "unit": "HA"}
    assert client.put("/api/v1/reports/schedules/ha", json=body, headers=analyst).status_code == 403
    r = client.put("/api/v1/reports/schedules/ha", json=body, headers=admin)
    assert r.status_code == 200 and r.json()["recipients"] == ["a@tinh.gov.vn"]
    assert client.put("/api/v1/reports/schedules/so", json=body | {"unit": "SO"}, headers=admin).status_code == 403
    assert client.put("/api/v1/reports/schedules/bad", json=body | {"recipients": ["x"]},
                      headers=admin).status_code == 422
    listed = client.get("/api/v1/reports/schedules", headers=admin).json()
    assert [i["name"] for i in listed["items"]] == ["ha"] and listed["items"][0]["source"] == "ui"
    assert client.delete("/api/v1/reports/schedules/ha", headers=admin).status_code == 204
    assert client.delete("/api/v1/reports/schedules/ha", headers=admin).status_code == 404
