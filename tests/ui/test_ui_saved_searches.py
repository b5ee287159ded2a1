"""Discover's saved searches (per user, shared within a unit, audited) and the histogram's zoom bounds."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Unit
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "saved-password-1"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                     auth=AuthSettings(secret_key="saved-secret-0123456789", secure_cookies=False)))
    runtime.store.put_unit(Unit(code="SO", name="Sở Tài chính"))
    runtime.store.put_unit(Unit(code="XA", name="UBND xã"))
    runtime.store.write_events([
        {"@timestamp": datetime(2026, 12, 7, h, 10, tzinfo=UTC).isoformat(), "event.id": f"e{h}", "host.name": "ws-01",
         "soclite.unit": "SO", "source.ip": "203.0.113.45", "event.original": f"event {h}"} for h in range(0, 6)])
    for name, unit in (("lan", "SO"), ("minh", "SO"), ("hoa", "XA")):
        UserStore(runtime.control).add(name, PASSWORD, role="analyst", unit=unit)
    yield runtime
    runtime.close()


def _client(rt: Runtime, user: str) -> Any:
    client = TestClient(create_app(rt))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def _saved_names(page: str) -> list[str]:
    return re.findall(r'class="saved-link"[^>]*>([^<]+)</a>', page)


def test_save_share_open_and_delete_in_the_ui(rt: Runtime) -> None:
    lan, minh, hoa = _client(rt, "lan"), _client(rt, "minh"), _client(rt, "hoa")
    page = lan.get("/events", params={"query": "source.ip:203.0.113.45", "from": "2026-12-07"}).text
    for name, shared in (("Quét từ 203.0.113.45", "1"), ("Riêng của Lan", "")):
        r = lan.post("/events/saved", data={"csrf_token": _csrf(page), "name": name, "query": "source.ip:203.0.113.45",
                                            "from": "2026-12-07", "to": "2026-12-07", "shared": shared}, follow_redirects=False)
        assert r.status_code == 303 and "query=source.ip%3A203.0.113.45" in r.headers["location"]
    mine = lan.get("/events").text
    assert _saved_names(mine) == ["Quét từ 203.0.113.45", "Riêng của Lan"]
    # the same unit sees the shared one only, another unit sees none; only the owner may delete
    other = minh.get("/events").text
    assert _saved_names(other) == ["Quét từ 203.0.113.45"] and "saved-delete" not in other
    assert _saved_names(hoa.get("/events").text) == []
    link = re.search(r'class="saved-link" href="([^"]+)"', other)
    assert link
    opened = minh.get(unescape(link.group(1))).text
    assert 'id="event-total">6 sự kiện' in opened and 'value="source.ip:203.0.113.45"' in opened
    shared_id = rt.saved_searches.visible("minh", "SO")[0].id
    refused = minh.post(f"/events/saved/{shared_id}/delete", data={"csrf_token": _csrf(other)},
                        headers={"Accept": "text/html"})
    assert refused.status_code == 404
    forged = lan.post(f"/events/saved/{shared_id}/delete", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    gone = lan.post(f"/events/saved/{shared_id}/delete", data={"csrf_token": _csrf(mine)}, follow_redirects=False)
    assert gone.status_code == 303
    assert _saved_names(minh.get("/events").text) == []
    actions = [(e.action, e.actor, e.target) for e in rt.store.list_audit(limit=50).items if "saved_search" in e.action]
    assert ("saved_search.delete", "session:lan", f"saved_search:{shared_id}") in actions
    assert sum(1 for a in actions if a[0] == "saved_search.create") == 2


def test_a_search_that_cannot_run_is_refused_when_saved(rt: Runtime) -> None:
    lan = _client(rt, "lan")
    page = lan.get("/events").text
    r = lan.post("/events/saved", data={"csrf_token": _csrf(page), "name": "hỏng", "query": "user.name:("},
                 headers={"Accept": "text/html"})
    assert r.status_code == 422 and "Không đọc được câu tìm kiếm" in r.text
    empty = lan.post("/events/saved", data={"csrf_token": _csrf(page), "name": "  ", "query": "x"},
                     headers={"Accept": "text/html"})
    assert empty.status_code == 422 and "Tìm kiếm đã lưu cần có tên dài từ 1 đến 120 ký tự." in empty.text
    assert rt.saved_searches.visible("lan", "SO") == []


def test_saved_search_api_round_trip(rt: Runtime) -> None:
    token = rt.identity.create_token(role="analyst", unit="SO", name="bot")
    client = TestClient(create_app(rt))
    auth = {"Authorization": f"Bearer {token}"}
    made = client.post("/api/v1/saved-searches", headers=auth,
                       json={"name": "IP xấu", "query": "source.ip:203.0.113.45", "from": "2026-12-07", "shared": True})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["owner"] == "token:bot" and body["unit"] == "SO" and body["from"] == "2026-12-07"
    listed = client.get("/api/v1/saved-searches", headers=auth).json()
    assert [s["name"] for s in listed["items"]] == ["IP xấu"]
    assert client.post("/api/v1/saved-searches", headers=auth, json={"name": "x", "query": "a:("}).status_code == 400
    assert client.delete(f"/api/v1/saved-searches/{body['id']}", headers=auth).status_code == 204
    assert client.delete(f"/api/v1/saved-searches/{body['id']}", headers=auth).status_code == 404
    assert client.get("/api/v1/saved-searches", headers=auth).json()["total"] == 0


def test_histogram_bars_carry_their_local_bounds_for_zooming(rt: Runtime) -> None:
    lan = _client(rt, "lan")
    page = lan.get("/events", params={"from": "2026-12-07T07:00", "to": "2026-12-07T13:00"}).text
    bounds = json.loads(unescape(re.search(r"data-bounds='([^']+)'", page).group(1)))  # type: ignore[union-attr]
    assert [b[1] for b in bounds] == [f"2026-12-07T{h:02d}:00" for h in range(7, 13)]
    assert bounds[-1][2] == "2026-12-07T13:00" and page.count('class="slot"') == 6
    # the zoom form's bounds are the same instants: 09:00-11:00 local is 02:00-04:00 UTC, events e2 and e3
    zoomed = lan.get("/events", params={"from": bounds[2][1], "to": bounds[3][2]}).text
    assert 'id="event-total">2 sự kiện' in zoomed
    assert 'type="datetime-local" name="from" id="d-from" value="2026-12-07T09:00"' in zoomed
