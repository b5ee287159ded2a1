"""A case worked in a real browser (chromium): a comment, a task and an attachment, then the export."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from soclite.api import cases
from tests.ui.conftest import PASSWORD
from tests.ui.test_ui_browser import browser, shot  # noqa: F401 - the module-scoped browser fixture

pytestmark = pytest.mark.browser


def test_case_with_a_comment_a_task_and_an_attachment(browser: Any, live: Any, tmp_path: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.fill("#username", "lan")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()
    page.goto(f"{live.url}/cases")
    if page.locator("#new-case-form").is_hidden():  # the form sits in a closed <details>
        page.locator("details", has=page.locator("#new-case-form")).locator("summary").click()
    page.fill("#nc-title", "Máy trạm nhiễm mã độc")
    page.click("#nc-submit")
    page.wait_for_url(re.compile(r".*/cases/[0-9a-f]{12}$"))
    case_id = page.url.rsplit("/", 1)[1]

    page.fill("#case-comment", "Đã gọi cho quản trị viên của Sở")
    page.click("#case-comment-add")
    page.wait_for_load_state()
    page.fill("#task-title", "Thu thập ổ cứng")
    page.fill("#task-assignee", "lan")
    page.click("#task-add")
    page.wait_for_load_state()

    evidence = tmp_path / "nhật-ký-đăng-nhập.log"
    evidence.write_text("Failed password for root from 203.0.113.9\n" * 20)
    page.set_input_files("#attachment-file", str(evidence))
    page.click("#attachment-add")
    page.wait_for_url(re.compile(rf".*/cases/{case_id}(#.*)?$"))
    digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
    row = page.locator("#case-attachment-list tbody tr").first
    assert row.locator(".attachment-sha").inner_text() == digest
    assert "nhật-ký-đăng-nhập.log" in row.inner_text() and "text/plain" in row.inner_text()
    history = page.locator("#case-history").inner_text()
    assert "Đã gọi cho quản trị viên của Sở" in history and "Thu thập ổ cứng" in history
    assert "đính kèm tệp" in history
    assert "Thu thập ổ cứng" in page.locator("#case-tasks").inner_text()
    shot(page, "40-case-attachment")

    with page.expect_download() as download_info:
        row.locator("a.attachment-link").click()
    download = download_info.value
    saved = tmp_path / "downloaded.log"
    download.save_as(saved)
    assert saved.read_bytes() == evidence.read_bytes()

    page.click("#case-export")
    page.wait_for_load_state()
    assert digest in page.locator("#export-attachments").inner_text()
    assert "Thu thập ổ cứng" in page.locator("#export-tasks").inner_text()
    assert "Đã gọi cho quản trị viên của Sở" in page.locator("#export-history").inner_text()
    shot(page, "41-case-export")
    assert [a["sha256"] for a in cases.attachments(live.runtime, case_id, None)] == [digest]
    context.close()
