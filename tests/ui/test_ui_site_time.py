"""The web UI's time is the site's: the queue's date filter, the overview's day bars, an exception's expiry.

An alert at 00:30 local time (17:30 UTC the day before) is listed under its local date, counted on
its local day's bar, and an exception set to expire on a date is shown back as that date (not
"01/04/2027 06:59", the UTC end of day read in UTC+07:00).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Level, Unit, fingerprint
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "site-time-password"
ICT = ZoneInfo("Asia/Ho_Chi_Minh")


def _alert(title: str, at: datetime) -> Alert:
    return Alert(fingerprint=fingerprint("r", title), rule_id="r", rule_title=title, level=Level.HIGH,
                 severity="high", host="ws1", unit="SO", first_seen=at, last_seen=at,
                 event={"Image": "C:\\Tools\\backup.exe"})


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[Any, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="site-time-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO", name="Sở Thông tin"))
    UserStore(rt.control).add("ana", PASSWORD, role="analyst")
    with TestClient(create_app(rt)) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)})
        yield client, rt
    rt.close()


def test_queue_date_filter_is_the_local_day(ui: tuple[Any, Runtime]) -> None:
    client, rt = ui
    rt.store.put_alerts([_alert("after-local-midnight", datetime(2026, 12, 6, 17, 30, tzinfo=UTC)),
                         _alert("before-local-midnight", datetime(2026, 12, 6, 16, 30, tzinfo=UTC))])
    day = client.get("/alerts?from=2026-12-07&to=2026-12-07").text
    assert "after-local-midnight" in day and "before-local-midnight" not in day
    assert "07/12/2026 00:30" in day and "UTC+07:00" in day
    prev = client.get("/alerts?from=2026-12-06&to=2026-12-06").text
    assert "before-local-midnight" in prev and "after-local-midnight" not in prev


def test_unreadable_date_in_the_queue_is_a_page_in_the_readers_language(ui: tuple[Any, Runtime]) -> None:
    client, _rt = ui
    r = client.get("/alerts?from=31/02/2026", headers={"Accept": "text/html"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "Ngày hoặc giờ không hợp lệ: 31/02/2026" in r.text


def test_overview_bar_of_an_alert_after_local_midnight_is_its_local_day(ui: tuple[Any, Runtime]) -> None:
    client, rt = ui
    today = datetime.now(UTC).astimezone(ICT).date()
    just_after = datetime(today.year, today.month, today.day, 0, 30, tzinfo=ICT)  # 17:30 UTC the day before
    rt.store.put_alert(_alert("overview-boundary", just_after.astimezone(UTC)))
    page = client.get("/?days=7").text
    assert f"<title>{today.strftime('%d/%m')} · Cao: 1</title>" in page
    yesterday = (today - timedelta(days=1)).strftime("%d/%m")
    assert f"<title>{yesterday} · Cao:" not in page


def test_exception_expiry_date_is_shown_back_as_that_local_date(ui: tuple[Any, Runtime]) -> None:
    client, rt = ui
    alert = _alert("to-tune", datetime.now(UTC))
    rt.store.put_alert(alert)
    detail = client.get(f"/alerts/{alert.id}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', detail)
    assert csrf
    expires = datetime.now(UTC).astimezone(ICT).date() + timedelta(days=30)
    r = client.post(f"/alerts/{alert.id}/exception", data={
        "csrf_token": csrf.group(1), "match": "Image: C:\\Tools\\backup.exe", "reason": "nightly backup",
        "expires_at": expires.isoformat()}, follow_redirects=False)
    assert r.status_code == 303, r.text
    rules = client.get("/rules").text
    assert f"{expires.strftime('%d/%m/%Y')} 23:59" in rules
    assert (expires + timedelta(days=1)).strftime("%d/%m/%Y") not in rules


def test_vietnamese_date_inputs_are_dd_mm_yyyy_and_english_ones_iso(ui: tuple[Any, Runtime]) -> None:
    """Chromium shows <input type=date> in the system's locale (mm/dd/yyyy), so the Vietnamese UI types dates in
    text inputs as dd/mm/yyyy; the English one keeps the date picker, which holds ISO. A date typed either way
    is the same local day (issue 15)."""
    client, rt = ui
    rt.store.put_alerts([_alert("after-local-midnight", datetime(2026, 12, 6, 17, 30, tzinfo=UTC)),
                         _alert("before-local-midnight", datetime(2026, 12, 6, 16, 30, tzinfo=UTC))])
    vi = client.get("/alerts?from=2026-12-07&to=07/12/2026").text
    assert re.search(r'<input type="text" name="from" value="07/12/2026"[^>]*placeholder="dd/mm/yyyy"', vi)
    assert re.search(r'<input type="text" name="to" value="07/12/2026"[^>]*pattern=', vi)
    assert 'type="date"' not in vi
    assert "after-local-midnight" in vi and "before-local-midnight" not in vi
    typed = client.get("/alerts?from=06/12/2026&to=06/12/2026").text  # as a Vietnamese analyst types it
    assert "before-local-midnight" in typed and "after-local-midnight" not in typed
    client.get("/lang/en?next=/alerts")
    en = client.get("/alerts?from=07/12/2026&to=2026-12-07").text
    assert '<input type="date" name="from" value="2026-12-07">' in en
    assert '<input type="date" name="to" value="2026-12-07">' in en
    assert "after-local-midnight" in en and "before-local-midnight" not in en
    # a value that is no date stays as typed, for the error page to name (not silently rewritten)
    assert client.get("/alerts?from=31/02/2026", headers={"Accept": "text/html"}).status_code == 422
