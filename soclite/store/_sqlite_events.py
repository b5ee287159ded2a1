"""Events of the embedded store: one SQLite file per UTC day, compressed documents, three indexes.

Why (issue 12, figures in bench/store.py --sustained): in one events.db beside the alerts, every
event carried a case-folded ``text`` copy and five indexes, one of them UNIQUE over random uuid
ids; at ~1.2 KB an event on disk the indexes outgrew the page cache after a few million events
and the write rate fell with the size (and the bulk writes held the alerts' write lock).

Here:

* ``<dir>/events-YYYYMMDD.db`` per UTC day of ``@timestamp``: a day's indexes stay a day's size,
  queries open only the days their time range touches, and retention deletes whole files.
* idempotency (at-least-once storage replays the same events) is UNIQUE ``(ts, idh)``: the same
  event has the same time, and an index led by the time is appended to, not written at random.
  ``idh`` is an 8-byte hash of ``event.id`` (a collision within one microsecond: 2^-64).
* lookup by id (``GET /events/{id}``) goes through the ``idh`` index, then compares the id
  inside the document: a small random index instead of a 32-character one.
* ``ts`` is microseconds since the epoch (an integer: 8 bytes in the row and each index where
  the ISO text took 27); product/category/service filters read the document.
* ``doc`` is the event's JSON compressed by zstd with a dictionary trained on the day's own
  documents (table ``zdicts``; the blob's first byte names the dictionary). bench/store.py
  --sustained 1000000: rows of 120.7 B an event, 139.5 B with the deflate + raw dictionary of
  version 1 (whose files keep their ``meta`` zdict and deflate). See :class:`soclite.store._zstd.ZstdCodec`.
  Free text ``q`` and field filters decompress in SQL functions (the time range and the indexed
  filters narrow the rows first).
* free text: ``events_fts`` (FTS5, contentless, ``detail=none``, ``columnsize=0``: which rows hold a
  word, nothing else) and ``terms`` (every word of the day once, with a trigram index since version 3:
  :mod:`soclite.store._sqlite_terms`), filled in the write's transaction;
  :mod:`soclite.store._sqlite_text` turns ``q`` into an index lookup with the substring meaning kept.
  A file of version 1 gets the tables on upgrade and keeps reading its older rows document by document.
* a batch spanning days commits one transaction per day: a failure leaves earlier days written,
  and the retry rewrites them as no-ops (UNIQUE ``(ts, id)``), so nothing is lost or doubled.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from soclite.db import connect, transaction
from soclite.errors import SchemaError, StoreError
from soclite.models import Event
from soclite.store import _common as c
from soclite.store import _sqlite_terms as terms
from soclite.store import _sqlite_text as text
from soclite.store._zstd import ZDICTS_SCHEMA, ZstdCodec, read_codec, trained

SCHEMA_VERSION = 3
SCHEMA = ZDICTS_SCHEMA + """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    ts INTEGER NOT NULL,
    idh INTEGER NOT NULL,
    host TEXT,
    unit TEXT,
    doc BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_ts_idh ON events (ts, idh);
CREATE INDEX IF NOT EXISTS events_idh ON events (idh);
CREATE INDEX IF NOT EXISTS events_host_ts ON events (host, ts);
CREATE INDEX IF NOT EXISTS events_unit_ts ON events (unit, ts);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5 (t, content='', detail=none, columnsize=0,
                                                    tokenize='unicode61 remove_diacritics 0');
""" + terms.SCHEMA
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^events-(\d{8})\.db$")
#: deflate window (raw, 4 KiB): small documents, cheap per-row compressor state
_WBITS = -12
#: a host filter selecting fewer rows than this in a day file: free text reads those rows' documents
_NARROW_ROWS = 20_000
#: connections kept open per thread (readers) and for the writer
_CACHED = 16


def id_hash(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True)


def micros(when: datetime) -> int:
    """Microseconds since the epoch, what ``ts`` holds (exact: no float on the way)."""
    delta = when.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def day_of(ts: str) -> str:
    """``2026-12-07T01:02:03.000000Z`` → ``20261207`` (timestamps are stored as fixed-width UTC)."""
    return ts[0:4] + ts[5:7] + ts[8:10]


class _Codec:
    """Deflate with the partition's dictionary (files written before zstd: read, and written on, as they are)."""

    def __init__(self, zdict: bytes) -> None:
        self.zdict = zdict

    def pack(self, raw: bytes) -> bytes:
        comp = zlib.compressobj(6, zlib.DEFLATED, _WBITS, 8, zdict=self.zdict)
        return comp.compress(raw) + comp.flush()

    def unpack(self, blob: bytes) -> bytes:
        return zlib.decompressobj(_WBITS, zdict=self.zdict).decompress(blob)

    def event(self, blob: bytes) -> Event:
        doc: Event = orjson.loads(self.unpack(blob))
        return doc


class _Partition:
    """One open connection to one day's file, with its codec and SQL functions."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        try:
            self.conn = connect(path, create=create)
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise SchemaError(f"{path}: event partition schema {version} is newer than this soclite's")
            if version < SCHEMA_VERSION:
                self._upgrade()
            if create:  # the writer: a day's random-order index (idh) and host/unit insertion points in memory
                self.conn.execute("PRAGMA cache_size=-65536")  # (readers, one set per thread, keep the default)
                # the WAL is reset after each checkpoint but keeps its largest size: truncate it past 4 MiB
                self.conn.execute("PRAGMA journal_size_limit=4194304")
        except sqlite3.Error as exc:
            raise SchemaError(f"{path}: not a usable event partition: {exc}") from exc
        self.codec: _Codec | ZstdCodec | None = None
        self._load_codec()
        self.fts_since = self._fts_since()
        self.conn.create_function("sl_doc_contains", 2, self._contains, deterministic=True)
        self.conn.create_function("sl_doc_field", 2, self._field, deterministic=True)

    def _upgrade(self) -> None:
        """Version 2 adds the dictionaries table, the full-text index and its terms; rows of a version-1
        file are not indexed: ``fts_since`` keeps the first rowid the index covers. Version 3 adds the
        trigram index of the terms (:mod:`._sqlite_terms`), filled here from the file's terms."""
        with transaction(self.conn):
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            if version >= SCHEMA_VERSION:
                return
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            if version == 1:
                self.conn.execute("INSERT OR IGNORE INTO meta (key, value) SELECT 'fts_since', max(rowid) + 1 "
                                  "FROM events HAVING count(*) > 0")  # fmt: skip
            if version == 2:
                terms.fill(self.conn)
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _fts_since(self) -> int | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'fts_since'").fetchone()
        return int(row[0]) if row is not None else None

    def text_sql(self, needle: str, *, host: str | None = None, start: int | None = None,
                 end: int | None = None) -> tuple[str, list[Any]]:
        """"The document's text contains ``needle``" for this day file (see :mod:`._sqlite_text`).

        With a host filter selecting fewer than ``_NARROW_ROWS`` rows of the time range (an index range
        count), those rows' documents are read: cheaper than the index's terms pass and posting lists.
        """
        if host is not None and self.host_rows(host, start, end) < _NARROW_ROWS:
            return "sl_doc_contains(doc, ?)", [needle]
        sql, params, _match = text.condition(needle, self._lookup, since=self.fts_since)
        return sql, params

    def host_rows(self, host: str, start: int | None, end: int | None) -> int:
        try:
            return int(self.conn.execute(
                "SELECT count(*) FROM events WHERE host = ? AND ts >= ? AND ts < ?",
                (host, -(2**62) if start is None else start, 2**62 if end is None else end),
            ).fetchone()[0])  # fmt: skip
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: host count failed: {exc}") from exc

    def _lookup(self, sql: str, params: Sequence[object]) -> list[str]:
        try:
            return [str(row[0]) for row in self.conn.execute(sql, params).fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: terms lookup failed: {exc}") from exc

    def index_rows(self, since_rowid: int, texts: dict[tuple[int, int], str]) -> None:
        """Index the rows written after ``since_rowid`` (inside the write's transaction)."""
        rows = self.conn.execute("SELECT rowid, ts, idh FROM events WHERE rowid > ?", (since_rowid,)).fetchall()
        self.conn.executemany(
            "INSERT INTO events_fts (rowid, t) VALUES (?, ?)", [(r[0], texts[(r[1], r[2])]) for r in rows]
        )
        terms.add(self.conn, {w for r in rows for w in texts[(r[1], r[2])].split(" ") if w})

    def unindex_before(self, cutoff: int) -> None:
        """Take the rows older than ``cutoff`` (about to be deleted) out of the index (inside the transaction)."""
        since = self.fts_since or 0
        for rowid, blob in self.conn.execute("SELECT rowid, doc FROM events WHERE ts < ? AND rowid >= ?",
                                             (cutoff, since)).fetchall():  # fmt: skip
            event = self._doc(blob)
            if event is not None:
                self.conn.execute("INSERT INTO events_fts (events_fts, rowid, t) VALUES ('delete', ?, ?)",
                                  (rowid, text.indexed_text(c.event_text(event))))  # fmt: skip

    def _load_codec(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'zdict'").fetchone()
        if row is not None:  # a file of an earlier version: deflate
            self.codec = _Codec(bytes(row[0]))
            return
        codec = read_codec(self.conn)
        if codec is not None:
            self.codec = codec

    def ensure_codec(self, sample: Sequence[bytes]) -> _Codec | ZstdCodec:
        """The codec for a batch being written (inside its transaction): a day's first batch trains the
        first dictionary, a larger batch a better one while the day's is made from few documents."""
        if self.codec is None:
            self._load_codec()
        if isinstance(self.codec, _Codec):  # a file of an earlier version keeps its deflate dictionary
            return self.codec
        self.codec = trained(self.conn, self.codec, sample)
        return self.codec

    def _doc(self, blob: bytes) -> Event | None:
        codec = self.codec
        if codec is None or (isinstance(codec, ZstdCodec) and not codec.known(blob)):
            self._load_codec()  # opened before the write that brought the blob's dictionary
            codec = self.codec
        return codec.event(blob) if codec is not None else None

    def _contains(self, blob: bytes, needle: str) -> int:
        event = self._doc(blob)
        return 1 if event is not None and needle in c.event_text(event) else 0

    def _field(self, blob: bytes, name: str) -> str | None:
        event = self._doc(blob)
        value = event.get(name) if event is not None else None
        if value is None:
            return None
        if isinstance(value, bool):  # as SQLite's json_extract gave it (1/0), what filters were written for
            return "1" if value else "0"
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def close(self) -> None:
        self.conn.close()


#: the WHERE clause (and its parameters) of a query, rendered for one day file
WhereOf = Callable[[_Partition], tuple[str, Sequence[Any]]]


class EventPartitions:
    """The day files under one directory: writes, queries across days, retention."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._writers: OrderedDict[str, _Partition] = OrderedDict()
        self._local = threading.local()
        #: bumped when a file is deleted: cached reader connections to it are dropped
        self._generation = 0
        self._all_readers: list[OrderedDict[str, _Partition]] = []
        self._readers_lock = threading.Lock()

    # --- files ---------------------------------------------------------------------------------
    def path_of(self, day: str) -> Path:
        return self.dir / f"events-{day}.db"

    def days(self) -> list[str]:
        """Every partition's day, newest first."""
        found = (_NAME.match(p.name) for p in self.dir.iterdir())
        return sorted((m.group(1) for m in found if m), reverse=True)

    def _days_in(self, start: datetime | None, end: datetime | None) -> list[str]:
        lo = start.astimezone(UTC).strftime("%Y%m%d") if start else None
        hi = end.astimezone(UTC).strftime("%Y%m%d") if end else None
        return [d for d in self.days() if (lo is None or d >= lo) and (hi is None or d <= hi)]

    def _writer(self, day: str) -> _Partition:
        part = self._writers.get(day)
        if part is None:
            part = self._writers[day] = _Partition(self.path_of(day), create=True)
            while len(self._writers) > _CACHED:
                self._writers.popitem(last=False)[1].close()
        self._writers.move_to_end(day)
        return part

    def _reader(self, day: str) -> _Partition | None:
        cache: OrderedDict[str, _Partition] | None = getattr(self._local, "parts", None)
        if cache is None or getattr(self._local, "generation", -1) != self._generation:
            with self._readers_lock:
                if cache is not None:
                    for stale in cache.values():
                        stale.close()
                    self._all_readers = [other for other in self._all_readers if other is not cache]
                cache = self._local.parts = OrderedDict()
                self._all_readers.append(cache)
            self._local.generation = self._generation
        part = cache.get(day)
        if part is None:
            if not self.path_of(day).exists():
                return None
            part = cache[day] = _Partition(self.path_of(day), create=False)
            while len(cache) > _CACHED:
                cache.popitem(last=False)[1].close()
        cache.move_to_end(day)
        return part

    # --- writing -------------------------------------------------------------------------------
    def write(self, events: Sequence[Event]) -> int:
        """Write events (new ones only); return how many were new. Rows are checked before any write."""
        by_day: dict[str, list[tuple[int, int, Any, Any, bytes]]] = {}
        raws: dict[str, list[bytes]] = {}
        texts: dict[str, dict[tuple[int, int], str]] = {}
        for event in events:
            event_id = c.event_id(event)  # raises StoreError before anything is written
            when = c.event_time(event)
            raw = orjson.dumps(event, default=str)
            utc = when.astimezone(UTC)
            day = f"{utc.year:04d}{utc.month:02d}{utc.day:02d}"
            raws.setdefault(day, []).append(raw)
            key = (micros(when), id_hash(event_id))
            texts.setdefault(day, {})[key] = text.indexed_text(c.event_text(event))
            by_day.setdefault(day, []).append((*key, c.event_host(event), event.get(c.UNIT), raw))
        written = 0
        with self._write_lock:
            for day, rows in sorted(by_day.items()):
                part = self._writer(day)
                try:
                    with transaction(part.conn):
                        codec = part.ensure_codec(raws[day])
                        before = part.conn.total_changes
                        last = int(part.conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0])
                        part.conn.executemany(
                            "INSERT OR IGNORE INTO events (ts, idh, host, unit, doc) VALUES (?, ?, ?, ?, ?)",
                            [(*row[:4], codec.pack(row[4])) for row in rows],
                        )
                        new = part.conn.total_changes - before
                        if new:
                            part.index_rows(last, texts[day])
                        written += new
                except sqlite3.Error as exc:
                    raise StoreError(
                        f"{part.path}: write of {len(rows)} events failed, nothing stored for that day "
                        f"(a retry is safe): {exc}"
                    ) from exc
        return written

    # --- reading -------------------------------------------------------------------------------
    def _each(self, days: Sequence[str]) -> Iterator[tuple[str, _Partition]]:
        for day in days:
            part = self._reader(day)
            if part is not None:
                yield day, part

    def rows(self, where_of: WhereOf, start: datetime | None, end: datetime | None, limit: int,
             ) -> list[tuple[str, int, int, Event]]:  # fmt: skip
        """Up to ``limit`` rows newest first: (day, ts, rowid, event). ``where_of`` renders the WHERE clause
        for each day file (free text goes through the file's own index)."""
        out: list[tuple[str, int, int, Event]] = []
        for day, part in self._each(self._days_in(start, end)):
            where, params = where_of(part)
            try:
                found = part.conn.execute(
                    f"SELECT ts, rowid, doc FROM events {where} ORDER BY ts DESC, rowid DESC LIMIT ?",
                    [*params, limit - len(out)],
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{part.path}: query failed: {exc}") from exc
            for ts, rowid, doc in found:
                event = part._doc(doc)
                if event is None:
                    raise StoreError(f"{part.path}: compressed events but no dictionary in meta")
                out.append((day, int(ts), int(rowid), event))
            if len(out) >= limit:
                break
        return out

    def count(self, where_of: WhereOf, start: datetime | None, end: datetime | None) -> int:
        total = 0
        for _day, part in self._each(self._days_in(start, end)):
            where, params = where_of(part)
            try:
                total += int(part.conn.execute(f"SELECT count(*) FROM events {where}", params).fetchone()[0])
            except sqlite3.Error as exc:
                raise StoreError(f"{part.path}: count failed: {exc}") from exc
        return total

    # --- retention -----------------------------------------------------------------------------
    def delete_before(self, before: datetime) -> int:
        """Whole days before ``before``'s day go as files; that day loses its earlier rows."""
        cutoff = micros(before)
        cut_day = before.astimezone(UTC).strftime("%Y%m%d")
        deleted = 0
        with self._write_lock:
            for day in self.days():
                if day > cut_day:
                    continue
                if day == cut_day:
                    part = self._writer(day)
                    with transaction(part.conn):
                        part.unindex_before(cutoff)
                        deleted += part.conn.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
                    continue
                deleted += self.drop_day(day)
        return deleted

    def apply_plan(self, before: datetime, keep: Sequence[tuple[datetime, frozenset[str], frozenset[str]]]
                   ) -> tuple[int, int, int]:
        """Retention per host (see ``base.RetentionPlan``): (events deleted, days dropped, days trimmed).

        A day wholly older than ``before`` is dropped as a file when none of its events is protected
        (the common case, and the cheap one); a day with protected events loses only its other rows.
        ``keep``: (since, host keys, units) clauses."""
        cutoff = micros(before)
        cut_day = before.astimezone(UTC).strftime("%Y%m%d")
        clauses, params = [], []
        for since, hosts, units in keep:
            if hosts:
                clauses.append(f"(host IN ({', '.join('?' for _ in hosts)}) AND ts >= ?)")
                params += [*sorted(hosts), micros(since)]
            if units:
                clauses.append(f"(unit IN ({', '.join('?' for _ in units)}) AND ts >= ?)")
                params += [*sorted(units), micros(since)]
        protected = " OR ".join(clauses) or "0"
        deleted = dropped = trimmed = 0
        with self._write_lock:
            for day in self.days():
                if day > cut_day:
                    continue
                part = self._writer(day)
                kept = int(part.conn.execute(
                    f"SELECT count(*) FROM events WHERE ts < ? AND ({protected})", (cutoff, *params)).fetchone()[0])
                if day < cut_day and kept == 0:
                    deleted += self.drop_day(day)
                    dropped += 1
                    continue
                with transaction(part.conn):
                    deleted += part.conn.execute(
                        f"DELETE FROM events WHERE ts < ? AND NOT ({protected})", (cutoff, *params)).rowcount
                if kept:
                    trimmed += 1
        return deleted, dropped, trimmed

    def drop_day(self, day: str) -> int:
        """Delete one day's file; return how many events it held."""
        with self._write_lock:
            path = self.path_of(day)
            part = self._writer(day)
            count = int(part.conn.execute("SELECT count(*) FROM events").fetchone()[0])
            self._writers.pop(day).close()
            self._generation += 1  # readers drop their connections to it at their next query
            for suffix in ("-wal", "-shm", ""):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return count

    def iter_day(self, day: str, chunk: int = 5000) -> Iterator[Event]:
        """Every event of one day, oldest first (for the cold archive), read in chunks."""
        part = _Partition(self.path_of(day), create=False)
        try:
            after: tuple[int, int] = (-(2**62), -1)
            while True:
                rows = part.conn.execute(
                    "SELECT ts, rowid, doc FROM events WHERE (ts, rowid) > (?, ?) ORDER BY ts, rowid LIMIT ?",
                    (*after, chunk),
                ).fetchall()
                for _ts, _rowid, doc in rows:
                    event = part._doc(doc)
                    if event is None:
                        raise StoreError(f"{part.path}: compressed events but no dictionary in meta")
                    yield event
                if len(rows) < chunk:
                    return
                after = (int(rows[-1][0]), int(rows[-1][1]))
        finally:
            part.close()

    def scan(
        self, start: datetime | None, end: datetime | None, units: frozenset[str] | None, chunk: int = 2000,
    ) -> Iterator[list[Event]]:
        """Every event with ``start <= @timestamp < end`` in ``units`` (None: all), oldest first, in chunks
        (a retro-hunt streams the hot store through the engine without holding it in memory)."""
        if units is not None and not units:
            return
        lo = micros(start) if start else -(2**62)
        hi = micros(end) if end else 2**62
        unit_sql, unit_params = "", []
        if units is not None:
            unit_sql = f" AND unit IN ({', '.join('?' for _ in units)})"
            unit_params = sorted(units)
        for day in sorted(self._days_in(start, end)):
            part = self._reader(day)
            if part is None:
                continue
            after: tuple[int, int] = (lo - 1, 2**62)
            while True:
                try:
                    rows = part.conn.execute(
                        "SELECT ts, rowid, doc FROM events WHERE (ts, rowid) > (?, ?) AND ts >= ? AND ts < ?"
                        f"{unit_sql} ORDER BY ts, rowid LIMIT ?",
                        (*after, lo, hi, *unit_params, chunk),
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise StoreError(f"{part.path}: scan failed: {exc}") from exc
                events = []
                for _ts, _rowid, doc in rows:
                    event = part._doc(doc)
                    if event is None:
                        raise StoreError(f"{part.path}: compressed events but no dictionary in meta")
                    events.append(event)
                if events:
                    yield events
                if len(rows) < chunk:
                    break
                after = (int(rows[-1][0]), int(rows[-1][1]))

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())

    def close(self) -> None:
        with self._write_lock:
            for part in self._writers.values():
                part.close()
            self._writers.clear()
        with self._readers_lock:
            for cache in self._all_readers:
                for part in list(cache.values()):
                    part.close()
                cache.clear()
            self._all_readers.clear()


def legacy_chunks(conn: sqlite3.Connection, size: int) -> Iterator[tuple[list[int], list[Event]]]:
    """Rows of the single-file ``events`` table of earlier versions, in chunks, for moving them."""
    while True:
        rows = conn.execute("SELECT rowid, doc FROM events ORDER BY rowid LIMIT ?", (size,)).fetchall()
        if not rows:
            return
        yield [int(r[0]) for r in rows], [orjson.loads(r[1]) for r in rows]


__all__ = ["EventPartitions", "WhereOf", "day_of", "from_micros", "id_hash", "legacy_chunks", "micros"]
