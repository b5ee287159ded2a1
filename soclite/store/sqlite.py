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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import orjson

from soclite.db import Database
from soclite.errors import InvalidCursor, NotFoundError, StoreError
from soclite.models import EVENT_ID, Alert, AuditEntry, Event, Host, Unit, isoformat, parse_timestamp
from soclite.sitetime import whole_hour_offsets
from soclite.store import _common as c
from soclite.store import _sqlite_alerts as _alerts
from soclite.store import _sqlite_hosts as _hosts
from soclite.store._sqlite_events import EventPartitions, WhereOf, from_micros, id_hash, legacy_chunks, micros
from soclite.store._sqlite_retention import apply_sqlite_retention
from soclite.store._sqlite_schema import MIGRATIONS
from soclite.store.archive import EventArchive, Segment
from soclite.store.base import (
    AlertQuery,
    AlertRepeat,
    AllOf,
    EventQuery,
    Expr,
    FieldChange,
    HistogramBucket,
    HostChange,
    HostQuery,
    Match,
    Not,
    Page,
    RetentionPlan,
    RetentionResult,
    Store,
)

if TYPE_CHECKING:
    from soclite.config import Settings


#: the index whose order is each sort's order (see :meth:`SQLiteStore._alert_plan`).
_ALERT_SORT_INDEX = {
    "last_seen": "alerts_last",
    "first_seen": "alerts_first",
    "count": "alerts_count",
    "severity": "alerts_sev_rank",
}

_ALERT_COLUMNS = (
    "id, fingerprint, rule_id, rule_title, level, severity, sev_rank, status, closed, assignee, host, unit, "
    "first_seen, last_seen, count, kind, text, created_at, updated_at, closed_at, doc"
)
_ALERT_UPSERT = (
    f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * 21)}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{col}=excluded.{col}" for col in _ALERT_COLUMNS.split(", ")[1:])
)


log = logging.getLogger(__name__)


def _contains(haystack: str | None, needle: str) -> int:
    return 1 if haystack is not None and needle in haystack else 0




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


def _group_column(group_by: str) -> tuple[str, str]:
    """The SQL expression (and join) of a count_alerts/alert_histogram group.

    ``user`` and ``source_ip`` come from the matched event kept in the alert's JSON: no column, so
    no migration; the group is computed over the rows the filter selected (bounded by time in use).
    """
    if group_by == "tags":
        return "t.tag", "JOIN alert_tags t ON t.alert_id = a.id"
    if group_by in c.ALERT_EVENT_GROUPS:
        paths = [
            "nullif(nullif(CAST(json_extract(a.doc, '$.event.\"" + name + "\"') AS TEXT), ''), '-')"
            for name in c.ALERT_EVENT_GROUPS[group_by]
        ]
        return f"coalesce({', '.join(paths)})", ""
    return f"a.{group_by}", ""


class _Where:
    """A WHERE clause built from parts, with its parameters in order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        self.empty = False  # a scope that matches nothing (units=frozenset())

    def add(self, sql: str, *params: Any) -> None:
        self.parts.append(sql)
        self.params.extend(params)

    def any_of(self, column: str, values: Sequence[Any] | frozenset[str] | None) -> None:
        if values is None:
            return
        values = sorted({str(v) for v in values})
        if not values:
            self.empty = True
            return
        self.add(f"{column} IN ({', '.join('?' * len(values))})", *values)

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.parts)) if self.parts else ""


class SQLiteStore(Store):
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

    @property
    def events(self) -> EventPartitions:
        if self._events is None:
            raise StoreError(f"{self.path}: store is not open")
        return self._events

    @property
    def db(self) -> Database:
        if self._db is None:
            raise StoreError(f"{self.path}: store is not open")
        return self._db

    def _reader(self) -> sqlite3.Connection:
        conn = self.db.reader()
        if getattr(self._local, "registered", None) is not conn:
            conn.create_function("sl_contains", 2, _contains, deterministic=True)
            self._local.registered = conn
        return conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: query failed: {exc}") from exc

    #: at most this many cached count queries (a query, its filter and its scope each make one)
    COUNT_CACHE_SIZE = 512

    def alerts_version(self) -> int:
        """A number that moves whenever any process changes an alert or its tags (migration 5's triggers)."""
        return int(self._rows("SELECT version FROM alerts_version WHERE id = 1")[0][0])

    def _cached_rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """``_rows`` of an aggregate over the alerts, kept until the alerts change.

        A hundred analysts on the queue re-counted the same open alerts on every page and every live refresh
        (the count under the filters, the group panel, the histogram: ~40 ms of a ~70 ms page at 100,000
        alerts). The version is read before the query, so a result is never filed under a newer version than
        the data it saw: a change in between makes the next reader count again.
        """
        version = self.alerts_version()
        key = (sql, tuple(params))
        with self._counts_lock:
            hit = self._counts.get(key)
            if hit is not None and hit[0] == version:
                self._counts.move_to_end(key)
                return hit[1]
        rows = self._rows(sql, params)
        with self._counts_lock:
            self._counts[key] = (version, rows)
            self._counts.move_to_end(key)
            while len(self._counts) > self.COUNT_CACHE_SIZE:
                self._counts.popitem(last=False)
        return rows

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement over many rows in one transaction; return the rows changed."""
        try:
            with self.db.write() as conn:
                before = conn.total_changes
                conn.executemany(sql, rows)
                return conn.total_changes - before
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: write of {len(rows)} rows failed, nothing stored: {exc}") from exc

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
        where = _Where()
        where.any_of("id", list(query.ids))
        where.any_of("unit", query.units)
        if where.empty:
            return []
        rows = self._rows(f"SELECT doc FROM matched_events {where.sql()}", where.params)
        return [orjson.loads(row["doc"]) for row in rows]

    def _event_where(self, query: EventQuery, text_sql: TextSql = _scan_text) -> _Where:
        where = _Where()
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

    def _by_ids(self, query: EventQuery, where: _Where) -> Page[Event]:
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

    # --- alerts ----------------------------------------------------------
    @staticmethod
    def _alert_row(alert: Alert) -> tuple[Any, ...]:
        text = c.alert_text(alert)
        return (
            alert.id,
            alert.fingerprint,
            alert.rule_id,
            alert.rule_title,
            str(alert.level),
            str(alert.severity),
            c.SEVERITY_RANK.get(str(alert.severity), 0),
            str(alert.status),
            1 if alert.status in ("resolved", "false_positive") else 0,
            alert.assignee,
            alert.host.lower() if alert.host else None,
            alert.unit,
            isoformat(alert.first_seen),
            isoformat(alert.last_seen),
            alert.count,
            alert.kind,
            text,
            isoformat(alert.created_at),
            isoformat(alert.updated_at),
            c.iso(alert.closed_at),
            _alerts.alert_doc(alert),
        )

    def put_alert(self, alert: Alert) -> Alert:
        self.put_alerts([alert])
        return alert

    def put_alerts(self, alerts: Sequence[Alert]) -> int:
        if not alerts:
            return 0
        rows = [self._alert_row(alert) for alert in alerts]
        tags = [(alert.id, tag) for alert in alerts for tag in dict.fromkeys(alert.tags)]
        ids = [(alert.id,) for alert in alerts]
        try:
            with self.db.write() as conn:
                conn.executemany(_ALERT_UPSERT, rows)
                conn.executemany("DELETE FROM alert_tags WHERE alert_id = ?", ids)
                conn.executemany("INSERT OR IGNORE INTO alert_tags (alert_id, tag) VALUES (?, ?)", tags)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.path}: write of {len(alerts)} alerts failed, nothing stored: {exc}"
            ) from exc
        return len(alerts)

    def record_repeats(self, repeats: Sequence[AlertRepeat]) -> list[Alert]:
        """All repeats in one transaction, each a read-modify-write under the write lock (see _sqlite_alerts)."""
        if not repeats:
            return []
        try:
            with self.db.write() as conn:
                return _alerts.record_repeats(conn, repeats)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.path}: repeats of {len(repeats)} alerts failed, nothing stored: {exc}"
            ) from exc

    def update_alert_fields(
        self, alert_id: str, fields: FieldChange, units: frozenset[str] | None = None
    ) -> Alert:
        try:
            with self.db.write() as conn:
                return _alerts.update_fields(conn, alert_id, fields, units)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: update of alert {alert_id!r} failed, nothing stored: {exc}") from exc

    @staticmethod
    def _to_alert(doc: str) -> Alert:
        return Alert.model_validate_json(doc)

    def get_alert(self, alert_id: str, units: frozenset[str] | None = None) -> Alert:
        rows = self._rows("SELECT unit, doc FROM alerts WHERE id = ?", [alert_id])
        if not rows or (units is not None and rows[0]["unit"] not in units):
            raise NotFoundError(f"alert {alert_id!r} not found")
        return self._to_alert(rows[0]["doc"])

    def find_open_alert(self, fingerprint: str, since: datetime) -> Alert | None:
        rows = self._rows(
            "SELECT doc FROM alerts WHERE fingerprint = ? AND last_seen >= ? AND closed = 0 "
            "ORDER BY last_seen DESC, rowid DESC LIMIT 1",
            [fingerprint, isoformat(since)],
        )
        return self._to_alert(rows[0]["doc"]) if rows else None

    def _alert_where(self, query: AlertQuery, prefix: str = "") -> _Where:
        p = prefix
        where = _Where()
        where.any_of(f"{p}unit", query.units)
        where.any_of(f"{p}severity", query.severity)
        where.any_of(f"{p}level", query.level)
        where.any_of(f"{p}status", query.status)
        if query.ids is not None:
            where.any_of(f"{p}id", list(query.ids))
        for column, value in (
            ("rule_id", query.rule_id),
            ("assignee", query.assignee),
            ("fingerprint", query.fingerprint),
            ("host", query.host.lower() if query.host else None),
        ):
            if value is not None:
                where.add(f"{p}{column} = ?", value)
        if query.start:
            where.add(f"{p}last_seen >= ?", isoformat(query.start))
        if query.end:
            where.add(f"{p}last_seen < ?", isoformat(query.end))
        if query.q:
            where.add(f"sl_contains({p}text, ?)", query.q.casefold())
        return where

    def query_alerts(self, query: AlertQuery) -> Page[Alert]:
        where = self._alert_where(query)
        if where.empty:
            return Page(total=0, items=[])
        total = int(self._cached_rows(f"SELECT count(*) FROM alerts {where.sql()}", where.params)[0][0])
        keys = (*c.ALERT_SORT[query.sort], "rowid")
        direction = "DESC" if query.order == "desc" else "ASC"
        if query.cursor:
            after = c.decode_cursor(query.cursor, len(keys))
            cmp = "<" if query.order == "desc" else ">"
            where.add(f"({', '.join(keys)}) {cmp} ({', '.join('?' * len(keys))})", *after)
        order = ", ".join(f"{key} {direction}" for key in keys)
        rows = self._rows(
            f"SELECT {', '.join(keys)}, doc FROM alerts {self._alert_plan(query, total)} {where.sql()} "
            f"ORDER BY {order} LIMIT ?",
            [*where.params, query.limit + 1],
        )
        items = [self._to_alert(row["doc"]) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        cursor = c.encode_cursor([rows[query.limit - 1][key] for key in keys]) if more else None
        return Page(total=total, items=items, next=cursor)

    def _alert_plan(self, query: AlertQuery, total: int) -> str:
        """Read a page of a *large* match set straight off the sort-key index.

        SQLite's planner prefers the index of the equality filter (``unit IN (...)``) and then sorts
        every match: 65,000 rows for two units at 1M alerts (~50 ms). When the matches are a sizeable
        share of the table, walking the index in sort order finds ``limit`` of them after about
        ``limit * rows / total`` steps instead; the count just taken tells which case this is.
        """
        rows = self._approx_alert_rows()
        if total >= max(2000, rows // 50):
            return f"INDEXED BY {_ALERT_SORT_INDEX[query.sort]}"
        return ""

    def _approx_alert_rows(self) -> int:
        # Rowids only grow (upserts keep them), so the largest one bounds the row count for free.
        return int(self._rows("SELECT coalesce(max(rowid), 0) FROM alerts")[0][0])

    def count_alerts(self, query: AlertQuery, group_by: str | None = None) -> dict[str, int]:
        c.check_group(group_by)
        where = self._alert_where(query, prefix="a.")
        if where.empty:
            return {"total": 0} if group_by is None else {}
        if group_by is None:
            rows = self._cached_rows(f"SELECT count(*) FROM alerts a {where.sql()}", where.params)
            return {"total": int(rows[0][0])}
        rows = self._cached_rows(*self.group_count_sql(query, group_by, where))
        return {str(row["k"]) if row["k"] is not None else "": int(row["n"]) for row in rows}

    #: the (status, column) indexes of migration 4, by group
    _STATUS_GROUP_INDEX = {"rule_id": "alerts_status_rule", "host": "alerts_status_host", "unit": "alerts_status_unit"}

    def group_count_sql(self, query: AlertQuery, group_by: str, where: _Where | None = None) -> tuple[str, list[Any]]:
        """The SQL of ``count_alerts(query, group_by)`` (tests read its plan).

        The queue's default view, open alerts of every unit grouped by rule, host or unit, names its
        (status, column) index: ANALYZE's sampled statistics make every status look rare, and the planner
        then walked alerts_status and read each open alert's row and document (650 ms at 100,000 alerts
        instead of 55; bench/api.py --concurrency), or alerts_rule and every row on a small store.
        """
        where = where or self._alert_where(query, prefix="a.")
        column, join = _group_column(group_by)
        others = (query.host, query.q, query.start, query.end, query.units, query.severity, query.level,
                  query.rule_id, query.assignee, query.fingerprint, query.ids)
        hint = ""
        if query.status and group_by in self._STATUS_GROUP_INDEX and all(v is None for v in others):
            hint = f" INDEXED BY {self._STATUS_GROUP_INDEX[group_by]}"
        sql = f"SELECT {column} AS k, count(*) AS n FROM alerts a{hint} {join} {where.sql()} GROUP BY k ORDER BY n DESC"
        return sql, where.params

    def alert_histogram(
        self,
        query: AlertQuery,
        interval: Literal["hour", "day", "month"],
        group_by: str = "severity",
        tz: ZoneInfo | None = None,
    ) -> list[HistogramBucket]:
        """Alerts per hour/day/month of ``last_seen`` (the field the query's time range filters).

        Stored times are UTC text, so SQL groups them by a UTC prefix. For local days or months the
        prefix is the UTC hour (minute, in a zone with half-hour offsets) and Python sums those
        into the local buckets: at most 24 rows per day and value, whatever the alert count.
        """
        c.check_group(group_by)
        if interval not in c.BUCKET_PREFIX:
            raise StoreError(f"unknown histogram interval {interval!r}; known: hour, day, month")
        where = self._alert_where(query, prefix="a.")
        if where.empty:
            return []
        local = tz is not None and interval != "hour" and tz.key != "UTC"
        width, unit = c.BUCKET_PREFIX[interval], str(interval)
        if local:
            width, unit = c.BUCKET_PREFIX["hour"], "hour"
            if tz is not None and not self._whole_hours(query, tz):
                width, unit = c.MINUTE_PREFIX, "minute"
        column, join = _group_column(group_by)
        rows = self._cached_rows(
            f"SELECT substr(a.last_seen, 1, {width}) AS b, {column} AS k, count(*) AS n "
            f"FROM alerts a {join} {where.sql()} GROUP BY b, k ORDER BY b",
            where.params,
        )
        fine = [
            (c.bucket_start(row["b"], unit), str(row["k"]) if row["k"] is not None else "", int(row["n"]))
            for row in rows
        ]
        return c.regroup_local(fine, interval, tz if local and tz is not None else ZoneInfo("UTC"))

    #: the alerts' first and last ``last_seen``: one subquery each, since SQLite reads min() or max() from the
    #: index only when it is the query's sole aggregate (both in one SELECT scanned every alert: 29 ms at
    #: 100,000 alerts on each queue page; bench/api.py --concurrency)
    ALERT_TIME_BOUNDS = "SELECT (SELECT min(last_seen) FROM alerts), (SELECT max(last_seen) FROM alerts)"

    def _whole_hours(self, query: AlertQuery, tz: ZoneInfo) -> bool:
        if query.start is not None and query.end is not None:  # the queue's chart: bounded, nothing to read
            return whole_hour_offsets(tz, query.start, query.end)
        bounds = self._rows(self.ALERT_TIME_BOUNDS)[0]
        if bounds[0] is None:
            return True
        start = query.start or parse_timestamp(bounds[0])
        end = query.end or parse_timestamp(bounds[1])
        return whole_hour_offsets(tz, start, end)

    # --- hosts and units ---------------------------------------------------
    def put_host(self, host: Host) -> Host:
        self._write(_hosts.UPSERT, [_hosts.host_row(host)])
        return host

    def update_host(
        self,
        host_id: str,
        changes: HostChange,
        *,
        units: frozenset[str] | None = None,
        create: Host | None = None,
    ) -> Host:
        """One read-modify-write under the write lock (see _sqlite_hosts)."""
        try:
            with self.db.write() as conn:
                return _hosts.update_host(conn, host_id, changes, units, create)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: update of host {host_id!r} failed, nothing stored: {exc}") from exc

    def touch_hosts(self, seen: Mapping[str, datetime], *, create: Mapping[str, Host] | None = None) -> list[Host]:
        """Every host in one transaction, each read and written under the write lock."""
        if not seen:
            return []
        try:
            with self.db.write() as conn:
                return _hosts.touch_hosts(conn, seen, create or {})
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: last_seen of {len(seen)} hosts failed, nothing stored: {exc}") from exc

    def get_host(self, host_id: str, units: frozenset[str] | None = None) -> Host:
        rows = self._rows("SELECT unit, doc FROM hosts WHERE id = ?", [host_id])
        if not rows or (units is not None and rows[0]["unit"] not in units):
            raise NotFoundError(f"host {host_id!r} not found")
        return Host.model_validate_json(rows[0]["doc"])

    def find_host(self, name: str) -> Host | None:
        key = name.lower()
        rows = self._rows(
            "SELECT doc FROM hosts WHERE id = ? OR name_key = ? OR agent_id = ? "
            "ORDER BY (id = ?) DESC, (name_key = ?) DESC LIMIT 1",
            [key, key, name, key, key],
        )
        return Host.model_validate_json(rows[0]["doc"]) if rows else None

    def query_hosts(self, query: HostQuery) -> Page[Host]:
        where = _Where()
        where.any_of("unit", query.units)
        if where.empty:
            return Page(total=0, items=[])
        if query.type:
            where.add("type = ?", query.type)
        if query.q:
            where.add("sl_contains(text, ?)", query.q.casefold())
        total = int(self._rows(f"SELECT count(*) FROM hosts {where.sql()}", where.params)[0][0])
        if query.cursor:
            where.add("id > ?", c.decode_cursor(query.cursor, 1, (str,))[0])
        rows = self._rows(
            f"SELECT id, doc FROM hosts {where.sql()} ORDER BY id LIMIT ?", [*where.params, query.limit + 1]
        )
        items = [Host.model_validate_json(row["doc"]) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(
            total=total, items=items, next=c.encode_cursor([rows[query.limit - 1]["id"]]) if more else None
        )

    def put_unit(self, unit: Unit) -> Unit:
        self._write(
            "INSERT INTO units (code, parent, doc) VALUES (?, ?, ?) "
            "ON CONFLICT(code) DO UPDATE SET parent=excluded.parent, doc=excluded.doc",
            [(unit.code, unit.parent, unit.model_dump_json())],
        )
        return unit

    def delete_unit(self, code: str) -> bool:
        return self._write("DELETE FROM units WHERE code = ?", [(code,)]) > 0

    def list_units(self) -> list[Unit]:
        return [
            Unit.model_validate_json(row["doc"]) for row in self._rows("SELECT doc FROM units ORDER BY code")
        ]

    # --- audit -------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Seq, prev_hash and hash are computed inside the write transaction: the chain cannot fork."""
        try:
            with self.db.write() as conn:
                last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                stored = entry.model_copy(
                    update={
                        "seq": (last["seq"] + 1) if last else 1,
                        "prev_hash": last["hash"] if last else "",
                    }
                )
                stored.hash = stored.compute_hash()
                conn.execute(
                    "INSERT INTO audit (seq, at, actor, action, target, unit, prev_hash, hash, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        stored.seq,
                        isoformat(stored.at),
                        stored.actor,
                        stored.action,
                        stored.target,
                        stored.unit,
                        stored.prev_hash,
                        stored.hash,
                        stored.model_dump_json(),
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: audit append failed: {exc}") from exc
        return stored

    def list_audit(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        where = _Where()
        if start:
            where.add("at >= ?", isoformat(start))
        if end:
            where.add("at < ?", isoformat(end))
        total = int(self._rows(f"SELECT count(*) FROM audit {where.sql()}", where.params)[0][0])
        if cursor:
            where.add("seq < ?", c.decode_cursor(cursor, 1, (int,))[0])
        rows = self._rows(
            f"SELECT seq, doc FROM audit {where.sql()} ORDER BY seq DESC LIMIT ?", [*where.params, limit + 1]
        )
        items = [AuditEntry.model_validate_json(row["doc"]) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(
            total=total, items=items, next=c.encode_cursor([rows[limit - 1]["seq"]]) if more else None
        )

    def iter_audit(self) -> Iterator[AuditEntry]:
        seq = 0
        while True:
            rows = self._rows("SELECT seq, doc FROM audit WHERE seq > ? ORDER BY seq LIMIT 1000", [seq])
            if not rows:
                return
            for row in rows:
                yield AuditEntry.model_validate_json(row["doc"])
            seq = rows[-1]["seq"]
