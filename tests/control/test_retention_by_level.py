"""Retention by security level, per host, on both stores (issue 17), with a controlled clock: a host of a
level-3 system (configured upward to 6 months) keeps its events and alerts for 6 months, a host in no
system only ``retention_days``; a unit listed by a system covers its hosts; whole days go as partitions
where no long-retention host has events; the archive runs first and its segments retire the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soclite.config import ComplianceSettings, Settings, StoreSettings
from soclite.control.retention import last_run, run_retention
from soclite.control.schema import open_control_db
from soclite.control.systems import InfoSystems, SystemCreate, apply_retention
from soclite.db import Database
from soclite.models import Alert, Host, HostType, Level, Unit, fingerprint, isoformat, severity_of
from soclite.store.archive import EventArchive, verify
from soclite.store.base import AlertQuery, EventQuery, Store
from tests.opensearch_node import OPENSEARCH_URL, require_real_node_in_ci
from tests.store.conftest import opensearch_settings

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
#: ages in days; 30 = retention_days; level 3 → 6 months back from 15 July = 15 January (181 days)
AGES = (10, 40, 100, 170, 200)
HOSTS = {"lvl3-srv": "u1", "plain-pc": "u1", "unit-pc": "u3"}  # unit-pc: its unit is in a level-3 system


def _settings(tmp_path: Path, store: StoreSettings | None = None) -> Settings:
    return Settings(environment="test", data_dir=tmp_path,
                    store=(store or StoreSettings()).model_copy(update={"retention_days": 30, "hot_days": 20}),
                    compliance=ComplianceSettings(retention_months_by_level={3: 6}))


def _event(host: str, age: int, n: int = 0) -> dict[str, Any]:
    return {"@timestamp": isoformat(NOW - timedelta(days=age, minutes=n)), "event.id": f"{host}-{age}-{n}",
            "host.name": host.upper(), "soclite.unit": HOSTS[host], "event.original": f"{host} {age}"}


def _alert(host: str, age: int) -> Alert:
    seen = NOW - timedelta(days=age)
    return Alert(id=f"al-{host}-{age}", fingerprint=fingerprint("r", host, {"a": age}), rule_id="r",
                 rule_title="R", level=Level.HIGH, severity=severity_of("high"), host=host, unit=HOSTS[host],
                 first_seen=seen, last_seen=seen, event_ids=[f"{host}-{age}-0"])


def _seed(store: Store, db: Database) -> InfoSystems:
    for code in ("u1", "u3"):
        store.put_unit(Unit(code=code, name=code))
    for host, unit in HOSTS.items():
        store.put_host(Host(id=host, name=host.upper(), type=HostType.SERVER, unit=unit))
    # a day (age 120) with only plain-pc's events: past its time, it goes as a whole partition
    store.write_events([_event(h, a) for h in HOSTS for a in AGES] + [_event("plain-pc", 120, 1)])
    store.put_alerts([_alert(h, a) for h in HOSTS for a in AGES])
    systems = InfoSystems(db, store)
    systems.create(SystemCreate(name="Cổng DVC", owner="o", operator="p", level=3, hosts=["lvl3-srv"]),
                   actor="t", unit=None, scope=None)
    systems.create(SystemCreate(name="Một cửa", owner="o", operator="p", level=3, units=["u3"]),
                   actor="t", unit=None, scope=None)
    systems.create(SystemCreate(name="Nội bộ", owner="o", operator="p", level=1, hosts=["plain-pc"]),
                   actor="t", unit=None, scope=None)  # level 1 sets no minimum
    return systems


def _event_ids(store: Store) -> set[str]:
    return {str(e["event.id"]) for e in store.query_events(EventQuery(limit=1000)).items}


def _alert_ids(store: Store) -> set[str]:
    return {a.id for a in store.query_alerts(AlertQuery(limit=1000)).items}


def _kept(ages_by_host: dict[str, tuple[int, ...]]) -> tuple[set[str], set[str]]:
    events = {f"{h}-{a}-0" for h, ages in ages_by_host.items() for a in ages}
    return events, {f"al-{h}-{a}" for h, ages in ages_by_host.items() for a in ages}


EXPECTED = {"lvl3-srv": (10, 40, 100, 170), "unit-pc": (10, 40, 100, 170), "plain-pc": (10,)}


@pytest.fixture(params=["sqlite", "opensearch"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Database, Settings]]:
    if request.param == "sqlite":
        from soclite.store.sqlite import SQLiteStore

        settings = _settings(tmp_path, StoreSettings(archive=False))
        store: Store = SQLiteStore.from_settings(settings)
    else:
        require_real_node_in_ci()
        if not OPENSEARCH_URL:
            pytest.skip("OPENSEARCH_URL is not set")
        from soclite.store.opensearch import OpenSearchStore

        settings = _settings(tmp_path, opensearch_settings(OPENSEARCH_URL, tmp_path).store)
        store = OpenSearchStore.from_settings(settings, refresh_events=True)
    store.open()
    db = open_control_db(tmp_path)
    yield store, db, settings
    if store.kind == "opensearch":
        store.drop_all()  # type: ignore[attr-defined]
    store.close()
    db.close()


def test_retention_deletes_exactly_what_has_passed_its_time(setup: tuple[Store, Database, Settings]) -> None:
    store, db, settings = setup
    systems = _seed(store, db)
    assert len(_event_ids(store)) == 16 and len(_alert_ids(store)) == 15
    result = apply_retention(systems, store, settings, NOW)
    events, alerts = _kept(EXPECTED)
    assert _event_ids(store) == events
    assert _alert_ids(store) == alerts
    assert result.events == 16 - len(events) and result.alerts == 15 - len(alerts)
    # age 120 (plain-pc only) and 200 (past every retention) go whole; 40/100/170 are trimmed by host
    assert result.days_dropped == 2 and result.days_trimmed == 3
    # a second run at the same time deletes nothing; 25 days later, plain-pc's last event and level 3's oldest day go too
    assert apply_retention(systems, store, settings, NOW).events == 0
    apply_retention(systems, store, settings, NOW + timedelta(days=25))
    assert _event_ids(store) == _kept({"lvl3-srv": (10, 40, 100), "unit-pc": (10, 40, 100)})[0]


def test_the_scheduled_run_archives_first_and_retires_segments(tmp_path: Path) -> None:
    from soclite.store.sqlite import SQLiteStore

    settings = _settings(tmp_path)  # archive on, hot_days 20
    store = SQLiteStore.from_settings(settings)
    store.open()
    db = open_control_db(tmp_path)
    try:
        systems = _seed(store, db)
        run = run_retention(db, systems, store, settings, NOW)
        # every day older than 20 days was archived before anything was deleted...
        assert sorted(run.archived_days) == sorted({(NOW - timedelta(days=a)).strftime("%Y%m%d")
                                                    for a in (40, 100, 120, 170, 200)})
        assert _event_ids(store) == _kept({h: (10,) for h in HOSTS})[0]
        # ...then the segments no host needs any more retired: 120 (plain-pc only) and 200; 40/100/170 kept
        assert run.segments_retired == sorted([(NOW - timedelta(days=a)).strftime("%Y%m%d") for a in (200, 120)])
        assert len(run.segments_kept) == 3
        archive = EventArchive(tmp_path / "archive")
        assert {s.day for s in archive.segments()} == set(run.archived_days)  # the manifest is untouched
        assert verify(tmp_path / "archive") == (5, [])  # retired segments do not break the chain
        (tmp_path / "archive" / f"events-{(NOW - timedelta(days=40)).strftime('%Y%m%d')}.jsonl.gz").unlink()
        assert any("segment missing" in p for p in verify(tmp_path / "archive")[1])  # an unrecorded loss still is
        # alerts follow the same plan in the hot store
        assert _alert_ids(store) == _kept(EXPECTED)[1]
        record = last_run(db)
        assert record is not None and record["status"] == "done" and record["segments_retired"] == 2
        assert record["alerts_deleted"] == 6 and record["archived_days"] == 5
        trail = [e for e in store.iter_audit() if e.action == "retention.run"]
        assert len(trail) == 1 and trail[0].actor == "system:retention" and trail[0].after is not None
        assert trail[0].after["events_deleted"] == 0  # the hot store held only 20 days after archiving
    finally:
        store.close()
        db.close()


def test_the_server_scheduler_runs_retention_daily(tmp_path: Path) -> None:
    from soclite.reports.scheduler import RETENTION_JOB, ReportScheduler
    from soclite.runtime import Runtime

    runtime = Runtime.build(_settings(tmp_path))
    scheduler = ReportScheduler(runtime)
    try:
        _seed(runtime.store, runtime.control)
        scheduler.start()
        when = scheduler.next_run_times()[RETENTION_JOB]
        assert when is not None and when.hour == 2 and when.minute == 17  # site time, store.retention_hour
        run = scheduler.run_retention(NOW)  # the job's body, on the controlled clock
        assert run is not None and len(run.archived_days) == 5
        assert _event_ids(runtime.store) == _kept({h: (10,) for h in HOSTS})[0]
        record = last_run(runtime.control)
        assert record is not None and record["id"] == run.id and record["status"] == "done"
    finally:
        scheduler.shutdown()
        runtime.close()


def test_health_shows_the_last_retention_run(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from soclite.api.app import create_app
    from soclite.config import AuthSettings
    from soclite.runtime import Runtime

    base = _settings(tmp_path)
    settings = Settings(environment="test", data_dir=tmp_path, store=base.store, compliance=base.compliance,
                        auth=AuthSettings(secret_key="test-secret-key-0123456789", secure_cookies=False))
    runtime = Runtime.build(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            assert client.get("/health").json()["retention"] is None
            systems = _seed(runtime.store, runtime.control)
            run_retention(runtime.control, systems, runtime.store, settings, NOW)
            shown = client.get("/health").json()["retention"]
            assert shown["status"] == "done" and shown["archived_days"] == 5 and shown["alerts_deleted"] == 6
    finally:
        runtime.close()


def test_the_opensearch_ism_backstop_never_deletes_before_the_longest_level(tmp_path: Path) -> None:
    from soclite.store import _os_mappings as m
    from soclite.store.opensearch import OpenSearchStore

    # retention_days 30, but level 5 keeps 12 months: ISM (host-blind, whole indices) waits for 12 months
    store = OpenSearchStore.from_settings(_settings(tmp_path, StoreSettings(kind="opensearch")))
    try:
        assert store.retention_days == 12 * 31
        policy = m.ism_policy("p", store.retention_days)
        assert "372d" in str(policy)
    finally:
        store.close()
