"""The application: the one place that wires a soclite process.

A server is two processes built from the same Settings:

* the **server process** (:class:`Server`): the HTTP API and UI, the syslog
  inputs and HTTP ingest (into the journal), the playbook worker, the report
  scheduler, and the supervisor of the detection child;
* the **detection process** (:mod:`soclite.pipeline_worker`): journal →
  correlator → store → playbook hand-over.

Both get their :class:`~soclite.runtime.Runtime` from :func:`build_runtime`;
what only the server runs (threads, listeners, the scheduler) is started by
:meth:`Server.start_background`. Start-up follows the data flow backwards, so
nothing produces into a part that is not running yet: stores and repositories,
journal and engine, playbook worker, pipeline consumer, report scheduler,
inputs, and last (in ``soclite server``) the HTTP API. Shutdown runs in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from soclite.config import Settings
from soclite.correlator.engine import Engine
from soclite.db import require_sound_data_dir
from soclite.playbooks.runner import PlaybookRunner
from soclite.playbooks.user_notify import UserNotifier
from soclite.runtime import Runtime
from soclite.store.journal import Journal

log = logging.getLogger(__name__)

Role = Literal["server", "detection"]


def build_runtime(settings: Settings, *, role: Role) -> Runtime:
    """Every service of one process, opened in order; a failure closes what was opened.

    The server first checks every database of the data directory (``PRAGMA quick_check``) and refuses
    to start on a damaged one; the detection child is started by a server that did.
    """
    if role == "server" and settings.server.check_databases_at_start:
        require_sound_data_dir(settings.data_dir)
    runtime = Runtime.build(settings)
    try:
        runtime.journal = Journal.from_settings(settings)
        runtime.engine = Engine.from_settings(settings)
        if role == "server" and settings.server.pipeline_process:
            # The detection child's engine owns the correlation windows: this one must not overwrite
            # their saved state (it serves the rule list, rule tests and exception compilation).
            runtime.engine.state_dir = None
        runtime.playbooks = PlaybookRunner.from_runtime(runtime)
        runtime.notifier = UserNotifier(runtime.notification_rules, runtime.users, runtime.store, runtime.outbox,
                                        settings)  # fmt: skip
    except BaseException:
        runtime.close()
        raise
    return runtime


class Server:
    """Every long-running part of the embedded server, started and stopped in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = build_runtime(settings, role="server")
        self._stoppers: list[Callable[[], object]] = []

    def start_background(self) -> None:
        from soclite.pipeline import Pipeline
        from soclite.pipeline_process import PipelineProcess
        from soclite.playbooks.worker import Worker

        rt = self.runtime
        worker = Worker(rt, tick=rt.notifier.periodic if rt.notifier is not None else None)
        worker.start()
        self._stoppers.append(worker.stop)
        pipeline = PipelineProcess(rt) if self.settings.server.pipeline_process else Pipeline(rt)
        rt.pipeline = pipeline
        pipeline.start()
        self._stoppers.append(pipeline.stop)
        self._start_scheduler()
        self._start_inputs()

    def _start_scheduler(self) -> None:
        from soclite.reports.scheduler import ReportScheduler

        scheduler = ReportScheduler(self.runtime)
        scheduler.start()
        self.runtime.scheduler = scheduler
        self._stoppers.append(scheduler.shutdown)

    def _start_inputs(self) -> None:
        from soclite.collectors.inputs import journal_sink, start_inputs

        sink, dead_letter = journal_sink(self.runtime.require_journal())
        for running in start_inputs(self.settings, sink, dead_letter):
            self.runtime.inputs.append(running)
            self._stoppers.append(running.stop)

    def first_admin_password(self) -> str | None:
        from soclite.control.identity import ensure_first_admin

        password: str | None = ensure_first_admin(self.runtime.users)
        return password

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:
                log.exception("error while stopping %r", stop)
        self._stoppers.clear()
        # Closing the runtime saves the engine's window state (when it owns it) and closes every store.
        self.runtime.close()
