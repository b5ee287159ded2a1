"""Detection's way to a remote store that may be away: alerts wait in a local spool, never in the journal.

When the OpenSearch cluster is unreachable (a node or all of it gone), bulk event storage simply
waits and retries with its own journal offset (:mod:`soclite.event_storage`). Detection must not
wait: the detection pipeline writes through an :class:`AlertSpool`, which passes every call to the
store while it answers and otherwise keeps the writes in a durable local SQLite file
(``data_dir/spool/alerts.db``, WAL, synchronous=FULL), so the journal offset can be committed and
playbooks (their outbox is local) run on time. When the store answers again the spool is written
back in order, each row deleted only after the store accepted it:

* matched events: ``op_type=create`` on ``event.id`` (a second write is a no-op);
* new alerts: the last version of each id, written whole (one document per ``_id``);
* repeats of alerts stored before the outage: field-level, exact on a replay through the alert's
  journal watermark (:func:`soclite.store._common.apply_repeat`).

So every spooled alert is in the store exactly once, with its full count. While rows are pending,
new writes join the spool too (never overtake it). Reads that grouping needs answer from the spool,
then the store, then a cache of recently written alerts: a repeat of an alert the outage hides is
still counted on it rather than opening a second alert.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import orjson

from soclite.errors import NotFoundError, StoreError
from soclite.models import CLOSED_STATUSES, Alert, Event, Host
from soclite.store import _common as c
from soclite.store.base import AlertRepeat, Store

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS repeats (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc BLOB NOT NULL);
"""
_CACHE = 10_000


def _unavailable(exc: BaseException) -> bool:
    """The store did not answer (or failed): not an answer such as "no such alert"."""
    return isinstance(exc, StoreError) and not isinstance(exc, NotFoundError)


class AlertSpool:
    """The store as the detection pipeline sees it (see the module docstring)."""

    def __init__(self, store: Store, path: Path, *, retry_every: float = 2.0) -> None:
        self.store = store
        self.path = path
        self.retry_every = retry_every
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._last_try = 0.0
        self.last_error: str | None = None
        #: recently written or read alerts (id → alert), for grouping while the store is away
        self._recent: OrderedDict[str, Alert] = OrderedDict()
        self.flushed = 0

    # --- state ------------------------------------------------------------------
    def pending(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM alerts) + (SELECT count(*) FROM repeats)"
            ).fetchone()
        return int(row[0])

    def health_warnings(self) -> list[str]:
        pending = self.pending()
        if not pending:
            return []
        return [f"alert spool: {pending} write(s) kept locally until the store answers ({self.last_error})"]

    def close(self) -> None:
        self._db.close()

    def _remember(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self._recent[alert.id] = alert.model_copy(deep=True)
            self._recent.move_to_end(alert.id)
        while len(self._recent) > _CACHE:
            self._recent.popitem(last=False)

    def _failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self._last_try = time.monotonic()
        log.warning("store unavailable, spooling detection writes locally: %s", self.last_error)

    def retry(self) -> bool:
        """Write the spool back if it is time to try; True when nothing is pending any more."""
        with self._lock:
            return self._ready()

    def _ready(self) -> bool:
        """True when writes may go straight to the store: nothing pending (after a flush attempt)."""
        if not self.pending():
            return True
        if time.monotonic() - self._last_try < self.retry_every:
            return False
        try:
            self.flush()
        except StoreError as exc:
            if not _unavailable(exc):
                raise
            self._failed(exc)
            return False
        return True

    # --- write-back ---------------------------------------------------------------
    def flush(self) -> int:
        """Write the spool to the store in order; raise StoreError (rows kept) if it still fails."""
        with self._lock:
            self._last_try = time.monotonic()
            written = 0
            rows = self._db.execute("SELECT event_id, doc FROM events").fetchall()
            if rows:
                self.store.write_matched_events([orjson.loads(doc) for _, doc in rows])
                self._db.executemany("DELETE FROM events WHERE event_id = ?", [(r[0],) for r in rows])
                written += len(rows)
            rows = self._db.execute("SELECT id, doc FROM alerts").fetchall()
            if rows:
                alerts = [Alert.model_validate_json(doc) for _, doc in rows]
                self.store.put_alerts(alerts)
                self._db.executemany("DELETE FROM alerts WHERE id = ?", [(r[0],) for r in rows])
                written += len(rows)
            for seq, doc in self._db.execute("SELECT seq, doc FROM repeats ORDER BY seq").fetchall():
                self.store.record_repeats([_repeat_from_json(doc)])
                self._db.execute("DELETE FROM repeats WHERE seq = ?", (seq,))
                written += 1
            if written:
                log.info("alert spool written back to the store: %d row(s)", written)
            self.flushed += written
            self.last_error = None
            return written

    # --- what the pipeline calls ----------------------------------------------------
    def write_matched_events(self, events: Sequence[Event]) -> int:
        with self._lock:
            if self._ready():
                try:
                    return self.store.write_matched_events(events)
                except StoreError as exc:
                    if not _unavailable(exc):
                        raise
                    self._failed(exc)
            rows = [(str(e.get("event.id")), orjson.dumps(e, default=str)) for e in events]
            self._db.executemany("INSERT OR REPLACE INTO events (event_id, doc) VALUES (?, ?)", rows)
            return len(rows)

    def put_alerts(self, alerts: Sequence[Alert]) -> int:
        with self._lock:
            if self._ready():
                try:
                    stored = self.store.put_alerts(alerts)
                    self._remember(alerts)
                    return stored
                except StoreError as exc:
                    if not _unavailable(exc):
                        raise
                    self._failed(exc)
            self._spool_alerts(alerts)
            return len(alerts)

    def _spool_alerts(self, alerts: Sequence[Alert]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO alerts (id, fingerprint, doc) VALUES (?, ?, ?)",
            [(a.id, a.fingerprint, a.model_dump_json()) for a in alerts],
        )
        self._remember(alerts)

    def _spooled(self, alert_id: str) -> Alert | None:
        row = self._db.execute("SELECT doc FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def record_repeats(self, repeats: Sequence[AlertRepeat]) -> list[Alert]:
        with self._lock:
            if self._ready():
                try:
                    updated = self.store.record_repeats(repeats)
                    self._remember(updated)
                    return updated
                except StoreError as exc:
                    if not _unavailable(exc):
                        raise
                    self._failed(exc)
            out: list[Alert] = []
            for repeat in repeats:
                spooled = self._spooled(repeat.id)
                if spooled is not None:  # not in the store yet: the spooled copy takes the matches
                    if c.apply_repeat(spooled, repeat):
                        self._spool_alerts([spooled])
                    out.append(spooled)
                    continue
                self._db.execute("INSERT INTO repeats (doc) VALUES (?)", (orjson.dumps(asdict(repeat)),))
                known = self._recent.get(repeat.id)
                if known is not None and c.apply_repeat(known, repeat):
                    out.append(known.model_copy(deep=True))
            return out

    def get_alert(self, alert_id: str) -> Alert:
        with self._lock:
            spooled = self._spooled(alert_id)
            if spooled is not None:
                return spooled
            try:
                found = self.store.get_alert(alert_id)
            except StoreError as exc:
                if not _unavailable(exc):
                    raise
                self._failed(exc)
                known = self._recent.get(alert_id)
                if known is None:
                    raise NotFoundError(f"alert {alert_id!r} not found (the store is away)") from exc
                return known.model_copy(deep=True)
            self._remember([found])
            return found

    def find_open_alert(self, fingerprint: str, since: datetime) -> Alert | None:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM alerts WHERE fingerprint = ?", (fingerprint,)).fetchall()
            for alert in sorted((Alert.model_validate_json(r[0]) for r in rows), key=lambda a: a.last_seen):
                if alert.status not in CLOSED_STATUSES and alert.last_seen >= since:
                    return alert
            try:
                return self.store.find_open_alert(fingerprint, since)
            except StoreError as exc:
                if not _unavailable(exc):
                    raise
                self._failed(exc)
            for alert in reversed(self._recent.values()):
                if (
                    alert.fingerprint == fingerprint
                    and alert.status not in CLOSED_STATUSES
                    and alert.last_seen >= since
                ):
                    return alert.model_copy(deep=True)
            return None

    def find_host(self, name: str) -> Host | None:
        try:
            return self.store.find_host(name)
        except StoreError as exc:
            if not _unavailable(exc):
                raise
            self._failed(exc)
            return None  # the inventory refresh waits for the store; detection does not

    def find_hosts(self, names: Sequence[str]) -> dict[str, Host]:
        try:
            return self.store.find_hosts(names)
        except StoreError as exc:
            if not _unavailable(exc):
                raise
            self._failed(exc)
            return {}

    def touch_hosts(
        self, seen: Mapping[str, datetime], *, create: Mapping[str, Host] | None = None
    ) -> list[Host]:
        try:
            return self.store.touch_hosts(seen, create=create)
        except StoreError as exc:
            if not _unavailable(exc):
                raise
            self._failed(exc)
            return []


def spool_path(data_dir: Path) -> Path:
    """The spool file of a server's data directory (the detection process writes it)."""
    return data_dir / "spool" / "alerts.db"


def pending_in(path: Path) -> int:
    """Rows waiting in the spool file at ``path`` (0 when there is none), read-only: for /health in
    another process than the detection one that writes it."""
    if not path.is_file():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM alerts) + (SELECT count(*) FROM repeats)"
        ).fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0  # created but not yet initialised
    finally:
        conn.close()


def _repeat_from_json(doc: bytes) -> AlertRepeat:
    data = orjson.loads(doc)
    for key in ("last_seen", "first_seen", "updated_at"):
        data[key] = datetime.fromisoformat(data[key])
    return AlertRepeat(**data)


__all__ = ["AlertSpool", "pending_in", "spool_path"]
