"""Field-level alert updates of the SQLite store, each a read-modify-write under the write lock.

Both run inside one ``BEGIN IMMEDIATE`` transaction (the caller's :meth:`Database.write`): the
write lock is taken *before* the read, so no other writer (the API process, the pipeline
process) can land between the read and the write. Each writes only the columns it owns plus the
JSON document, rebuilt from the row read under the lock, so the other writer's fields stay as stored.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

import orjson

from soclite.errors import NotFoundError
from soclite.models import Alert, isoformat
from soclite.store import _common as c
from soclite.store.base import TRIAGE_FIELDS, AlertRepeat, FieldChange

log = logging.getLogger(__name__)


def alert_doc(alert: Alert) -> str:
    # warnings=False: a caller's model_copy(update={"status": "resolved"}) holds a str, still valid JSON.
    return orjson.dumps(alert.model_dump(mode="json", warnings=False)).decode("utf-8")


def record_repeats(conn: sqlite3.Connection, repeats: Sequence[AlertRepeat]) -> list[Alert]:
    """Detection columns (count, first/last seen, updated_at, search text) and the doc; triage columns untouched."""
    stored: dict[str, Alert] = {}
    for repeat in repeats:
        row = conn.execute("SELECT doc, text FROM alerts WHERE id = ?", (repeat.id,)).fetchone()
        if row is None:
            log.warning("repeat of alert %s dropped: no such alert", repeat.id)
            continue
        alert = stored.get(repeat.id) or Alert.model_validate_json(row["doc"])
        if c.apply_repeat(alert, repeat):
            conn.execute(
                "UPDATE alerts SET count = ?, first_seen = ?, last_seen = ?, updated_at = ?, text = ?, doc = ? "
                "WHERE id = ?",
                (
                    alert.count,
                    isoformat(alert.first_seen),
                    isoformat(alert.last_seen),
                    isoformat(alert.updated_at),
                    c.merge_text(row["text"] or "", repeat.texts),
                    alert_doc(alert),
                    alert.id,
                ),
            )
        stored[alert.id] = alert
    return list(stored.values())


def update_fields(
    conn: sqlite3.Connection, alert_id: str, fields: FieldChange, units: frozenset[str] | None
) -> Alert:
    """Triage columns (status, closed, assignee, updated_at, closed_at) and the doc; counts untouched."""
    row = conn.execute("SELECT unit, doc FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None or (units is not None and row["unit"] not in units):
        raise NotFoundError(f"alert {alert_id!r} not found")
    current = Alert.model_validate_json(row["doc"])
    alert = c.apply_fields(current, fields, TRIAGE_FIELDS)
    if alert is None:
        return current
    conn.execute(
        "UPDATE alerts SET status = ?, closed = ?, assignee = ?, updated_at = ?, closed_at = ?, doc = ? "
        "WHERE id = ?",
        (
            str(alert.status),
            1 if alert.status in ("resolved", "false_positive") else 0,
            alert.assignee,
            isoformat(alert.updated_at),
            c.iso(alert.closed_at),
            alert_doc(alert),
            alert.id,
        ),
    )
    return alert
