"""The agent's durable spool: batches waiting for the server, and the source offsets they cover.

One SQLite file (state_dir/spool.db). Putting a batch and advancing its source's
offset happen in one transaction, so after any crash either both happened (the
batch will be sent) or neither did (the lines will be read again and form the
same batch, with the same id). The server acknowledging a batch deletes it.

The spool is bounded: when a new batch would pass ``max_bytes``, the oldest
batches are evicted (never the new one: recent events matter most during an
incident) and their line count is added to ``dropped``, reported in the next
heartbeat so the loss is visible centrally.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from soclite.db import Database

MIGRATIONS = [
    """
    CREATE TABLE batches (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        lines INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE offsets (
        source TEXT PRIMARY KEY,
        inode INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 0,
        cursor TEXT
    );
    CREATE TABLE rejected (
        seq INTEGER PRIMARY KEY,
        batch_id TEXT NOT NULL,
        source TEXT NOT NULL,
        lines INTEGER NOT NULL,
        reason TEXT NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
]


@dataclass(frozen=True)
class Offset:
    """Where a source was read up to: a file's inode and byte position, or journald's cursor."""

    inode: int = 0
    position: int = 0
    #: bumped on every truncation, so the same (inode, start, end) after a truncation is a new batch id
    generation: int = 0
    cursor: str | None = None


@dataclass(frozen=True)
class SpooledBatch:
    seq: int
    batch_id: str
    source: str
    lines: int
    body: bytes


class Spool:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.db = Database(path, MIGRATIONS, name="agent-spool")
        self.max_bytes = max_bytes

    def close(self) -> None:
        self.db.close()

    # --- offsets ---------------------------------------------------------------
    def offset(self, source: str) -> Offset | None:
        row = (
            self.db.reader()
            .execute("SELECT inode, position, generation, cursor FROM offsets WHERE source = ?", (source,))
            .fetchone()
        )
        if row is None:
            return None
        return Offset(row["inode"], row["position"], row["generation"], row["cursor"])

    def set_offset(self, source: str, offset: Offset) -> None:
        """Record a position without a batch (a rotation switch or a start at the end of a file)."""
        with self.db.write() as conn:
            self._upsert_offset(conn, source, offset)

    @staticmethod
    def _upsert_offset(conn: sqlite3.Connection, source: str, offset: Offset) -> None:
        conn.execute(
            "INSERT INTO offsets (source, inode, position, generation, cursor) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(source) DO UPDATE SET inode = excluded.inode, position = excluded.position, "
            "generation = excluded.generation, cursor = excluded.cursor",
            (source, offset.inode, offset.position, offset.generation, offset.cursor),
        )

    # --- batches ----------------------------------------------------------------
    def put(self, batch_id: str, source: str, lines: int, body: bytes, offset: Offset) -> int:
        """Store a batch and its source's new offset atomically; return lines evicted to make room."""
        evicted = 0
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone() is not None:
                # Already spooled (a crash between put and the caller noticing): only move the offset.
                self._upsert_offset(conn, source, offset)
                return 0
            used = int(conn.execute("SELECT coalesce(sum(length(body)), 0) FROM batches").fetchone()[0])
            while used + len(body) > self.max_bytes:
                oldest = conn.execute(
                    "SELECT seq, lines, length(body) AS size FROM batches ORDER BY seq LIMIT 1"
                ).fetchone()
                if oldest is None:
                    break  # the new batch alone is larger than the bound: keep it rather than lose it
                conn.execute("DELETE FROM batches WHERE seq = ?", (oldest["seq"],))
                used -= int(oldest["size"])
                evicted += int(oldest["lines"])
            if evicted:
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (evicted,),
                )
            conn.execute(
                "INSERT INTO batches (batch_id, source, lines, body) VALUES (?, ?, ?, ?)",
                (batch_id, source, lines, body),
            )
            self._upsert_offset(conn, source, offset)
        return evicted

    def oldest(self) -> SpooledBatch | None:
        row = (
            self.db.reader()
            .execute("SELECT seq, batch_id, source, lines, body FROM batches ORDER BY seq LIMIT 1")
            .fetchone()
        )
        if row is None:
            return None
        return SpooledBatch(row["seq"], row["batch_id"], row["source"], row["lines"], bytes(row["body"]))

    def ack(self, seq: int) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))

    def reject(self, batch: SpooledBatch, reason: str) -> None:
        """Set aside a batch the server refused as malformed (4xx): kept with the reason, never resent blindly."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO rejected (seq, batch_id, source, lines, reason, body) VALUES (?, ?, ?, ?, ?, ?)",
                (batch.seq, batch.batch_id, batch.source, batch.lines, reason, batch.body),
            )
            conn.execute("DELETE FROM batches WHERE seq = ?", (batch.seq,))

    def rejected(self) -> int:
        return int(self.db.reader().execute("SELECT count(*) FROM rejected").fetchone()[0])

    def pending(self) -> tuple[int, int]:
        """(batches, bytes) waiting to be sent."""
        row = (
            self.db.reader()
            .execute("SELECT count(*), coalesce(sum(length(body)), 0) FROM batches")
            .fetchone()
        )
        return int(row[0]), int(row[1])

    # --- the dropped counter ------------------------------------------------------
    def dropped(self) -> int:
        row = self.db.reader().execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def dropped_reported(self, count: int) -> None:
        """Subtract what the server acknowledged in a heartbeat (evictions since then stay counted)."""
        with self.db.write() as conn:
            conn.execute("UPDATE counters SET value = max(value - ?, 0) WHERE name = 'dropped'", (count,))
