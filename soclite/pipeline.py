"""The pipeline: journal → correlator → store → playbooks, on one consumer thread.

Each turn reads a batch from the ingest journal (events already durable and
acknowledged to their senders), runs it through the Sigma engine, writes the
events and the (grouped) alerts to the store, hands new/updated alerts to the
playbook runner, and only then commits the journal offset. A crash anywhere
before the commit replays the batch: event writes are idempotent on
``event.id``, and a new alert's id is derived from its fingerprint and first
event, so a replay rewrites the same rows rather than adding new ones.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

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

log = logging.getLogger("soclite.pipeline")

CONSUMER = "pipeline"
_ALERT_NS = uuid.UUID("6c1c1e1a-59f1-4f43-9a53-1c0c2a3f5e01")
#: matched event ids kept on an alert (the count keeps growing beyond this)
MAX_EVENT_IDS = 20


class Pipeline:
    """Consumes the journal; see the module docstring for the order of writes."""

    def __init__(self, runtime: Any, *, batch_size: int = 2000, idle_sleep: float = 0.05) -> None:
        self.runtime = runtime
        self.batch_size = batch_size
        self.idle_sleep = idle_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open_alerts: OrderedDict[str, Alert] = OrderedDict()
        self._host_units: dict[str, str | None] = {}
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

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        engine = self.runtime.engine
        if engine is not None:
            engine.save_state()

    def health_warnings(self) -> list[str]:
        warnings = []
        if self.last_error:
            warnings.append(f"pipeline: last error: {self.last_error}")
        journal = self.runtime.journal
        if journal is not None:
            lag = journal.lag(CONSUMER)
            if lag > 100_000:
                warnings.append(f"pipeline: {lag} events waiting in the journal")
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
        rows = journal.read(CONSUMER, self.batch_size)
        if not rows:
            self._maybe_save_state()
            return 0
        events = [event for _, event in rows]
        self.process(events)
        journal.commit(CONSUMER, rows[-1][0])
        self._maybe_save_state()
        return len(events)

    def process(self, events: list[Event]) -> list[tuple[Alert, str]]:
        """Correlate and store a batch; return the stored alerts with their change kind."""
        self._fill_units(events)
        store = self.runtime.store
        engine = self.runtime.engine
        raw_alerts: list[Alert] = engine.process_batch(events) if engine is not None else []
        store.write_events(events)
        changes = self._group(raw_alerts)
        if changes:
            store.put_alerts([alert for alert, _ in changes])
            runner = self.runtime.extras.get("playbook_runner")
            if runner is not None:
                for alert, change in changes:
                    try:
                        runner.on_alert(alert, change)
                    except Exception:
                        self.errors += 1
                        log.exception("playbook trigger failed for alert %s", alert.id)
        self._update_hosts(events)
        self.events_processed += len(events)
        return changes

    # --- grouping --------------------------------------------------------------
    def _group(self, alerts: Sequence[Alert]) -> list[tuple[Alert, str]]:
        """Alerts with the same fingerprint within the window become one with a growing count."""
        window = timedelta(seconds=self.runtime.settings.correlator.group_window_seconds)
        changed: dict[str, tuple[Alert, str]] = {}
        for alert in alerts:
            existing = self._open_alert(alert.fingerprint, alert.last_seen - window)
            if existing is not None and existing.last_seen >= alert.first_seen - window:
                if alert.event_ids and all(e in existing.event_ids for e in alert.event_ids):
                    # A replay after a crash before the journal commit: this match is already counted.
                    # (Exact for the first MAX_EVENT_IDS matches an alert keeps; later ones may count twice.)
                    continue
                existing.count += 1
                existing.last_seen = max(existing.last_seen, alert.last_seen)
                existing.first_seen = min(existing.first_seen, alert.first_seen)
                if len(existing.event_ids) < MAX_EVENT_IDS:
                    existing.event_ids.extend(e for e in alert.event_ids if e not in existing.event_ids)
                existing.updated_at = utcnow()
                kind = changed.get(existing.id, (existing, "updated"))[1]
                changed[existing.id] = (existing, kind)
            else:
                first_event = alert.event_ids[0] if alert.event_ids else alert.first_seen.isoformat()
                alert.id = uuid.uuid5(_ALERT_NS, f"{alert.fingerprint}/{first_event}").hex
                self._remember(alert)
                changed[alert.id] = (alert, "created")
        for _alert, kind in changed.values():
            if kind == "created":
                self.alerts_created += 1
            else:
                self.alerts_updated += 1
        return list(changed.values())

    def _open_alert(self, fp: str, since: datetime) -> Alert | None:
        cached = self._open_alerts.get(fp)
        if cached is not None:
            if cached.status in CLOSED_STATUSES:
                cached = None
            else:
                # An analyst may have closed it since we cached it: trust the store for status.
                try:
                    fresh = self.runtime.store.get_alert(cached.id)
                except Exception:
                    fresh = cached
                if fresh.status in CLOSED_STATUSES:
                    self._open_alerts.pop(fp, None)
                    return None
                fresh_copy = fresh.model_copy()
                fresh_copy.count = max(fresh.count, cached.count)
                self._remember(fresh_copy)
                return fresh_copy if fresh_copy.last_seen >= since else None
        found: Alert | None = self.runtime.store.find_open_alert(fp, since)
        if found is not None:
            self._remember(found)
        return found

    def _remember(self, alert: Alert) -> None:
        self._open_alerts[alert.fingerprint] = alert
        self._open_alerts.move_to_end(alert.fingerprint)
        while len(self._open_alerts) > 50_000:
            self._open_alerts.popitem(last=False)

    # --- hosts and units ---------------------------------------------------------
    def _host_unit(self, name: str) -> str | None:
        key = name.lower()
        if key not in self._host_units:
            host = self.runtime.store.find_host(key)
            self._host_units[key] = host.unit if host is not None else None
        return self._host_units[key]

    def _fill_units(self, events: list[Event]) -> None:
        for event in events:
            if event.get(UNIT) is None:
                name = event.get(HOST_NAME)
                if isinstance(name, str) and name:
                    event[UNIT] = self._host_unit(name)

    def _update_hosts(self, events: list[Event]) -> None:
        """Keep the inventory current from events: at most one write per host a minute."""
        now = time.monotonic()
        latest: dict[str, Event] = {}
        for event in events:
            name = event.get(HOST_NAME)
            if isinstance(name, str) and name:
                latest[name.lower()] = event
        store = self.runtime.store
        for key, event in latest.items():
            if now - self._host_seen.get(key, -1e9) < 60:
                continue
            self._host_seen[key] = now
            host = store.find_host(key)
            # "last seen" is when soclite last heard of the host, not the event's own (maybe old) time.
            seen = utcnow()
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
            elif host.last_seen is None or seen > host.last_seen:
                host.last_seen = seen
            else:
                continue
            store.put_host(host)
            self._host_units[key] = host.unit

    def _maybe_save_state(self) -> None:
        now = time.monotonic()
        if now - self._last_compact > 60:
            # What every consumer committed is in the store now: free the journal's disk (it is bounded).
            self._last_compact = now
            self.runtime.journal.compact()
        engine = self.runtime.engine
        if engine is not None and time.monotonic() - self._last_state_save > 30:
            self._last_state_save = time.monotonic()
            engine.save_state()


__all__ = ["CONSUMER", "EVENT_ID", "Pipeline"]
