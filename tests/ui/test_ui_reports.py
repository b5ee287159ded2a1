"""The reports page generates, lists (SHA-256, who) and downloads reports with the API's permissions."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from soclite.models import Unit
from soclite.runtime import Runtime
from tests.ui.test_ui_pages import PASSWORD, app_client, login  # noqa: F401 - the fixture

Client = Any


def csrf_of(client: Client, path: str = "/reports") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_analyst_generates_lists_and_downloads_a_report(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    login(client, "analyst")
    page = client.get("/reports").text
    assert "chưa được cài" not in page and 'id="report-form"' in page
    r = client.post("/reports", data={"csrf_token": csrf_of(client), "period": "2026-01", "lang": "en",
                                      "formats": ["pdf", "csv"]}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    [report] = rt.reports.recent()
    assert r.headers["location"] == f"/reports#report-{report.id}"
    assert report.lang == "en" and {f.format for f in report.files} == {"pdf", "csv"}
    listed = client.get("/reports").text
    row = listed[listed.index(f'id="report-{report.id}"'):]
    assert "session:analyst" in row
    for archived in report.files:
        assert archived.sha256 in row
        download = client.get(f"/api/v1/reports/{report.id}/{archived.format}")  # the session cookie suffices
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == archived.sha256
    assert "report.generate" in [e.action for e in rt.store.iter_audit()]


def test_bad_period_is_a_clear_error_and_viewers_cannot_generate(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    login(client, "analyst")
    r = client.post("/reports", data={"csrf_token": csrf_of(client), "period": "2026-13", "lang": "vi"})
    assert r.status_code == 422 and 'id="report-error"' in r.text and "2026-13" in r.text
    assert rt.reports.recent() == []
    client.post("/logout")
    login(client, "viewer")
    page = client.get("/reports").text
    assert 'id="report-form"' not in page
    r = client.post("/reports", data={"csrf_token": csrf_of(client), "period": "2026-01", "lang": "vi"})
    assert r.status_code == 403 and rt.reports.recent() == []


def test_a_unit_analyst_reports_only_on_its_subtree(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    rt.store.put_unit(Unit(code="HA", name="Huyện A"))
    rt.users.add("ana-so", PASSWORD, role="analyst", unit="SO")
    login(client, "ana-so")
    r = client.post("/reports", data={"csrf_token": csrf_of(client), "period": "2026-01", "unit": "HA"})
    assert r.status_code == 403 and rt.reports.recent() == []
    r = client.post("/reports", data={"csrf_token": csrf_of(client), "period": "2026-01", "unit": "SO",
                                      "formats": ["csv"]}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    [report] = rt.reports.recent()
    assert report.scope_unit == "SO"
