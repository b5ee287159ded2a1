"""The periodic reviews page and the notification centre (issue 17): overdue log reviews and threshold tunings
are listed and can be recorded as done from the page; overdue ones and the last day's statistical trend rises
appear in the notification centre, scoped to the caller's units."""

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
from soclite.control.systems import SystemCreate
from soclite.models import Unit
from soclite.reports.trends import floor_hour
from soclite.runtime import Runtime
from tests.ui.test_ui_pages import PASSWORD, login


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Any, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="reviews-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO", name="Sở"))
    rt.store.put_unit(Unit(code="HU", name="Huyện"))
    users = UserStore(rt.control)
    users.add("analyst", PASSWORD, role="analyst")
    users.add("huyen", PASSWORD, role="viewer", unit="HU")
    with TestClient(create_app(rt)) as c:
        yield c, rt
    rt.close()


def test_overdue_review_listed_recorded_and_noticed(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    system = rt.systems.create(SystemCreate(name="Cổng dịch vụ công", owner="UBND", operator="TT", level=5,
                                            unit="SO"), actor="test", unit=None, scope=None)
    with rt.control.write() as conn:  # registered 40 days ago: level 5 owes both tasks every month
        conn.execute("UPDATE info_systems SET created_at = ? WHERE id = ?",
                     ((datetime.now(UTC) - timedelta(days=40)).isoformat(), system["id"]))
    login(c, "analyst")
    page = c.get("/reviews")
    assert page.status_code == 200
    assert page.text.count('class="review-row review-overdue"') == 2 and "Quá hạn" in page.text
    notices = c.get("/notifications").text
    assert 'data-kind="review_overdue"' in notices and "Cổng dịch vụ công" in notices

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    today = datetime.now(UTC).date().isoformat()
    r = c.post(f"/reviews/{system['id']}", data={"csrf_token": csrf.group(1), "kind": "log_review",
                                                 "date": today, "note": "Rà soát tháng 12"}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get("/reviews").text
    assert page.count('class="review-row review-overdue"') == 1 and "Rà soát tháng 12" in page
    assert rt.reviews.last_done(system["id"], "log_review")["done_by"] == "analyst"  # type: ignore[index]
    # a form without its CSRF token records nothing
    r = c.post(f"/reviews/{system['id']}", data={"kind": "threshold_tuning"}, follow_redirects=False)
    assert r.status_code == 403 and rt.reviews.last_done(system["id"], "threshold_tuning") is None


def test_trend_rises_in_the_notification_centre_by_unit(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    hour = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    rt.trend_warnings.record(source="events", dimension="unit", key="HU", unit="HU", hour=hour, observed=900,
                             median=40, threshold=120.5)
    rt.trend_warnings.record(source="alerts", dimension="rule_id", key="rule-x", unit=None, hour=hour, observed=80,
                             median=2, threshold=9)
    # recorded once: the next pass over the same hour adds nothing
    assert not rt.trend_warnings.record(source="events", dimension="unit", key="HU", unit="HU", hour=hour,
                                        observed=900, median=40, threshold=120.5)
    old = hour - timedelta(days=2)
    rt.trend_warnings.record(source="alerts", dimension="unit", key="HU", unit="HU", hour=old, observed=70,
                             median=1, threshold=8)
    login(c, "huyen")
    text = c.get("/notifications").text
    assert 'data-kind="trend"' in text and "unit=HU" in text and "900" in text
    assert "rule-x" not in text and "70 (median" not in text  # another scope's and a stale rise are not shown
    c.post("/logout")
    c.cookies.clear()
    login(c, "analyst")
    text = c.get("/notifications").text
    assert "rule-x" in text and "unit=HU" in text
