"""The detection pipeline: journal → correlator → alerts → playbooks, consumer "detection".

Each turn reads a batch from the ingest journal (events already durable and
acknowledged to their senders), runs it through the Sigma engine, writes the
events the alerts matched and the (grouped) alerts to the store, hands
new/updated alerts to the playbook runner, refreshes the hosts' last_seen, and
only then commits its journal offset. Bulk event storage is the journal's other
consumer (:class:`soclite.event_storage.EventStorage`, consumer "storage", its
own thread and offset): an alert never waits for the millions of events that
matched nothing. A crash anywhere before the commit replays the batch: event
writes are idempotent on ``event.id``, and a new alert's id is derived from its
fingerprint and first event, so a replay rewrites the same rows rather than
adding new ones.

Counting stays exact on a replay through each alert's journal watermark
(``Alert.last_offset``): a match from an event at or below it is already counted.
Journal offsets never restart (see the journal's migrations), so an offset is a
permanent name for one appended event.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from soclite.errors import NotFoundError
from soclite.event_storage import DETECTION, STORAGE, EventStorage, HostUnits, register_consumers
from soclite.models import (
    CLOSED_STATUSES,
    EVENT_ID,
    HOST_NAME,
    LOGSOURCE_PRODUCT,
    UNIT,
    Alert,
    Event,
    Host,
    HostType,
    utcnow,
)
from soclite.runtime import HitKind
from soclite.store._common import event_text
from soclite.store.base import AlertRepeat, Store
from soclite.store.spool import AlertSpool, spool_path

log = logging.getLogger(__name__)

CONSUMER = DETECTION
_ALERT_NS = uuid.UUID("6c1c1e1a-59f1-4f43-9a53-1c0c2a3f5e01")
#: matched event ids kept on an alert (the count keeps growing beyond this)
MAX_EVENT_IDS = 20
#: hosts remembered as "refreshed in the last minute" before the stale ones are dropped
HOST_SEEN_PRUNE = 50_000


class Pipeline:
    """Consumes the journal; see the module docstring for the order of writes."""

    def __init__(
        self, runtime: Any, *, batch_size: int = 2000, idle_sleep: float = 0.05, compact: bool = True,
        storage: EventStorage | None = None, storage_batch_size: int = 5000, with_storage: bool = True,
    ) -> None:
        self.runtime = runtime
        journal = runtime.journal
        self._spool: AlertSpool | None = None
        #: the bulk event consumer, started and stopped with this one (its own thread and offset); None when
        #: another process runs it (soclite.storage_worker)
        self.storage: EventStorage | None = storage or (
            EventStorage(journal, runtime.store, batch_size=storage_batch_size)
            if journal is not None and with_storage else None
        )
        if journal is not None:
            register_consumers(journal)
        #: compact the journal every minute; False when another process (the ingesting server) does it
        self.compact = compact
        self.batch_size = batch_size
        self.idle_sleep = idle_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: fingerprint → id of its open alert (saves the search; the alert is re-read by id)
        self._open_alerts: OrderedDict[str, str] = OrderedDict()
        self._units = self.storage.units if self.storage is not None else HostUnits(runtime.store)
        self._host_seen: dict[str, float] = {}
        self.events_processed = 0
        self.alerts_created = 0
        self.alerts_updated = 0
        self.errors = 0
        self.last_error: str | None = None
        self._last_state_save = time.monotonic()
        self._last_compact = time.monotonic()

    # --- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="soclite-pipeline", daemon=True)
        self._thread.start()
        if self.storage is not None:
            self.storage.start()

    def stop(self, timeout: float = 60.0) -> bool:
        """Let the batch in hand finish, then save the correlation state; False if it did not end in time.

        A batch can be 10,000 events (the pipeline child), so the wait is long. When the thread is still
        running after ``timeout`` the state is *not* saved: the engine is mid-batch and its windows would
        be written half-updated; the caller should then not close what the thread still uses either.
        """
        self._stop.set()
        if self.storage is not None:
            self.storage.stop(timeout)  # its uncommitted batch is simply stored again next time
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error(
                    "pipeline batch still running after %.0fs; correlation state not saved "
                    "(the uncommitted batch is replayed at the next start)", timeout,
                )
                return False
        engine = self.runtime.engine
        if engine is not None:
            engine.save_state()
        return True

    @property
    def alert_store(self) -> Store | AlertSpool:
        """Where detection writes: a remote store through the local alert spool (alerts go on while the
        cluster is away, :mod:`soclite.store.spool`), the embedded store directly. Follows
        ``runtime.store`` (tests wrap it after building the pipeline)."""
        store: Store = self.runtime.store
        if not store.remote:
            return store
        if self._spool is None:
            self._spool = AlertSpool(store, spool_path(self.runtime.settings.data_dir))
        self._spool.store = store
        return self._spool

    def shared_hits(self, kind: HitKind) -> dict[str, int] | None:
        """None: the engine of this process counts its own hits."""
        return None

    def health_warnings(self) -> list[str]:
        warnings = []
        if self.last_error:
            warnings.append(f"pipeline: last error: {self.last_error}")
        if self.storage is not None:
            warnings.extend(self.storage.health_warnings())
        if isinstance(self.alert_store, AlertSpool):
            warnings.extend(self.alert_store.health_warnings())
        return warnings

    def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                done = self.run_once()
                backoff = 0.5
            except Exception as exc:  # the stream never stops: log, back off, retry the same batch
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("pipeline batch failed; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if done == 0:
                self._stop.wait(self.idle_sleep)

    # --- one turn ------------------------------------------------------------
    def run_once(self) -> int:
        """Process one batch from the journal; return how many events were processed."""
        journal = self.runtime.journal
        rows = journal.read_with_bodies(CONSUMER, self.batch_size)
        if not rows:
            if isinstance(self.alert_store, AlertSpool):
                self.alert_store.retry()  # a quiet stream still writes the spool back when the store returns
            self._maybe_save_state()
            return 0
        events = [event for _, event, _ in rows]
        self.process(events, [offset for offset, _, _ in rows], [body for _, _, body in rows])
        journal.commit(CONSUMER, rows[-1][0])
        self._maybe_save_state()
        return len(events)

    def process(
        self, events: list[Event], offsets: Sequence[int] | None = None, bodies: Sequence[bytes] | None = None
    ) -> list[tuple[Alert, str]]:
        """Correlate and store a batch; return the stored alerts with their change kind.

        ``offsets`` are the events' journal offsets (same order): with them a replayed batch is
        recognised exactly by each alert's watermark; without (tests, other callers) only by the
        first MAX_EVENT_IDS event ids an alert keeps. ``bodies``: the JSON each event was decoded
        from (the journal's), which the engine searches for keyword rules.
        Any failure raises, so the caller retries the whole batch and never commits the
        journal past events whose alerts or playbook triggers did not make it.
        """
        by_event: dict[str, int] | None = None
        if offsets is not None:
            if len(offsets) != len(events):
                raise ValueError(f"{len(offsets)} offsets for {len(events)} events")
            by_event = {}
            for event, offset in zip(events, offsets, strict=True):
                event_id = event.get(EVENT_ID)
                if isinstance(event_id, str) and event_id:
                    by_event[event_id] = max(offset, by_event.get(event_id, offset))
        raw_keys: list[int] | None = None
        if bodies is not None:
            if len(bodies) != len(events):
                raise ValueError(f"{len(bodies)} bodies for {len(events)} events")
            raw_keys = []
            for event in events:  # a unit filled in below must come after the keys whose values the body holds
                keys = len(event)
                if UNIT in event and event[UNIT] is None:
                    del event[UNIT]
                    event[UNIT] = None  # the same event, its unit now last
                    keys -= 1
                raw_keys.append(keys)
        self._fill_units(events)
        store = self.alert_store
        engine = self.runtime.engine
        raw_alerts: list[Alert] = engine.process_batch(events, bodies, raw_keys) if engine is not None else []
        # Only the events the alerts matched, so an analyst opening an alert sees them at once; every
        # event is written by the storage consumer, the same rows again (idempotent on event.id).
        matched_ids = {event_id for alert in raw_alerts for event_id in alert.event_ids}
        if matched_ids:
            store.write_matched_events([e for e in events if e.get(EVENT_ID) in matched_ids])
        created, repeats, replayed = self._group(raw_alerts, by_event)
        if created:
            store.put_alerts(created)
        # Repeats of stored alerts change only their detection fields, atomically in the store: an
        # analyst's status/assignee written meanwhile stays, and the alerts come back as stored.
        updated: list[Alert] = store.record_repeats(repeats) if repeats else []
        changes = [(alert, "created") for alert in created] + [(alert, "updated") for alert in updated]
        # Only what is stored is remembered: a failed write leaves the cache as it was.
        for alert, _ in changes:
            self._remember(alert)
        # Before the hand-over: playbooks match on the host's inventory (host_type), and a host seen
        # for the first time in this batch must already be there for its first alert.
        self._update_hosts(events)
        runner = self.runtime.playbooks
        if runner is not None:
            # Replayed alerts are handed over again: the outbox's idempotency keys (alert id, change,
            # version) make that a no-op when the first attempt got through, and a rescue when it did not.
            # They go first: a replayed "created" precedes the "updated" of matches new in this attempt.
            for alert, change in [*replayed, *changes]:
                runner.on_alert(alert, change)
        notifier = self.runtime.notifier
        if notifier is not None:  # people's own rules; a (rule, alert) is decided once, so replays are safe
            for alert, change in [*replayed, *changes]:
                notifier.on_alert(alert, change)
        for _alert, kind in changes:
            if kind == "created":
                self.alerts_created += 1
            else:
                self.alerts_updated += 1
        self.events_processed += len(events)
        return changes

    # --- grouping --------------------------------------------------------------
    @staticmethod
    def _offset_of(alert: Alert, offsets: Mapping[str, int] | None) -> int | None:
        """The journal offset of the event(s) this match came from (the latest), None when unknown."""
        if offsets is None:
            return None
        found = [offsets[e] for e in alert.event_ids if e in offsets]
        return max(found) if found else None

    def _group(
        self, alerts: Sequence[Alert], offsets: Mapping[str, int] | None = None
    ) -> tuple[list[Alert], list[AlertRepeat], list[tuple[Alert, str]]]:
        """Alerts with the same fingerprint within the window become one with a growing count.

        Returns the new alerts to write whole, the repeats of already stored alerts (written field by
        field, see :meth:`Store.record_repeats`) and the alerts a replay found already written.
        ``offsets`` maps event id → journal offset. A match at or below the stored alert's watermark
        (``last_offset``, as read before this batch) is a replay: counted already, not again.
        Works on copies: nothing cached changes until the store accepted the batch.
        """
        store = self.alert_store
        window = timedelta(seconds=self.runtime.settings.correlator.group_window_seconds)
        created: dict[str, Alert] = {}
        repeats: dict[str, AlertRepeat] = {}
        repeat_ids: dict[str, list[str]] = {}
        repeat_offsets: dict[str, list[int]] = {}
        repeat_texts: dict[str, list[str]] = {}
        replayed: dict[str, tuple[Alert, str]] = {}
        working: dict[str, Alert] = {}
        #: alert id → its watermark as stored before this batch (None for alerts new in it)
        marks: dict[str, int | None] = {}
        now = utcnow()
        for alert in alerts:
            fp = alert.fingerprint
            offset = self._offset_of(alert, offsets)
            existing = working.get(fp) or self._open_alert(fp, alert.first_seen - window)
            if existing is not None and existing.last_seen < alert.first_seen - window:
                existing = None
            if existing is None:
                first_event = alert.event_ids[0] if alert.event_ids else alert.first_seen.isoformat()
                alert.id = uuid.uuid5(_ALERT_NS, f"{fp}/{first_event}").hex
                alert.last_offset = offset
                try:
                    # Same id = same first match: a replay of a batch whose alert an analyst has closed
                    # since (so it was not found open). Rewriting it whole would reopen it.
                    stored = store.get_alert(alert.id)
                except NotFoundError:
                    working[fp] = created[alert.id] = alert
                    marks[alert.id] = None
                    continue
                working[fp] = stored
                marks[stored.id] = stored.last_offset
                replayed[stored.id] = (stored.model_copy(deep=True), "created")
                continue
            working[fp] = existing
            mark = marks.setdefault(existing.id, existing.last_offset)
            if (offset is not None and mark is not None and offset <= mark) or (
                alert.event_ids and all(e in existing.event_ids for e in alert.event_ids)
            ):
                # A replay after a crash before the journal commit: this match is already counted.
                # The watermark makes that exact; the event-id test (the first MAX_EVENT_IDS matches an
                # alert keeps) is what remains without offsets.
                if existing.id not in created and existing.id not in repeats and existing.id not in replayed:
                    created_here = bool(existing.event_ids) and existing.event_ids[0] in alert.event_ids
                    # a copy: later matches of this batch change ``existing``, not what was replayed
                    replayed[existing.id] = (existing.model_copy(deep=True), "created" if created_here else "updated")
                continue
            new_ids = [e for e in alert.event_ids if e not in existing.event_ids]
            existing.count += 1
            existing.last_seen = max(existing.last_seen, alert.last_seen)
            existing.first_seen = min(existing.first_seen, alert.first_seen)
            if offset is not None:
                existing.last_offset = max(existing.last_offset or 0, offset)
            if len(existing.event_ids) < MAX_EVENT_IDS:
                existing.event_ids.extend(new_ids[: MAX_EVENT_IDS - len(existing.event_ids)])
            existing.updated_at = now
            if existing.id in created:
                continue  # new in this batch: written whole with its count
            ids = repeat_ids.setdefault(existing.id, [])
            counted = repeat_offsets.setdefault(existing.id, [])
            repeat = repeats.get(existing.id)
            if repeat is None:
                repeat = repeats[existing.id] = AlertRepeat(
                    id=existing.id, last_seen=alert.last_seen, first_seen=alert.first_seen, updated_at=now,
                    count=0, event_ids=ids, max_event_ids=MAX_EVENT_IDS, offsets=counted,
                    texts=repeat_texts.setdefault(existing.id, []),
                )
            repeat.count += 1
            if offset is not None:
                counted.append(offset)
            repeat.last_seen = max(repeat.last_seen, alert.last_seen)
            repeat.first_seen = min(repeat.first_seen, alert.first_seen)
            # The new match's values make the alert findable by ``q`` (the store bounds the text).
            texts = repeat_texts[existing.id]
            if alert.event and len(texts) < MAX_EVENT_IDS:
                text = event_text(alert.event)
                if text and text not in texts:
                    texts.append(text)
            # Bounded like the alert's own list: the store keeps at most MAX_EVENT_IDS anyway.
            for event_id in new_ids:
                if event_id not in ids and len(ids) < MAX_EVENT_IDS:
                    ids.append(event_id)
            # A replayed "updated" is superseded by this newer version; a replayed "created" is not
            # (its playbooks - notification, national sync - run once per alert): both are handed over.
            if existing.id in replayed and replayed[existing.id][1] == "updated":
                del replayed[existing.id]
        return list(created.values()), list(repeats.values()), list(replayed.values())

    def _open_alert(self, fp: str, since: datetime) -> Alert | None:
        """A fresh copy of the open alert with this fingerprint, or None.

        The cache only saves the search: the alert itself is re-read by id, because an analyst
        may have closed it in the meantime.
        """
        store = self.alert_store
        alert_id = self._open_alerts.get(fp)
        if alert_id is not None:
            fresh: Alert | None
            try:
                fresh = store.get_alert(alert_id)
            except NotFoundError:
                fresh = None
            if fresh is not None and fresh.status not in CLOSED_STATUSES and fresh.last_seen >= since:
                return fresh
            self._open_alerts.pop(fp, None)
        found: Alert | None = store.find_open_alert(fp, since)
        return found

    def _remember(self, alert: Alert) -> None:
        self._open_alerts[alert.fingerprint] = alert.id
        self._open_alerts.move_to_end(alert.fingerprint)
        while len(self._open_alerts) > 50_000:
            self._open_alerts.popitem(last=False)

    # --- hosts and units ---------------------------------------------------------
    def _fill_units(self, events: list[Event]) -> None:
        self._units.fill(events)

    def _update_hosts(self, events: list[Event]) -> None:
        """Keep the inventory current from events: at most one refresh per host a minute.

        Only ``last_seen`` is written (``touch_hosts``), never a whole host: the server may be changing
        the same host's isolation or binding at this moment, and a copy read here would revert that.
        """
        now = time.monotonic()
        latest: dict[str, Event] = {}
        for event in events:
            name = event.get(HOST_NAME)
            if isinstance(name, str) and name:
                latest[name.lower()] = event
        store = self.alert_store
        # "last seen" is when soclite last heard of the host, not the event's own (maybe old) time.
        seen = utcnow()
        touch: dict[str, datetime] = {}
        create: dict[str, Host] = {}
        keys: dict[str, str] = {}
        if len(self._host_seen) > HOST_SEEN_PRUNE:  # bounded: an entry a minute old means "refresh" anyway
            self._host_seen = {k: at for k, at in self._host_seen.items() if now - at < 60}
        due = {key: event for key, event in latest.items() if now - self._host_seen.get(key, -1e9) >= 60}
        # one lookup for the batch: on OpenSearch a lookup per host (2,500 workstations first heard
        # of together, again every minute) held detection up for seconds at a time
        found = store.find_hosts(list(due))
        for key, event in due.items():
            self._host_seen[key] = now
            host = found.get(key)
            unit = event.get(UNIT)
            if host is not None and host.unit is not None and unit is not None and host.unit != unit:
                # Another unit's event naming this host does not make it "online": only its own unit's
                # senders (its agent, its mapped sources) speak for it.
                log.debug("host %s (unit %s) not refreshed by an event of unit %s", host.id, host.unit, unit)
                continue
            if host is None:
                product = str(event.get(LOGSOURCE_PRODUCT) or "").lower()
                host = Host(
                    id=key,
                    name=str(event.get(HOST_NAME)),
                    type=HostType.SERVER if product == "linux" else HostType.WORKSTATION,
                    unit=event.get(UNIT),
                    os=product or None,
                    last_seen=seen,
                )
                create[host.id] = host
            touch[host.id] = seen
            keys[host.id] = key
        for stored in store.touch_hosts(touch, create=create):
            self._units.remember(keys[stored.id], stored.unit)

    def _maybe_save_state(self) -> None:
        now = time.monotonic()
        if self.compact and now - self._last_compact > 60:
            # What every consumer committed is in the store now: free the journal's disk (it is bounded).
            self._last_compact = now
            self.runtime.journal.compact()
        engine = self.runtime.engine
        if engine is not None and time.monotonic() - self._last_state_save > 30:
            self._last_state_save = time.monotonic()
            engine.save_state()


__all__ = ["CONSUMER", "DETECTION", "EVENT_ID", "STORAGE", "Pipeline"]
