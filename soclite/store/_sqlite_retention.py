"""Retention per host and unit on the embedded store (issue 17): day files, matched events, alerts.

The day files (:meth:`EventPartitions.apply_plan`) are dropped whole where no event in them is still
protected by a keep clause, else trimmed by host and unit; the events alerts matched and the alerts
(by ``last_seen``) follow the same clauses in events.db, in one transaction. Long-retention hosts'
events stay in their day's file rather than a separate one: queries, the archive and hunts keep one
layout, and a host whose level changes needs no move.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from soclite.errors import StoreError
from soclite.models import isoformat
from soclite.store.base import RetentionPlan, RetentionResult

if TYPE_CHECKING:
    from soclite.store.sqlite import SQLiteStore


def apply_sqlite_retention(store: SQLiteStore, plan: RetentionPlan) -> RetentionResult:
    """Day files dropped or trimmed by host/unit (``EventPartitions.apply_plan``), then the matched
    events and the alerts (by ``last_seen``) the plan does not keep, in one transaction."""
    keep = [(k.since, k.hosts, k.units) for k in plan.keep]
    events, dropped, trimmed = store.events.apply_plan(plan.before, keep)
    before = isoformat(plan.before)
    alert_sql, match_sql, alert_params, match_params = [], [], [], []
    for since, hosts, units in keep:
        at = isoformat(since)
        if hosts:
            marks = ", ".join("?" for _ in hosts)
            alert_sql.append(f"(host IN ({marks}) AND last_seen >= ?)")
            match_sql.append(f"(lower(json_extract(doc, '$.\"host.name\"')) IN ({marks}) AND ts >= ?)")
            alert_params += [*sorted(hosts), at]
            match_params += [*sorted(hosts), at]
        if units:
            marks = ", ".join("?" for _ in units)
            alert_sql.append(f"(unit IN ({marks}) AND last_seen >= ?)")
            match_sql.append(f"(unit IN ({marks}) AND ts >= ?)")
            alert_params += [*sorted(units), at]
            match_params += [*sorted(units), at]
    try:
        with store.db.write() as conn:
            conn.execute(f"DELETE FROM matched_events WHERE ts < ? AND NOT ({' OR '.join(match_sql) or '0'})",
                         (before, *match_params))
            gone = [r[0] for r in conn.execute(
                f"SELECT id FROM alerts WHERE last_seen < ? AND NOT ({' OR '.join(alert_sql) or '0'})",
                (before, *alert_params))]
            for start in range(0, len(gone), 500):
                chunk = gone[start:start + 500]
                marks = ", ".join("?" for _ in chunk)
                conn.execute(f"DELETE FROM alert_tags WHERE alert_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM alerts WHERE id IN ({marks})", chunk)
    except sqlite3.Error as exc:
        raise StoreError(f"{store.path}: alert retention failed, nothing deleted: {exc}") from exc
    return RetentionResult(events=events, alerts=len(gone), days_dropped=dropped, days_trimmed=trimmed)
