"""In chromium: a user's own notification settings (quiet hours, a webhook rule whose signing secret is shown
once, listed, then deleted), and the hosts page's "Scan for malware" form reaching the response queue.

The live server runs no playbook worker, so the scan is first "not sent" in the queue; the test then runs
the worker once, fetches the command as the agent does, and moves the clock past the scan deadline: the
queue shows "expired" with the reason (an agent that died for good mid-scan)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from soclite.playbooks.worker import Worker
from tests.ui.conftest import PASSWORD
from tests.ui.test_ui_browser import browser, shot  # noqa: F401 - the module-scoped browser fixture

pytestmark = pytest.mark.browser


def logged_in(browser: Any, live: Any) -> tuple[Any, Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.fill("#username", "lan")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()
    return context, page


def test_notification_settings_quiet_hours_and_a_rule_created_listed_deleted(browser: Any, live: Any) -> None:  # noqa: F811
    context, page = logged_in(browser, live)
    page.goto(f"{live.url}/account/notifications")
    page.fill("#quiet-start", "22:00")
    page.fill("#quiet-end", "06:30")
    page.select_option("#quiet-mode", "hold")
    page.fill("#rate-limit", "12")
    page.click("#notify-settings-save")
    page.wait_for_url(re.compile(r".*/account/notifications$"))
    assert page.input_value("#quiet-start") == "22:00" and page.input_value("#quiet-end") == "06:30"
    assert page.input_value("#rate-limit") == "12"

    page.fill("#rule-name", "SMS trực ban đêm")
    page.select_option("#rule-severity", "critical")
    page.fill("#rule-patterns", "*ransom*")
    page.select_option("#rule-channel", "webhook")
    page.fill("#rule-target", "https://sms.tinh.gov.vn/hook")
    page.click("#rule-add")
    page.wait_for_load_state()
    secret = page.locator("#signing-secret").inner_text()  # shown once, on the answer to the form
    assert secret.startswith("whsec_")
    row = page.locator("#notify-rules tbody tr", has_text="SMS trực ban đêm")
    assert row.count() == 1 and "https://sms.tinh.gov.vn/hook" in row.inner_text() and "*ransom*" in row.inner_text()
    shot(page, "50-notify-settings")

    page.goto(f"{live.url}/account/notifications")  # the page reached again does not show the secret
    assert page.locator("#signing-secret").count() == 0 and secret not in page.content()
    user = live.runtime.users.get_by_name("lan")
    prefs = live.runtime.notification_rules.prefs(user.id)
    assert (prefs.quiet_start, prefs.quiet_end, prefs.quiet_mode, prefs.rate_limit_per_hour) == (
        "22:00", "06:30", "hold", 12)  # fmt: skip
    page.locator("#notify-rules tbody tr", has_text="SMS trực ban đêm").locator("button.rule-delete").click()
    page.wait_for_url(re.compile(r".*/account/notifications$"))
    assert page.locator("#notify-rules tbody tr", has_text="SMS trực ban đêm").count() == 0
    assert live.runtime.notification_rules.rules(user.id) == []
    actions = [e.action for e in live.runtime.store.iter_audit() if e.target == "user:lan"]
    assert {"notification_settings.update", "notification_rule.create", "notification_rule.delete"} <= set(actions)
    context.close()


def test_the_hosts_scan_form_reaches_the_response_queue(browser: Any, live: Any) -> None:  # noqa: F811
    # an enrolled agent for a host of unit SO, as a real agent enrols (it need not run for this test)
    token = live.runtime.agents.create_enroll_token(unit="SO")
    with httpx.Client(base_url=live.url, timeout=30) as api:
        enrolled = api.post("/api/v1/agents/enroll", json={"enroll_token": token, "hostname": "so-quet01"})
        assert enrolled.status_code in (200, 201), enrolled.text
        key = enrolled.json()["api_key"]
        beat = api.post("/api/v1/agents/heartbeat", headers={"Authorization": f"Bearer {key}"},
                        json={"hostname": "so-quet01", "agent_version": "t"})  # fmt: skip
        assert beat.status_code == 200, beat.text
    context, page = logged_in(browser, live)
    page.goto(f"{live.url}/hosts")
    row = page.locator("tr", has_text="so-quet01")
    row.locator("details.scan-host summary").click()
    row.locator("textarea[name=paths]").fill("/home\n/tmp")
    row.locator("button.scan-submit").click()
    page.wait_for_url(re.compile(r".*/actions$"))
    [record] = [a for a in live.runtime.outbox.list_actions(action="scan_host") if a.params["host_id"] == "so-quet01"]
    assert record.params["paths"] == ["/home", "/tmp"] and record.requested_by == "lan"
    queued = page.locator("tr", has=page.locator(".scan-state")).filter(has_text="so-quet01")
    assert queued.count() == 1
    assert queued.locator(".scan-state").inner_text() in ("Quét: chưa gửi", "Quét: đang chờ agent")
    shot(page, "51-scan-queued")

    # the agent fetches it and then dies for good: past response.scan_timeout_minutes the queue says so
    Worker(live.runtime).run_once()
    with httpx.Client(base_url=live.url, timeout=30) as api:
        fetched = api.get("/api/v1/agents/commands", headers={"Authorization": f"Bearer {key}"}).json()["items"]
    assert [c["kind"] for c in fetched] == ["scan"]
    page.reload()
    assert queued.locator(".scan-state").inner_text() == "Quét: đang quét"
    command = live.runtime.commands.get(fetched[0]["id"])
    assert command.delivered_at is not None
    timeout = timedelta(minutes=live.runtime.settings.response.scan_timeout_minutes)
    live.runtime.commands.expire_stalled_scans(timeout, now=command.delivered_at + timeout + timedelta(seconds=1))
    page.reload()
    assert "scan-expired" in str(queued.locator(".scan-state").get_attribute("class"))
    assert "no result from the agent" in queued.locator(".scan-reason").inner_text()
    shot(page, "52-scan-expired")
    context.close()
