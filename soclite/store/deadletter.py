"""Dead letters: input that could not become an event, kept with the reason and the raw bytes.

Nothing is dropped silently: a malformed syslog line, JSON line, EVTX record or pcap
lands here (in the journal's database, see :mod:`soclite.store.journal`), and an operator
lists it with ``soclite deadletter list`` or ``GET /api/v1/deadletters``.

Retention: dead letters come from unauthenticated inputs too (syslog), so they cannot be
kept forever in a bounded journal. :meth:`Journal.compact` deletes those older than
``journal.deadletter_days`` and, past ``journal.deadletter_max_bytes``, the oldest first
(counted, and reported by /health); ``soclite deadletter purge`` deletes them by hand.
"""

from __future__ import annotations

import base64
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from soclite.db import Database

#: the bytes one dead letter is counted for (its payload plus a row's overhead); append estimates the same
ROW_BYTES = "(length(raw) + length(reason) + length(source) + 64)"


def row_bytes(source: str, reason: str, raw: bytes) -> int:
    """What :data:`ROW_BYTES` gives for a row about to be written (for the journal's running total)."""
    return len(raw) + len(reason) + len(source) + 64


def stamp(when: datetime) -> str:
    """A time as the ``at`` column holds it (UTC, second precision): text that sorts like time."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def measure(conn: sqlite3.Connection, after_id: int = 0) -> tuple[int, int]:
    """(bytes, highest id) of the dead letters with id > ``after_id`` (a range of the primary key)."""
    row = conn.execute(
        f"SELECT coalesce(sum({ROW_BYTES}), 0), coalesce(max(id), ?) FROM deadletters WHERE id > ?",
        (after_id, after_id),
    ).fetchone()
    return int(row[0]), int(row[1])


def disk_bytes(conn: sqlite3.Connection) -> int | None:
    """Bytes of the pages the dead letters and their indexes occupy (None without SQLite's dbstat).

    Rows are packed into pages with some space left over, so this is more than the rows' own sizes;
    the journal subtracts it from the file's live pages to bound the events alone. Reads every page of
    those b-trees (bounded by the cap): done when the journal measures itself, not per append.
    """
    try:
        row = conn.execute(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat('main', 1) "
            "WHERE name IN ('deadletters', 'deadletters_unit', 'deadletters_at')"
        ).fetchone()
    except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        return None
    return int(row[0])


def expire(conn: sqlite3.Connection, before: str) -> tuple[int, int]:
    """Delete those written before ``before`` (a :func:`stamp`); return (rows, bytes) deleted."""
    row = conn.execute(
        f"SELECT count(*), coalesce(sum({ROW_BYTES}), 0) FROM deadletters WHERE at < ?", (before,)
    ).fetchone()
    if not row[0]:
        return 0, 0
    conn.execute("DELETE FROM deadletters WHERE at < ?", (before,))
    return int(row[0]), int(row[1])


def evict_oldest(conn: sqlite3.Connection, excess: int) -> tuple[int, int]:
    """Delete the oldest dead letters whose sizes add up to at least ``excess``; return (rows, bytes)."""
    if excess <= 0:
        return 0, 0
    row = conn.execute(
        f"SELECT id, acc FROM (SELECT id, sum({ROW_BYTES}) OVER (ORDER BY id) AS acc FROM deadletters) "
        "WHERE acc >= ? ORDER BY id LIMIT 1",
        (excess,),
    ).fetchone()
    if row is None:  # less than the excess in all: everything goes
        row = conn.execute(f"SELECT max(id), coalesce(sum({ROW_BYTES}), 0) FROM deadletters").fetchone()
        if row[0] is None:
            return 0, 0
    cut, freed = int(row[0]), int(row[1])
    deleted = conn.execute("DELETE FROM deadletters WHERE id <= ?", (cut,)).rowcount
    return int(deleted), freed


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

    def purge(self, before: datetime | None = None) -> int:
        """Delete dead letters written before ``before`` (all of them without it); return how many."""
        with self.db.write() as conn:
            if before is None:
                return int(conn.execute("DELETE FROM deadletters").rowcount)
            return expire(conn, stamp(before))[0]

    def count(self, scope: frozenset[str] | None = None) -> int:
        where, params = self._scope_sql(scope)
        query = "SELECT count(*) FROM deadletters" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self.db.reader().execute(query, params).fetchone()[0])
