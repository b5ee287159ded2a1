"""The outbox worker: a thread that runs due actions, and the connector's periodic heartbeat and IoC pull.

At-least-once: a row is marked ``running`` before the action runs and ``succeeded`` after; a crash between
the two makes it due again at the next start (``Outbox.recover``), and every action tolerates a repeat
(idempotency keys, deterministic STIX ids). A step's ``timeout`` bounds how long the worker waits for it;
an action that overruns is retried like a failure (the late call cannot be cancelled, only outlived).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from soclite.errors import SocliteError
from soclite.models import isoformat, utcnow
from soclite.playbooks.actions import ActionContext, PermanentError, RetryableError, get_action
from soclite.playbooks.outbox import ActionRecord

if TYPE_CHECKING:
    from soclite.playbooks.services import ResponseServices

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, runtime: ResponseServices, *, poll_seconds: float = 1.0, max_parallel: int = 4,
                 tick: Callable[[], object] | None = None, tick_seconds: float = 20.0) -> None:
        if runtime.outbox is None:
            raise SocliteError("the worker needs runtime.outbox")
        self.runtime = runtime
        self.outbox = runtime.outbox
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_parallel, thread_name_prefix="soclite-action"
        )
        self._next_heartbeat = 0.0
        self._next_pull = 0.0
        #: another periodic job of the response layer (the user notifier's digests)
        self._tick, self._tick_seconds, self._next_tick = tick, tick_seconds, 0.0
        self.outbox.on_submit(self._wake.set)

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Worker:
        recovered = self.outbox.recover()
        if recovered:
            log.warning("%d action(s) interrupted by the last stop are due again", recovered)
        self.restore_ioc_lists()
        self._thread = threading.Thread(target=self._loop, name="soclite-playbook-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
                self.periodic()
            except Exception:  # the loop must outlive any one bad row or a locked database
                log.exception("playbook worker iteration failed")
                ran = 0
            if ran:
                continue
            due = self.outbox.next_due_in()
            wait = self.poll_seconds if due is None else min(self.poll_seconds, due)
            self._wake.wait(max(wait, 0.01))
            self._wake.clear()

    # --- actions ----------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Run every row due now (lanes: their head only); return how many ran."""
        records = self.outbox.claim_due()
        futures = [(record, self._pool.submit(self._execute, record)) for record in records]
        for record, future in futures:
            try:
                future.result(timeout=record.timeout_seconds)
            except concurrent.futures.TimeoutError:
                self.outbox.fail(
                    record.id,
                    f"timed out after {record.timeout_seconds:g}s",
                    permanent=False,
                    attempt=record.attempts,
                )
        return len(records)

    def _execute(self, record: ActionRecord) -> None:
        try:
            cls = get_action(record.action)
            options = cls.options.model_validate(record.params)
            result = cls().execute(ActionContext(self.runtime, record, record.payload), options)
        except PermanentError as exc:
            self.outbox.fail(record.id, str(exc), permanent=True, attempt=record.attempts)
            return
        except RetryableError as exc:
            self.outbox.fail(record.id, str(exc), permanent=False, attempt=record.attempts)
            return
        except (SocliteError, ValueError) as exc:
            # Configuration or parameter problems: a human must fix them, retrying cannot.
            self.outbox.fail(
                record.id, f"{type(exc).__name__}: {exc}", permanent=True, attempt=record.attempts
            )
            return
        except Exception as exc:  # an unexpected bug in an action: keep the row, retry with backoff
            log.exception("action %s (%s) crashed", record.id, record.action)
            self.outbox.fail(
                record.id, f"{type(exc).__name__}: {exc}", permanent=False, attempt=record.attempts
            )
            return
        if not self.outbox.complete(record.id, result, attempt=record.attempts):
            log.warning(
                "action %s finished after its timeout; it was already rescheduled (at-least-once)", record.id
            )

    def expire_stalled_scans(self) -> int:
        """Scans whose agent went silent past ``response.scan_timeout_minutes`` become expired."""
        queue = self.runtime.commands
        if queue is None:
            return 0
        timeout = timedelta(minutes=self.runtime.settings.response.scan_timeout_minutes)
        return len(queue.expire_stalled_scans(timeout))

    # --- connector: heartbeat and indicator pull -------------------------------------------------------
    def periodic(self) -> None:
        if time.monotonic() >= self._next_tick:
            self._next_tick = time.monotonic() + self._tick_seconds
            self.expire_stalled_scans()
            if self._tick is not None:
                self._tick()
        national = self.runtime.settings.national
        if not national.enabled:
            return
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + national.heartbeat_seconds
            self.heartbeat()
        if now >= self._next_pull:
            self._next_pull = now + national.pull_seconds
            self.pull_indicators()

    def heartbeat(self) -> bool:
        from soclite.playbooks.connectors import connector_for

        connector = connector_for(self.runtime)
        try:
            connector.heartbeat(connector.stats())
        except (RetryableError, PermanentError) as exc:
            self.outbox.connector_update(
                connector.name, last_error=f"heartbeat: {exc}"[:500], last_error_at=isoformat(utcnow())
            )
            return False
        self.outbox.connector_update(connector.name, last_heartbeat=isoformat(utcnow()))
        return True

    def pull_indicators(self) -> int:
        """Pull new indicators into the stored ``national:<kind>`` lists and push those to the correlator."""
        from soclite.playbooks.connectors import connector_for

        connector = connector_for(self.runtime)
        cursor = self.outbox.connector_status(connector.name).cursor
        try:
            indicators, new_cursor = connector.pull_indicators(cursor)
        except (RetryableError, PermanentError) as exc:
            self.outbox.connector_update(
                connector.name, last_error=f"pull: {exc}"[:500], last_error_at=isoformat(utcnow())
            )
            return 0
        touched: dict[str, str] = {}
        for indicator in indicators:
            name = f"national:{indicator.kind}"
            touched[name] = indicator.kind
            if indicator.active:
                self.outbox.add_ioc_values(
                    name, indicator.kind, [indicator.value], source_id=indicator.source_id
                )
            else:
                self.outbox.remove_ioc_source(name, indicator.source_id)
        for name, kind in touched.items():
            self._push_list(name, kind)
        if new_cursor != cursor:
            self.outbox.connector_update(connector.name, cursor=new_cursor)
        return len(indicators)

    def restore_ioc_lists(self) -> None:
        """After a restart, give the correlator back the lists kept in the outbox db."""
        for name, kind in self.outbox.ioc_lists().items():
            self._push_list(name, kind)

    def _push_list(self, name: str, kind: str) -> None:
        engine: Any = self.runtime.engine
        iocs = getattr(engine, "iocs", None) if engine is not None else None
        if iocs is None:
            log.warning("IoC list %s kept but not applied: the correlator is not running here", name)
            return
        iocs.set_list(name, kind, self.outbox.ioc_values(name), level=self.outbox.ioc_list_level(name))
