"""The pipeline with its real parts: journal → Sigma engine → SQLite store, grouping and replay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.journal import Journal
from collectors.normalize import normalize
from correlator.engine import Engine
from soclite.config import Settings, load_settings
from soclite.models import AlertStatus
from soclite.pipeline import CONSUMER, Pipeline
from soclite.runtime import Runtime
from soclite.store import AlertQuery, EventQuery


@pytest.fixture
def runtime(tmp_path: Path):
    settings: Settings = load_settings(environment="test", data_dir=tmp_path)
    rt = Runtime.build(settings)
    rt.journal = Journal(tmp_path / "journal.db", settings.journal.max_bytes, settings.journal.warn_ratio)
    rt.engine = Engine.from_settings(settings)
    yield rt
    rt.journal.close()
    rt.close()


def _lines(lines: list[str], host: str = "srv-portal-01") -> list[dict]:
    received = datetime.now(UTC)
    return [
        normalize({"message": line, "host.name": host}, received=received, input="test", unit="ttdl",
                  agent_id=None, default_tz="Asia/Ho_Chi_Minh")
        for line in lines
    ]


def _clamav(n: int) -> list[str]:
    return [f"<38>Aug  1 10:00:{n:02d} ws-01 clamd[812]: /home/a/f{n}.exe: Win.Trojan.Agent-{n} FOUND"
            for n in range(n)]


def test_events_and_alerts_reach_the_store(runtime: Runtime) -> None:
    events = _lines(_clamav(3), host="ws-01")
    runtime.journal.append("b1", events)
    pipeline = Pipeline(runtime)
    assert pipeline.run_once() == 3
    assert runtime.journal.lag(CONSUMER) == 0
    assert runtime.store.count_events(EventQuery()) == 3
    page = runtime.store.query_alerts(AlertQuery(rule_id=None))
    assert page.total == 1, [a.rule_title for a in page.items]
    alert = page.items[0]
    assert alert.severity == "high" and alert.host == "ws-01" and alert.unit == "ttdl"
    # Three detections of one rule on one host within the window: one alert, counted three times.
    assert alert.count == 3
    assert len(alert.event_ids) == 3
    # The host appeared in the inventory from its events.
    assert runtime.store.find_host("ws-01") is not None


def test_replay_after_crash_before_commit_adds_nothing(runtime: Runtime) -> None:
    events = _lines(_clamav(2), host="ws-02")
    runtime.journal.append("b1", events)
    first = Pipeline(runtime)
    rows = runtime.journal.read(CONSUMER, 100)
    first.process([event for _, event in rows])  # written, then "crash" before the commit
    before = runtime.store.query_alerts(AlertQuery()).items
    second = Pipeline(runtime)  # a restarted process replays the same journal rows
    assert second.run_once() == 2
    after = runtime.store.query_alerts(AlertQuery()).items
    assert [a.id for a in after] == [a.id for a in before]
    assert after[0].count == 2
    assert runtime.store.count_events(EventQuery()) == 2


def test_a_closed_alert_is_not_reopened_by_a_repeat(runtime: Runtime) -> None:
    runtime.journal.append("b1", _lines(_clamav(1), host="ws-03"))
    pipeline = Pipeline(runtime)
    pipeline.run_once()
    alert = runtime.store.query_alerts(AlertQuery()).items[0]
    alert.status = AlertStatus.RESOLVED
    alert.close_reason = "reimaged"
    runtime.store.put_alert(alert)
    runtime.journal.append("b2", _lines(_clamav(2)[1:], host="ws-03"))
    pipeline.run_once()
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert len(alerts) == 2
    assert {a.status for a in alerts} == {AlertStatus.RESOLVED, AlertStatus.NEW}


def test_unit_comes_from_the_host_inventory_when_the_event_has_none(runtime: Runtime) -> None:
    from soclite.models import Host

    runtime.store.put_host(Host(id="srv-ketoan-01", name="srv-ketoan-01", unit="so-tc"))
    received = datetime.now(UTC)
    line = "<38>Aug  1 10:00:00 srv-ketoan-01 clamd[1]: /tmp/x: Win.Trojan.X-1 FOUND"
    event = normalize({"message": line}, received=received, input="syslog-udp", unit=None, agent_id=None,
                      default_tz="Asia/Ho_Chi_Minh")
    runtime.journal.append(None, [event])
    Pipeline(runtime).run_once()
    alert = runtime.store.query_alerts(AlertQuery()).items[0]
    assert alert.unit == "so-tc"
    assert runtime.store.query_alerts(AlertQuery(units=frozenset({"ttdl"}))).total == 0
