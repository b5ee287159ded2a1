"""The alert queue reads as the work to do: open alerts only by default, unit names, a histogram, groups."""

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
from soclite.models import Alert, Level, Unit, fingerprint, severity_of
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "queue-password-123"


def _alert(title: str, *, status: str = "new", level: Level = Level.HIGH, host: str = "ws1",
           user: str | None = None, at: datetime | None = None) -> Alert:
    seen = at or datetime.now(UTC) - timedelta(hours=1)
    return Alert(fingerprint=fingerprint("r", title), rule_id=f"rule-{title}", rule_title=title, level=level,
                 severity=severity_of(level), host=host, unit="SO-TTTT", first_seen=seen, last_seen=seen,
                 status=status, close_reason="done" if status == "resolved" else None,
                 event={"user.name": user} if user else {})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="queue-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO-TTTT", name="Sở Thông tin và Truyền thông"))
    rt.store.put_alerts([
        _alert("open-one", user="nguyen.van.a"), _alert("open-two", level=Level.CRITICAL, host="ws2",
                                                         user="nguyen.van.a"),
        _alert("closed-one", status="resolved", level=Level.INFORMATIONAL, user="tran.thi.b"),
    ])
    UserStore(rt.control).add("ana", PASSWORD, role="analyst")
    with TestClient(create_app(rt)) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token
        c.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)})
        yield c
    rt.close()


def test_closed_alerts_are_hidden_until_asked_for(client: Any) -> None:
    default = client.get("/alerts").text
    assert "open-one" in default and "open-two" in default and "closed-one" not in default
    everything = client.get("/alerts?status=all").text
    assert "closed-one" in everything
    assert "closed-one" in client.get("/alerts?status=resolved").text


def test_rows_show_the_unit_name_and_the_level_in_one_language(client: Any) -> None:
    rows = client.get("/alerts/rows?status=all").text
    assert "Sở Thông tin và Truyền thông" in rows and ">SO-TTTT<" not in rows
    assert "Nghiêm trọng" in rows and "Thông tin</small>" in rows  # critical, informational
    assert not re.search(r">\s*(critical|high|informational)\s*<", rows)
    english = client.get("/lang/en?next=/alerts/rows%3Fstatus%3Dall").text
    assert "Critical" in english and "Cao" not in english


def test_queue_histogram_and_groups_follow_the_filters(client: Any) -> None:
    page = client.get("/alerts?group=user").text
    assert 'id="queue-histogram"' in page and "<svg" in page
    day = (datetime.now(UTC) - timedelta(hours=1)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert f"<title>{day.strftime('%d/%m')} · Cao: 2</title>" in page  # the two open ones, on their local day
    groups = page[page.index('id="queue-groups"'):]
    assert re.search(r"nguyen\.van\.a</a></td>\s*<td class=\"r\">2</td>", groups)
    assert "tran.thi.b" not in groups  # closed: hidden like in the table
    by_host = client.get("/alerts?group=host&status=all").text
    hosts = by_host[by_host.index('id="queue-groups"'):]
    assert re.search(r'href="/alerts\?status=all&group=host&host=ws1">ws1</a></td>\s*<td class="r">2</td>', hosts)


def test_queue_and_alert_list_follow_every_alert_change_at_once(client: Any) -> None:
    """The queue's rows, groups and count and the API's list are kept between requests (api.viewcache)
    while the alerts stay the same: a new alert, a triage change and a renamed unit show on the very
    next request, well inside the cache's few seconds."""
    rt: Runtime = client.app.state.runtime
    token = rt.identity.create_token(role="analyst", name="ana-api")
    api = {"Authorization": f"Bearer {token}"}
    first = client.get("/alerts").text
    assert "brand-new" not in first
    assert client.get("/api/v1/alerts?status=new", headers=api).json()["total"] == 2
    rt.store.put_alerts([_alert("brand-new")])
    page = client.get("/alerts").text
    assert "brand-new" in page and "rule-brand-new" in page  # the row and its group
    assert client.get("/alerts/rows").text.count("<tr") == 3
    listed = client.get("/api/v1/alerts?status=new", headers=api).json()
    assert listed["total"] == 3 and "brand-new" in [a["rule_title"] for a in listed["items"]]
    one = next(a for a in listed["items"] if a["rule_title"] == "open-one")
    client.patch(f"/api/v1/alerts/{one['id']}", headers=api, json={"status": "acknowledged"}).raise_for_status()
    assert client.get("/api/v1/alerts?status=new", headers=api).json()["total"] == 2
    assert "st-acknowledged" in client.get("/alerts/rows").text
    rt.store.put_unit(Unit(code="SO-TTTT", name="Sở Khoa học và Công nghệ"))
    assert "Sở Khoa học và Công nghệ" in client.get("/alerts/rows").text
