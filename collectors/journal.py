"""The ingest journal: a durable, bounded queue of events between the inputs and their consumers.

An input appends a batch and acknowledges its sender only after :meth:`Journal.append`
returned, i.e. after the SQLite commit (WAL, synchronous=FULL: on disk even after a power
loss). Consumers (the pipeline: correlator + store) read from their committed offset and
commit after they processed; :meth:`Journal.compact` deletes what every consumer committed.

* Resends: a batch id seen in the last ``batch_retention_seconds`` is answered as a duplicate
  and stores nothing (agents retry with the same id after a lost answer).
* Disk bound: the used size (live pages, not the free ones compaction leaves) plus the new batch
  must stay under ``max_bytes``; otherwise JournalError, which ingest turns into 503 +
  Retry-After. Acknowledged data is never dropped to make room.
* Dead letters live in the same file (:mod:`collectors.deadletter`), so a batch's rejected
  lines are written in the same transaction as its events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from soclite.db import Database
from soclite.errors import JournalError
from soclite.models import Event

MIGRATIONS = [
    """
    CREATE TABLE events (
        offset INTEGER PRIMARY KEY AUTOINCREMENT,
        body BLOB NOT NULL
    );
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        accepted INTEGER NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX batches_at ON batches(at);
    CREATE TABLE consumers (
        name TEXT PRIMARY KEY,
        committed INTEGER NOT NULL
    );
    CREATE TABLE deadletters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL
    );
    """,
    # v2: the sender's unit (an agent key's unit), so unit-bound users see only their own
    # dead letters; NULL (syslog, files, province-wide senders) is shown to province-wide users only.
    """
    ALTER TABLE deadletters ADD COLUMN unit TEXT;
    CREATE INDEX deadletters_unit ON deadletters(unit, id);
    """,
]

#: One dead letter to write with a batch: (source, reason, raw bytes).
DeadLetter = tuple[str, str, bytes]


class Journal:
    def __init__(
        self,
        path: Path,
        max_bytes: int,
        warn_ratio: float = 0.8,
        *,
        batch_retention_seconds: float = 7 * 24 * 3600,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.warn_ratio = warn_ratio
        self.batch_retention_seconds = batch_retention_seconds
        self.db = Database(self.path, MIGRATIONS, name="journal")
        self._size_lock = threading.Lock()
        self._page_size = int(self.db._write_conn.execute("PRAGMA page_size").fetchone()[0])
        self._used = self._measure()

    # --- size ------------------------------------------------------------------------------------
    def _measure(self) -> int:
        conn = self.db._write_conn
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    def used_bytes(self) -> int:
        """Bytes of live data (an estimate between compactions: measured, plus what was appended since)."""
        return self._used

    # --- writing ---------------------------------------------------------------------------------
    def append(
        self, batch_id: str | None, events: list[Event], dead_letters: Sequence[DeadLetter] = (),
        *, unit: str | None = None,
    ) -> tuple[int, bool]:
        """Store a batch durably; return (accepted, duplicate). Raises JournalError at the disk bound.

        ``unit`` is the sender's unit, recorded on the batch's dead letters (they are scoped by it).
        """
        bodies = [(orjson.dumps(event, default=str),) for event in events]
        incoming = sum(len(b[0]) + 16 for b in bodies) + sum(len(d[2]) + len(d[1]) + 64 for d in dead_letters)
        if self._used + incoming > self.max_bytes:
            self._used = self._measure()  # re-measure: compaction may have freed pages since
            if self._used + incoming > self.max_bytes:
                raise JournalError(
                    f"ingest journal full ({self._used} of {self.max_bytes} bytes used); "
                    "refusing the batch until consumers catch up"
                )
        now = time.time()
        with self.db.write() as conn:
            if batch_id is not None:
                row = conn.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
                if row is not None:
                    return 0, True
                conn.execute("INSERT INTO batches (batch_id, accepted, at) VALUES (?, ?, ?)", (batch_id, len(events), now))
            conn.executemany("INSERT INTO events (body) VALUES (?)", bodies)
            if dead_letters:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
                conn.executemany(
                    "INSERT INTO deadletters (at, source, reason, raw, unit) VALUES (?, ?, ?, ?, ?)",
                    [(stamp, source, reason, raw, unit) for source, reason, raw in dead_letters],
                )
        with self._size_lock:
            self._used += incoming
        return len(events), False

    # --- consuming -------------------------------------------------------------------------------
    def register(self, consumer: str) -> None:
        """Declare a consumer (from the start of what is still in the journal) so compaction waits for it."""
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO consumers (name, committed) VALUES (?, 0)", (consumer,))

    def committed(self, consumer: str) -> int:
        row = self.db.reader().execute("SELECT committed FROM consumers WHERE name = ?", (consumer,)).fetchone()
        return int(row[0]) if row is not None else 0

    def read(self, consumer: str, max_events: int) -> list[tuple[int, Event]]:
        """The next events after the consumer's committed offset (registering the consumer if new)."""
        if self.db.reader().execute("SELECT 1 FROM consumers WHERE name = ?", (consumer,)).fetchone() is None:
            self.register(consumer)
        rows = self.db.reader().execute(
            "SELECT offset, body FROM events WHERE offset > ? ORDER BY offset LIMIT ?",
            (self.committed(consumer), max_events),
        ).fetchall()
        return [(int(row[0]), orjson.loads(row[1])) for row in rows]

    def commit(self, consumer: str, offset: int) -> None:
        """Record that ``consumer`` processed everything up to ``offset`` (never moves backwards)."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO consumers (name, committed) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET committed = max(committed, excluded.committed)",
                (consumer, offset),
            )

    def last_offset(self) -> int:
        row = self.db.reader().execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row is not None else 0

    def lag(self, consumer: str) -> int:
        """Events appended but not yet committed by ``consumer`` (offsets are contiguous: AUTOINCREMENT)."""
        return max(0, self.last_offset() - self.committed(consumer))

    def count(self) -> int:
        return int(self.db.reader().execute("SELECT count(*) FROM events").fetchone()[0])

    # --- housekeeping ----------------------------------------------------------------------------
    def compact(self) -> int:
        """Delete the events every consumer committed and batch ids past retention; return events deleted.

        With no consumer registered nothing is deleted (nobody has read it yet).
        """
        cutoff = time.time() - self.batch_retention_seconds
        with self.db.write() as conn:
            row = conn.execute("SELECT min(committed), count(*) FROM consumers").fetchone()
            deleted = 0
            if row is not None and row[1]:
                deleted = conn.execute("DELETE FROM events WHERE offset <= ?", (int(row[0]),)).rowcount
            conn.execute("DELETE FROM batches WHERE at < ?", (cutoff,))
        with self.db._lock:  # the writer connection is shared: checkpoint between writes, not during one
            self.db._write_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._used = self._measure()
        return int(deleted)

    def health_warnings(self) -> list[str]:
        used = self.used_bytes()
        ratio = used / self.max_bytes
        if ratio >= 1:
            return [f"ingest journal is full ({used} of {self.max_bytes} bytes): ingest is refused (503)"]
        if ratio >= self.warn_ratio:
            return [
                f"ingest journal at {ratio:.0%} of its bound ({used} of {self.max_bytes} bytes); "
                "ingest will be refused at 100%"
            ]
        return []

    def close(self) -> None:
        self.db.close()
