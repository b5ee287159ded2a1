"""The ingest journal: a durable, bounded queue of events between the inputs and their consumers.

An input appends a batch and acknowledges its sender only after :meth:`Journal.append`
returned, i.e. after the SQLite commit (WAL, synchronous=FULL: on disk even after a power
loss). Consumers (the pipeline: correlator + store) read from their committed offset and
commit after they processed; :meth:`Journal.compact` deletes what every consumer committed.

* Bodies are zstd-compressed with a dictionary trained on the journal's first batches
  (:mod:`soclite.store._zstd`): a province profile's 1 KB event takes ~100 B, so the disk bound holds
  a morning burst's backlog (2 GiB held ~1.6M uncompressed events, ~20M compressed) and the page
  cache holds the consumers' unread tail.
* Resends: a batch id seen in the last ``batch_retention_seconds`` is answered as a duplicate
  and stores nothing (agents retry with the same id after a lost answer).
* Disk bound: the used size (live pages, not the free ones compaction leaves) plus the new batch
  must stay under ``max_bytes``; otherwise JournalError, which ingest turns into 503 +
  Retry-After. Acknowledged data is never dropped to make room.
* Dead letters live in the same file (:mod:`soclite.store.deadletter`), so a batch's rejected
  lines are written in the same transaction as its events. They have their own bound
  (``deadletter_max_bytes``, oldest evicted first, and ``deadletter_days``) and do not count
  against ``max_bytes``: malformed input (syslog is unauthenticated) must never make ingest
  refuse good events.
* Offsets never restart (migration 3): consumers name what they processed by offset, and the
  pipeline keeps a per-alert watermark of the offsets it counted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from soclite.db import Database
from soclite.errors import JournalError
from soclite.models import Event
from soclite.store import _zstd as zstd_codec
from soclite.store import deadletter as dl

if TYPE_CHECKING:
    from soclite.config import Settings

log = logging.getLogger(__name__)

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
    # v3: offsets never restart. A consumer's committed offset and each alert's watermark
    # (Alert.last_offset: "matches up to here are counted") outlive journal.db: if the file is
    # deleted and recreated, AUTOINCREMENT would start again at 1 and new events would look
    # already counted. So the sequence starts at the clock in microseconds (never lower than it
    # was): a later journal starts above anything an earlier one reached unless it took in more
    # than a million events a second. sqlite_sequence exists here (v1 made an AUTOINCREMENT
    # table) but has no row for "events" until the first insert, hence UPDATE then INSERT.
    # Also an index for the age-based expiry of dead letters.
    """
    UPDATE sqlite_sequence
       SET seq = max(seq, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))
     WHERE name = 'events';
    INSERT INTO sqlite_sequence (name, seq)
    SELECT 'events', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events');
    CREATE INDEX deadletters_at ON deadletters(at);
    """,
    # v4: event bodies compressed with zstd dictionaries trained on the journal's own events (a body's
    # first byte names its dictionary; a body starting with "{" is JSON of an earlier version).
    zstd_codec.ZDICTS_SCHEMA,
]

#: defaults of the dead letters' own bound (as in soclite.config.JournalSettings)
DEADLETTER_MAX_BYTES = 200 * 1024 * 1024
DEADLETTER_DAYS = 30
#: events deleted per transaction by compact(): about 0.1 s of holding the write lock on a quiet 2-core machine
COMPACT_CHUNK = 20_000

def encode(event: Event) -> bytes:
    """An event as the journal stores it, in a bytes object of its own size.

    orjson returns its output buffer as is (16 KiB for a 2.6 KB event, measured with tracemalloc), so a
    batch of 20,000 held ~320 MB instead of ~50 MB until it was written: the copy is the cheap part.
    """
    return bytes(memoryview(orjson.dumps(event, default=str)))


#: the first byte of an uncompressed body (journals written before migration 4): never a dictionary number
_JSON = ord("{")


def _is_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)


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
        deadletter_max_bytes: int = DEADLETTER_MAX_BYTES,
        deadletter_days: float = DEADLETTER_DAYS,
        compact_chunk: int = COMPACT_CHUNK,
    ) -> None:
        self.path = Path(path)
        self.compact_chunk = compact_chunk
        self.max_bytes = max_bytes
        self.warn_ratio = warn_ratio
        self.batch_retention_seconds = batch_retention_seconds
        self.deadletter_max_bytes = deadletter_max_bytes
        self.deadletter_days = deadletter_days
        #: dead letters deleted because of the size cap (not their age): reported by health_warnings
        self.deadletters_evicted = 0
        #: dead letters deleted because of their age (normal retention)
        self.deadletters_expired = 0
        self.db = Database(self.path, MIGRATIONS, name="journal")
        self._size_lock = threading.Lock()
        self._page_size = int(self.db._write_conn.execute("PRAGMA page_size").fetchone()[0])
        #: dead-letter bytes (dl.ROW_BYTES) of the rows up to id ``_dead_seen`` (for their cap); others'
        #: writes are caught up by id range, so this stays cheap (no full scan but at open and over the cap)
        self._dead, self._dead_seen = dl.measure(self.db._write_conn)
        #: the disk pages dead letters hold (measured with the file, plus their sizes since): not events
        self._dead_disk = self._dead
        self._used = self._measure()
        #: the bodies' dictionaries (None until the first batch trained one); zstd's contexts are not
        #: thread-safe, so packing and unpacking each hold a lock (both are GIL-bound at this size anyway)
        self._codec: zstd_codec.ZstdCodec | None = None
        self._pack_lock = threading.Lock()
        self._unpack_lock = threading.Lock()
        #: monotonic time of the last write refused with SQLITE_FULL (None once a write succeeded since)
        self.disk_full_at: float | None = None
        self.disk_full_reason = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Journal:
        """The journal of ``settings.data_dir`` with every bound from ``settings.journal``."""
        js = settings.journal
        return cls(
            settings.data_dir / "journal.db", js.max_bytes, js.warn_ratio,
            deadletter_max_bytes=js.deadletter_max_bytes, deadletter_days=js.deadletter_days,
        )

    # --- size ------------------------------------------------------------------------------------
    def _measure(self, *, dead: bool = True) -> int:
        """Live pages of the file; with ``dead`` also the pages dead letters hold (a walk of their
        b-trees: at open and compaction, not on the append path, which a full journal hits per batch)."""
        conn = self.db._write_conn
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        if dead:
            disk = dl.disk_bytes(conn)
            with self._size_lock:
                self._dead_disk = disk if disk is not None else self._dead
        return (pages - free) * self._page_size

    def used_bytes(self) -> int:
        """Bytes of live events (an estimate between compactions), dead letters not included.

        Measured pages minus the dead letters' own account: they have their own bound and must not
        fill the events' one.
        """
        return max(0, self._used - self._dead_disk)

    def deadletter_bytes(self) -> int:
        return self._dead

    def _catch_up_dead(self, conn: sqlite3.Connection) -> None:
        """Add the dead letters written since we last looked (by us or another process) to the total."""
        with self._size_lock:  # read and add as one: two threads must not both add the same rows
            added, seen = dl.measure(conn, self._dead_seen)
            self._dead += added
            self._dead_disk += added
            self._dead_seen = max(self._dead_seen, seen)

    def _bound_dead(self, conn: sqlite3.Connection) -> None:
        """Past the cap: delete the oldest dead letters down to 90% of it (so this is not every append)."""
        if self._dead <= self.deadletter_max_bytes:
            return
        total, seen = dl.measure(conn)  # exact: others may have deleted some since
        rows, freed = dl.evict_oldest(conn, total - int(self.deadletter_max_bytes * 0.9)) if (
            total > self.deadletter_max_bytes) else (0, 0)  # fmt: skip
        with self._size_lock:
            self._dead, self._dead_seen = total - freed, max(self._dead_seen, seen)
            self._dead_disk = max(0, self._dead_disk - freed)
            self.deadletters_evicted += rows

    # --- writing ---------------------------------------------------------------------------------
    def append(
        self, batch_id: str | None, events: list[Event], dead_letters: Sequence[DeadLetter] = (),
        *, unit: str | None = None,
    ) -> tuple[int, bool]:
        """Store a batch durably; return (accepted, duplicate). Raises JournalError at the disk bound.

        ``unit`` is the sender's unit, recorded on the batch's dead letters (they are scoped by it).
        """
        return self.append_bodies(batch_id, [encode(event) for event in events], dead_letters, unit=unit)

    def seen(self, batch_id: str) -> bool:
        """Whether a batch id was stored (within retention): a resend is answered before its body is read."""
        return self.db.reader().execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone() is not None

    def append_bodies(
        self, batch_id: str | None, encoded: list[bytes], dead_letters: Sequence[DeadLetter] = (),
        *, unit: str | None = None,
    ) -> tuple[int, bool]:
        """:meth:`append` of events already serialised (HTTP ingest keeps bytes, not dicts, while it reads)."""
        with self._disk_full_refuses():  # the first batch writes a dictionary: the disk may be full there too
            bodies = [(body,) for body in self._pack(encoded)]
        incoming = sum(len(b[0]) + 16 for b in bodies)  # dead letters are bounded on their own
        if encoded and self.used_bytes() + incoming > self.max_bytes:
            self._catch_up_dead(self.db.reader())  # dead letters another process wrote are not events
            self._used = self._measure(dead=False)  # re-measure: compaction may have freed pages since
            if self.used_bytes() + incoming > self.max_bytes:
                raise JournalError(
                    f"ingest journal full ({self.used_bytes()} of {self.max_bytes} bytes of events); "
                    "refusing the batch until consumers catch up"
                )
        incoming += sum(dl.row_bytes(*d) for d in dead_letters)
        now = time.time()
        with self._disk_full_refuses():
            result = self._write(batch_id, bodies=bodies, dead_letters=dead_letters, unit=unit, now=now)
        self.disk_full_at = None
        if result[1]:
            return result
        with self._size_lock:
            self._used += incoming
        return result

    @contextmanager
    def _disk_full_refuses(self) -> Iterator[None]:
        """SQLITE_FULL (the disk, or max_page_count, is full) as JournalError. Nothing of the batch was
        committed, so it is refused like a full journal (503 + Retry-After) and the sender keeps it."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            self.disk_full_at = time.monotonic()
            self.disk_full_reason = str(exc)
            raise JournalError(f"ingest journal cannot write: {exc} (free disk space under {self.path.parent})") from exc

    # --- compression -----------------------------------------------------------------------------
    def _load_codec(self, conn: sqlite3.Connection) -> zstd_codec.ZstdCodec | None:
        self._codec = zstd_codec.read_codec(conn)
        return self._codec

    def _trained(self, sample: list[bytes]) -> zstd_codec.ZstdCodec:
        """The codec for a batch: the first batch trains the first dictionary, a larger one a better one
        while the current was learned from few events (as the day files do). In a write transaction of its
        own, after reading what other processes trained, so two writers never both add dictionary n."""
        codec = self._codec
        if codec is not None and not codec.wants_training(len(sample)):
            return codec
        with self.db.write() as conn:
            codec = self._codec = zstd_codec.trained(conn, self._load_codec(conn), sample)
        return codec

    def _pack(self, encoded: list[bytes]) -> list[bytes]:
        if not encoded:
            return []
        codec = self._trained(encoded)
        with self._pack_lock:
            return [codec.pack(body) for body in encoded]

    def _unpack(self, bodies: list[bytes]) -> list[bytes]:
        """Bodies as JSON: compressed ones decompressed, JSON of an earlier version as it is."""
        with self._unpack_lock:
            codec = self._codec
            out = []
            for body in bodies:
                if body[0] == _JSON:
                    out.append(body)
                    continue
                if codec is None or not codec.known(body):  # another process trained it after we looked
                    codec = self._load_codec(self.db.reader())
                    if codec is None:
                        raise JournalError(f"{self.path}: a compressed event body but no dictionary")
                out.append(codec.unpack(body))
            return out

    def _write(
        self, batch_id: str | None, *, bodies: list[tuple[bytes]], dead_letters: Sequence[DeadLetter],
        unit: str | None, now: float,
    ) -> tuple[int, bool]:
        with self.db.write() as conn:
            if batch_id is not None:
                row = conn.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
                if row is not None:
                    return 0, True
                conn.execute("INSERT INTO batches (batch_id, accepted, at) VALUES (?, ?, ?)", (batch_id, len(bodies), now))
            conn.executemany("INSERT INTO events (body) VALUES (?)", bodies)
            if dead_letters:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
                conn.executemany(
                    "INSERT INTO deadletters (at, source, reason, raw, unit) VALUES (?, ?, ?, ?, ?)",
                    [(stamp, source, reason, raw, unit) for source, reason, raw in dead_letters],
                )
                self._catch_up_dead(conn)
                self._bound_dead(conn)
        return len(bodies), False

    # --- consuming -------------------------------------------------------------------------------
    def register(self, *consumers: str, replaces: str | None = None) -> None:
        """Declare consumers (from the start of what is still in the journal) so compaction waits for them.

        One transaction: compaction never sees one consumer of a set without the others. ``replaces``
        names a consumer these take over from (an older version's single "pipeline"): each new one starts
        at its committed offset (nothing is replayed or skipped) and its row goes, or compaction would
        wait for it forever.
        """
        with self.db.write() as conn:
            start = 0
            if replaces is not None:
                row = conn.execute("SELECT committed FROM consumers WHERE name = ?", (replaces,)).fetchone()
                if row is not None:
                    start = int(row[0])
                    conn.execute("DELETE FROM consumers WHERE name = ?", (replaces,))
            conn.executemany(
                "INSERT OR IGNORE INTO consumers (name, committed) VALUES (?, ?)", [(c, start) for c in consumers]
            )

    def consumers(self) -> dict[str, int]:
        """Every registered consumer with its committed offset."""
        rows = self.db.reader().execute("SELECT name, committed FROM consumers ORDER BY name").fetchall()
        return {str(row[0]): int(row[1]) for row in rows}

    def lags(self) -> dict[str, int]:
        """Events appended but not yet committed, per registered consumer (see :meth:`lag`)."""
        return {name: self.lag(name) for name in self.consumers()}

    def committed(self, consumer: str) -> int:
        row = self.db.reader().execute("SELECT committed FROM consumers WHERE name = ?", (consumer,)).fetchone()
        return int(row[0]) if row is not None else 0

    def read(self, consumer: str, max_events: int) -> list[tuple[int, Event]]:
        """The next events after the consumer's committed offset (registering the consumer if new)."""
        return [(offset, event) for offset, event, _ in self.read_with_bodies(consumer, max_events)]

    def read_with_bodies(self, consumer: str, max_events: int) -> list[tuple[int, Event, bytes]]:
        """:meth:`read`, each event with the JSON text it was decoded from (detection searches that
        text for keyword rules instead of dumping the event again: Engine.match's ``raw``)."""
        if self.db.reader().execute("SELECT 1 FROM consumers WHERE name = ?", (consumer,)).fetchone() is None:
            self.register(consumer)
        rows = self.db.reader().execute(
            "SELECT offset, body FROM events WHERE offset > ? ORDER BY offset LIMIT ?",
            (self.committed(consumer), max_events),
        ).fetchall()
        bodies = self._unpack([bytes(row[1]) for row in rows])
        return [(int(row[0]), orjson.loads(body), body) for row, body in zip(rows, bodies, strict=True)]

    def commit(self, consumer: str, offset: int) -> None:
        """Record that ``consumer`` processed everything up to ``offset`` (never moves backwards)."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO consumers (name, committed) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET committed = max(committed, excluded.committed)",
                (consumer, offset),
            )

    def last_offset(self) -> int:
        """The offset of the last event ever appended (or where the sequence was seeded: see MIGRATIONS)."""
        row = self.db.reader().execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row is not None else 0

    def lag(self, consumer: str) -> int:
        """Events appended but not yet committed by ``consumer``.

        Counted, not subtracted: offsets start at the seeded clock value, so ``last_offset -
        committed`` would be huge for a new consumer (committed 0). A range count on the primary key.
        """
        row = self.db.reader().execute(
            "SELECT count(*) FROM events WHERE offset > ?", (self.committed(consumer),)
        ).fetchone()
        return int(row[0])

    def count(self) -> int:
        return int(self.db.reader().execute("SELECT count(*) FROM events").fetchone()[0])

    # --- housekeeping ----------------------------------------------------------------------------
    def compact(self) -> int:
        """Delete the events every consumer committed, batch ids and dead letters past retention, and
        the oldest dead letters past their cap; return events deleted.

        With no consumer registered no event is deleted (nobody has read it yet).
        """
        started = time.monotonic()
        cutoff = time.time() - self.batch_retention_seconds
        dead_before = dl.stamp(datetime.now(UTC) - timedelta(days=self.deadletter_days))
        deleted = self._delete_committed()
        with self.db.write() as conn:
            conn.execute("DELETE FROM batches WHERE at < ?", (cutoff,))
            self._catch_up_dead(conn)
            expired, freed = dl.expire(conn, dead_before)
            with self._size_lock:
                self._dead = max(0, self._dead - freed)
                self._dead_disk = max(0, self._dead_disk - freed)
                self.deadletters_expired += expired
            self._bound_dead(conn)
        with self.db._lock:  # the writer connection is shared: checkpoint between writes, not during one
            self.db._write_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._used = self._measure()
        took = time.monotonic() - started
        (log.info if took >= 1.0 else log.debug)("journal compaction: %d event(s) deleted in %.2f s", deleted, took)
        return deleted

    def _delete_committed(self) -> int:
        """Delete what every consumer committed, ``compact_chunk`` events per transaction.

        A minute of a province's traffic is ~300,000 rows, about a second of deleting: in one transaction
        that held the journal's write lock for as long, so ingest appends and the consumers' commits (the
        alerts' path) waited behind it. In chunks they get the lock between two chunks.
        """
        deleted = 0
        while True:
            with self.db.write() as conn:
                # read in the chunk's own transaction: a consumer registered meanwhile counts at once
                row = conn.execute("SELECT min(committed), count(*) FROM consumers").fetchone()
                if row is None or not row[1]:
                    return deleted  # nobody has read anything yet
                first = conn.execute("SELECT min(offset) FROM events").fetchone()[0]
                if first is None or int(first) > int(row[0]):
                    return deleted
                bound = min(int(row[0]), int(first) + self.compact_chunk - 1)
                deleted += int(conn.execute("DELETE FROM events WHERE offset <= ?", (bound,)).rowcount)

    def degraded(self) -> list[str]:
        """Reasons ingest is not working as it should right now (/health reports status "degraded")."""
        if self.disk_full_at is not None:
            return [f"ingest journal: the disk is full ({self.disk_full_reason}); ingest is refused (503)"]
        return []

    def health_warnings(self) -> list[str]:
        warnings = self.degraded()
        if self.deadletters_evicted:
            warnings.append(
                f"ingest journal: {self.deadletters_evicted} dead letters evicted (oldest first) to keep them "
                f"under {self.deadletter_max_bytes} bytes; look for the source of the malformed input"
            )
        used = self.used_bytes()
        ratio = used / self.max_bytes
        if ratio >= 1:
            warnings.append(f"ingest journal is full ({used} of {self.max_bytes} bytes): ingest is refused (503)")
        elif ratio >= self.warn_ratio:
            warnings.append(
                f"ingest journal at {ratio:.0%} of its bound ({used} of {self.max_bytes} bytes); "
                "ingest will be refused at 100%"
            )
        return warnings

    def close(self) -> None:
        self.db.close()
