"""The server's side of the pipeline child processes: spawn, supervise, restart, stop.

:class:`PipelineProcess` stands where an in-process :class:`soclite.pipeline.Pipeline`
would (``runtime.pipeline``): it has ``start``/``stop``/``health_warnings`` and,
for the API, ``rule_hits``/``exception_hits`` read from data_dir/pipeline.db
(the child's engine is the one that counts). The children are the detection
worker ``python -m soclite.pipeline_worker`` (journal consumer "detection") and,
with ``server.storage_process``, the bulk event storage worker
``python -m soclite.storage_worker`` (consumer "storage"; otherwise a thread of
the detection child). Their Settings go over their stdin pipes (never argv or a
file: they may hold secrets), and the pipes stay open so the children notice
when this process dies. A child that exits is restarted with exponential
backoff, each on its own; each restart is logged and shown in /health. This
side also compacts the journal, so its own size estimate stays current.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import orjson

from soclite.pipeline_worker import revealed_settings
from soclite.runtime import HitKind
from soclite.store.pipeline_stats import PipelineStats

log = logging.getLogger(__name__)

#: a child silent for this long (seconds) is reported as not responding
HEARTBEAT_STALE = 30.0


class _Child:
    """One supervised child process and its restart history."""

    def __init__(self, module: str, label: str, min_backoff: float) -> None:
        self.module = module
        self.label = label
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        self.last_exit_at: float | None = None
        self.backoff = min_backoff
        self.started = time.monotonic()
        #: monotonic time of the pending restart (None: running or not started)
        self.restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def spawn(self, payload: bytes) -> None:
        # The child gets its settings only from stdin: without SOCLITE_* variables nothing in its environment
        # can override them (pydantic-settings reads the environment), and no secret sits in its environ.
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCLITE_")}
        proc = subprocess.Popen(  # stdout/stderr inherited: the child logs where the server logs
            [sys.executable, "-m", self.module], stdin=subprocess.PIPE, close_fds=True, env=env
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(payload)
            proc.stdin.flush()
        except OSError:  # died at once: the supervisor sees the exit and restarts it
            log.exception("could not hand the settings to the %s", self.label)
        self.proc = proc
        self.started = time.monotonic()
        self.restart_at = None
        log.info("%s started (pid %d)", self.label, proc.pid)

    def close_pipe(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def stop(self, timeout: float) -> None:
        """SIGTERM (it finishes its batch), wait, then kill."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("%s (pid %d) did not stop in %.0fs; killing it", self.label, proc.pid, timeout)
                proc.kill()
                proc.wait(10)
        self.close_pipe()


class PipelineProcess:
    """Supervises the pipeline child processes; see the module docstring."""

    def __init__(
        self,
        runtime: Any,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        stop_timeout: float = 20.0,
        compact_seconds: float = 60.0,
    ) -> None:
        self.runtime = runtime
        self.stats = PipelineStats(runtime.settings.data_dir / "pipeline.db")
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stop_timeout = stop_timeout
        self.compact_seconds = compact_seconds
        self.detection = _Child("soclite.pipeline_worker", "pipeline worker", min_backoff)
        self.children = [self.detection]
        if runtime.settings.server.storage_process:
            self.children.append(_Child("soclite.storage_worker", "storage worker", min_backoff))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.stats.reset_hits()
        for child in self.children:
            self._spawn(child)
        self._thread = threading.Thread(target=self._supervise, name="soclite-pipeline-supervisor", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        """The detection child's pid while it runs."""
        return self.detection.pid

    @property
    def restarts(self) -> int:
        return self.detection.restarts

    def _spawn(self, child: _Child) -> None:
        payload = orjson.dumps(revealed_settings(self.runtime.settings)) + b"\n"
        with self._lock:
            if not self._stop.is_set():
                child.spawn(payload)

    def _supervise(self) -> None:
        next_compact = time.monotonic() + self.compact_seconds
        while not self._stop.wait(0.5):
            if time.monotonic() >= next_compact:
                next_compact = time.monotonic() + self.compact_seconds
                try:
                    # What every consumer committed is stored: free the journal's disk (it is bounded).
                    self.runtime.journal.compact()
                except Exception:
                    log.exception("journal compaction failed")
            for child in self.children:
                self._check(child)

    def _check(self, child: _Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.backoff = min(child.backoff * 2, self.max_backoff)
                child.restarts += 1
                try:
                    self._spawn(child)
                except Exception:  # keep supervising: tried again after another backoff
                    log.exception("could not start the %s", child.label)
                    child.restart_at = time.monotonic() + child.backoff
            return
        proc = child.proc
        code = proc.poll() if proc is not None else None
        if proc is None or code is None:
            return
        child.close_pipe()
        child.last_exit, child.last_exit_at = code, time.time()
        if now - child.started > 60:
            child.backoff = self.min_backoff  # it ran a good while: a fresh failure, not a crash loop
        log.error("%s (pid %d) exited with code %s; restarting in %.0fs", child.label, proc.pid, code, child.backoff)
        child.restart_at = now + child.backoff

    def stop(self) -> None:
        """SIGTERM the children (they finish their batch; detection saves the engine state), wait, then kill."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:  # no spawn after this point
            pass
        for child in self.children:
            child.stop(self.stop_timeout)
        self.stats.close()

    # --- what the API reads --------------------------------------------------------------------------
    def rule_hits(self) -> dict[str, int]:
        return self.stats.rule_hits()

    def exception_hits(self) -> dict[str, int]:
        return self.stats.exception_hits()

    def shared_hits(self, kind: HitKind) -> dict[str, int] | None:
        """Hit counts the child wrote to the shared table (the engine of this process counts nothing)."""
        return self.rule_hits() if kind == "rule_hits" else self.exception_hits()

    def health_warnings(self) -> list[str]:
        warnings: list[str] = []
        for child, prefix in zip(self.children, ("pipeline", "event storage"), strict=False):
            if child.pid is None and not self._stop.is_set():
                warnings.append(f"{prefix}: worker process is down (exit code {child.last_exit}); restarting")
            if child.restarts:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(child.last_exit_at or 0))
                warnings.append(
                    f"{prefix}: worker process restarted {child.restarts} time(s) since the server started "
                    f"(last exit code {child.last_exit} at {when})"
                )
        running = self.pid
        status = self.stats.status()
        if running is not None and status is not None and status.pid == running:
            silent = time.time() - status.heartbeat_at
            if silent > HEARTBEAT_STALE:
                warnings.append(f"pipeline: worker process not responding (no heartbeat for {silent:.0f}s)")
            if status.last_error:
                warnings.append(f"pipeline: last error: {status.last_error}")
        # Journal lag per consumer is reported by /health itself (status "degraded" past the bound).
        return warnings
