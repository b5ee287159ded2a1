"""The pipeline child process: ``python -m soclite.pipeline_worker`` (spawned by :mod:`soclite.pipeline_process`).

Why a process: ingest (HTTP/syslog parsing, journal appends) and the pipeline
(Sigma engine, store writes) are both CPU-bound Python; on one interpreter they
share the GIL and end-to-end throughput is well below either alone. The journal
already decouples them durably, so the child only needs the data dir.

The child reads the effective Settings as one JSON line on stdin (secrets
revealed only over that pipe), then keeps stdin open: EOF means the server is
gone (even after SIGKILL) and the child stops cleanly. It builds its own
Runtime (store, journal, engine, outbox, playbook runner) and runs
:class:`soclite.pipeline.Pipeline` on a thread, while its main thread:

* polls what the API persists — exceptions and rule enable/disable in
  control.db (through :class:`soclite.control.tuning.Tuning`) and the IoC lists
  the playbook worker keeps there too — and applies changes to its engine;
* (bulk event storage, the journal's second consumer, runs in soclite.storage_worker, or on a thread
  of this process when ``server.storage_process`` is false)
* writes rule and exception hit counts (deltas) and its status to
  data_dir/pipeline.db, which the API and /health of the server read.

An exclusive lock on data_dir/pipeline.lock makes sure that a child orphaned
by a killed server finishes its batch before a new one starts consuming.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from soclite.config import Settings
from soclite.correlator.ioc import IocKind
from soclite.logs import configure_logging
from soclite.runtime import Runtime
from soclite.store.pipeline_stats import PipelineStats, WorkerStatus

log = logging.getLogger(__name__)

#: seconds between polls of control.db
POLL_SECONDS = 1.0
#: seconds between writes of the hit counts and status
FLUSH_SECONDS = 5.0
#: events per pipeline batch (one journal commit each) when the journal is behind
BATCH_SIZE = 10_000

def revealed_settings(settings: Settings) -> dict[str, Any]:
    """Settings as JSON-able data with secrets in clear: only ever written to the child's stdin pipe."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    result = walk(settings)
    assert isinstance(result, dict)
    return result


class _SentSettings(Settings):
    """Settings built only from the values passed in: pydantic-settings would otherwise let the
    environment override them (and the environment wins over init values in :class:`Settings`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from_json(line: bytes) -> Settings:
    """The exact Settings of the parent: validated as data, not re-read from the environment or a file."""
    return _SentSettings(**orjson.loads(line))


class EngineSync:
    """Applies to this process's engine what the API and the playbook worker persisted elsewhere."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._exceptions: list[tuple[str, str]] | None = None
        self._rule_states: dict[str, bool] | None = None
        self._ioc_version: int | None = None
        self._ioc_lists: dict[str, tuple[str, str, list[str]]] = {}

    def poll(self) -> None:
        tuning = self.runtime.tuning
        active = tuning.active_exceptions()  # also changes when one expires
        if active != self._exceptions:
            applied = tuning.sync(self.runtime.engine)
            self._exceptions = active
            log.info("exceptions applied to the pipeline engine: %d", applied)
        states = tuning.rule_states()
        if states != self._rule_states:
            tuning.apply_rule_states(self.runtime.engine)
            self._rule_states = states
            log.info("rule enable/disable states applied: %d stored", len(states))
        self._poll_iocs()

    def _poll_iocs(self) -> None:
        stored = self.runtime.iocs
        # data_version changes when another connection committed to control.db: only then re-read the lists.
        version = self.runtime.control.data_version()
        if version == self._ioc_version:
            return
        iocs = self.runtime.require_engine().iocs
        current = {
            name: (kind, stored.ioc_list_level(name), stored.ioc_values(name))
            for name, kind in stored.ioc_lists().items()
        }
        for name, (kind, level, values) in current.items():
            if self._ioc_lists.get(name) != (kind, level, values):
                count = iocs.set_list(name, cast(IocKind, kind), values, level=level)
                log.info("IoC list %s applied: %d value(s)", name, count)
        for name in set(self._ioc_lists) - set(current):
            iocs.remove_list(name)
            log.info("IoC list %s removed", name)
        self._ioc_lists = current
        # Only now: a failed read above is retried on the next poll instead of waiting for another write.
        self._ioc_version = version


class HitCounter:
    """Turns the engine's running totals into deltas for :meth:`PipelineStats.add_hits`."""

    def __init__(self) -> None:
        self._rules: dict[str, int] = {}
        self._exceptions: dict[str, int] = {}

    @staticmethod
    def _delta(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
        out = {}
        for key, value in now.items():
            # a total below what was written means the counter restarted (e.g. an exception re-created)
            delta = value - before.get(key, 0) if value >= before.get(key, 0) else value
            if delta:
                out[key] = delta
        return out

    def flush(self, engine: Any, stats: PipelineStats) -> None:
        rules = {str(info.id): int(info.hits) for info in engine.rules_info()}
        exceptions = {str(k): int(v) for k, v in engine.exception_hits().items()}
        stats.add_hits(self._delta(rules, self._rules), self._delta(exceptions, self._exceptions))
        self._rules, self._exceptions = rules, exceptions


class PipelineWorker:
    """One child's Runtime and loop; :meth:`run` returns when ``stop`` is set."""

    def __init__(self, settings: Settings) -> None:
        from soclite.application import build_runtime
        from soclite.pipeline import Pipeline

        rt = build_runtime(settings, role="detection")
        self.runtime = rt
        self.stats = PipelineStats(settings.data_dir / "pipeline.db")
        self.sync = EngineSync(rt)
        self.hits = HitCounter()
        # The server compacts the journal (and so keeps its own size estimate current). Bigger batches than
        # in-process: each journal commit waits for the server's appends to release journal.db's write lock
        # (SQLite's busy handler polls with sleeps across processes), so fewer commits per event.
        # Bulk event storage runs in its own child when server.storage_process (soclite.storage_worker).
        self.pipeline = Pipeline(rt, compact=False, batch_size=BATCH_SIZE,
                                 with_storage=not settings.server.storage_process)
        self.started_at = time.time()

    def _flush(self) -> None:
        self.hits.flush(self.runtime.engine, self.stats)
        p = self.pipeline
        self.stats.set_status(WorkerStatus(
            pid=os.getpid(), started_at=self.started_at, heartbeat_at=time.time(), events=p.events_processed,
            alerts_created=p.alerts_created, errors=p.errors + (p.storage.errors if p.storage else 0),
            last_error=p.last_error or (p.storage.last_error if p.storage else None),
        ))  # fmt: skip

    def run(self, stop: threading.Event) -> None:
        self.sync.poll()  # exceptions, rule states and IoC lists before the first event
        self._flush()
        self.pipeline.start()
        log.info("pipeline worker %d running", os.getpid())
        next_flush = time.monotonic() + FLUSH_SECONDS
        try:
            while not stop.wait(POLL_SECONDS):
                try:
                    self.sync.poll()
                    if time.monotonic() >= next_flush:
                        next_flush = time.monotonic() + FLUSH_SECONDS
                        self._flush()
                except Exception:  # a locked or busy database: try again at the next poll
                    log.exception("pipeline worker housekeeping failed")
        finally:
            # Finishes the batch in hand and saves the correlation state; when the batch is still running
            # after the wait, its resources stay open under it (the process is exiting anyway and the
            # uncommitted batch is replayed by the next worker).
            if self.pipeline.stop():
                try:
                    self._flush()
                finally:
                    self.close()

    def close(self) -> None:
        self.stats.close()
        self.runtime.close()


def _lock(path: Path, stop: threading.Event) -> IO[bytes] | None:
    """Hold data_dir/pipeline.lock: wait for an older child (orphaned by a killed server) to finish."""
    handle = path.open("ab")
    waited = False
    while not stop.is_set():
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if not waited:
                log.warning("another pipeline worker holds %s; waiting for it to finish", path)
                waited = True
            stop.wait(0.2)
    handle.close()
    return None


def _read_line(fd: int) -> bytes:
    """The settings line, read unbuffered: the rest of stdin is only watched for EOF."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _watch_parent(fd: int, stop: threading.Event) -> None:
    """EOF on stdin: the server exited (or was killed): stop after the current batch.

    Raw ``os.read`` on the descriptor: a buffered reader's lock would abort interpreter shutdown.
    """
    while os.read(fd, 4096):
        pass
    if not stop.is_set():
        log.warning("the server is gone; pipeline worker stopping")
    stop.set()


@dataclass
class Child:
    """What a child process of the server starts with: its settings, its stop event and its lock."""

    settings: Settings
    stop: threading.Event
    lock: IO[bytes]


def start_child(what: str, lock_name: str) -> Child | int:
    """The start shared by the server's children (detection, storage): signals, the settings line on
    stdin, logging, the parent watch and the data dir lock. An int is the exit code to return now."""
    configure_logging()  # the defaults until the settings arrive
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C in a terminal reaches the whole process group: the server decides when this child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin = sys.stdin.fileno()
    line = _read_line(stdin)
    if not line.strip():
        log.error("no settings on stdin; the %s worker is started by `soclite server`", what)
        return 2
    settings = settings_from_json(line)
    configure_logging(settings.logging.level, json=settings.logging.format == "json")
    threading.Thread(target=_watch_parent, args=(stdin, stop), name="parent-watch", daemon=True).start()
    lock = _lock(settings.data_dir / lock_name, stop)
    return 0 if lock is None else Child(settings, stop, lock)


def main() -> int:
    child = start_child("pipeline", "pipeline.lock")
    if isinstance(child, int):
        return child
    try:
        PipelineWorker(child.settings).run(child.stop)
    finally:
        child.lock.close()
    return 0

if __name__ == "__main__":
    # Run the module's imported copy, not ``__main__``: its logger is then ``soclite.pipeline_worker``,
    # under the ``soclite`` logger that configure_logging sets up.
    from soclite.pipeline_worker import main as _main

    sys.exit(_main())
