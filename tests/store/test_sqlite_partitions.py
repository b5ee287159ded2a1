"""SQLite event day files: layout, pages across days, retention by whole files, compression, upgrade."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import orjson

from soclite.store.base import EventQuery
from soclite.store.sqlite import SQLiteStore

from .factories import T0, event


def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    return store


def test_each_utc_day_is_its_own_file_and_retention_deletes_whole_files(tmp_path: Path) -> None:
    store = _store(tmp_path)
    # 6 events a day for 5 days, 4 hours apart from 00:30 UTC
    store.write_events([event(i, when=T0 + timedelta(hours=4 * i, minutes=30)) for i in range(30)])
    names = sorted(p.name for p in store.events_path.glob("events-*.db"))
    assert names == [f"events-202408{d:02d}.db" for d in range(1, 6)]
    # a cut in the middle of day 3: days 1-2 go as files, day 3 keeps its rows from 12:00 on
    deleted = store.delete_events_before(T0 + timedelta(days=2, hours=12))
    assert deleted == 12 + 3
    assert sorted(p.name for p in store.events_path.glob("events-*.db")) == names[2:]
    assert store.count_events(EventQuery()) == 15
    assert store.count_events(EventQuery(end=T0 + timedelta(days=2, hours=12))) == 0
    # the store keeps writing (and reading) after files went away under its cached connections
    assert store.write_events([event(100, when=T0 + timedelta(days=4, hours=23))]) == 1
    assert store.count_events(EventQuery()) == 16
    store.close()


def test_pages_across_days_cover_every_row_once_newest_first(tmp_path: Path) -> None:
    store = _store(tmp_path)
    # three events at each time, times spread over 4 days, crossing midnight: ties across pages and days
    events = [event(i, when=T0 + timedelta(hours=5 * (i // 3))) for i in range(60)]
    store.write_events(events)
    seen: list[str] = []
    stamps: list[str] = []
    cursor = None
    while True:
        page = store.query_events(EventQuery(limit=7, cursor=cursor, host="pc-01"))
        assert page.total == 60
        seen += [e["event.id"] for e in page.items]
        stamps += [e["@timestamp"] for e in page.items]
        cursor = page.next
        if cursor is None:
            break
    assert len(seen) == 60 and set(seen) == {e["event.id"] for e in events}
    assert stamps == sorted(stamps, reverse=True)
    # lookups by id reach any day, and a replay of the whole set adds nothing
    wanted = [events[0]["event.id"], events[59]["event.id"]]
    assert sorted(e["event.id"] for e in store.query_events(EventQuery(ids=wanted)).items) == sorted(wanted)
    assert store.write_events(events) == 0
    # a time range opens only its days and still counts exactly
    assert store.count_events(EventQuery(start=T0 + timedelta(days=1), end=T0 + timedelta(days=2))) == 15
    store.close()


def test_documents_are_stored_compressed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    events = [event(i, when=T0 + timedelta(seconds=i), CommandLine=f"cmd.exe /c whoami /all {i % 50}",
                    Image="C:\\Windows\\System32\\cmd.exe") for i in range(3000)]  # fmt: skip
    store.write_events(events)
    raw = sum(len(orjson.dumps(e)) for e in events)
    conn = sqlite3.connect(store.events_path / "events-20240801.db")
    stored = conn.execute("SELECT sum(length(doc)) FROM events").fetchone()[0]
    conn.close()
    assert stored < raw / 3, (stored, raw)
    # and come back whole, searchable by free text and by a field inside the document
    (got,) = store.query_events(EventQuery(q="WHOAMI /ALL 7", fields={"CommandLine": "cmd.exe /c whoami /all 7"},
                                           end=T0 + timedelta(seconds=50))).items  # fmt: skip
    assert got == events[7]
    store.close()


def test_events_of_the_single_table_of_earlier_versions_are_moved_to_the_day_files(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.close()
    # what an earlier version left: rows in events.db's own events table (its layout is migration 1)
    conn = sqlite3.connect(tmp_path / "events.db")
    old = [event(i, when=T0 + timedelta(hours=10 * i)) for i in range(8)]
    conn.executemany(
        "INSERT INTO events (id, ts, host, unit, product, category, service, text, doc) VALUES (?,?,?,?,?,?,?,?,?)",
        [(e["event.id"], e["@timestamp"], "pc-01", "u1", "linux", None, None, "", orjson.dumps(e).decode())
         for e in old],
    )  # fmt: skip
    conn.commit()
    conn.close()
    store = _store(tmp_path)
    assert store.count_events(EventQuery()) == 8
    assert sorted(e["event.id"] for e in store.query_events(EventQuery(limit=10)).items) == [e["event.id"] for e in old]
    assert int(store.db.reader().execute("SELECT count(*) FROM events").fetchone()[0]) == 0
    store.close()


def test_a_day_file_read_before_its_first_write_decodes_what_is_written_later(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.events._writer("20240801")  # the file exists, empty, without its dictionary yet
    assert store.count_events(EventQuery()) == 0 and store.query_events(EventQuery()).items == []
    store.write_events([event(1)])  # the dictionary is learned now; this thread's reader is already open
    assert [e["event.id"] for e in store.query_events(EventQuery()).items] == ["ev000001"]
    store.close()


def test_a_batch_failing_midway_stores_nothing_of_its_day(tmp_path: Path) -> None:
    """One transaction per day file: the rows before the failing one are rolled back with it."""
    import pytest

    from soclite.errors import StoreError

    store = _store(tmp_path)
    store.write_events([event(0)])
    conn = sqlite3.connect(store.events_path / "events-20240801.db")
    conn.execute("CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.host = 'boom' "
                 "BEGIN SELECT RAISE(ABORT, 'boom'); END")  # fmt: skip
    conn.close()
    batch = [event(i, host="boom" if i == 6 else "PC-01") for i in range(1, 11)]
    with pytest.raises(StoreError, match="nothing stored"):
        store.write_events(batch)
    assert store.count_events(EventQuery()) == 1
    store.close()


def test_a_day_started_by_a_small_batch_trains_a_better_dictionary_and_reads_both(tmp_path: Path) -> None:
    """The first dictionary comes from one event; a later large batch trains another, and every row reads back."""
    store = _store(tmp_path)
    first = [event(0, CommandLine="cmd.exe /c whoami /all 0")]
    store.write_events(first)
    later = [event(i, when=T0 + timedelta(seconds=i), CommandLine=f"cmd.exe /c whoami /all {i % 50}")
             for i in range(1, 3001)]  # fmt: skip
    store.write_events(later)
    conn = sqlite3.connect(store.events_path / "events-20240801.db")
    dicts = conn.execute("SELECT id, samples FROM zdicts ORDER BY id").fetchall()
    by_dict = dict(conn.execute("SELECT unicode(substr(doc, 1, 1)), avg(length(doc)) FROM events GROUP BY 1"))
    conn.close()
    assert dicts == [(1, 1), (2, 3000)]
    assert set(by_dict) == {1, 2}
    raw = sum(len(orjson.dumps(e)) for e in later) / len(later)
    assert by_dict[2] < raw / 5, (by_dict, raw)  # the trained dictionary: the size goal rests on it
    every = store.query_events(EventQuery(limit=5000)).items
    assert sorted(every, key=lambda e: e["event.id"]) == first + later
    store.close()


def test_a_day_file_of_version_1_deflate_stays_readable_and_writable(tmp_path: Path) -> None:
    """Files written before zstd (deflate with a raw dictionary in meta) are read and extended as they are."""
    import zlib

    store = _store(tmp_path)
    store.close()
    days = store.events_path
    conn = sqlite3.connect(days / "events-20240801.db")
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE events (ts INTEGER NOT NULL, idh INTEGER NOT NULL, host TEXT, unit TEXT, doc BLOB NOT NULL);"
        "CREATE UNIQUE INDEX events_ts_idh ON events (ts, idh); PRAGMA user_version=1;"
    )
    from soclite.store._sqlite_events import id_hash, micros

    zdict = b'{"event.original":"sshd Failed password for root"}'
    conn.execute("INSERT INTO meta VALUES ('zdict', ?)", (zdict,))
    old = event(1)
    comp = zlib.compressobj(6, zlib.DEFLATED, -12, 8, zdict=zdict)
    blob = comp.compress(orjson.dumps(old)) + comp.flush()
    conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (micros(T0 + timedelta(minutes=1)), id_hash("ev000001"),
                                                               "pc-01", "u1", blob))  # fmt: skip
    conn.commit()
    conn.close()
    store = _store(tmp_path)
    assert store.write_events([event(2)]) == 1
    assert [e["event.id"] for e in store.query_events(EventQuery(q="failed password")).items] == ["ev000002", "ev000001"]
    assert store.query_events(EventQuery(ids=["ev000001"])).items == [old]
    store.close()
