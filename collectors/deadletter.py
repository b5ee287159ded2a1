"""Dead letters: input that could not become an event, kept with the reason and the raw bytes.

Nothing is dropped silently: a malformed syslog line, JSON line, EVTX record or pcap
lands here (in the journal's database, see :mod:`collectors.journal`), and an operator
lists it with ``soclite deadletter list`` or ``GET /api/v1/deadletters``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from soclite.db import Database


@dataclass(frozen=True)
class DeadLetter:
    id: int
    at: str
    source: str
    reason: str
    raw: bytes
    unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        text = self.raw.decode("utf-8", "replace")
        return {"id": self.id, "at": self.at, "source": self.source, "reason": self.reason, "raw": text,
                "unit": self.unit,
                "raw_base64": base64.b64encode(self.raw).decode("ascii")}  # fmt: skip


class DeadLetters:
    """Over a journal database (``Journal.db``); the table is created by the journal's migrations."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, source: str, reason: str, raw: bytes, unit: str | None = None) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.db.write() as conn:
            conn.execute("INSERT INTO deadletters (at, source, reason, raw, unit) VALUES (?, ?, ?, ?, ?)",
                         (stamp, source, reason, raw, unit))

    @staticmethod
    def _scope_sql(scope: frozenset[str] | None) -> tuple[list[str], list[Any]]:
        """WHERE parts for a caller's unit scope: None = everything; a set = only those units (never NULL rows)."""
        if scope is None:
            return [], []
        if not scope:
            return ["0"], []
        return [f"unit IN ({', '.join('?' for _ in scope)})"], sorted(scope)

    def list(
        self, limit: int = 100, cursor: int | None = None, scope: frozenset[str] | None = None
    ) -> tuple[list[DeadLetter], int | None]:
        """Newest first; ``cursor`` is the id to continue below. Returns the page and the next cursor.

        ``scope`` (unit codes) limits the page to dead letters sent from those units.
        """
        where, params = self._scope_sql(scope)
        if cursor is not None:
            where.append("id < ?")
            params.append(cursor)
        query = "SELECT id, at, source, reason, raw, unit FROM deadletters"
        if where:
            query += " WHERE " + " AND ".join(where)
        rows = self.db.reader().execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit + 1)).fetchall()
        items = [DeadLetter(int(r[0]), r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows[:limit]]
        return items, (items[-1].id if len(rows) > limit else None)

    def count(self, scope: frozenset[str] | None = None) -> int:
        where, params = self._scope_sql(scope)
        query = "SELECT count(*) FROM deadletters" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self.db.reader().execute(query, params).fetchone()[0])
