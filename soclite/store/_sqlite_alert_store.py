"""The alert tables of the SQLite store: writes, triage updates, queries, counts, histograms and their cache.

The field-level read-modify-writes themselves are in :mod:`._sqlite_alerts`; the layout of the alert
rows and why their indexes end in ``last_seen`` is told in :mod:`soclite.store.sqlite`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from soclite.errors import NotFoundError, StoreError
from soclite.models import Alert, isoformat, parse_timestamp
from soclite.sitetime import whole_hour_offsets
from soclite.store import _common as c
from soclite.store import _sqlite_alerts as _alerts
from soclite.store._sqlite_base import SQLiteBase, Where
from soclite.store.base import AlertQuery, AlertRepeat, FieldChange, HistogramBucket, Page

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


class SQLiteAlerts(SQLiteBase):
    """The alert methods of :class:`~soclite.store.sqlite.SQLiteStore`."""

    #: (sql, params) → (alerts version, rows) of the alert counts, groups and histograms (see _cached_rows)
    _counts: OrderedDict[tuple[str, tuple[Any, ...]], tuple[int, list[sqlite3.Row]]]
    _counts_lock: threading.Lock

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

    def _alert_where(self, query: AlertQuery, prefix: str = "") -> Where:
        p = prefix
        where = Where()
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

    def group_count_sql(self, query: AlertQuery, group_by: str, where: Where | None = None) -> tuple[str, list[Any]]:
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
