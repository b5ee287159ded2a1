"""Case pages without a browser: unit scope and roles exactly as the case API enforces them.

Units: PROV (province) → SO and HA. ``so`` is an analyst bound to SO; ``prov``
is a province-wide analyst; ``viewer`` and ``auditor`` are read-only. Each test
goes through the UI routes with a real session cookie and CSRF token, and
checks the control database afterwards, so a refusal that still wrote
something would fail.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soclite.api import cases
from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Level, Unit, fingerprint
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "case-test-password"


class World:
    def __init__(self, runtime: Runtime, so_alerts: list[str], ha_alerts: list[str]) -> None:
        self.rt = runtime
        self.so = so_alerts
        self.ha = ha_alerts

    def client(self, user: str) -> Any:
        client = TestClient(create_app(self.rt))
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        return client

    def all_cases(self) -> list[dict[str, Any]]:
        return cases.list_cases(self.rt, None, limit=1000)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="cases-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="PROV", name="Tỉnh"))
    rt.store.put_unit(Unit(code="SO", name="Sở Tài chính", parent="PROV"))
    rt.store.put_unit(Unit(code="HA", name="Huyện A", parent="PROV"))
    now = datetime.now(UTC)
    ids: dict[str, list[str]] = {"SO": [], "HA": []}
    for unit in ("SO", "HA"):
        for i in range(2):
            alert = Alert(fingerprint=fingerprint(f"r{i}", unit), rule_id=f"r{i}", rule_title=f"{unit} rule {i}",
                          level=Level.HIGH if i else Level.MEDIUM, severity="high" if i else "medium",
                          host=f"{unit.lower()}-ws", unit=unit, first_seen=now, last_seen=now)
            rt.store.put_alert(alert)
            ids[unit].append(alert.id)
    users = UserStore(rt.control)
    users.add("so", PASSWORD, role="analyst", unit="SO")
    users.add("prov", PASSWORD, role="analyst")
    users.add("viewer", PASSWORD, role="viewer")
    users.add("auditor", PASSWORD, role="auditor")
    yield World(rt, ids["SO"], ids["HA"])
    rt.close()


def csrf_of(client: Any, path: str = "/cases") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def test_analyst_creates_case_from_alerts_and_works_it(world: World) -> None:
    client = world.client("prov")
    csrf = csrf_of(client, "/alerts")
    r = client.post("/cases/add-alerts", data={"csrf_token": csrf, "case_id": "new", "title": "Lừa đảo qua thư",
                                               "ids": world.so}, follow_redirects=False)
    assert r.status_code == 303
    case_id = r.headers["location"].rsplit("/", 1)[1]
    case = cases.get(world.rt, case_id, None)
    # from alerts of one unit: the case takes that unit and their highest severity, so SO's analysts see it
    assert case["unit"] == "SO" and case["severity"] == "high" and case["alert_ids"] == world.so
    page = client.get(f"/cases/{case_id}").text
    for alert_id in world.so:
        assert f'href="/alerts/{alert_id}"' in page
    assert "Lừa đảo qua thư" in client.get("/cases").text
    r = client.post(f"/cases/{case_id}/update", data={"csrf_token": csrf, "status": "in_progress", "owner": "prov"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert cases.get(world.rt, case_id, None)["status"] == "in_progress"
    assert client.post(f"/cases/{case_id}/update", data={"csrf_token": csrf, "status": "bogus"}).status_code == 422
    assert client.post("/cases", data={"csrf_token": csrf, "title": ""}).status_code == 422
    # the alert page lists the case and offers "add to case"
    alert_page = client.get(f"/alerts/{world.so[0]}").text
    assert f'href="/cases/{case_id}"' in alert_page and 'id="alert-case-form"' in alert_page
    # a case made on the list page, then an alert added by id
    r = client.post("/cases", data={"csrf_token": csrf, "title": "Quét cổng", "severity": "low", "unit": "HA"},
                    follow_redirects=False)
    other = r.headers["location"].rsplit("/", 1)[1]
    r = client.post(f"/cases/{other}/alerts", data={"csrf_token": csrf, "alert_ids": f"{world.ha[0]}, {world.ha[1]}"},
                    follow_redirects=False)
    assert r.status_code == 303 and cases.get(world.rt, other, None)["alert_ids"] == world.ha
    client.cookies.set("soclite_lang", "en")
    assert "In progress" in client.get("/cases").text


def test_unit_bound_analyst_cannot_see_or_add_other_units_alerts(world: World) -> None:
    prov = world.client("prov")
    pcsrf = csrf_of(prov)
    ha_case = cases.get(world.rt, prov.post("/cases/add-alerts", data={
        "csrf_token": pcsrf, "title": "Case of HA", "ids": [world.ha[0], world.so[1]]},
        follow_redirects=False).headers["location"].rsplit("/", 1)[1], None)
    assert ha_case["unit"] is None  # mixed units: the creator's unit (province-wide)
    prov.post(f"/cases/{ha_case['id']}/update", data={"csrf_token": pcsrf, "status": "in_progress"})

    so = world.client("so")
    csrf = csrf_of(so)
    before = len(world.all_cases())
    # another unit's alert: not visible, and not addable by any UI route
    assert so.get(f"/alerts/{world.ha[0]}").status_code == 404
    assert world.ha[0] not in so.get("/alerts").text
    r = so.post("/cases/add-alerts", data={"csrf_token": csrf, "title": "x", "ids": [world.so[0], world.ha[0]]})
    assert r.status_code == 404
    assert so.post("/cases", data={"csrf_token": csrf, "title": "x", "alert_ids": world.ha[0]}).status_code == 404
    assert so.post("/cases", data={"csrf_token": csrf, "title": "x", "unit": "HA"}).status_code == 404
    assert len(world.all_cases()) == before  # nothing created by the refused requests

    r = so.post("/cases/add-alerts", data={"csrf_token": csrf, "title": "SO case", "ids": [world.so[0]]},
                follow_redirects=False)
    so_case = r.headers["location"].rsplit("/", 1)[1]
    assert cases.get(world.rt, so_case, None)["unit"] == "SO"
    r = so.post(f"/cases/{so_case}/alerts", data={"csrf_token": csrf, "alert_ids": world.ha[1]})
    assert r.status_code == 404
    r = so.post("/cases/add-alerts", data={"csrf_token": csrf, "case_id": so_case, "ids": [world.ha[1]]})
    assert r.status_code == 404
    assert cases.get(world.rt, so_case, None)["alert_ids"] == [world.so[0]]

    # the province's case (no unit) is invisible to SO: list, detail, writes, the alert page
    assert "Case of HA" not in so.get("/cases").text
    assert so.get(f"/cases/{ha_case['id']}").status_code == 404
    r = so.post(f"/cases/{ha_case['id']}/update", data={"csrf_token": csrf, "status": "closed"})
    assert r.status_code == 404 and cases.get(world.rt, ha_case["id"], None)["status"] == "in_progress"
    assert so.post(f"/cases/{ha_case['id']}/alerts", data={"csrf_token": csrf, "alert_ids": world.so[0]}
                   ).status_code == 404
    alert_page = so.get(f"/alerts/{world.so[1]}").text  # world.so[1] is in the province's case
    assert "Case of HA" not in alert_page and ha_case["id"] not in alert_page
    assert "Case of HA" not in so.get("/alerts").text  # not offered as "existing case" either

    # the province analyst puts an HA alert into SO's case: SO sees its own alert and a count, not the HA one
    prov.post(f"/cases/{so_case}/alerts", data={"csrf_token": pcsrf, "alert_ids": world.ha[1]})
    page = so.get(f"/cases/{so_case}").text
    assert f'href="/alerts/{world.so[0]}"' in page
    assert world.ha[1] not in page and "HA rule 1" not in page
    assert 'id="case-hidden"' in page


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_read_only_roles_get_403_on_case_writes(world: World, role: str) -> None:
    prov = world.client("prov")
    case = cases.get(world.rt, prov.post("/cases/add-alerts", data={
        "csrf_token": csrf_of(prov), "title": "Seen by all", "ids": [world.so[0]]},
        follow_redirects=False).headers["location"].rsplit("/", 1)[1], None)
    client = world.client(role)
    listing = client.get("/cases")
    assert listing.status_code == 200 and "Seen by all" in listing.text and 'id="new-case-form"' not in listing.text
    detail = client.get(f"/cases/{case['id']}")
    assert detail.status_code == 200 and 'id="case-status-form"' not in detail.text
    assert 'id="bulk-case"' not in client.get("/alerts").text
    assert 'id="alert-case-form"' not in client.get(f"/alerts/{world.so[0]}").text
    csrf = csrf_of(client)
    writes = [
        ("/cases", {"title": "nope"}),
        ("/cases/add-alerts", {"title": "nope", "ids": world.so[1]}),
        (f"/cases/{case['id']}/update", {"status": "closed"}),
        (f"/cases/{case['id']}/alerts", {"alert_ids": world.so[1]}),
    ]
    for path, data in writes:
        r = client.post(path, data={"csrf_token": csrf, **data})
        assert r.status_code == 403, (path, r.status_code)
    after = cases.get(world.rt, case["id"], None)
    assert after["status"] == "open" and after["alert_ids"] == [world.so[0]]
    assert len(world.all_cases()) == 1
    denied = [e for e in world.rt.store.list_audit(limit=1000).items
              if e.action == "access.denied" and e.actor.endswith(role)]
    assert len(denied) == len(writes)


def test_case_writes_need_the_session_csrf_token(world: World) -> None:
    client = world.client("prov")
    r = client.post("/cases", data={"title": "forged", "csrf_token": "wrong"})
    assert r.status_code == 403
    r = client.post("/cases/add-alerts", data={"title": "forged", "ids": world.so[0]})
    assert r.status_code == 403
    assert world.all_cases() == []


def test_case_page_attaches_downloads_deletes_and_exports(world: World) -> None:
    """Attachments through the case page (multipart form with the CSRF token), the SHA-256 shown,
    a program refused with the UI's 415 page, and the export page carrying the hash."""
    import hashlib

    client = world.client("so")
    csrf = csrf_of(client)
    r = client.post("/cases", data={"csrf_token": csrf, "title": "Tệp", "unit": "SO", "alert_ids": world.so[0]},
                    follow_redirects=False)
    case_id = r.headers["location"].rsplit("/", 1)[1]
    text = "Nhật ký đăng nhập\n".encode()
    r = client.post(f"/cases/{case_id}/attachments", data={"csrf_token": csrf},
                    files={"file": ("nhat-ky.log", text, "text/plain")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    digest = hashlib.sha256(text).hexdigest()
    page = client.get(f"/cases/{case_id}").text
    assert digest in page and "nhat-ky.log" in page
    [att] = cases.attachments(world.rt, case_id, None)
    r = client.get(f"/cases/{case_id}/attachments/{att['id']}")
    assert r.content == text and r.headers["content-disposition"].startswith("attachment")
    # without the CSRF token nothing is kept; a program is refused with the page in the reader's language
    r = client.post(f"/cases/{case_id}/attachments", files={"file": ("x.txt", text, "text/plain")})
    assert r.status_code == 403
    r = client.post(f"/cases/{case_id}/attachments", data={"csrf_token": csrf},
                    files={"file": ("x.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 60, "application/pdf")})
    assert r.status_code == 415 and "chương trình" in r.text
    assert len(cases.attachments(world.rt, case_id, None)) == 1
    export = client.get(f"/cases/{case_id}/export")
    assert export.status_code == 200 and digest in export.text and "SO rule" in export.text
    assert client.get(f"/cases/{case_id}/export?format=json").json()["case"]["attachments"][0]["sha256"] == digest
    r = client.post(f"/cases/{case_id}/attachments/{att['id']}/delete", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and cases.attachments(world.rt, case_id, None) == []
