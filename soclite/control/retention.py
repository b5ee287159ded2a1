"""The retention job: archive, then delete what each host's security level no longer requires (issue 17).

One run, in this order, so nothing leaves the hot store before it is archived:

1. embedded store with ``store.archive``: whole UTC days older than ``store.hot_days`` move to the cold
   archive (``soclite archive run``: written, chained, then deleted from the hot store);
2. ``Store.apply_retention`` with :func:`soclite.control.systems.retention_plan`: events (day files or
   daily indices dropped whole where no long-retention host or unit has events; otherwise deleted by
   host and unit within the day) and alerts (by ``last_seen``), on SQLite or OpenSearch alike;
3. archive segments none of whose events must be kept any longer are retired.

Each run leaves a row in ``retention_runs`` (read by /health) and an audit entry; a failure is recorded
with its reason and raised again for the scheduler's log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from soclite.config import Settings
from soclite.control import audit
from soclite.control.systems import InfoSystems, retention_plan
from soclite.db import Database
from soclite.errors import SocliteError
from soclite.models import isoformat, new_id, utcnow
from soclite.store.archive import EventArchive
from soclite.store.base import RetentionResult, Store

log = logging.getLogger(__name__)

ACTOR = "system:retention"


@dataclass
class RetentionRun:
    id: str
    before: datetime
    archived_days: list[str] = field(default_factory=list)
    result: RetentionResult = field(default_factory=RetentionResult)
    segments_retired: list[str] = field(default_factory=list)
    segments_kept: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "before": isoformat(self.before),
            "archived_days": len(self.archived_days),
            "events_deleted": self.result.events,
            "alerts_deleted": self.result.alerts,
            "days_dropped": self.result.days_dropped,
            "days_trimmed": self.result.days_trimmed,
            "segments_retired": len(self.segments_retired),
            "segments_kept": len(self.segments_kept),
        }


def run_retention(db: Database, systems: InfoSystems, store: Store, settings: Settings,
                  now: datetime | None = None) -> RetentionRun:
    """One run of the job at ``now`` (a test's controlled clock; else the current time)."""
    now = now or utcnow()
    plan = retention_plan(systems, settings, now)
    run = RetentionRun(id=new_id()[:16], before=plan.before)
    with db.write() as conn:
        conn.execute("INSERT INTO retention_runs (id, started_at, status, before) VALUES (?, ?, 'running', ?)",
                     (run.id, isoformat(utcnow()), isoformat(plan.before)))
    archive_dir: Path = settings.data_dir / "archive"
    try:
        archive_events = getattr(store, "archive_events_before", None)
        if settings.store.archive and archive_events is not None:
            segments = archive_events(now - timedelta(days=settings.store.hot_days), EventArchive(archive_dir))
            run.archived_days = [s.day for s in segments]
        run.result = store.apply_retention(plan)
        if (archive_dir / "manifest.jsonl").exists():
            run.segments_retired, run.segments_kept = EventArchive(archive_dir).retire(plan, now)
    except (SocliteError, OSError) as exc:
        _finish(db, run, "failed", str(exc))
        audit.append(store, ACTOR, "retention.run", "store", None, run.summary() | {"error": str(exc)})
        log.error("retention run failed: %s", exc)
        raise
    _finish(db, run, "done", None)
    audit.append(store, ACTOR, "retention.run", "store", None, run.summary())
    log.info("retention: %s", run.summary())
    return run


def _finish(db: Database, run: RetentionRun, status: str, error: str | None) -> None:
    s = run.summary()
    with db.write() as conn:
        conn.execute(
            "UPDATE retention_runs SET finished_at = ?, status = ?, archived_days = ?, events_deleted = ?,"
            " alerts_deleted = ?, days_dropped = ?, days_trimmed = ?, segments_retired = ?, segments_kept = ?,"
            " error = ? WHERE id = ?",
            (isoformat(utcnow()), status, s["archived_days"], s["events_deleted"], s["alerts_deleted"],
             s["days_dropped"], s["days_trimmed"], s["segments_retired"], s["segments_kept"], error, run.id),
        )


def last_run(db: Database) -> dict[str, Any] | None:
    """The latest run of the job (for /health), None before the first one."""
    row = db.reader().execute("SELECT * FROM retention_runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return dict(row) if row is not None else None


__all__ = ["RetentionRun", "last_run", "run_retention"]
