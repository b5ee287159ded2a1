"""The overview's statistical trend detection: the last week's hourly alerts drawn over their seasonal
baseline, the surge of the last hours flagged and listed, and a unit-scoped viewer seeing only its units."""

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

from soclite import sitetime
from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Level, Unit, fingerprint, severity_of
from soclite.runtime import Runtime
from tests.ui.test_ui_pages import PASSWORD, login


def _alert(i: int, at: datetime, host: str, unit: str) -> Alert:
    return Alert(id=f"tr{i:06d}", fingerprint=fingerprint("r-ps", host, {"i": i}), rule_id="r-ps",
                 rule_title="PowerShell mã hoá", level=Level.MEDIUM, severity=severity_of("medium"), host=host,
                 unit=unit, first_seen=at, last_seen=at)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Any, Runtime, datetime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="trend-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO", name="Sở"))
    rt.store.put_unit(Unit(code="HU", name="Huyện"))
    now = datetime.now(UTC)
    surge_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    alerts = []
    # five weeks of 2 alerts an hour on the same host, then 30 more in one hour two hours ago
    for h in range(1, 24 * 35):
        hour = surge_hour - timedelta(hours=h) + timedelta(hours=2)
        if hour >= now - timedelta(minutes=5):
            continue
        for k in range(2):
            alerts.append(_alert(len(alerts), hour + timedelta(minutes=10 + k), "ws-1", "SO"))
    for k in range(30):
        alerts.append(_alert(len(alerts), surge_hour + timedelta(minutes=20, seconds=k), "ws-9", "SO"))
    for i in range(0, len(alerts), 2000):
        rt.store.put_alerts(alerts[i : i + 2000])
    users = UserStore(rt.control)
    users.add("admin", PASSWORD, role="admin")
    users.add("huyen", PASSWORD, role="viewer", unit="HU")
    with TestClient(create_app(rt)) as c:
        yield c, rt, surge_hour
    rt.close()


def test_overview_draws_the_baseline_and_flags_the_surge(client: tuple[Any, Runtime, datetime]) -> None:
    c, rt, surge_hour = client
    login(c, "admin")
    page = c.get("/").text
    assert "Phát hiện xu hướng bằng thống kê" in page and "không phải trí tuệ nhân tạo" in page
    section = page[page.index('id="trends"'):]
    assert "<polyline class=\"baseline\"" in section and "<polygon class=\"band\"" in section
    assert section.count('<circle class="flagged"') == 1  # the surge's hour, on the all-alerts line
    rows = re.findall(r'<tr class="trend-flag">(.*?)</tr>', section, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    hour_text = surge_hour.astimezone(sitetime.zone(rt.settings.timezone)).strftime("%d/%m/%Y %H:%M")
    assert {(row[0], row[1]) for row in cells} == {("Tất cả cảnh báo", ""), ("Đơn vị", "Sở"), ("Luật", "r-ps"),
                                                   ("Máy", "ws-9")}
    assert all(row[2] == hour_text for row in cells), (cells, hour_text)
    total = next(row for row in cells if row[0] == "Tất cả cảnh báo")
    assert (int(total[3]), float(total[4])) == (32, 2.0)


def test_a_unit_viewer_sees_no_other_units_rise(client: tuple[Any, Runtime, datetime]) -> None:
    c, _rt, _surge = client
    login(c, "huyen")
    page = c.get("/").text
    assert 'id="trend-none"' in page and '<circle class="flagged"' not in page
