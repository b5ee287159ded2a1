"""Layout in a real browser (chromium via Playwright): the Vietnamese navigation on one line at 1280 px,
and the queue, an alert and its triage usable on a phone (390 px wide)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from soclite.control.identity import UserStore

from .test_ui_browser import ARGS, CHROMIUM, shot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed (make test installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def _login(page: Any, url: str, user: str, password: str, next_path: str) -> None:
    page.goto(f"{url}/login?next={next_path}")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_load_state()


def test_vietnamese_navigation_stays_on_one_line_at_1280px(chromium: Any, live: Any) -> None:
    UserStore(live.runtime.control).add("quan", "admin-password-12", role="admin", display_name="Trần Văn Quân")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    page = context.new_page()
    _login(page, live.url, "quan", "admin-password-12", "/alerts")
    links = page.locator("nav.nav a")
    assert links.count() == 12  # every page an admin sees: event search, ATT&CK, incidents (issue 17), the response queue, users and the audit log included
    tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}
    assert len(tops) == 1, f"navigation wraps: link tops {sorted(tops)}"
    header = page.locator("header.topbar").bounding_box()
    assert header["height"] < 60, header  # the bar itself does not wrap into a second row
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, "20-nav-1280-vi")
    context.close()


def test_queue_alert_and_triage_on_a_phone(chromium: Any, live: Any) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN", is_mobile=True,
                                   has_touch=True, device_scale_factor=2)
    page = context.new_page()
    _login(page, live.url, "lan", "analyst-password-1", "/alerts")
    page.wait_for_url(re.compile(r".*/alerts$"))
    # the page itself never scrolls sideways: only the table's own box does
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#queue-histogram svg").is_visible()
    shot(page, "21-phone-queue")
    link = page.locator("a.alert-link").first
    link.scroll_into_view_if_needed()
    link.tap()
    page.wait_for_url(re.compile(r".*/alerts/[0-9a-f]{32}$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    status = page.locator("#new-status")
    status.scroll_into_view_if_needed()
    box = page.locator("#save-status").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 30  # reachable, touch-sized
    status.select_option("acknowledged")
    with page.expect_navigation():
        page.locator("#save-status").tap()
    assert page.locator("#alert-status").inner_text() == "Đã tiếp nhận"
    shot(page, "22-phone-alert-triaged")
    context.close()
