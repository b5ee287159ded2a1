"""SQLite-only behaviour: refusing a schema it does not know, and failed writes that leave nothing behind."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from soclite.config import Settings
from soclite.errors import SchemaError, StoreError
from soclite.models import isoformat
from soclite.store import _common as c
from soclite.store import open_store
from soclite.store._sqlite_events import day_of
from soclite.store.base import AlertQuery, EventQuery
from soclite.store.sqlite import SQLiteStore

from .factories import event


def test_open_store_builds_sqlite_from_settings(tmp_path: Path) -> None:
    store = open_store(Settings(environment="test", data_dir=tmp_path))
    try:
        assert isinstance(store, SQLiteStore) and store.path == tmp_path / "events.db"
        assert store.write_events([event(1)]) == 1
    finally:
        store.close()
    reopened = SQLiteStore(tmp_path / "events.db")
    reopened.open()
    assert reopened.count_events(EventQuery()) == 1
    reopened.close()


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLiteStore(path)
    store.open()
    store.write_events([event(1)])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match="newer"):
        SQLiteStore(path).open()
    assert path.read_bytes() == before


def test_corrupt_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.write_bytes(b"this is not a database, it is a diary\n" * 200)
    before = path.read_bytes()
    with pytest.raises(SchemaError):
        SQLiteStore(path).open()
    assert path.read_bytes() == before


def test_failed_write_stores_nothing_and_can_be_retried(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLiteStore(path)
    store.open()
    batch = [event(i) for i in range(50)]
    # Events live in day files (issue 12): the lock to hold is the one of the batch's day file.
    day = day_of(isoformat(c.event_time(batch[0])))
    store.write_events([])  # nothing written: the day file does not exist yet
    writer = store.events._writer(day)
    # A second process-like connection holds the write lock: the store's write must fail, not half-write.
    blocker = sqlite3.connect(store.events.path_of(day), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    writer.conn.execute("PRAGMA busy_timeout=200")  # short wait for the test only
    with pytest.raises(StoreError, match="nothing stored"):
        store.write_events(batch)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.count_events(EventQuery()) == 0
    assert store.write_events(batch) == 50
    assert store.write_events(batch) == 0
    store.close()


def test_one_writer_many_readers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                store.query_events(EventQuery(limit=5))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(20):
        store.write_events([event(i * 10 + j) for j in range(10)])
    for t in readers:
        t.join()
    assert not errors
    assert store.count_events(EventQuery()) == 200
    store.close()


@pytest.mark.parametrize("sort", ["last_seen", "first_seen", "severity", "count"])
def test_large_match_sets_page_off_the_sort_index_exactly_once(tmp_path: Path, sort: str) -> None:
    """Above ~2,000 matches the store reads pages off the sort-key index (INDEXED BY); same rows, same order."""
    from datetime import timedelta

    from soclite.store.base import AlertQuery

    from .factories import T0, alert

    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    levels = ("critical", "high", "medium", "low")
    alerts = [
        alert(i, unit=f"u{i % 3}", level=levels[i % 4], when=T0 + timedelta(minutes=i // 2), count=i % 11)
        for i in range(3300)
    ]
    store.put_alerts(alerts)
    query = AlertQuery(units=frozenset({"u0", "u1"}), sort=sort, limit=400)  # type: ignore[arg-type]
    assert "INDEXED BY" in store._alert_plan(query, store.query_alerts(query).total)
    ids: list[str] = []
    while True:
        page = store.query_alerts(query)
        assert page.total == 2200
        ids += [a.id for a in page.items]
        if page.next is None:
            break
        query.cursor = page.next
    # newest first by the sort key, ties by insertion order (the rowid), exactly once each
    rank = {"high": 3, "medium": 2, "low": 1}
    keys = {
        "last_seen": lambda n: (alerts[n].last_seen, n),
        "first_seen": lambda n: (alerts[n].first_seen, n),
        "count": lambda n: (alerts[n].count, n),
        "severity": lambda n: (rank[alerts[n].severity], alerts[n].last_seen, n),
    }
    expected = sorted((n for n in range(3300) if n % 3 != 2), key=keys[sort], reverse=True)
    assert ids == [alerts[n].id for n in expected]
    store.close()


def test_migration_2_makes_older_alerts_searchable_by_their_matched_event(tmp_path: Path) -> None:
    """Alerts stored before q searched matched events get their event's fields into the search text."""
    from soclite.store.base import AlertQuery

    from .factories import alert

    path = tmp_path / "events.db"
    store = SQLiteStore(path)
    store.open()
    old = alert(1)
    old.event = {"source.ip": "203.0.113.45", "user.name": "Nguyen.Van.A", "EventID": 4625}
    bare = alert(2)
    bare.event = {}
    store.put_alerts([old, bare])
    store.close()
    # as a version-1 database held it: the alert's own fields only
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alerts SET text = lower(rule_title || char(10) || id)")
    conn.execute("DROP TABLE matched_events")  # added by migration 3
    for index in ("alerts_status_rule", "alerts_status_host", "alerts_status_unit"):  # added by migration 4
        conn.execute(f"DROP INDEX {index}")
    for trigger in ("insert", "update", "delete", "tag_insert", "tag_delete"):  # added by migration 5
        conn.execute(f"DROP TRIGGER alerts_version_{trigger}")
    conn.execute("DROP TABLE alerts_version")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    store.open()
    try:
        assert [a.id for a in store.query_alerts(AlertQuery(q="203.0.113.45")).items] == [old.id]
        assert [a.id for a in store.query_alerts(AlertQuery(q="nguyen.van.a")).items] == [old.id]
        assert store.query_alerts(AlertQuery(q="title of rule-a")).total == 2  # own fields kept
        assert store.query_alerts(AlertQuery(q="4625")).total == 0  # EventID is not a searched field
    finally:
        store.close()


@pytest.mark.parametrize("column", ["rule_id", "host", "unit"])
def test_the_queues_group_counts_read_an_index_only(tmp_path: Path, column: str) -> None:
    """The queue's group panel (open alerts per rule, host or unit) must not read every open alert's row and
    document: at 100,000 alerts that was 650 ms of each queue page (bench/api.py --concurrency)."""
    from .factories import alert

    statuses = ["new", "new", "new", "acknowledged", "in_progress", "resolved", "false_positive"]
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    store.put_alerts([alert(i, status=statuses[i % 7], host=f"ws-{i % 97:03d}", rule_id=f"rule-{i % 41}",
                            unit=f"u{i % 5}") for i in range(2000)])
    store.close()  # the planner's statistics (ANALYZE), as every open and close of the store refreshes them
    store.open()
    open_alerts = AlertQuery(status=["new", "acknowledged", "in_progress"])
    sql, params = store.group_count_sql(open_alerts, column)  # what count_alerts runs
    counts = store.count_alerts(open_alerts, column)
    store.close()
    conn = sqlite3.connect(tmp_path / "events.db")
    plan = " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    conn.close()
    assert "COVERING INDEX" in plan, plan
    assert sum(counts.values()) == sum(1 for i in range(2000) if i % 7 < 5)


def test_the_alerts_time_bounds_are_read_from_the_index(tmp_path: Path) -> None:
    """min() and max() in one SELECT scan every alert (SQLite's min/max shortcut needs a sole aggregate)."""
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    store.close()
    conn = sqlite3.connect(tmp_path / "events.db")
    plan = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {SQLiteStore.ALERT_TIME_BOUNDS}")]
    conn.close()
    assert not any(step.startswith("SCAN alerts") for step in plan), plan  # SEARCH: one index step each
    assert sum("alerts_last" in step for step in plan) == 2, plan


def test_alert_counts_are_cached_until_any_writer_changes_an_alert(tmp_path: Path) -> None:
    """The queue's counts, groups and histogram are cached (issue 15), and every change shows at once: a change
    made through this store, through another store on the same file (another process: the pipeline) and a
    retention delete alike. A stale count here would be a queue that lies about the work to do."""
    from zoneinfo import ZoneInfo

    from .factories import alert

    path = tmp_path / "events.db"
    api, pipeline = SQLiteStore(path), SQLiteStore(path)
    api.open()
    pipeline.open()
    try:
        first = [alert(i, host="pc-01") for i in range(3)]
        api.put_alerts(first)
        open_query = AlertQuery(status=["new"])
        tz = ZoneInfo("Asia/Ho_Chi_Minh")

        def seen() -> tuple[int, int, dict[str, int], int]:
            hist = api.alert_histogram(AlertQuery(), "day", "severity", tz)
            return (api.query_alerts(open_query).total, api.count_alerts(open_query)["total"],
                    api.count_alerts(open_query, group_by="host"), sum(sum(b.counts.values()) for b in hist))

        assert seen() == (3, 3, {"pc-01": 3}, 3)
        version = api.alerts_version()
        assert seen() == (3, 3, {"pc-01": 3}, 3) and api.alerts_version() == version  # reading changes nothing
        pipeline.put_alerts([alert(9, host="pc-02")])  # another connection, as another process would
        assert api.alerts_version() != version
        assert seen() == (4, 4, {"pc-01": 3, "pc-02": 1}, 4)
        api.update_alert_fields(first[0].id, {"status": "acknowledged"})
        assert seen()[:3] == (3, 3, {"pc-01": 2, "pc-02": 1})
        with pipeline.db.write() as conn:  # a delete (retention) through the other store's writer
            conn.execute("DELETE FROM alerts WHERE id = ?", (first[1].id,))
        assert seen() == (2, 2, {"pc-01": 1, "pc-02": 1}, 3)
        # the cache is bounded: many different filters keep at most COUNT_CACHE_SIZE entries
        for n in range(api.COUNT_CACHE_SIZE + 10):
            api.count_alerts(AlertQuery(host=f"h{n}"))
        assert len(api._counts) == api.COUNT_CACHE_SIZE
    finally:
        api.close()
        pipeline.close()
