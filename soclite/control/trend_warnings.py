"""Rises flagged by statistical trend detection, kept for the UI's notification centre (issue 17).

The hourly pass (:func:`soclite.reports.trends.notify_trends`) records each rise once (its id names the
source, dimension, key and hour) whether or not anyone is e-mailed; the notification centre lists the last
day's. A rise belongs to a unit when its dimension is a unit, or a host whose unit is known: a unit-bound
user sees those of its units; province-wide rises (all alerts, a rule) are shown to province-wide users only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from soclite.db import Database
from soclite.models import isoformat, utcnow


class TrendWarnings:
    """The ``trend_warnings`` table of control.db."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *, source: str, dimension: str, key: str, unit: str | None, hour: datetime, observed: int,
               median: float, threshold: float) -> bool:
        """True the first time a rise is recorded."""
        warning_id = f"{source}:{dimension}:{key}:{isoformat(hour)}"
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO trend_warnings (id, source, dimension, key, unit, hour, observed, median, "
                "threshold, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (warning_id, source, dimension, key, unit, isoformat(hour), observed, median, threshold,
                 isoformat(utcnow())))
            return bool(cur.rowcount)

    def since(self, start: datetime, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        """Rises of hours from ``start``, visible in ``scope``, newest first."""
        rows = self.db.reader().execute(
            "SELECT * FROM trend_warnings WHERE hour >= ? ORDER BY hour DESC, observed - median DESC",
            (isoformat(start),)).fetchall()
        return [dict(r) for r in rows if scope is None or (r["unit"] is not None and r["unit"] in scope)]


__all__ = ["TrendWarnings"]
