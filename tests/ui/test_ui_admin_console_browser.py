"""The Administration pages in a real browser (Debian's chromium through Playwright): through the one
"Quản trị" top link, an admin creates and revokes an API token, creates an agent enrolment token that the
real enrolment endpoint accepts, adds a unit and adds an information system. Screenshots: test-artifacts/ui/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from soclite.control.identity import UserStore
from tests.ui.test_ui_browser import browser, shot  # noqa: F401 - the module-scoped browser fixture

pytestmark = pytest.mark.browser
PASSWORD = "console-admin-password"


def test_admin_console_tokens_enrolment_units_and_systems(browser: Any, live: Any) -> None:  # noqa: F811
    UserStore(live.runtime.control).add("quang", PASSWORD, role="admin", display_name="Phạm Minh Quang")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of destructive forms
    try:
        page.goto(f"{live.url}/login")
        page.fill("#username", "quang")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_load_state()
        page.click("#nav-admin")
        page.wait_for_url(re.compile(r".*/admin$"))
        assert page.locator("h1").inner_text() == "Quản trị"

        # an API token: created (shown once), used, then revoked from its row
        page.click("#admin-subnav >> text=Token API")
        page.fill("#token-name", "báo cáo tự động")
        page.fill("#token-days", "7")
        page.click("#create-token")
        page.wait_for_selector("#new-token-secret")
        secret = page.locator("#new-token-secret").inner_text().strip()
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{live.url}/api/v1/alerts", headers=headers).status_code == 200
        token_id = secret.split("_", 2)[1]
        page.goto(f"{live.url}/account/tokens")
        row = page.locator(f"#own-tokens #token-{token_id}")
        assert "đang hiệu lực" in row.inner_text()
        row.locator("button.revoke").click()
        page.wait_for_load_state()
        assert "đã thu hồi" in page.locator(f"#own-tokens #token-{token_id}").inner_text()
        assert httpx.get(f"{live.url}/api/v1/alerts", headers=headers).status_code == 401

        # an enrolment token for the Sở Tài chính, accepted by the real enrolment endpoint
        page.click("#admin-subnav >> text=Agent")
        page.select_option("#enroll-unit", "SO")
        page.fill("#enroll-uses", "1")
        page.click("#create-enroll-token")
        page.wait_for_selector("#enroll-token-secret")
        enroll = page.locator("#enroll-token-secret").inner_text().strip()
        shot(page, "admin-agents")
        r = httpx.post(f"{live.url}/api/v1/agents/enroll", json={"enroll_token": enroll, "hostname": "tc-ws77",
                                                                 "agent_version": "2.0.1"})  # fmt: skip
        assert r.status_code == 200 and r.json()["unit"] == "SO"
        page.goto(f"{live.url}/admin/agents")
        assert "2.0.1" in page.locator(f"#agent-{r.json()['agent_id']}").inner_text()

        # a unit below the province, with its English name
        page.click("#admin-subnav >> text=Đơn vị")
        page.fill("#unit-code", "STP")
        page.fill("#unit-name", "Sở Tư pháp")
        page.fill("#unit-name-en", "Department of Justice")
        page.select_option("#unit-parent", "PROV")
        page.click("#save-unit")
        page.wait_for_url(re.compile(r".*/admin/units$"))
        assert "Sở Tư pháp" in page.locator("#unit-STP").inner_text()
        assert any(u.code == "STP" and u.parent == "PROV" for u in live.runtime.store.list_units())

        # an information system at level 3 covering a host of the Sở Tài chính
        page.click("#admin-subnav >> text=Hệ thống thông tin")
        page.fill("#system-name", "Hệ thống quản lý ngân sách")
        page.fill("#system-owner", "Sở Tài chính")
        page.fill("#system-operator", "Trung tâm CNTT")
        page.select_option("#system-level", "3")
        page.select_option("#system-approval", "approved")
        page.fill("#system-hosts", "tc-srv01")
        page.select_option("#system-unit", "SO")
        page.click("#save-system")
        page.wait_for_url(re.compile(r".*/admin/systems$"))
        row = page.locator("#system-list tr", has=page.locator("text=Hệ thống quản lý ngân sách"))
        assert "Đã phê duyệt" in row.inner_text() and row.locator(".system-level").inner_text() == "3"
        shot(page, "admin-systems")
        [system] = [s for s in live.runtime.systems.list_systems(None) if s["name"] == "Hệ thống quản lý ngân sách"]
        assert system["hosts"] == ["tc-srv01"] and system["unit"] == "SO"
    finally:
        context.close()
