"""Detection health in /api/v1/rules, on the rules page and in the monthly report, over a real engine:
analysts close alerts through the API, and the engine sees real events."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from soclite.api.sessions import LANG_COOKIE
from soclite.control.identity import UserStore
from soclite.correlator.engine import Engine
from soclite.models import Unit, new_id
from soclite.runtime import Runtime
from tests.correlator.test_health import BROKEN, KEYWORD, PS, RENAMED, RULES

Client = Any
PASSWORD = "health-page-password"
PS_IMAGE = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(host: str, image: str = PS_IMAGE) -> dict[str, Any]:
    return {"@timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "event.id": new_id(),
            "host.name": host, "soclite.unit": "SO", "Image": image, "CommandLine": "powershell.exe -enc SQBFAFgA",
            "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}  # fmt: skip


@pytest.fixture
def engine(runtime: Runtime, tmp_path: Path) -> Iterator[Engine]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yml").write_text(textwrap.dedent(RULES), encoding="utf-8")
    (rules / "broken.yml").write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    runtime.settings.correlator.rules = [rules]
    eng = Engine.from_settings(runtime.settings, state_dir=tmp_path / "state")
    runtime.engine = eng
    runtime.store.put_unit(Unit(code="SO", name="Sở"))
    yield eng
    eng.close()


def fire_and_triage(engine: Engine, runtime: Runtime, client: Client, analyst: str) -> None:
    """Six alerts of the PowerShell rule: four closed as false positives, two resolved; one suppressed match."""
    alerts = [a for host in range(6) for a in engine.process(event(f"ws{host}"))]
    assert len(alerts) == 6
    runtime.store.put_alerts(alerts)
    for i, alert in enumerate(alerts):
        status = "false_positive" if i < 4 else "resolved"
        r = client.patch(f"/api/v1/alerts/{alert.id}", headers=auth(analyst),
                         json={"status": status, "close_reason": "checked with the unit"})  # fmt: skip
        assert r.status_code == 200, r.text
    engine.set_exceptions([("lab", textwrap.dedent("""
        title: lab
        logsource: {product: windows, category: process_creation}
        filter:
            rules: [11111111-0000-4000-8000-000000000001]
            selection: {host.name: lab1}
            condition: not selection
        """))])  # fmt: skip
    assert engine.process(event("lab1")) == []


def test_rules_list_has_health_and_state_filters(engine: Engine, runtime: Runtime, client: Client,
                                                 tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    before = {r["id"]: r for r in client.get("/api/v1/rules", headers=h).json()["items"]}
    assert before[PS]["states"] == ["never_fired"] and before[PS]["last_fired"] is None
    fire_and_triage(engine, runtime, client, tokens["analyst"])
    items = {r["id"]: r for r in client.get("/api/v1/rules", headers=h).json()["items"]}
    ps = items[PS]
    assert (ps["hits"], ps["suppressed"], ps["alerts"], ps["closed"], ps["false_positives"]) == (6, 1, 6, 6, 4)
    assert ps["false_positive_ratio"] == 0.667 and ps["states"] == ["noisy"] and ps["last_fired"]
    assert items[RENAMED]["unseen_fields"] == ["OriginalFileName"]
    assert items[RENAMED]["states"] == ["never_fired", "broken"]
    assert items[KEYWORD]["unseen_fields"] is None and items[KEYWORD]["states"] == ["never_fired"]
    failed = items["11111111-0000-4000-8000-00000000000f"]
    assert failed["kind"] == "failed" and "nosuchmodifier" in failed["load_error"] and "broken" in failed["states"]

    def only(state: str) -> list[str]:
        r = client.get("/api/v1/rules", headers=h, params={"state": state})
        assert r.status_code == 200, r.text
        return sorted(item["id"] for item in r.json()["items"])

    assert only("noisy") == [PS]
    assert only("broken") == sorted([RENAMED, "11111111-0000-4000-8000-00000000000f"])
    assert only("never_fired") == sorted([RENAMED, KEYWORD, "11111111-0000-4000-8000-00000000000f"])
    assert client.get("/api/v1/rules", headers=h, params={"state": "bogus"}).status_code == 422
    # a period without the alerts: no alerts, not noisy (the engine's counters stay)
    old = client.get("/api/v1/rules", headers=h, params={"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"})
    assert old.json()["items"][0]["alerts"] == 0 and "noisy" not in old.json()["items"][0]["states"]
    r = client.get("/api/v1/rules", headers=h, params={"from": "2020-02-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"})
    assert r.status_code == 422
    # the figures from the store follow the caller's units: HA sees none of SO's alerts
    ha = {r["id"]: r for r in client.get("/api/v1/rules", headers=auth(tokens["analyst_ha"])).json()["items"]}
    assert ha[PS]["alerts"] == 0 and ha[PS]["hits"] == 6


def test_rules_page_filters_by_state(engine: Engine, runtime: Runtime, client: Client, tokens: dict[str, str]) -> None:
    fire_and_triage(engine, runtime, client, tokens["analyst"])
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)},
                follow_redirects=False)  # fmt: skip
    for lang, label in (("vi", "Gây nhiễu"), ("en", "Noisy")):
        client.cookies.set(LANG_COOKIE, lang)
        html = client.get("/rules", params={"state": "noisy"}).text
        assert label in html
        assert re.findall(r'data-rule="([^"]+)"', html) == [PS]
    html = client.get("/rules", params={"state": "broken"}).text
    assert sorted(re.findall(r'data-rule="([^"]+)"', html)) == sorted([RENAMED, "11111111-0000-4000-8000-00000000000f"])
    assert "OriginalFileName" in html and "nosuchmodifier" in html
    assert client.get("/rules", params={"state": "bogus"}).status_code == 422


def test_monthly_report_lists_rules_needing_tuning(engine: Engine, runtime: Runtime, client: Client,
                                                   tokens: dict[str, str]) -> None:
    from soclite.reports.context import build_context
    from soclite.reports.periods import parse_period
    from soclite.reports.render import Header, render_html

    fire_and_triage(engine, runtime, client, tokens["analyst"])
    now = datetime.now(UTC)
    # this month in the site's zone: the alerts were raised just now
    period = parse_period(now.astimezone(ZoneInfo(runtime.settings.timezone)).strftime("%Y-%m"), runtime.settings.timezone)
    ctx = build_context(runtime.store, runtime.settings, period, engine=engine, now=now)
    assert ctx.rules_tuning is not None
    # noisy first, then broken ones by title
    assert [r.id for r in ctx.rules_tuning] == [PS, "11111111-0000-4000-8000-00000000000f", RENAMED]
    html = render_html(ctx, Header("1/BC", "Sở", "Bộ", "Tỉnh"), "vi")
    assert "Các luật cần tinh chỉnh" in html and f'data-key="tuning.{PS}">6<' in html
    assert build_context(runtime.store, runtime.settings, period, now=now).rules_tuning is None  # no engine here
