"""Discover (/events): search, the local-time histogram, the field sidebar and the pivot to alerts."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Level, fingerprint
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "discover-password-1"


def _event(i: int, at: datetime, ip: str, user: str) -> dict[str, Any]:
    return {"@timestamp": at.isoformat(), "event.id": f"ev{i}", "host.name": "portal-01", "source.ip": ip,
            "user.name": user, "event.original": f"login {user} from {ip}", "logsource.product": "linux"}


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[Any, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="discover-secret-0123456789", secure_cookies=False)))
    rt.store.write_events([
        _event(1, datetime(2026, 12, 6, 17, 30, tzinfo=UTC), "203.0.113.45", "nguyen.van.a"),  # 00:30 on 07/12 local
        _event(2, datetime(2026, 12, 7, 2, 0, tzinfo=UTC), "203.0.113.45", "tran.thi.b"),
        _event(3, datetime(2026, 12, 6, 16, 0, tzinfo=UTC), "198.51.100.7", "nguyen.van.a"),  # 23:00 on 06/12 local
    ])
    rt.store.put_alert(Alert(fingerprint=fingerprint("r", "p"), rule_id="r", rule_title="Brute force from outside",
                             level=Level.HIGH, severity="high", host="portal-01", first_seen=datetime(2026, 12, 6, 17, 30, tzinfo=UTC),
                             last_seen=datetime(2026, 12, 6, 17, 30, tzinfo=UTC), event=_event(1, datetime(2026, 12, 6, 17, 30, tzinfo=UTC), "203.0.113.45", "nguyen.van.a")))
    UserStore(rt.control).add("ana", PASSWORD, role="analyst")
    with TestClient(create_app(rt)) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token
        c.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)})
        yield c, rt
    rt.close()


def test_search_histogram_sidebar_and_pivot(ui: tuple[Any, Runtime]) -> None:
    client, _rt = ui
    page = client.get("/events", params={"query": "source.ip:203.0.113.45", "from": "2026-12-06", "to": "2026-12-07"}).text
    assert 'id="event-total">2 sự kiện' in page
    assert "<title>07/12 · Sự kiện: 2</title>" in page  # both on the local 7th, 00:30 included
    assert "<title>06/12 · Sự kiện:" not in page  # nothing of this search on the 6th (local)
    sidebar = page[page.index('id="field-sidebar"'):page.index('id="event-list"')]
    assert re.search(r">nguyen\.van\.a</a></td>\s*<td class=\"r\">1</td>", sidebar)
    add = re.search(r'class="add-filter"[^>]*href="([^"]+)">tran\.thi\.b<', sidebar)
    assert add and 'query=source.ip:203.0.113.45 AND user.name:"tran.thi.b"' in unquote(add.group(1)).replace("&amp;", "&")
    narrowed = client.get(add.group(1).replace("&amp;", "&")).text
    assert 'id="event-total">1 sự kiện' in narrowed
    pivot = re.search(r'href="(/alerts\?status=all(?:&amp;|&)q=203\.0\.113\.45)"', sidebar)
    assert pivot
    alerts = client.get(pivot.group(1).replace("&amp;", "&")).text
    assert "Brute force from outside" in alerts  # found through its matched event's source.ip


def test_a_search_that_cannot_be_read_is_a_localised_page(ui: tuple[Any, Runtime]) -> None:
    client, _rt = ui
    r = client.get("/events", params={"query": "user.name:(", "from": "2026-12-06"}, headers={"Accept": "text/html"})
    assert r.status_code == 422 and "Không đọc được câu tìm kiếm: hãy kiểm tra dấu nháy" in r.text
    ranged = client.get("/events", params={"query": "EventID:[1 TO 2]"}, headers={"Accept": "text/html"})
    assert ranged.status_code == 422 and "Câu tìm kiếm dùng [1 TO 2], cú pháp này chưa được hỗ trợ" in ranged.text
    assert "searches are not supported" not in ranged.text.split('id="error-text"')[1].split("</p>")[0]


def test_alert_detail_pivots_from_a_matched_value_to_its_events(ui: tuple[Any, Runtime]) -> None:
    client, rt = ui
    at = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)
    alert = Alert(fingerprint=fingerprint("r2", "p"), rule_id="r2", rule_title="Login from outside", level=Level.HIGH,
                  severity="high", host="portal-01", first_seen=at, last_seen=at, event_ids=["ev1"])
    rt.store.put_alert(alert)
    detail = client.get(f"/alerts/{alert.id}").text
    link = re.search(r'<code>nguyen\.van\.a</code> <a class="pivot-events"[^>]*href="([^"]+)"', detail)
    assert link
    url = link.group(1).replace("&amp;", "&")
    assert unquote(url).startswith('/events?query=user.name:"nguyen.van.a"&from=2026-11-30')
    events = client.get(url).text
    assert 'id="event-total">2 sự kiện' in events  # ev1 and ev3: the same user, from 7 days before the alert
