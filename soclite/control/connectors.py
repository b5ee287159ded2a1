"""The national connector's up/down history in control.db: the outages the periodic reports count.

A mixin of :class:`~soclite.control.outbox.OutboxStore` (the connector's state row lives beside the
outbox's actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from soclite.db import Database
from soclite.models import isoformat


def _now_iso() -> str:
    return isoformat(datetime.now(UTC))


@dataclass(frozen=True)
class ConnectorEvent:
    name: str
    at: str
    state: str  # "up" | "down"
    detail: str | None


class ConnectorHistory:
    db: Database

    def connector_update(self, name: str, **fields: Any) -> None:
        """Record last_success/last_error/last_heartbeat/cursor; ``sent_increment`` adds to ``sent``.

        An error marks the connector down and a success (or ``reachable=True``) up, in its history."""
        increment = int(fields.pop("sent_increment", 0))
        #: True = the peer answered (e.g. refused one object): an error, but no outage
        reachable = fields.pop("reachable", None)
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO connector_state (name) VALUES (?)", (name,))
            # the outage history the reports compute downtime from
            if reachable is True:
                _record_transition(conn, name, "up", str(fields.get("last_error_at") or _now_iso()), None)
            elif fields.get("last_error"):
                at = str(fields.get("last_error_at") or _now_iso())
                _record_transition(conn, name, "down", at, str(fields["last_error"]))
            elif fields.get("last_success") or fields.get("last_heartbeat"):
                at = str(fields.get("last_success") or fields.get("last_heartbeat"))
                _record_transition(conn, name, "up", at, None)
            if fields:
                assignments = ", ".join(f"{key} = ?" for key in fields)
                conn.execute(
                    f"UPDATE connector_state SET {assignments} WHERE name = ?", (*fields.values(), name)
                )
            if increment:
                conn.execute("UPDATE connector_state SET sent = sent + ? WHERE name = ?", (increment, name))

    def connector_events(self, name: str) -> list[ConnectorEvent]:
        """Up/down transitions of connector ``name``, oldest first."""
        rows = self.db.reader().execute(
            "SELECT name, at, state, detail FROM connector_events WHERE name = ? ORDER BY id", (name,)
        )
        return [ConnectorEvent(r[0], r[1], r[2], r[3]) for r in rows]

    def connector_downtime(
        self, name: str, start: datetime, end: datetime, now: datetime | None = None
    ) -> tuple[float, int]:
        """Seconds the connector was down within [start, end) (up to ``now``) and how many outages."""
        return downtime_seconds(self.connector_events(name), start, end, now or datetime.now(UTC))


def _record_transition(conn: Any, name: str, state: str, at: str, detail: str | None) -> bool:
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
