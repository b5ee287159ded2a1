"""The rules page's detection health in a real browser (chromium via Playwright): an admin filters
the rules by state in Vietnamese, then in English. A real engine saw the events; analysts' closings
went through the triage repository the API uses."""

from __future__ import annotations

import re
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.control.triage import AlertPatch
from soclite.correlator.engine import Engine
from soclite.models import Unit, new_id
from soclite.runtime import Runtime
from tests.correlator.test_health import BROKEN, PS, RENAMED, RULES
from tests.ui.conftest import _free_port
from tests.ui.test_ui_browser import browser, shot  # noqa: F401  (the module-scoped chromium fixture)

pytestmark = pytest.mark.browser
PASSWORD = "rules-admin-password-1"
FAILED_ID = "11111111-0000-4000-8000-00000000000f"


@pytest.fixture(scope="module")
def health_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("rule-health")
    rules = data / "rules"
    rules.mkdir()
    (rules / "rules.yml").write_text(textwrap.dedent(RULES), encoding="utf-8")
    (rules / "broken.yml").write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    settings = Settings(environment="test", data_dir=data,
                        auth=AuthSettings(secret_key="rules-ui-secret-0123456789", secure_cookies=False))  # fmt: skip
    settings.correlator.rules = [rules]
    runtime = Runtime.build(settings)
    runtime.engine = Engine.from_settings(settings, state_dir=Path(data) / "correlator")
    runtime.store.put_unit(Unit(code="SO", name="Sở"))
    UserStore(runtime.control).add("admin", PASSWORD, role="admin")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    alerts = [a for i in range(6) for a in runtime.engine.process({
        "@timestamp": now, "event.id": new_id(), "host.name": f"ws{i}", "soclite.unit": "SO",
        "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "CommandLine": "powershell -enc AA",
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"})]  # fmt: skip
    runtime.store.put_alerts(alerts)
    for i, alert in enumerate(alerts):
        patch = AlertPatch(status="false_positive" if i < 5 else "resolved", close_reason="checked")
        runtime.triage.update_alert(alert.id, patch, None, name="lan", actor="user:lan")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    runtime.close()


def test_rules_page_filters_by_health_state(browser: Any, health_server: str) -> None:  # noqa: F811
    page = browser.new_context(viewport={"width": 1500, "height": 900}, locale="vi-VN").new_page()
    page.goto(f"{health_server}/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()
    page.goto(f"{health_server}/rules")
    assert page.locator("tr[data-rule]").count() == 4  # three loaded rules and the one that failed
    page.click("#rule-states a[data-state=noisy]")
    page.wait_for_url(re.compile(r".*state=noisy$"))
    rows = page.locator("tr[data-rule]")
    assert rows.count() == 1 and rows.first.get_attribute("data-rule") == PS
    assert "Gây nhiễu" in rows.first.inner_text() and "83%" in rows.first.inner_text()  # 5 of 6 closed as FP
    shot(page, "rules-noisy")
    page.click("#rule-states a[data-state=broken]")
    page.wait_for_url(re.compile(r".*state=broken$"))
    assert sorted(r.get_attribute("data-rule") for r in page.locator("tr[data-rule]").all()) == sorted([RENAMED, FAILED_ID])
    assert "OriginalFileName" in page.locator(f"tr[data-rule='{RENAMED}']").inner_text()
    assert "Không nạp được" in page.locator(f"tr[data-rule='{FAILED_ID}']").inner_text()
    page.click("#lang-en")
    page.wait_for_load_state()
    assert "Fields no input has produced" in page.locator(f"tr[data-rule='{RENAMED}']").inner_text()
    shot(page, "rules-broken-en")
