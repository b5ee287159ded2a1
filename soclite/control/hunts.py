"""Retro-hunt jobs: a hunt (:mod:`soclite.control.retrohunt`) started by an analyst runs in a thread of
the server; its progress and hits are rows of control.db, so any request (or process) reads them.

A hunt runs with the scope of the analyst who started it, and its hits are read back through the
reader's scope again: a hit of a unit the reader cannot see is never returned. A job is visible to
whoever started it and to province-wide (unscoped) callers. Starting and finishing are audited.
A hunt keeps at most ``MAX_KEPT_HITS`` hits (it goes on counting past them).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from soclite.control import audit
from soclite.control.retrohunt import HuntProgress, HuntRequest, run_hunt
from soclite.db import Database
from soclite.errors import NotFoundError, SocliteError
from soclite.models import isoformat, new_id, utcnow
from soclite.store.base import Store

log = logging.getLogger(__name__)

MAX_KEPT_HITS = 10_000
#: progress is written at most this often (seconds): a fast hunt must not turn into a write storm
PROGRESS_EVERY = 0.5


def _alive(pid: int | None) -> bool:
    """Whether the process that runs a hunt still exists (this one always does)."""
    if pid is None or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _scope_text(scope: frozenset[str] | None) -> str | None:
    return None if scope is None else orjson.dumps(sorted(scope)).decode()


class HuntJobs:
    """The ``hunts`` and ``hunt_hits`` tables of control.db, and the threads running hunts."""

    def __init__(self, db: Database, store: Store, *, archive_dir: Path | None = None,
                 placeholders: dict[str, list[str]] | None = None) -> None:
        self.db = db
        self.store = store
        self.archive_dir = archive_dir
        self.placeholders = placeholders or {}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, req: HuntRequest, *, actor: str, unit: str | None,
              runner: Callable[[Callable[[], None]], None] | None = None) -> dict[str, Any]:
        """Record the hunt, audit it, and run it in a thread (``runner`` lets a caller run it inline)."""
        hunt_id = new_id()[:16]
        with self.db.write() as conn:
            conn.execute(
                'INSERT INTO hunts (id, actor, unit, scope, rule_origin, rule_yaml, start, "end", archive, status,'
                " phase, created_at, runner_pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', 'queued', ?, ?)",
                (hunt_id, actor, unit, _scope_text(req.units), req.origin, req.rule_yaml, isoformat(req.start),
                 isoformat(req.end), int(req.archive), isoformat(utcnow()), os.getpid()),
            )
        audit.append(self.store, actor, "hunt.start", f"hunt:{hunt_id}", None,
                     {"rule": req.origin, "from": isoformat(req.start), "to": isoformat(req.end),
                      "units": sorted(req.units) if req.units is not None else None}, unit)  # fmt: skip
        if runner is not None:
            runner(lambda: self.run(hunt_id, req, actor=actor, unit=unit))
        else:
            thread = threading.Thread(target=self.run, args=(hunt_id, req), kwargs={"actor": actor, "unit": unit},
                                      name=f"hunt-{hunt_id}", daemon=True)
            self._threads[hunt_id] = thread
            thread.start()
        return self.get(hunt_id, None, actor=actor, limit=0)

    def run(self, hunt_id: str, req: HuntRequest, *, actor: str, unit: str | None) -> None:
        """Run one hunt to its end, recording progress and hits; never raises (the job says what failed)."""
        last = 0.0
        kept = 0
        pending: list[tuple[str, int, str | None, str]] = []

        def flush(state: HuntProgress) -> None:
            with self.db.write() as conn:
                conn.executemany("INSERT INTO hunt_hits (hunt_id, seq, unit, doc) VALUES (?, ?, ?, ?)", pending)
                conn.execute("UPDATE hunts SET phase = ?, scanned = ?, total = ?, hits = ?, kept = ? WHERE id = ?",
                             (state.phase, state.scanned, state.total, state.hits, kept, hunt_id))
            pending.clear()

        def on_progress(state: HuntProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY or state.phase == "done":
                last = now
                flush(state)

        state = HuntProgress()

        def track(p: HuntProgress) -> None:
            state.__dict__.update(p.__dict__)
            on_progress(p)

        status, error = "done", None
        try:
            for hit in run_hunt(self.store, req, archive_dir=self.archive_dir, placeholders=self.placeholders,
                                progress=track):
                if kept < MAX_KEPT_HITS:
                    kept += 1
                    pending.append((hunt_id, kept, hit.get("unit"), orjson.dumps(hit, default=str).decode()))
            flush(state)
        except SocliteError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a bug must still end the job visibly, not leave it "running" forever
            log.exception("hunt %s failed", hunt_id)
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        with self.db.write() as conn:
            conn.execute("UPDATE hunts SET status = ?, error = ?, finished_at = ?, kept = ? WHERE id = ?",
                         (status, error, isoformat(utcnow()), kept, hunt_id))
        audit.append(self.store, actor, "hunt.finish", f"hunt:{hunt_id}", None,
                     {"status": status, "error": error, "scanned": state.scanned, "hits": state.hits}, unit)
        self._threads.pop(hunt_id, None)

    def get(self, hunt_id: str, scope: frozenset[str] | None, *, actor: str, offset: int = 0,
            limit: int = 100) -> dict[str, Any]:
        """The job, its progress and (up to ``limit``) of its hits in ``scope``; NotFoundError if not visible."""
        reader = self.db.reader()
        row = reader.execute("SELECT * FROM hunts WHERE id = ?", (hunt_id,)).fetchone()
        if row is None or (scope is not None and row["actor"] != actor):
            raise NotFoundError(f"hunt {hunt_id} not found")
        if row["status"] == "running" and not _alive(row["runner_pid"]):
            with self.db.write() as conn:
                conn.execute("UPDATE hunts SET status = 'interrupted', error = ?, finished_at = ? "
                             "WHERE id = ? AND status = 'running'",
                             ("the server stopped while the hunt ran: start it again", isoformat(utcnow()), hunt_id))
            row = reader.execute("SELECT * FROM hunts WHERE id = ?", (hunt_id,)).fetchone()
        where, params = "hunt_id = ?", [hunt_id]
        if scope is not None:
            where += f" AND unit IN ({', '.join('?' for _ in scope)})"
            params += sorted(scope)
        visible = int(reader.execute(f"SELECT count(*) FROM hunt_hits WHERE {where}", params).fetchone()[0])
        docs = reader.execute(f"SELECT doc FROM hunt_hits WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",
                              [*params, limit, offset]).fetchall() if limit > 0 else []
        total = row["total"]
        return {
            "id": row["id"],
            "status": row["status"],
            "phase": row["phase"],
            "rule": row["rule_origin"],
            "from": row["start"],
            "to": row["end"],
            "units": orjson.loads(row["scope"]) if row["scope"] else None,
            "created_by": row["actor"],
            "created_at": row["created_at"],
            "finished_at": row["finished_at"],
            "error": row["error"],
            "progress": {
                "scanned": row["scanned"],
                "total": total,
                "percent": round(100.0 * row["scanned"] / total, 1) if total else (100.0 if row["status"] != "running" else None),
            },
            "hits": {"total": visible, "kept": row["kept"], "offset": offset,
                     "items": [orjson.loads(d[0]) for d in docs]},
        }

    def wait(self, hunt_id: str, timeout: float) -> bool:
        """Whether the hunt's thread ended within ``timeout`` (True when it is not running here)."""
        thread = self._threads.get(hunt_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True


__all__ = ["MAX_KEPT_HITS", "HuntJobs"]
