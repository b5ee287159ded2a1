"""An incident worked in a real browser (chromium): the initial notice's text edited on the page, sent to a
local SMTP receiver (aiosmtpd) through the outbox worker, the receipt shown with the text's SHA-256 and its
status turning to delivered, the stage done and its countdown stopped."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from soclite.api.app import create_app
from soclite.control.identity import UserStore
from soclite.control.incidents import IncidentCreate
from soclite.models import Unit
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.playbooks.support import build_runtime, make_settings, wait_for
from tests.reports.smtp import Inbox, free_port, start_smtp
from tests.ui.test_ui_browser import browser, shot  # noqa: F401 - the module-scoped browser fixture

pytestmark = pytest.mark.browser
PASSWORD = "incident-browser-password-1"


@pytest.fixture
def live_smtp(tmp_path: Path) -> Iterator[tuple[str, Runtime, Inbox]]:
    """A live server whose outbox worker delivers to a local SMTP receiver."""
    smtp_port = free_port()
    controller, inbox = start_smtp(smtp_port)
    runtime = build_runtime(make_settings(
        tmp_path, smtp={"host": "127.0.0.1", "port": smtp_port, "sender": "soc@tinh.gov.vn"},
        auth={"secret_key": "incident-browser-secret-0123456789", "secure_cookies": False},
        compliance={"incident_notify": ["a05@bocongan.gov.vn"]}))
    runtime.store.put_unit(Unit(code="SO", name="Sở Y tế"))
    UserStore(runtime.control).add("lan", PASSWORD, role="analyst", unit="SO")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30)
    worker = Worker(runtime, poll_seconds=0.05)
    worker.start()
    try:
        yield f"http://127.0.0.1:{port}", runtime, inbox
    finally:
        worker.stop()
        server.should_exit = True
        thread.join(10)
        runtime.close()
        controller.stop()


def test_notice_edited_sent_delivered_and_the_stage_done(browser: Any, live_smtp: Any) -> None:  # noqa: F811
    url, runtime, inbox = live_smtp
    incident = runtime.incidents.create(IncidentCreate(title="Mã độc tống tiền tại Sở Y tế", unit="SO"),
                                        actor="t", created_by="t", unit=None, scope=None)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#username", "lan")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()
    page.goto(f"{url}/incidents/{incident['id']}")
    assert page.locator("#deadline-initial_notice .countdown").count() == 1  # ticking before the notice is sent

    form = page.locator("#send-initial_notice")
    area = form.locator("textarea.notice-text")
    prefilled = area.input_value()
    assert "Mã độc tống tiền tại Sở Y tế" in prefilled
    assert form.locator("input.notice-to").input_value() == "a05@bocongan.gov.vn"
    area.fill(prefilled + "\nĐã cô lập máy chủ HIS lúc 09:15.")
    text = area.input_value()  # what the browser submits (its line endings normalised on submit)
    form.locator("input.notice-to").fill("a05@bocongan.gov.vn, lanh-dao@tinh.gov.vn")
    form.locator("button.notice-send").click()
    page.wait_for_load_state()

    wait_for(lambda: len(inbox.messages) >= 2, timeout=60)
    assert sorted(m["To"] for m in inbox.messages) == ["a05@bocongan.gov.vn", "lanh-dao@tinh.gov.vn"]
    assert "Đã cô lập máy chủ HIS lúc 09:15." in inbox.messages[0].get_content()
    sent = runtime.incidents.sends(incident["id"])
    digest = sent[0]["sha256"]
    # the hash is of the text as submitted: the edited text (the browser sends CRLF line ends)
    assert digest == hashlib.sha256(text.replace("\n", "\r\n").encode("utf-8")).hexdigest()

    # the worker marks each e-mail succeeded: the page shows it when reloaded (a goto to the same URL with its
    # #fragment would only scroll)
    deadline = time.monotonic() + 60
    while True:
        page.reload()
        statuses = page.locator("#receipts-initial_notice .receipt-status").all_inner_texts()
        if statuses == ["Đã gửi đến máy chủ thư"] * 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert statuses == ["Đã gửi đến máy chủ thư"] * 2
    receipts = page.locator("#receipts-initial_notice tr.receipt")
    assert receipts.count() == 2
    assert page.locator("#receipts-initial_notice .receipt-sha").all_inner_texts() == [digest, digest]
    assert "lan" in receipts.first.inner_text()
    assert page.locator("#stage-initial_notice .stage-done").count() == 1
    row = page.locator("#deadline-initial_notice")
    assert "Đã gửi đúng hạn" in row.inner_text() and row.locator(".countdown").count() == 0  # stopped
    assert page.locator("#deadline-report_72h .countdown").count() == 1  # the next one still runs
    shot(page, "50-incident-notice-sent")
    context.close()
