"""Report schedules managed in the web UI (control.db, migration 18).

The settings file's ``reports.schedules`` stay the operator's; these are the admins'. Each row is one
:class:`soclite.config.ReportSchedule` (validated on the way in and out) with who made and last changed it.
The scheduler runs the union (``ReportScheduler.schedules``); a name the settings file uses is refused here
by the caller, so one name is always one schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from soclite.config import ReportSchedule
from soclite.db import Database
from soclite.models import isoformat, parse_timestamp, utcnow


@dataclass(frozen=True)
class ManagedSchedule:
    schedule: ReportSchedule
    created_by: str
    updated_by: str
    updated_at: datetime


class ReportSchedules:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list_all(self) -> list[ManagedSchedule]:
        rows = self.db.reader().execute("SELECT * FROM report_schedules ORDER BY name").fetchall()
        return [
            ManagedSchedule(ReportSchedule.model_validate_json(r["doc"]), r["created_by"], r["updated_by"],
                            parse_timestamp(r["updated_at"]))
            for r in rows
        ]  # fmt: skip

    def get(self, name: str) -> ManagedSchedule | None:
        return next((m for m in self.list_all() if m.schedule.name == name), None)

    def put(self, schedule: ReportSchedule, actor: str) -> ManagedSchedule:
        """Create or replace the schedule of that name (its creator is kept on a change)."""
        now = isoformat(utcnow())
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO report_schedules (name, unit, doc, created_by, created_at, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET unit = excluded.unit, "
                "doc = excluded.doc, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (schedule.name, schedule.unit, schedule.model_dump_json(), actor, now, actor, now),
            )
        found = self.get(schedule.name)
        assert found is not None
        return found

    def delete(self, name: str) -> bool:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM report_schedules WHERE name = ?", (name,)).rowcount > 0
