"""The embedded store: alerts, hosts, units and audit in one SQLite file, events in day files (the default).

Events live beside it in ``<stem>-partitions/events-YYYYMMDD.db``, compressed, one file per
UTC day (:mod:`soclite.store._sqlite_events`: why, and the figures). Bulk event writes so never
hold the alerts' write lock, and their rate does not fall as the store grows. Rows of the single
``events`` table of earlier versions are moved there when the store opens.

Every filterable field of an alert is a column and the full object is kept
as JSON beside it, so a filtered page reads one index range and 50 rows.
Indexes end in ``last_seen`` (and implicitly the rowid), which is the order
pages are read in, so ``unit IN (...) AND severity=? AND status=? ORDER BY
last_seen DESC`` stays fast with millions of rows; pages continue from a
keyset cursor (sort value, rowid), never ``OFFSET``. Upserts keep the rowid
(``ON CONFLICT DO UPDATE``), so a cursor stays valid while alerts change.

Timestamps are stored as :func:`soclite.models.isoformat` strings (UTC, fixed
width), which sort lexicographically; day and month histogram buckets are those of
the site's zone (summed from UTC hour buckets).

Free text ``q`` is a case-folded substring over the raw line and the main
fields (events: each day file's FTS5 word index narrows the rows, the document confirms where the
index alone cannot decide; :mod:`soclite.store._sqlite_text`) or title/rule/host/description plus
the matched events' fields (alerts, indexed into the row's ``text`` at write time).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from soclite.db import Database
from soclite.errors import InvalidCursor, StoreError
from soclite.models import EVENT_ID, HOST_NAME, Event, isoformat
from soclite.store import _common as c
from soclite.store._sqlite_alert_store import SQLiteAlerts
from soclite.store._sqlite_base import Where
from soclite.store._sqlite_events import EventPartitions, WhereOf, from_micros, id_hash, legacy_chunks, micros
from soclite.store._sqlite_records import SQLiteRecords
from soclite.store._sqlite_retention import apply_sqlite_retention
from soclite.store._sqlite_schema import MIGRATIONS
from soclite.store.archive import EventArchive, Segment
from soclite.store.base import (
    AllOf,
    EventQuery,
    Expr,
    Match,
    Not,
    Page,
    RetentionPlan,
    RetentionResult,
    Store,
)

if TYPE_CHECKING:
    from soclite.config import Settings


log = logging.getLogger(__name__)


#: how a free-text needle becomes SQL (a day file's :meth:`~._sqlite_events._Partition.text_sql`)
TextSql = Callable[[str], tuple[str, list[Any]]]


def _scan_text(needle: str) -> tuple[str, list[Any]]:
    return "sl_doc_contains(doc, ?)", [needle]


def _expr_sql(expr: Expr, text_sql: TextSql = _scan_text) -> tuple[str, list[Any]]:
    """An event search as SQL over a day file's rows (see :class:`~soclite.store.base.Match` for the meaning).

    Documents are compressed: fields are read through the day file's ``sl_doc_field`` function (the flat
    dotted key), free text through the file's index (``text_sql``), after the cheaper time/host/unit conditions.
    """
    if isinstance(expr, Match):
        if expr.field is None:
            return text_sql(expr.value.casefold())
        value = "lower(CAST(sl_doc_field(doc, ?) AS TEXT))"
        if expr.wildcard:
            # GLOB is Lucene's * and ?; a literal [ must be written [[] in GLOB
            return f"{value} GLOB ?", [expr.field, expr.value.lower().replace("[", "[[]")]
        return f"{value} = ?", [expr.field, expr.value.lower()]
    if isinstance(expr, Not):
        sql, params = _expr_sql(expr.part, text_sql)
        return f"NOT coalesce(({sql}), 0)", params  # a missing field is "not equal", not unknown
    parts = [_expr_sql(part, text_sql) for part in expr.parts]
    joiner = " AND " if isinstance(expr, AllOf) else " OR "
    return "(" + joiner.join(f"coalesce(({sql}), 0)" for sql, _ in parts) + ")", [p for _, ps in parts for p in ps]


def _implied_host(expr: Expr) -> str | None:
    """The host every match must have when the search is (or ANDs with) an exact ``host.name:x`` term.

    The term itself is evaluated on the document like any field; this only lets the host index narrow the
    rows first (the ``host`` column is the lower-cased host.name whenever an event has one): at 100,000
    events ``EventID:1 AND host.name:ws-0042`` read every document of the hour, 1.4 s through the API.
    """
    for part in expr.parts if isinstance(expr, AllOf) else (expr,):
        if isinstance(part, Match) and part.field == HOST_NAME and not part.wildcard and part.value:
            return part.value.lower()
    return None


class SQLiteStore(SQLiteAlerts, SQLiteRecords, Store):
    """:class:`~soclite.store.base.Store` on one SQLite file (WAL; one writer, many readers)."""

    kind = "sqlite"

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        self.path = path
        #: the directory of the day files of events
        self.events_path = path.parent / f"{path.stem}-partitions"
        self._db: Database | None = None
        self._events: EventPartitions | None = None
        self._local = threading.local()
        #: (sql, params) → (alerts version, rows) of the alert counts, groups and histograms (see _cached_rows)
        self._counts: OrderedDict[tuple[str, tuple[Any, ...]], tuple[int, list[sqlite3.Row]]] = OrderedDict()
        self._counts_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteStore:
        return cls(settings.data_dir / "events.db")

    # --- lifecycle -------------------------------------------------------
    def open(self) -> None:
        self._db = Database(self.path, MIGRATIONS, name="events")
        self._events = EventPartitions(self.events_path)
        self._move_legacy_events()
        self.optimize()

    def _move_legacy_events(self) -> None:
        """Move the rows of the single ``events`` table (earlier versions) into the day files, in chunks.

        Idempotent and safe with two processes opening the store at once: each chunk is written (new rows
        only) before it is deleted, so a crash or a concurrent mover at worst writes a chunk twice.
        """
        moved = 0
        for rowids, events in legacy_chunks(self.db.reader(), 20_000):
            self.events.write(events)
            self._write("DELETE FROM events WHERE rowid = ?", [(r,) for r in rowids])
            moved += len(rowids)
            log.info("%s: %d events moved to the day files so far", self.path, moved)

    def optimize(self) -> None:
        """Refresh the planner's statistics so it picks the composite index a filter needs.

        ``analysis_limit`` samples each index, so this costs milliseconds even at millions of rows.
        """
        try:
            with self.db.write() as conn:
                conn.execute("PRAGMA analysis_limit=1000")
                conn.execute("ANALYZE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: ANALYZE failed: {exc}") from exc

    def close(self) -> None:
        if self._db is not None:
            # Statistics are an optimisation; closing must not fail on them.
            with contextlib.suppress(StoreError):
                self.optimize()
            self._db.close()
            self._db = None
        if self._events is not None:
            self._events.close()
            self._events = None


    # --- events (day files: soclite.store._sqlite_events) -------------------
    def write_events(self, events: Sequence[Event]) -> int:
        return self.events.write(events) if events else 0

    def write_matched_events(self, events: Sequence[Event]) -> int:
        """Into events.db (beside the alerts, never behind a bulk write to a day file); see the base class."""
        rows = [
            (c.event_id(e), isoformat(c.event_time(e)), e.get(c.UNIT), orjson.dumps(e, default=str).decode())
            for e in events
        ]
        if not rows:
            return 0
        return self._write("INSERT OR IGNORE INTO matched_events (id, ts, unit, doc) VALUES (?, ?, ?, ?)", rows)

    def _matched(self, query: EventQuery) -> list[Event]:
        """Events looked up by id that bulk storage may not have written yet."""
        assert query.ids is not None
        where = Where()
        where.any_of("id", list(query.ids))
        where.any_of("unit", query.units)
        if where.empty:
            return []
        rows = self._rows(f"SELECT doc FROM matched_events {where.sql()}", where.params)
        return [orjson.loads(row["doc"]) for row in rows]

    def _event_where(self, query: EventQuery, text_sql: TextSql = _scan_text) -> Where:
        where = Where()
        where.any_of("unit", query.units)
        if query.host:
            where.add("host = ?", query.host.lower())
        if query.start:
            where.add("ts >= ?", micros(query.start))
        if query.end:
            where.add("ts < ?", micros(query.end))
        if query.ids is not None:
            where.any_of("idh", [id_hash(str(i)) for i in query.ids])
            where.any_of(f"sl_doc_field(doc, '{EVENT_ID}')", list(query.ids))  # the hash found it, the id decides
        if query.expr is not None:
            implied = _implied_host(query.expr)
            if implied is not None:
                where.add("host = ?", implied)
            sql, params = _expr_sql(query.expr, text_sql)
            where.add(sql, *params)
        for name, value in sorted(query.fields.items()):
            if name == c.UNIT:
                where.add("unit = ?", value)
            else:  # the flat dotted key, read from the decompressed document
                where.add("sl_doc_field(doc, ?) = ?", name, value)
        if query.q:  # the day file's index narrows first; documents are read only to confirm
            sql, params = text_sql(query.q.casefold())
            where.add(sql, *params)
        return where

    def _where_of(self, query: EventQuery, memo: dict[tuple[int, str], tuple[str, list[Any]]] | None = None,
                  *extra: tuple[str, Sequence[Any]]) -> WhereOf:  # fmt: skip
        """The query's WHERE clause for each day file (its free text through that file's index).

        ``memo`` keeps each file's free-text condition for the query's count and its page (one terms lookup).
        With a host filter selecting few rows of a day file, free text reads those rows' documents.
        """
        cache = memo if memo is not None else {}
        host = query.host.lower() if query.host else None
        start = micros(query.start) if query.start else None
        end = micros(query.end) if query.end else None

        def render(part: Any) -> tuple[str, Sequence[Any]]:
            def text_sql(needle: str) -> tuple[str, list[Any]]:
                key = (id(part), needle)
                if key not in cache:
                    cache[key] = part.text_sql(needle, host=host, start=start, end=end)
                return cache[key]

            where = self._event_where(query, text_sql)
            for sql, params in extra:
                where.add(sql, *params)
            return where.sql(), where.params

        return render

    def query_events(self, query: EventQuery) -> Page[Event]:
        where = self._event_where(query)
        if where.empty:
            return Page(total=0, items=[])
        if query.ids is not None and self._only_ids(query):
            return self._by_ids(query, where)
        memo: dict[tuple[int, str], tuple[str, list[Any]]] = {}
        total = self.events.count(self._where_of(query, memo), query.start, query.end)
        end = query.end
        extra: list[tuple[str, Sequence[Any]]] = []
        if query.cursor:
            # Rowids are per day file, but a day file holds only its day's times: for the cursor's own day
            # (ts, rowid) is the order, for older days every row has an earlier ts and passes.
            ts, rowid = c.decode_cursor(query.cursor, 2)
            if not isinstance(ts, int) or not isinstance(rowid, int):
                raise InvalidCursor(f"invalid page cursor {query.cursor!r} (made for another sort order?)")
            extra.append(("(ts, rowid) < (?, ?)", (ts, rowid)))
            cursor_time = from_micros(ts) + timedelta(microseconds=1)  # its day, for choosing day files
            end = min(end, cursor_time) if end is not None else cursor_time
        rows = self.events.rows(self._where_of(query, memo, *extra), query.start, end, query.limit + 1)
        items = [event for _, _, _, event in rows[: query.limit]]
        more = len(rows) > query.limit
        last = rows[query.limit - 1] if more else None
        return Page(total=total, items=items, next=c.encode_cursor([last[1], last[2]]) if last else None)

    @staticmethod
    def _only_ids(query: EventQuery) -> bool:
        """A lookup by id (an alert's matched events), narrowed at most by the reader's units."""
        return not (query.host or query.start or query.end or query.q or query.fields or query.cursor)

    def _by_ids(self, query: EventQuery, where: Where) -> Page[Event]:
        """The day files' rows, completed by the matched events bulk storage has not written yet."""
        found = {e.get(EVENT_ID): e for _, _, _, e in self.events.rows(lambda _part: (where.sql(), where.params),
                                                                        None, None, 10_000)}  # fmt: skip
        for event in self._matched(query):
            found.setdefault(event.get(EVENT_ID), event)
        items = sorted(found.values(), key=lambda e: (str(e.get("@timestamp")), str(e.get(EVENT_ID))), reverse=True)
        return Page(total=len(items), items=items[: query.limit])

    def count_events(self, query: EventQuery) -> int:
        where = self._event_where(query)
        if where.empty:
            return 0
        if query.ids is not None and self._only_ids(query):
            return self._by_ids(query, where).total
        return self.events.count(self._where_of(query), query.start, query.end)

    def scan_events(self, query: EventQuery, chunk: int = 2000) -> Iterator[list[Event]]:
        """Every stored event in ``query``'s time range and units, oldest first, in chunks (retro-hunts).
        Only ``start``, ``end`` and ``units`` of the query apply."""
        return self.events.scan(query.start, query.end, query.units, chunk)

    def archive_events_before(self, before: datetime, archive: EventArchive) -> list[Segment]:
        """Move every whole UTC day before ``before``'s day to the cold archive, oldest first; return the
        segments written. A day already in the archive's manifest (a crash before its file was deleted)
        is only deleted here."""
        cut_day = before.astimezone(UTC).strftime("%Y%m%d")
        written = []
        for day in sorted(self.events.days()):
            if day >= cut_day:
                break
            if not archive.has(day):
                written.append(archive.add(day, self.events.iter_day(day)))
            self.events.drop_day(day)
            log.info("%s: events of %s moved to the cold archive", self.path, day)
        return written

    def delete_events_before(self, before: datetime) -> int:
        """Whole day files before ``before``'s day are deleted; that day loses its earlier rows."""
        self._write("DELETE FROM matched_events WHERE ts < ?", [(isoformat(before),)])
        return self.events.delete_before(before)

    def apply_retention(self, plan: RetentionPlan) -> RetentionResult:
        """Per host and unit (see :mod:`._sqlite_retention`)."""
        return apply_sqlite_retention(self, plan)
