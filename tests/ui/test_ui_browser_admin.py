"""Response and administration in a real browser (Debian's chromium through Playwright).

Isolation asked for in the UI and approved by a second admin under the two-person rule; isolating a
host without an agent refused; a user created, forced to change the one-time password, then disabled;
a report generated and downloaded; a failed e-mail seen in the notification centre and /health. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.control.identity import UserStore
from soclite.control.outbox import RetryPolicy
from soclite.playbooks.worker import Worker
from tests.ui.test_ui_browser import browser, shot  # noqa: F401 - the module-scoped browser fixture

pytestmark = pytest.mark.browser
ADMIN_PASSWORD = "admin-password-one"


@pytest.fixture(scope="module")
def admins(live: Any) -> Iterator[Any]:
    users = UserStore(live.runtime.control)
    users.add("hung", ADMIN_PASSWORD, role="admin", display_name="Trần Văn Hùng")
    users.add("mai", ADMIN_PASSWORD, role="admin", display_name="Lê Thị Mai")
    live.runtime.settings.response.two_person_rule = True
    # tc-ws01 has an enrolled agent; tc-srv01 is known from its logs only
    live.runtime.store.update_host("tc-ws01", {"agent_id": "agent-tc-ws01", "agent_version": "1.4.2"})
    yield live


def log_in(browser: Any, live: Any, user: str, password: str = ADMIN_PASSWORD) -> tuple[Any, Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN", accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of destructive forms
    page.goto(f"{live.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_load_state()
    return context, page


def test_isolation_requested_in_the_ui_is_approved_by_a_second_admin(browser: Any, admins: Any) -> None:  # noqa: F811
    live = admins
    context, page = log_in(browser, live, "hung")
    page.goto(f"{live.url}/hosts")
    row = page.locator("tr", has=page.locator("text=TC-WS01"))
    assert "Agent trực tuyến" in row.inner_text() or "Agent mất kết nối" in row.inner_text()
    messages: list[str] = []
    page.once("dialog", lambda dialog: messages.append(dialog.message))
    row.locator("button.isolate-host").click()
    page.wait_for_url(re.compile(r".*/hosts$"))
    assert messages and "TC-WS01" in messages[0]  # the confirm text, from the catalog, names the host
    assert "Chờ phê duyệt cô lập" in page.locator("tr", has=page.locator("text=TC-WS01")).inner_text()
    page.goto(f"{live.url}/actions")
    [action] = live.runtime.outbox.list_actions(action="isolate_host")
    mine = page.locator(f"#action-{action.id}")
    assert mine.locator("button.approve").count() == 0 and "cần quản trị viên khác duyệt" in mine.inner_text()
    shot(page, "20-queue-requester")
    context.close()

    context, page = log_in(browser, live, "mai")
    page.goto(f"{live.url}/actions")
    page.locator(f"#action-{action.id} button.approve").click()
    page.wait_for_load_state()
    assert live.runtime.outbox.get(action.id).approved_by == "mai"
    assert "mai" in page.locator("#section-running").inner_text()
    shot(page, "21-queue-approved")
    page.goto(f"{live.url}/hosts")
    assert "Đã yêu cầu cô lập" in page.locator("tr", has=page.locator("text=TC-WS01")).inner_text()
    context.close()


def test_isolating_a_host_without_an_agent_is_refused_in_the_browser(browser: Any, admins: Any) -> None:  # noqa: F811
    live = admins
    context, page = log_in(browser, live, "hung")
    page.goto(f"{live.url}/hosts")
    row = page.locator("tr", has=page.locator("text=TC-SRV01"))
    assert "Không có agent" in row.inner_text()
    row.locator("button.isolate-host").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "409"
    assert "chưa đăng ký agent" in page.content()
    shot(page, "22-isolate-no-agent")
    assert not [a for a in live.runtime.outbox.list_actions(action="isolate_host")
                if a.params["host_id"] == "tc-srv01"]  # fmt: skip
    context.close()


def test_user_created_must_change_password_then_is_disabled(browser: Any, admins: Any) -> None:  # noqa: F811
    live = admins
    context, page = log_in(browser, live, "hung")
    page.goto(f"{live.url}/admin/users")
    page.fill("#new-username", "thu")
    page.select_option("#new-role", "viewer")
    page.select_option("#new-unit", "SO")
    page.click("#create-user")
    page.wait_for_load_state()
    one_time = page.locator("#one-time-password").inner_text()
    shot(page, "23-user-created")

    user_context, user_page = log_in(browser, live, "thu", one_time)
    user_page.goto(f"{live.url}/alerts")
    assert user_page.url.endswith("/account/password")  # nothing else until the password is changed
    assert user_page.locator("#password-forced").count() == 1
    user_page.fill("#current", one_time)
    user_page.fill("#new", "thu-own-password-2026")
    user_page.fill("#confirm", "thu-own-password-2026")
    user_page.click("#change-password")
    user_page.wait_for_load_state()
    user_page.goto(f"{live.url}/alerts")
    assert user_page.url.endswith("/alerts")
    shot(user_page, "24-user-after-change")

    page.goto(f"{live.url}/admin/users")
    page.locator("#user-thu button.disable").click()
    page.wait_for_load_state()
    assert "Đã vô hiệu hóa" in page.locator("#user-thu").inner_text()
    user_page.goto(f"{live.url}/alerts")
    assert "/login" in user_page.url  # the disabled user's session is gone
    user_context.close()
    context.close()


def test_report_generated_and_downloaded_from_the_ui(browser: Any, admins: Any) -> None:  # noqa: F811
    live = admins
    context, page = log_in(browser, live, "lan", "analyst-password-1")
    page.goto(f"{live.url}/reports")
    page.fill("#report-period", "2026-01")
    page.select_option("#report-lang", "vi")
    page.click("#generate-report")
    page.wait_for_load_state()
    [report] = live.runtime.reports.recent()
    row = page.locator(f"#report-{report.id}")
    csv = next(f for f in report.files if f.format == "csv")
    assert csv.sha256 in row.inner_text() and "lan" in row.inner_text()
    shot(page, "25-report-archive")
    with page.expect_download() as info:
        row.locator("a.download-csv").click()
    path = info.value.path()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == csv.sha256
    context.close()


def test_a_failed_email_shows_in_the_notification_centre_and_health(browser: Any, admins: Any) -> None:  # noqa: F811
    """The demo's failure, seen: playbook e-mails to a mail server that refuses connections (a real closed
    port, the real outbox worker) turn into the header badge, the banner, a row in the notification centre
    and a degraded /health check with the reason. Last in the module: the server stays degraded after it."""
    live = admins
    context, page = log_in(browser, live, "hung")
    page.goto(f"{live.url}/alerts")
    assert page.locator("#health-banner").count() == 0
    before = int(page.locator("#notification-badge .count").inner_text())

    live.runtime.settings.smtp.host = "127.0.0.1"
    with socket.socket() as s:  # bound, never listening, closed: connecting is refused
        s.bind(("127.0.0.1", 0))
        live.runtime.settings.smtp.port = int(s.getsockname()[1])
    for i in range(3):
        live.runtime.outbox.submit("notify_email", {"to": [f"truc-ca{i}@example.vn"]}, idempotency_key=f"fail-{i}",
                                   requested_by="playbook:demo", retry=RetryPolicy(count=1))  # fmt: skip
    Worker(live.runtime).run_once()

    page.goto(f"{live.url}/alerts")
    assert page.locator("#health-banner").is_visible()
    assert int(page.locator("#notification-badge .count").inner_text()) > before
    page.click("#notification-badge")
    page.wait_for_url(re.compile(r".*/notifications$"))
    row = page.locator('tr[data-kind="action_dead"]')
    assert row.count() == 1
    text = row.inner_text()
    assert "notify_email" in text and "3" in text
    shot(page, "26-notification-centre-failed-email")

    health = page.request.get(f"{live.url}/health").json()
    assert health["overall"] == "degraded"
    check = health["checks"]["playbook_actions"]
    assert check["status"] == "degraded" and "refused" in check["reason"].lower() and "notify_email" in check["reason"]
    context.close()
