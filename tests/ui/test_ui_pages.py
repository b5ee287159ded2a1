"""Server-rendered pages without a browser: catalogs complete, every page renders for every role."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir

from soclite.api.app import create_app
from soclite.api.ui.i18n import I18N_DIR, catalog, translator
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Host, HostType, Level, Unit, fingerprint
from soclite.runtime import Runtime
from tests.ui.forms import login_as

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "page-test-password"
REPO_ROOT = Path(__file__).resolve().parents[2]


def template_msgids() -> set[str]:
    method_map = [("dashboards/templates/**.html", "jinja2"), ("api/ui/**.py", "python")]
    ids = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(REPO_ROOT), method_map=method_map):
        if isinstance(message, str):
            ids.add(message)
    return ids


def test_every_ui_string_has_a_vietnamese_translation() -> None:
    ids = template_msgids()
    assert len(ids) > 100
    vi = catalog("vi")
    missing = sorted(i for i in ids if i not in vi)
    assert not missing, f"untranslated in {I18N_DIR}/vi: {missing[:10]}"
    # dynamic ids (statuses, roles, SLA states) exist in both languages
    for dynamic in ("new", "false_positive", "sla_overdue", "isolation_isolated", "analyst", "workstation"):
        assert dynamic in vi and dynamic in catalog("en")
    assert translator("vi")("Alerts") == "Cảnh báo" and translator("en")("Alerts") == "Alerts"
    assert translator("vi")("last %(days)s days", days=7) == "7 ngày gần nhất"


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[Any, Runtime, str]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="pages-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO", name="Sở"))
    # with an enrolled agent: isolating an agentless host is refused since issue 16 (test_ui_response.py)
    rt.store.put_host(Host(id="ws1", name="WS1", type=HostType.WORKSTATION, unit="SO", agent_id="agent-ws1"))
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    alert = Alert(fingerprint=fingerprint("r", "ws1"), rule_id="r", rule_title="Test <script>alert(1)</script>",
                  level=Level.HIGH, severity="high", host="ws1", unit="SO", first_seen=now, last_seen=now)
    rt.store.put_alert(alert)
    for role in ("admin", "analyst", "viewer", "auditor"):
        UserStore(rt.control).add(role, PASSWORD, role=role)
    with TestClient(create_app(rt)) as client:
        yield client, rt, alert.id
    rt.close()


def login(client: Any, user: str) -> None:
    login_as(client, user, PASSWORD)


@pytest.mark.parametrize("role", ["admin", "analyst", "viewer", "auditor"])
def test_pages_render_per_role(role: str, app_client: tuple[Any, Runtime, str]) -> None:
    client, _rt, alert_id = app_client
    login(client, role)
    for path in ("/", "/alerts", "/alerts?severity=high&status=open", "/alerts/rows", f"/alerts/{alert_id}",
                 "/hosts", "/rules", "/reports", "/actions"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert "<script>alert(1)</script>" not in r.text  # escaped
    audit = client.get("/audit")
    assert audit.status_code == (200 if role in ("admin", "auditor") else 403)
    detail = client.get(f"/alerts/{alert_id}").text
    assert ('id="isolate-host"' in detail) == (role == "admin")
    assert ('id="status-form"' in detail) == (role in ("admin", "analyst"))
    assert client.get("/alerts/doesnotexist").status_code == 404


def test_admin_isolate_from_ui_queues_an_action(app_client: tuple[Any, Runtime, str]) -> None:
    # Every server process has its outbox (Runtime.build opens it): the old "no outbox: 503" page is gone,
    # and the form's request is a queued isolate_host action; since issue 16 the UI's request waits for an
    # admin's approval (response.ui_isolation_requires_approval) and the host says so (was "requested").
    client, rt, alert_id = app_client
    login(client, "admin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/alerts/{alert_id}").text)
    assert csrf
    r = client.post("/hosts/ws1/isolate", data={"csrf_token": csrf.group(1), "reason": "test"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert rt.store.get_host("ws1").isolation == "awaiting_approval"
    actions = [a for a in rt.outbox.list_actions() if a.action == "isolate_host"]
    assert [a.params["host_id"] for a in actions] == ["ws1"]


def test_login_redirect_is_local_only(app_client: tuple[Any, Runtime, str]) -> None:
    client, _rt, _id = app_client
    page = client.get("/login?next=https://evil.example/")
    assert '<input type="hidden" name="next" value="/">' in page.text
    r = client.get("/lang/en?next=//evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/"


def test_overview_shows_the_journal_lag_of_each_consumer(app_client: tuple[Any, Runtime, str], tmp_path: Path) -> None:
    from soclite.store.journal import Journal

    client, rt, _id = app_client
    rt.journal = Journal(tmp_path / "journal.db", 64 * 1024 * 1024)
    rt.journal.register("detection", "storage")
    rt.journal.append(None, [{"message": f"m{i}"} for i in range(1234)])
    rt.journal.commit("detection", rt.journal.last_offset())
    rt.settings.journal.lag_degraded = 1000
    login(client, "viewer")
    page = client.get("/").text
    panel = page[page.index('id="journal-lag"'):]
    panel = panel[: panel.index("</section>")]
    assert "Độ trễ xử lý" in panel
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"r\">([^<]+)</td><td>(.*?)</td></tr>", panel)
    assert [(name, state.replace('<span class="sev-high">', "").replace("</span>", "")) for name, _n, state in rows] == [
        ("Phát hiện (cảnh báo)", "Kịp thời"), ("Lưu trữ sự kiện (tra cứu)", "Đang chậm")]
    assert rows[0][1] == "0" and rows[1][1].replace(".", "").replace(",", "").replace("\u00a0", "") == "1234"
