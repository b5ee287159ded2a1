"""What the periodic reports need from the outbox's past: connector outages and IoC receipt times.

The outbox keeps *current* state (``connector_state``: last success, last error); a report on a past
month needs the *history*: when the national connector went down and came back, and when each
indicator arrived. Both are appended by the outbox in the same transaction as the state they explain
(``connector_events``, ``ioc_received``; migration 2 of :mod:`playbooks.outbox`), and read here.

A transition is recorded only when the state changes: the first failure after a success marks the
connector ``down`` (at the failure's time), the next success marks it ``up``. Downtime in a window is
the time spent ``down`` inside it; a connector still down counts up to ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soclite.models import isoformat

MIGRATION = """
CREATE TABLE connector_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX connector_events_name ON connector_events(name, at);
CREATE TABLE ioc_received (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    list TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    source_id TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX ioc_received_at ON ioc_received(received_at);
"""


@dataclass(frozen=True)
class ConnectorEvent:
    name: str
    at: str
    state: str  # "up" | "down"
    detail: str | None


def record_transition(conn: Any, name: str, state: str, at: str, detail: str | None) -> bool:
    """Append ``state`` for connector ``name`` unless it is already its last state; return whether it did."""
    last = conn.execute(
        "SELECT state FROM connector_events WHERE name = ? ORDER BY id DESC LIMIT 1", (name,)
    ).fetchone()
    if last is not None and last[0] == state:
        return False
    conn.execute(
        "INSERT INTO connector_events (name, at, state, detail) VALUES (?, ?, ?, ?)",
        (name, at, state, (detail or "")[:500] or None),
    )
    return True


def events(reader: Any, name: str) -> list[ConnectorEvent]:
    rows = reader.execute(
        "SELECT name, at, state, detail FROM connector_events WHERE name = ? ORDER BY id", (name,)
    )
    return [ConnectorEvent(r[0], r[1], r[2], r[3]) for r in rows]


def downtime_seconds(
    history: list[ConnectorEvent], start: datetime, end: datetime, now: datetime
) -> tuple[float, int]:
    """Seconds spent ``down`` within [start, min(end, now)) and the number of outages touching it."""
    stop = min(end, now)
    if stop <= start:
        return 0.0, 0
    total = 0.0
    outages = 0
    down_since: datetime | None = None
    for event in history:
        at = datetime.fromisoformat(event.at.replace("Z", "+00:00"))
        if event.state == "down" and down_since is None:
            down_since = at
        elif event.state == "up" and down_since is not None:
            seconds = _overlap(down_since, at, start, stop)
            if seconds > 0 or start <= down_since < stop:
                outages += 1
            total += seconds
            down_since = None
    if down_since is not None:
        seconds = _overlap(down_since, stop, start, stop)
        if seconds > 0 or start <= down_since < stop:
            outages += 1
        total += seconds
    return total, outages


def _overlap(a: datetime, b: datetime, start: datetime, stop: datetime) -> float:
    return max(0.0, (min(b, stop) - max(a, start)).total_seconds())


def record_received(conn: Any, list_name: str, kind: str, value: str, source_id: str | None, at: str) -> None:
    conn.execute(
        "INSERT INTO ioc_received (list, kind, value, source_id, received_at) VALUES (?, ?, ?, ?, ?)",
        (list_name, kind, value, source_id, at),
    )


def received_between(reader: Any, start: datetime, end: datetime, prefix: str = "national:") -> int:
    """Indicators newly stored in lists named ``prefix…`` with a receipt time in [start, end)."""
    row = reader.execute(
        "SELECT count(*) FROM ioc_received WHERE substr(list, 1, ?) = ? AND received_at >= ? AND received_at < ?",
        (len(prefix), prefix, isoformat(start), isoformat(end)),
    ).fetchone()
    return int(row[0])


def succeeded_between(reader: Any, action: str, start: datetime, end: datetime) -> int:
    """Rows of ``action`` whose success was recorded in [start, end) (the time it was sent, not asked)."""
    row = reader.execute(
        "SELECT count(DISTINCT h.action_id) FROM action_history h JOIN actions a ON a.id = h.action_id"
        " WHERE a.action = ? AND h.status = 'succeeded' AND h.at >= ? AND h.at < ?",
        (action, isoformat(start), isoformat(end)),
    ).fetchone()
    return int(row[0])
