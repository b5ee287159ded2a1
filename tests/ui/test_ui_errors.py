"""Errors in the web UI speak the reader's language: server messages through the catalogs, HTML error pages."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Level, fingerprint
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "errors-password-123"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="errors-secret-0123456789", secure_cookies=False)))
    now = datetime.now(UTC)
    alert = Alert(fingerprint=fingerprint("r", "h"), rule_id="r", rule_title="T", level=Level.HIGH, severity="high",
                  host="h", first_seen=now, last_seen=now)
    rt.store.put_alert(alert)
    UserStore(rt.control).add("ana", PASSWORD, role="analyst")
    with TestClient(create_app(rt)) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token
        c.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)})
        yield c, alert.id
    rt.close()


def _close_without_reason(client: Any, alert_id: str) -> Any:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/alerts/{alert_id}").text)
    assert csrf
    return client.post(f"/alerts/{alert_id}/update", data={"csrf_token": csrf.group(1), "status": "resolved"},
                       headers=HTML)


def test_a_triage_refusal_is_in_the_readers_language(ui: tuple[Any, str]) -> None:
    client, alert_id = ui
    r = _close_without_reason(client, alert_id)
    assert r.status_code == 422
    assert "Cần nhập lý do đóng để chuyển sang trạng thái “Đã xử lý”." in r.text
    assert "close_reason is required" not in r.text
    client.get("/lang/en")
    r = _close_without_reason(client, alert_id)
    assert "Give a close reason to set the status Resolved." in r.text


def test_unknown_url_is_a_localised_page_for_a_browser_and_json_for_the_api(ui: tuple[Any, str]) -> None:
    client, _alert_id = ui
    page = client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy (hoặc nằm ngoài đơn vị của bạn)." in page.text and '"detail"' not in page.text
    wrong_method = client.delete("/alerts", headers=HTML)
    assert wrong_method.status_code == 405 and "Địa chỉ này không nhận loại yêu cầu này." in wrong_method.text
    api = client.get("/api/v1/no-such-thing", headers=HTML)
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    assert client.get("/no/such/page").json() == {"detail": "Not Found"}  # a client that did not ask for HTML
    missing = client.get("/alerts/0123456789abcdef", headers=HTML)
    assert missing.status_code == 404 and "Không tìm thấy cảnh báo" in missing.text


def test_the_vietnamese_terms_follow_the_glossary() -> None:
    """The glossary's replaced terms appear in no Vietnamese msgstr (dashboards/i18n/GLOSSARY.md)."""
    from soclite.api.ui.i18n import catalog

    vi = catalog("vi")
    banned = ("Tác tử", "tác tử", "kiểm toán", "Đã chặn", "Không cô lập", "Người xử lý", "theo mức độ theo")
    offending = {msgid: text for msgid, text in vi.items() if any(term in text for term in banned)}
    assert not offending
    assert vi["Triage"] != vi["Handling"] != vi["resolved"] and vi["Assignee"] == "Người phụ trách"
    assert vi["Suppressed"] == "Đã loại trừ" and vi["isolation_none"] == "Chưa cô lập" and vi["Agent"] == "Agent"
    from soclite.reports.i18n import CATALOG

    report_vi = {key: text["vi"] for key, text in CATALOG.items()}
    assert not {key: text for key, text in report_vi.items() if any(term in text for term in banned)}
