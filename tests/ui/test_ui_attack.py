"""ATT&CK on the alert detail (names and links from the bundled STIX data) and the matrix of a period's alerts."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soclite import attack
from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Level, Unit, fingerprint
from soclite.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "attack-password-1"
LOCAL_0030 = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)  # 00:30 on 07/12 in the site's zone (UTC+07)


def test_names_come_from_the_bundled_stix_data() -> None:
    cat = attack.catalog()
    assert [t.id for t in cat.tactics][:3] == ["TA0043", "TA0042", "TA0001"]  # the matrix's column order
    assert len(cat.tactics) == 14 and len(cat.techniques) > 600
    mapping = attack.from_tags(["attack.execution", "attack.t1059.001", "attack.defense_evasion", "cve.2021-1"])
    assert [t.name for t in mapping.tactics] == ["Execution", "Defense Evasion"]
    (ps,) = mapping.techniques
    assert ps.full_name == "Command and Scripting Interpreter: PowerShell"
    assert ps.url == "https://attack.mitre.org/techniques/T1059/001"
    unknown = attack.from_tags(["attack.t9999"]).techniques[0]
    assert unknown.name == "T9999" and unknown.url.endswith("/T9999")
    # T1053 is in three tactics; a rule that names persistence puts it there only
    sched = attack.from_tags(["attack.persistence", "attack.t1053.005"])
    assert sched.columns(sched.techniques[0]) == ("persistence",)
    assert set(attack.from_tags(["attack.t1053.005"]).columns(sched.techniques[0])) == {
        "execution", "persistence", "privilege-escalation"}


def _alert(rule: str, title: str, tags: list[str], unit: str, at: datetime) -> Alert:
    return Alert(fingerprint=fingerprint(rule, unit, {"at": str(at)}), rule_id=rule, rule_title=title, level=Level.HIGH,
                 severity="high", host="ws-01", unit=unit, first_seen=at, last_seen=at, tags=tags)


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[Any, Runtime, list[Alert]]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="attack-secret-0123456789", secure_cookies=False)))
    rt.store.put_unit(Unit(code="SO", name="Sở Tài chính"))
    rt.store.put_unit(Unit(code="XA", name="UBND xã"))
    alerts = [
        _alert("ps", "Encoded PowerShell", ["attack.execution", "attack.t1059.001"], "SO", LOCAL_0030),
        _alert("ps", "Encoded PowerShell", ["attack.execution", "attack.t1059.001"], "SO", datetime(2026, 12, 7, 3, tzinfo=UTC)),
        _alert("ps", "Encoded PowerShell", ["attack.execution", "attack.t1059.001"], "XA", datetime(2026, 12, 7, 4, tzinfo=UTC)),
        _alert("task", "Scheduled task", ["attack.persistence", "attack.t1053.005"], "SO", datetime(2026, 12, 7, 5, tzinfo=UTC)),
        _alert("ps", "Encoded PowerShell", ["attack.execution", "attack.t1059.001"], "SO",
               datetime(2026, 12, 6, 16, 59, tzinfo=UTC)),  # 23:59 on 06/12 local: outside the 7th
        _alert("plain", "Untagged rule", [], "SO", datetime(2026, 12, 7, 6, tzinfo=UTC)),
    ]
    rt.store.put_alerts(alerts)
    UserStore(rt.control).add("ana", PASSWORD, role="analyst")
    UserStore(rt.control).add("so", PASSWORD, role="analyst", unit="SO")
    with TestClient(create_app(rt)) as c:
        yield c, rt, alerts
    rt.close()


def _login(client: Any, user: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)})


def _cells(page: str) -> dict[tuple[str, str], int]:
    out = {}
    for tactic, body in re.findall(r'data-tactic="([^"]+)">(.*?)</section>', page, re.S):
        for tech, count in re.findall(r'data-technique="([^"]+)">\s*<summary><span class="count">(\d+)', body):
            out[(tactic, tech)] = int(count)
    return out


def test_alert_detail_names_tactics_and_techniques_with_links(ui: tuple[Any, Runtime, list[Alert]]) -> None:
    client, _rt, alerts = ui
    _login(client, "ana")
    page = client.get(f"/alerts/{alerts[0].id}").text
    block = page[page.index('id="alert-attack"'):page.index("</dd>", page.index('id="alert-attack"'))]
    assert 'href="https://attack.mitre.org/tactics/TA0002"' in block and ">Thực thi</a>" in block
    assert ('href="https://attack.mitre.org/techniques/T1059/001"' in block
            and "Command and Scripting Interpreter: PowerShell" in block)
    client.get("/lang/en")
    assert ">Execution</a>" in client.get(f"/alerts/{alerts[0].id}").text


def test_matrix_counts_the_local_days_alerts_by_unit(ui: tuple[Any, Runtime, list[Alert]]) -> None:
    client, _rt, _alerts = ui
    _login(client, "ana")
    page = client.get("/attack", params={"from": "2026-12-07", "to": "2026-12-07"}).text
    # 00:30 local on the 7th counts, 23:59 on the 6th does not; both units for an unscoped analyst
    assert _cells(page) == {("execution", "T1059.001"): 3, ("persistence", "T1053.005"): 1}
    assert "Cảnh báo có luật không gắn kỹ thuật nào: 1." in page
    assert re.search(r'<h2><a href="https://attack.mitre.org/tactics/TA0002"[^>]*>Thực thi</a>', page)
    by_unit = client.get("/attack", params={"from": "2026-12-07", "to": "2026-12-07", "unit": "XA"}).text
    assert _cells(by_unit) == {("execution", "T1059.001"): 1}
    six = client.get("/attack", params={"from": "2026-12-06", "to": "2026-12-06"}).text
    assert _cells(six) == {("execution", "T1059.001"): 1}


def test_matrix_is_scoped_to_the_readers_unit(ui: tuple[Any, Runtime, list[Alert]]) -> None:
    client, _rt, _alerts = ui
    _login(client, "so")
    page = client.get("/attack", params={"from": "2026-12-07", "to": "2026-12-07"}).text
    assert _cells(page) == {("execution", "T1059.001"): 2, ("persistence", "T1053.005"): 1}
    outside = client.get("/attack", params={"from": "2026-12-07", "to": "2026-12-07", "unit": "XA"}).text
    assert _cells(outside) == {}


def test_events_around_the_alert_follow_the_chosen_window(ui: tuple[Any, Runtime, list[Alert]]) -> None:
    client, rt, alerts = ui
    from datetime import timedelta

    at = alerts[0].first_seen
    rt.store.write_events([{"@timestamp": (at + timedelta(minutes=m)).isoformat(), "event.id": f"near{m}",
                            "host.name": "ws-01", "soclite.unit": "SO", "event.original": f"{m} minutes after"}
                           for m in (10, 40, 200)])
    _login(client, "ana")

    def around(**params: str) -> list[str]:
        page = client.get(f"/alerts/{alerts[0].id}", params=params).text
        section = page[page.index('id="events-around"'):]
        return re.findall(r"<code>(\d+) minutes after</code>", section)

    assert around() == ["10"]  # ±15 minutes by default
    assert sorted(around(window="60"), key=int) == ["10", "40"]
    assert sorted(around(window="240"), key=int) == ["10", "40", "200"]
    assert around(window="7") == ["10"]  # not a choice: the default
    # no process event among the matched ones: the tree says so instead of guessing
    assert "không phải sự kiện tiến trình" in client.get(f"/alerts/{alerts[0].id}").text
