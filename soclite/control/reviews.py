"""Log review and alert-threshold tuning per information system, due by its security level (issue 17).

Each system of a level listed in ``settings.compliance.reviews.interval_months_by_level`` owes both tasks
every so many months (level 3: 6 by default, level 4: 3, level 5: 1; docs/LEGAL.md says what rests on the
issue's text and what is our choice). A task's next due date counts from the last time it was recorded as
done; a system never reviewed counts from the day it entered the inventory (its ``created_at``). Recording
keeps who, when and a note, and is audited; records are never edited, so the history is the evidence.

:func:`schedule` gives each task's state at ``now``: ``pending``, ``due_soon`` (inside the first reminder
window), ``overdue``; or ``none`` where the level owes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from soclite.config import ReviewSettings
from soclite.control import audit
from soclite.control.systems import InfoSystems, months_before
from soclite.db import Database
from soclite.errors import RequestError
from soclite.models import isoformat, new_id, parse_timestamp, utcnow

ReviewKind = Literal["log_review", "threshold_tuning"]
REVIEW_KINDS: tuple[ReviewKind, ...] = ("log_review", "threshold_tuning")


class ReviewRecord(BaseModel):
    model_config = {"extra": "forbid"}

    kind: ReviewKind
    #: when it was done; default: now (a person types it in the site's zone, with its offset)
    at: AwareDatetime | None = None
    note: str = Field("", max_length=20000)

    @field_validator("at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > utcnow() + timedelta(minutes=5):
            raise ValueError("a review cannot be recorded as done in the future")
        return value


@dataclass
class ReviewDue:
    """One task of one system at a moment: its interval, last done, next due and state."""

    system_id: str
    kind: str
    interval_months: int | None
    last_done: dict[str, Any] | None
    due_at: datetime | None
    state: str
    remaining_days: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "system_id": self.system_id, "kind": self.kind, "interval_months": self.interval_months,
            "last_done": self.last_done, "due_at": isoformat(self.due_at) if self.due_at else None,
            "state": self.state, "remaining_days": self.remaining_days,
        }


def months_after(ts: datetime, months: int) -> datetime:
    """``ts`` plus whole calendar months (31/08 + 1 month = 30/09)."""
    return months_before(ts, -months)


class Reviews:
    """The ``system_reviews`` table of control.db."""

    def __init__(self, db: Database, systems: InfoSystems) -> None:
        self.db = db
        self.systems = systems

    def history(self, system_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.reader().execute(
            "SELECT id, kind, done_at, done_by, note, recorded_at FROM system_reviews WHERE system_id = ? "
            "ORDER BY done_at DESC, recorded_at DESC LIMIT ?", (system_id, limit)).fetchall()
        return [dict(r) for r in rows]

    def last_done(self, system_id: str, kind: str) -> dict[str, Any] | None:
        row = self.db.reader().execute(
            "SELECT id, kind, done_at, done_by, note, recorded_at FROM system_reviews WHERE system_id = ? AND kind = ? "
            "ORDER BY done_at DESC, recorded_at DESC LIMIT 1", (system_id, kind)).fetchone()
        return dict(row) if row is not None else None

    def schedule(self, system: dict[str, Any], settings: ReviewSettings, now: datetime) -> list[ReviewDue]:
        """Both tasks of ``system`` at ``now``."""
        months = settings.interval_months_by_level.get(int(system["level"]))
        warn = timedelta(days=max(settings.remind_days_before, default=0))
        out = []
        for kind in REVIEW_KINDS:
            last = self.last_done(system["id"], kind)
            if months is None:
                out.append(ReviewDue(system["id"], kind, None, last, None, "none", None))
                continue
            since = parse_timestamp(last["done_at"] if last else system["created_at"])
            due = months_after(since, months)
            remaining = (due - now).total_seconds() / 86400
            state = "overdue" if now >= due else "due_soon" if due - now <= warn else "pending"
            out.append(ReviewDue(system["id"], kind, months, last, due, state, round(remaining, 2)))
        return out

    def record(self, system_id: str, body: ReviewRecord, *, actor: str, author: str,
               scope: frozenset[str] | None, now: datetime | None = None) -> dict[str, Any]:
        """Record ``body.kind`` of a visible system as done (who, when, note); audited."""
        system = self.systems.get(system_id, scope)
        stamp = now or utcnow()
        at = body.at or stamp
        if at < parse_timestamp(system["created_at"]) - timedelta(days=3660):
            raise RequestError("a review more than ten years before the system was registered is not plausible")
        record = {"id": new_id(), "kind": body.kind, "done_at": isoformat(at), "done_by": author,
                  "note": body.note, "recorded_at": isoformat(stamp)}
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO system_reviews (id, system_id, kind, done_at, done_by, note, recorded_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (record["id"], system_id, body.kind, record["done_at"], author, body.note, record["recorded_at"]))
        audit.append(self.systems.store, actor, f"system.{body.kind}", f"system:{system_id}", None, record,
                     system.get("unit"))
        return record


__all__ = ["REVIEW_KINDS", "ReviewDue", "ReviewKind", "ReviewRecord", "Reviews", "months_after"]
