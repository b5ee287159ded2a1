"""The web UI in a real browser: Debian's chromium driven by Playwright for Python.

An analyst logs in (Vietnamese by default), filters the queue, opens an alert,
changes its status, adds a comment, switches to English and back. Screenshots
go to test-artifacts/ui/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed (make test installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_analyst_triage_flow(browser: Any, live: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live.url}/alerts")
    assert "/login" in page.url  # not logged in: sent to the login page, keeping where we were going
    assert page.locator("h1").inner_text() == "Đăng nhập"
    page.fill("#username", "lan")
    page.fill("#password", "analyst-password-1")
    shot(page, "01-login")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/alerts$"))
    assert "Hàng đợi cảnh báo" in page.locator("h1").inner_text()
    assert page.locator("tbody#alert-rows tr").count() == 24
    shot(page, "02-queue")

    # Filter: high severity only (critical + high levels → 12 of the 24)
    page.select_option("#f-severity", "high")
    page.click("#apply-filters")
    page.wait_for_url(re.compile(r".*severity=high.*"))
    rows = page.locator("tbody#alert-rows tr")
    assert rows.count() == 12
    assert set(page.locator("tbody#alert-rows .badge").all_inner_texts()) == {"Cao"}
    shot(page, "03-queue-filtered")

    # Open the first alert
    title = page.locator("a.alert-link").first.inner_text()
    page.locator("a.alert-link").first.click()
    page.wait_for_url(re.compile(r".*/alerts/[0-9a-f]{32}$"))
    assert title in page.locator("h1").inner_text()
    assert page.locator("#alert-status").inner_text() == "Mới"
    shot(page, "04-alert")

    # Change status to "acknowledged" and assign to self
    page.select_option("#new-status", "acknowledged")
    page.fill("#assignee", "lan")
    page.click("#save-status")
    page.wait_for_load_state()
    assert page.locator("#alert-status").inner_text() == "Đã tiếp nhận"
    assert page.locator("#alert-assignee").inner_text() == "lan"

    # Add a comment (Vietnamese text round trip)
    page.fill("#comment", "Đã cô lập phiên đăng nhập, đang kiểm tra máy")
    page.click("#add-comment")
    page.wait_for_load_state()
    assert "Đã cô lập phiên đăng nhập, đang kiểm tra máy" in page.locator("#timeline").inner_text()
    shot(page, "05-alert-triaged")
    alert_id = page.url.rsplit("/", 1)[1]
    stored = live.runtime.store.get_alert(alert_id)
    assert stored.status == "acknowledged" and stored.assignee == "lan"

    # Switch to English and back
    page.click("#lang-en")
    page.wait_for_load_state()
    assert page.locator("#alert-status").inner_text() == "Acknowledged"
    assert "Timeline" in page.content()
    shot(page, "06-alert-english")
    page.click("#lang-vi")
    page.wait_for_load_state()
    assert page.locator("#alert-status").inner_text() == "Đã tiếp nhận"

    # The overview renders its charts
    page.goto(f"{live.url}/")
    assert page.locator("svg.chart").count() >= 2
    assert page.locator("svg.chart rect").count() > 5
    shot(page, "07-overview")
    for path in ("/hosts", "/rules", "/reports"):
        page.goto(f"{live.url}{path}")
        assert page.locator("h1").count() >= 1
        shot(page, "08" + path.replace("/", "-"))
    context.close()


def test_queue_refreshes_live(browser: Any, live: Any) -> None:
    """A new alert stored by the pipeline shows up in an open queue without a reload."""
    from datetime import UTC, datetime

    from soclite.models import Alert, Level, fingerprint

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/login?next=/alerts%3Frefresh%3D2")
    page.fill("#username", "lan")
    page.fill("#password", "analyst-password-1")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/alerts\?refresh=2$"))
    assert "Ransomware beacon" not in page.content()
    now = datetime.now(UTC)
    live.runtime.store.put_alert(Alert(
        fingerprint=fingerprint("live", "tc-ws01"), rule_id="live", rule_title="Ransomware beacon (live)",
        level=Level.CRITICAL, severity="high", host="tc-ws01", unit="SO", first_seen=now, last_seen=now))
    page.wait_for_selector("text=Ransomware beacon (live)", timeout=10_000)
    page.locator("tbody#alert-rows").scroll_into_view_if_needed()
    shot(page, "09-queue-live")
    context.close()


def test_case_from_two_alerts(browser: Any, live: Any) -> None:
    """Select two alerts in the queue, open a new case with them, work the case, switch language and back."""
    from soclite.api import cases

    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live.url}/login?next=/alerts")
    page.fill("#username", "lan")
    page.fill("#password", "analyst-password-1")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/alerts$"))
    assert page.locator("nav a[href='/cases']").inner_text() == "Vụ việc"
    boxes = page.locator("tbody#alert-rows input.sel")
    chosen = [boxes.nth(i).get_attribute("value") for i in (0, 1)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.select_option("#bulk-case", "new")
    page.fill("#bulk-case-title", "Nghi vấn đánh cắp thông tin đăng nhập")
    shot(page, "10-queue-add-to-case")
    page.click("#bulk-case-apply")
    page.wait_for_url(re.compile(r".*/cases/[0-9a-f]{12}$"))
    case_id = page.url.rsplit("/", 1)[1]
    assert page.locator("#case-title").inner_text() == "Nghi vấn đánh cắp thông tin đăng nhập"
    assert page.locator("#case-status").inner_text() == "Mở"
    links = page.locator("#case-alerts a.alert-link")
    assert links.count() == 2
    assert sorted(h.rsplit("/", 1)[1] for h in (links.nth(0).get_attribute("href"), links.nth(1).get_attribute("href"))
                  if h) == sorted(c for c in chosen if c)
    assert sorted(cases.get(live.runtime, case_id, None)["alert_ids"]) == sorted(c for c in chosen if c)

    page.select_option("#case-new-status", "in_progress")
    page.fill("#case-owner-input", "lan")
    page.click("#case-save")
    page.wait_for_load_state()
    assert page.locator("#case-status").inner_text() == "Đang xử lý"
    assert page.locator("#case-owner").inner_text() == "lan"
    assert cases.get(live.runtime, case_id, None)["status"] == "in_progress"
    shot(page, "11-case")

    page.click("nav a[href='/cases']")
    page.wait_for_url(re.compile(r".*/cases$"))
    row = page.locator("tr.case-row", has_text="Nghi vấn đánh cắp")
    assert row.count() == 1 and "Đang xử lý" in row.inner_text()
    shot(page, "12-cases")

    page.click("#lang-en")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("Cases")
    assert "In progress" in page.locator("tr.case-row", has_text="Nghi vấn đánh cắp").inner_text()
    shot(page, "13-cases-english")
    page.click("#lang-vi")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("Vụ việc")

    # the alert page shows the case it belongs to
    page.goto(f"{live.url}/alerts/{chosen[0]}")
    assert page.locator(f"#alert-cases a[href='/cases/{case_id}']").count() == 1
    page.locator("#alert-cases").screenshot(path=str(ARTIFACTS / "14-alert-cases.png"))
    context.close()


def test_pages_run_under_the_csp_and_log_out_everywhere(browser: Any, live: Any) -> None:
    """Issue 13 item 8: no page trips the Content-Security-Policy, app.js still runs under it (the
    confirm dialog of "log out everywhere" is app.js's), and item 4: that button ends the session."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{live.url}/login?next=/alerts")
    page.fill("#username", "lan")
    page.fill("#password", "analyst-password-1")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/alerts$"))
    for path in ("/", "/alerts", "/cases", "/hosts", "/rules", "/reports", "/alerts/no-such-alert"):
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("load")
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(f"{live.url}/alerts")
    page.click("#account-menu summary")  # the account's actions sit in its menu
    page.click("#logout-everywhere")
    page.wait_for_url(re.compile(r".*/login$"))
    assert dialogs and "mọi thiết bị" in dialogs[0]
    page.goto(f"{live.url}/alerts")
    assert "/login" in page.url
    assert violations == [], violations[:3]
    context.close()


def test_queue_refresh_waits_while_a_selection_is_in_progress(browser: Any, live: Any) -> None:
    """The "not during a selection" condition moved from an eval'd htmx trigger filter (blocked by
    the CSP) to an htmx:beforeRequest listener in app.js: a checked box still holds the refresh."""
    from datetime import UTC, datetime

    from soclite.models import Alert, Level, fingerprint

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/login?next=/alerts%3Frefresh%3D1")
    page.fill("#username", "lan")
    page.fill("#password", "analyst-password-1")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/alerts\?refresh=1$"))
    assert page.evaluate("() => Boolean(window.htmx)")  # the htmx path is the one under test
    box = page.locator("tbody#alert-rows input.sel").first
    box.check()
    now = datetime.now(UTC)
    live.runtime.store.put_alert(Alert(
        fingerprint=fingerprint("held", "tc-ws01"), rule_id="held", rule_title="Held back while selecting",
        level=Level.CRITICAL, severity="high", host="tc-ws01", unit="SO", first_seen=now, last_seen=now))
    page.wait_for_timeout(3500)  # three refresh periods
    assert "Held back while selecting" not in page.content() and box.is_checked()
    box.uncheck()
    page.wait_for_selector("text=Held back while selecting", timeout=10_000)
    context.close()
