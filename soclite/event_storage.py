"""Bulk event storage: the journal's second consumer ("storage"), journal → store, nothing else.

Detection (:mod:`soclite.pipeline`, consumer "detection") writes alerts and only the events they
matched; every event reaches the store through this consumer, which has its own committed offset
and so may lag behind detection and catch up (a slow or locked store delays the event search,
never an alert). Delivery is at least once: a batch is written, then its offset committed; a crash
in between replays it, and the store's writes are idempotent on ``event.id`` (the events that
detection already wrote are the same rows too). The journal's compaction waits for the slowest
consumer, so nothing is dropped while this one lags.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from soclite.errors import StoreError
from soclite.models import HOST_NAME, UNIT, Event

if TYPE_CHECKING:
    from soclite.store.base import Store
    from soclite.store.journal import Journal

log = logging.getLogger(__name__)

#: the journal consumers of a server, slowest first in nothing: compaction takes the minimum
DETECTION = "detection"
STORAGE = "storage"
CONSUMERS = (DETECTION, STORAGE)
#: the single consumer of earlier versions: its committed offset seeds both (see Journal.register)
LEGACY_CONSUMER = "pipeline"


def register_consumers(journal: Journal) -> None:
    """Declare both consumers in one transaction, before either reads, so compaction waits for both."""
    journal.register(*CONSUMERS, replaces=LEGACY_CONSUMER)


#: host names whose unit is cached at most (a cache this size is ~10 MB; a larger inventory re-reads)
MAX_CACHED_HOSTS = 100_000
#: seconds before host units are asked for again after the store failed to answer
OUTAGE_RETRY = 30.0


class HostUnits:
    """Host name → the unit of its inventory entry, for events that arrive without one (syslog).

    Cached, and re-read after ``ttl`` seconds: an admin may move a host to another unit.
    """

    def __init__(self, store: Store, ttl: float = 300.0) -> None:
        self.store = store
        self.ttl = ttl
        self._units: dict[str, tuple[str | None, float]] = {}

    def unit_of(self, name: str) -> str | None:
        self._look_up([name.lower()])
        return self._units[name.lower()][0]

    def remember(self, name: str, unit: str | None) -> None:
        self._units[name.lower()] = (unit, time.monotonic())

    def fill(self, events: list[Event]) -> None:
        """Set the unit of every event without one, with one store lookup for the batch's unknown hosts."""
        missing = [event for event in events if event.get(UNIT) is None]
        named = [(event, name.lower()) for event in missing if isinstance(name := event.get(HOST_NAME), str) and name]
        if not named:
            return
        self._look_up(list(dict.fromkeys(key for _, key in named)))
        for event, key in named:
            event[UNIT] = self._units[key][0]

    def _look_up(self, keys: list[str]) -> None:
        """Make sure every key has a fresh cache entry (a store miss is cached too, as no unit)."""
        now = time.monotonic()
        stale = [key for key in keys if (hit := self._units.get(key)) is None or now - hit[1] >= self.ttl]
        if not stale:
            return
        if len(self._units) + len(stale) > MAX_CACHED_HOSTS:  # bounded: random host names cannot grow it
            self._units = {k: hit for k, hit in self._units.items() if now - hit[1] < self.ttl}
            if len(self._units) + len(stale) > MAX_CACHED_HOSTS:
                self._units.clear()
        # one request for all of them: on OpenSearch a lookup per host (2,500 workstations first heard of
        # together, and again at every expiry) held both consumers up for seconds
        try:
            found = self.store.find_hosts(stale)
        except StoreError as exc:
            # The store is away: keep what was known (a host rarely changes unit) and ask again soon;
            # a host never seen gets no unit meanwhile. Raising would stop detection for the whole outage.
            log.warning("host units not refreshed (store unavailable, asked again in %.0f s): %s", OUTAGE_RETRY, exc)
            retry_at = now - self.ttl + OUTAGE_RETRY
            for key in stale:
                self._units[key] = ((self._units.get(key) or (None, 0.0))[0], retry_at)
            return
        for key in stale:
            host = found.get(key)
            self._units[key] = (host.unit if host is not None else None, now)


class EventStorage:
    """The "storage" consumer on its own thread: see the module docstring."""

    def __init__(
        self, journal: Journal, store: Store, *, batch_size: int = 5000, idle_sleep: float = 0.1,
    ) -> None:
        self.journal = journal
        self.store = store
        self.batch_size = batch_size
        self.idle_sleep = idle_sleep
        self.units = HostUnits(store)
        self.events_stored = 0
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        register_consumers(journal)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="soclite-event-storage", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> bool:
        """Finish the batch in hand (committed or replayed later: both safe); False if still running."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                done = self.run_once()
                backoff = 0.5
                self.last_error = None
            except Exception as exc:  # a locked or failing store: keep the offset, back off, retry
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("event storage batch failed; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if done < self.batch_size:
                self._stop.wait(self.idle_sleep)

    def run_once(self) -> int:
        """Store one batch and commit its offset; return how many events it held."""
        rows = self.journal.read(STORAGE, self.batch_size)
        if not rows:
            return 0
        events = [event for _, event in rows]
        self.units.fill(events)
        self.store.write_events(events)
        self.journal.commit(STORAGE, rows[-1][0])
        self.events_stored += len(events)
        return len(events)

    def health_warnings(self) -> list[str]:
        return [f"event storage: last error: {self.last_error}"] if self.last_error else []


__all__ = ["CONSUMERS", "DETECTION", "STORAGE", "EventStorage", "HostUnits", "register_consumers"]
