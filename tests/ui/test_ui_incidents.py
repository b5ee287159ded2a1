"""The incident page: each legal deadline with its countdown from detection, the overdue and due-soon ones
marked, the notice downloadable; another unit's incident is not found."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.control.incidents import IncidentCreate
from soclite.models import Unit
from soclite.runtime import Runtime
from tests.ui.test_ui_pages import PASSWORD, login


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Any, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="incident-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO", name="Sở"))
    rt.store.put_unit(Unit(code="HU", name="Huyện"))
    users = UserStore(rt.control)
    users.add("admin", PASSWORD, role="admin")
    users.add("huyen", PASSWORD, role="viewer", unit="HU")
    with TestClient(create_app(rt)) as c:
        yield c, rt
    rt.close()


def test_incident_page_counts_down_each_deadline(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    detected = datetime.now(UTC) - timedelta(hours=21, minutes=30)
    incident = rt.incidents.create(
        IncidentCreate(title="Lộ lọt dữ liệu cổng dịch vụ công", detected_at=detected, personal_data=True,
                       unit="SO"), actor="t", created_by="t", unit=None, scope=None)
    login(c, "admin")
    listing = c.get("/incidents").text
    assert "Lộ lọt dữ liệu cổng dịch vụ công" in listing and "clock-due_soon" in listing
    page = c.get(f"/incidents/{incident['id']}").text
    rows = {name: body for name, body in re.findall(r'id="deadline-(\w+)">(.*?)</tr>', page, re.S)}
    assert set(rows) == {"initial_notice", "report_72h", "personal_data", "final_report"}
    # 24 h from detection, 21 h 30 min gone: about 2 h 30 min left, due soon (the warning window is 4 h)
    left = re.search(r'class="countdown"[^>]*>còn (\d+) giờ (\d+) phút<', rows["initial_notice"])
    assert left and 2 * 60 + 25 <= int(left.group(1)) * 60 + int(left.group(2)) <= 2 * 60 + 30, rows
    assert "Sắp đến hạn" in rows["initial_notice"] and "Chưa đến hạn" in rows["report_72h"]
    assert "Không có hạn" in rows["final_report"]
    assert f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice&amp;format=pdf" in page
    pdf = c.get(f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice&format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_overdue_at_once_where_national_security_is_at_stake(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    incident = rt.incidents.create(
        IncidentCreate(title="Tấn công hệ thống quan trọng", detected_at=datetime.now(UTC) - timedelta(minutes=90),
                       national_security=True, unit="SO"), actor="t", created_by="t", unit=None, scope=None)
    login(c, "admin")
    page = c.get(f"/incidents/{incident['id']}").text
    row = re.search(r'id="deadline-initial_notice">(.*?)</tr>', page, re.S)
    assert row and "Quá hạn" in row.group(1) and re.search(r">quá hạn 1 giờ 3\d phút<", row.group(1))
    login(c, "huyen")
    assert c.get(f"/incidents/{incident['id']}").status_code == 404
    assert "Tấn công hệ thống quan trọng" not in c.get("/incidents").text
