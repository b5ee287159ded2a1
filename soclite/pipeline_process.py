"""The server's side of the pipeline child process: spawn, supervise, restart, stop.

:class:`PipelineProcess` stands where an in-process :class:`soclite.pipeline.Pipeline`
would (``runtime.pipeline``): it has ``start``/``stop``/``health_warnings`` and,
for the API, ``rule_hits``/``exception_hits`` read from data_dir/pipeline.db
(the child's engine is the one that counts). The child is
``python -m soclite.pipeline_worker``; its Settings go over its stdin pipe
(never argv or a file: they may hold secrets), and the pipe stays open so the
child notices when this process dies. A child that exits is restarted with
exponential backoff; each restart is logged and shown in /health. This side
also compacts the journal, so its own size estimate stays current.
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


class PipelineProcess:
    """Supervises the pipeline child process; see the module docstring."""

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
        self.restarts = 0
        self.last_exit: int | None = None
        self.last_exit_at: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.stats.reset_hits()
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="soclite-pipeline-supervisor", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _spawn(self) -> None:
        payload = orjson.dumps(revealed_settings(self.runtime.settings)) + b"\n"
        # The child gets its settings only from stdin: without SOCLITE_* variables nothing in its environment
        # can override them (pydantic-settings reads the environment), and no secret sits in its environ.
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCLITE_")}
        proc = subprocess.Popen(  # stdout/stderr inherited: the child logs where the server logs
            [sys.executable, "-m", "soclite.pipeline_worker"], stdin=subprocess.PIPE, close_fds=True, env=env
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(payload)
            proc.stdin.flush()
        except OSError:  # died at once: the supervisor sees the exit and restarts it
            log.exception("could not hand the settings to the pipeline worker")
        with self._proc_lock:
            self._proc = proc
        log.info("pipeline worker started (pid %d)", proc.pid)

    def _supervise(self) -> None:
        backoff = self.min_backoff
        started = time.monotonic()
        next_compact = time.monotonic() + self.compact_seconds
        while not self._stop.wait(0.5):
            if time.monotonic() >= next_compact:
                next_compact = time.monotonic() + self.compact_seconds
                try:
                    # What every consumer committed is in the store now: free the journal's disk (it is bounded).
                    self.runtime.journal.compact()
                except Exception:
                    log.exception("journal compaction failed")
            proc = self._proc
            code = proc.poll() if proc is not None else None
            if proc is None or code is None:
                continue
            self._close_pipe(proc)
            self.last_exit, self.last_exit_at = code, time.time()
            if time.monotonic() - started > 60:
                backoff = self.min_backoff  # it ran a good while: this is a fresh failure, not a crash loop
            log.error("pipeline worker (pid %d) exited with code %s; restarting in %.0fs", proc.pid, code, backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)
            self.restarts += 1
            started = time.monotonic()
            try:
                self._spawn()
            except Exception:  # keep supervising: the next turn sees no child and tries again after a backoff
                log.exception("could not start the pipeline worker")

    @staticmethod
    def _close_pipe(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def stop(self) -> None:
        """SIGTERM the child (it finishes its batch and saves the engine state), wait, then kill."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.error("pipeline worker (pid %d) did not stop in %.0fs; killing it", proc.pid, self.stop_timeout)
                proc.kill()
                proc.wait(10)
        if proc is not None:
            self._close_pipe(proc)
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
        running = self.pid is not None
        if not running and not self._stop.is_set():
            warnings.append(f"pipeline: worker process is down (exit code {self.last_exit}); restarting")
        if self.restarts:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.last_exit_at or 0))
            warnings.append(
                f"pipeline: worker process restarted {self.restarts} time(s) since the server started "
                f"(last exit code {self.last_exit} at {when})"
            )
        status = self.stats.status()
        if running and status is not None and status.pid == self.pid:
            silent = time.time() - status.heartbeat_at
            if silent > HEARTBEAT_STALE:
                warnings.append(f"pipeline: worker process not responding (no heartbeat for {silent:.0f}s)")
            if status.last_error:
                warnings.append(f"pipeline: last error: {status.last_error}")
        # Journal lag per consumer is reported by /health itself (status "degraded" past the bound).
        return warnings
