"""The reports API: generate, list and download, with unit scoping and SHA-256 checked downloads."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # starlette warns that its test client prefers httpx2 over httpx; httpx is what the project declares
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from soclite.api.app import create_app
from soclite.runtime import Runtime
from soclite.store.base import AlertQuery
from tests.reports.conftest import make_settings
from tests.reports.expected import html_figures, month_bounds
from tests.reports.seed import seed


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Runtime, dict[str, str]]]:
    settings = make_settings(tmp_path_factory.mktemp("api"))
    runtime = Runtime.build(settings)
    seed(runtime.store, august=200)
    tokens = {
        "admin": runtime.identity.create_token(role="admin", name="admin"),
        "viewer_syt": runtime.identity.create_token(role="viewer", unit="syt", name="yte"),
        "analyst_syt": runtime.identity.create_token(role="analyst", unit="syt", name="ana-yte"),
        "auditor": runtime.identity.create_token(role="auditor", name="aud"),
        "viewer_stttt": runtime.identity.create_token(role="viewer", unit="stttt", name="tttt"),
        "agent": runtime.identity.create_token(role="agent", name="agent"),
    }
    with TestClient(create_app(runtime)) as client:
        yield client, runtime, tokens
    runtime.close()


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_generate_list_download(api: tuple[TestClient, Runtime, dict[str, str]]) -> None:
    client, runtime, tokens = api
    resp = client.post("/api/v1/reports", json={"period": "2024-08", "lang": "vi", "formats": ["html", "csv"]},
                       headers=_h(tokens["admin"]))
    assert resp.status_code == 201, resp.text
    report = resp.json()
    assert report["doc_number"].endswith("/BC-ATTT")
    assert {f["format"] for f in report["files"]} == {"html", "csv"}
    assert report["params"]["start"] == "2024-07-31T17:00:00+00:00"

    listed = client.get("/api/v1/reports", headers=_h(tokens["admin"])).json()
    assert report["id"] in [r["id"] for r in listed["items"]]

    for f in report["files"]:
        got = client.get(f"/api/v1/reports/{report['id']}/{f['format']}", headers=_h(tokens["admin"]))
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == f["sha256"] == got.headers["x-content-sha256"]
    html = client.get(f"/api/v1/reports/{report['id']}/html", headers=_h(tokens["admin"])).text
    start, end = month_bounds(2024, 8)
    assert html_figures(html)["total"] == runtime.store.count_alerts(AlertQuery(start=start, end=end))["total"]
    # the archive on disk: files, their hashes and the query
    folder = Path(runtime.settings.data_dir) / "reports" / report["id"]
    assert (folder / "query.json").is_file() and (folder / "report.html").is_file()


def test_unit_scoped_viewer_gets_unit_scoped_reports(api: tuple[TestClient, Runtime, dict[str, str]]) -> None:
    client, runtime, tokens = api
    province = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["html"]},
                           headers=_h(tokens["admin"])).json()
    resp = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["html"]},
                       headers=_h(tokens["analyst_syt"]))
    assert resp.status_code == 201, resp.text
    mine = resp.json()
    assert mine["scope_unit"] == "syt"
    html = client.get(f"/api/v1/reports/{mine['id']}/html", headers=_h(tokens["viewer_syt"])).text
    start, end = month_bounds(2024, 8)
    scoped = runtime.store.count_alerts(AlertQuery(start=start, end=end, units=frozenset({"syt", "bvdk"})))["total"]
    assert html_figures(html)["total"] == scoped

    # the viewer sees its own report, not the province's; another unit's viewer sees neither
    ids = [r["id"] for r in client.get("/api/v1/reports", headers=_h(tokens["viewer_syt"])).json()["items"]]
    assert mine["id"] in ids and province["id"] not in ids
    assert client.get(f"/api/v1/reports/{province['id']}/html", headers=_h(tokens["viewer_syt"])).status_code == 404
    assert client.get(f"/api/v1/reports/{mine['id']}/html", headers=_h(tokens["viewer_stttt"])).status_code == 404
    # a scoped analyst may not ask for a unit outside its subtree, but may for one below it
    outside = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["csv"], "unit": "stttt"},
                          headers=_h(tokens["analyst_syt"]))
    assert outside.status_code == 403
    below = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["csv"], "unit": "bvdk"},
                        headers=_h(tokens["analyst_syt"]))
    assert below.status_code == 201


def test_errors(api: tuple[TestClient, Runtime, dict[str, str]]) -> None:
    client, _runtime, tokens = api
    assert client.get("/api/v1/reports").status_code == 401
    assert client.get("/api/v1/reports", headers=_h(tokens["agent"])).status_code == 403
    bad = client.post("/api/v1/reports", json={"period": "2024-13"}, headers=_h(tokens["admin"]))
    assert bad.status_code == 422 and "2024-13" in bad.text
    bad = client.post("/api/v1/reports", json={"period": "2024-08", "lang": "fr"}, headers=_h(tokens["admin"]))
    assert bad.status_code == 422
    assert client.get("/api/v1/reports/nope/pdf", headers=_h(tokens["admin"])).status_code == 404


def test_tampered_file_is_refused(api: tuple[TestClient, Runtime, dict[str, str]]) -> None:
    client, runtime, tokens = api
    report = client.post("/api/v1/reports", json={"period": "2024-07", "formats": ["csv"]},
                         headers=_h(tokens["admin"])).json()
    path = Path(runtime.settings.data_dir) / "reports" / report["id"] / "report.csv"
    path.write_bytes(path.read_bytes() + b"x")
    got = client.get(f"/api/v1/reports/{report['id']}/csv", headers=_h(tokens["admin"]))
    assert got.status_code == 409 and "SHA-256" in got.text


def test_viewers_and_auditors_cannot_generate(api: tuple[TestClient, Runtime, dict[str, str]]) -> None:
    """Generating takes an official document number: viewers and auditors read and download only."""
    client, runtime, tokens = api
    before = client.get("/api/v1/reports", headers=_h(tokens["admin"])).json()["items"]
    for who in ("viewer_syt", "auditor"):
        resp = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["csv"]}, headers=_h(tokens[who]))
        assert resp.status_code == 403, who
    assert client.get("/api/v1/reports", headers=_h(tokens["admin"])).json()["items"] == before
    made = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["csv"]},
                       headers=_h(tokens["admin"])).json()
    assert client.get(f"/api/v1/reports/{made['id']}/csv", headers=_h(tokens["auditor"])).status_code == 200
    denied = [e for e in runtime.store.iter_audit() if e.action == "access.denied"]
    assert len(denied) >= 2


@pytest.mark.parametrize("period", ["9999-12", "2999-12", "2200-H2", "1999-12", "0001-01"])
def test_future_or_ancient_periods_are_422_and_take_no_document_number(
    api: tuple[TestClient, Runtime, dict[str, str]], period: str
) -> None:
    """Issue 13 item 12: year 9999 was a 500 and 2999-12 spent an official document number."""
    client, _runtime, tokens = api
    before = client.get("/api/v1/reports", params={"limit": 500}, headers=_h(tokens["admin"])).json()["items"]
    resp = client.post("/api/v1/reports", json={"period": period, "formats": ["csv"]}, headers=_h(tokens["admin"]))
    assert resp.status_code == 422, resp.text
    assert period in resp.json()["detail"] or "year" in resp.json()["detail"]
    after = client.get("/api/v1/reports", params={"limit": 500}, headers=_h(tokens["admin"])).json()["items"]
    assert len(after) == len(before)
    # the next report gets the number right after the last one issued: none was consumed
    numbers = sorted(int(r["doc_number"].split("/")[0]) for r in after)
    made = client.post("/api/v1/reports", json={"period": "2024-08", "formats": ["csv"]}, headers=_h(tokens["admin"]))
    assert made.status_code == 201
    assert int(made.json()["doc_number"].split("/")[0]) == (numbers[-1] if numbers else 0) + 1


def test_the_current_unfinished_period_is_still_allowed() -> None:
    from datetime import UTC, datetime

    from soclite.reports.periods import check_started, parse_period

    now = datetime(2026, 3, 15, 3, 0, tzinfo=UTC)
    check_started(parse_period("2026-03"), now)
    check_started(parse_period("2026-Q1"), now)
    with pytest.raises(Exception, match="not started"):
        check_started(parse_period("2026-04"), now)
    # 1 April 00:30 in Hanoi is still 31 March in UTC: the site's day decides
    check_started(parse_period("2026-04"), datetime(2026, 3, 31, 17, 30, tzinfo=UTC))


def test_annual_kind_generates_form_08_for_the_year(api: tuple[TestClient, Runtime, dict[str, str]]) -> None:
    """kind "annual" with a bare year files Form 08 for 15/12 to 14/12; a mismatch is a clear 422, no number spent."""
    client, runtime, tokens = api
    created = client.post("/api/v1/systems", headers=_h(tokens["admin"]), json={
        "name": "Cổng thông tin điện tử", "owner": "UBND tỉnh", "operator": "Sở KH&CN", "level": 3})
    assert created.status_code in (200, 201), created.text
    resp = client.post("/api/v1/reports", json={"kind": "annual", "period": "2024", "formats": ["html", "csv"]},
                       headers=_h(tokens["admin"]))
    assert resp.status_code == 201, resp.text
    report = resp.json()
    assert report["kind"] == "annual" and report["period"] == "2024-Y"
    assert report["params"]["start"] == "2023-12-14T17:00:00+00:00"
    assert report["params"]["end"] == "2024-12-14T17:00:00+00:00"
    html = client.get(f"/api/v1/reports/{report['id']}/html", headers=_h(tokens["admin"])).text
    shown = html_figures(html)
    assert shown["annual.systems"] == 1 and shown["annual.systems_level_3"] == 1
    start, end = report["params"]["start"], report["params"]["end"]
    total = runtime.store.count_alerts(AlertQuery(start=datetime.fromisoformat(start),
                                                  end=datetime.fromisoformat(end)))["total"]
    assert shown["total"] == total > 0
    listed = client.get("/api/v1/reports", headers=_h(tokens["admin"])).json()["items"]
    assert {r["kind"] for r in listed} >= {"annual", "periodic"}

    before = len(listed)
    for body in ({"kind": "annual", "period": "2024-08"}, {"kind": "periodic", "period": "2024-Y"}):
        bad = client.post("/api/v1/reports", json=body, headers=_h(tokens["admin"]))
        assert bad.status_code == 422 and ("annual" in bad.text), bad.text
    assert len(client.get("/api/v1/reports", headers=_h(tokens["admin"])).json()["items"]) == before
