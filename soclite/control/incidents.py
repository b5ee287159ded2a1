"""Incidents and their legal clock (issue 17; sources and their status in docs/LEGAL.md).

An incident is opened from a case or directly, belongs to a unit, names the information systems it
affects, and carries the times of its reports. Every deadline counts from detection:

=====================  ==================  ============================================================
deadline               due                 source
=====================  ==================  ============================================================
``initial_notice``     detection + 24 h    Decree 331/2026 Art. 31 per the issue (not verified);
                       (immediately when   "immediately" where national security is at stake
                       national security)
``report_72h``         detection + 72 h    same: cause, scope and remediation
``personal_data``      found + 72 h        personal-data breach notice, its own clock (per the issue): from
                                           detection when flagged at creation, else from the time the flag
                                           was set or the discovery time given with it
``final_report``       no fixed term       "then updates and a final report": shown, never overdue
=====================  ==================  ============================================================

:meth:`Incidents.clock` gives each deadline's due time, when it was met, the time left and a state:
``done``, ``done_late``, ``pending``, ``due_soon`` (inside the warning window), ``overdue``, or
``open`` (no term). Times are UTC; the API shows them with their offset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from soclite.control import audit
from soclite.db import Database
from soclite.errors import NotFoundError, RequestError
from soclite.models import isoformat, new_id, parse_timestamp, utcnow
from soclite.store.base import Store

Milestone = Literal["initial_notice", "report_72h", "personal_data", "final_report"]
#: the column recording when each deadline was met
MILESTONE_COLUMN: dict[str, str] = {
    "initial_notice": "initial_notice_at",
    "report_72h": "report_72h_at",
    "personal_data": "personal_data_notice_at",
    "final_report": "final_report_at",
}
INITIAL_NOTICE = timedelta(hours=24)
REPORT_72H = timedelta(hours=72)
PERSONAL_DATA = timedelta(hours=72)


#: the earliest time an incident or milestone may carry (isoformat writes years < 1000 that it cannot read back)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _plausible(value: datetime | None) -> datetime | None:
    """A detection or milestone time is neither before 2000 nor more than a day ahead of now."""
    if value is not None and not EARLIEST <= value <= datetime.now(UTC) + timedelta(days=1):
        raise ValueError("must be between 2000-01-01 and tomorrow")
    return value


class IncidentCreate(BaseModel):
    model_config = {"extra": "forbid"}

    title: str = Field(min_length=1, max_length=300)
    severity: Literal["serious", "high", "medium", "low"] = "serious"
    description: str | None = Field(None, max_length=20000)
    case_id: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, max_length=64)
    #: detection time; default: now (a person types it in the site's zone, with its offset)
    detected_at: AwareDatetime | None = None
    national_security: bool = False
    personal_data: bool = False
    systems: list[str] = Field(default_factory=list, max_length=100)

    _detected_plausible = field_validator("detected_at")(_plausible)


class IncidentUpdate(BaseModel):
    """A change to an incident after creation (PATCH): only the fields given change."""

    model_config = {"extra": "forbid"}

    title: str | None = Field(None, min_length=1, max_length=300)
    severity: Literal["serious", "high", "medium", "low"] | None = None
    description: str | None = Field(None, max_length=20000)
    national_security: bool | None = None
    personal_data: bool | None = None
    #: when the personal-data breach was discovered (its 72-hour clock starts here); default: when the flag is set
    personal_data_at: AwareDatetime | None = None
    systems: list[str] | None = Field(None, max_length=100)

    _found_plausible = field_validator("personal_data_at")(_plausible)


class MilestoneRecord(BaseModel):
    model_config = {"extra": "forbid"}

    milestone: Milestone | Literal["update"]
    at: AwareDatetime | None = None
    note: str = Field("", max_length=20000)

    _at_plausible = field_validator("at")(_plausible)


@dataclass
class Deadline:
    name: str
    due_at: datetime | None
    done_at: datetime | None
    remaining_seconds: float | None
    state: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["due_at"] = isoformat(self.due_at) if self.due_at else None
        out["done_at"] = isoformat(self.done_at) if self.done_at else None
        return out


def _ts(value: str | None) -> datetime | None:
    return parse_timestamp(value) if value else None


def deadlines(incident: dict[str, Any], now: datetime, warn: timedelta) -> list[Deadline]:
    """The incident's deadlines at ``now``; ``warn``: how early a pending one becomes ``due_soon``."""
    detected = parse_timestamp(incident["detected_at"])
    # a breach flagged later has its own start; flagged at creation it starts at detection
    found = _ts(incident.get("personal_data_at")) or detected
    terms: list[tuple[str, timedelta | None]] = [
        ("initial_notice", timedelta(0) if incident["national_security"] else INITIAL_NOTICE),
        ("report_72h", REPORT_72H),
    ]
    if incident["personal_data"]:
        terms.append(("personal_data", PERSONAL_DATA))
    terms.append(("final_report", None))
    out = []
    for name, term in terms:
        done = _ts(incident[MILESTONE_COLUMN[name]])
        start = found if name == "personal_data" else detected
        due = start + term if term is not None else None
        remaining = (due - now).total_seconds() if due is not None and done is None else None
        if done is not None:
            state = "done_late" if due is not None and done > due else "done"
        elif due is None:
            state = "open"
        elif now >= due:
            state = "overdue"
        elif due - now <= warn:
            state = "due_soon"
        else:
            state = "pending"
        out.append(Deadline(name, due, done, remaining, state))
    return out


def _visible(incident: dict[str, Any], scope: frozenset[str] | None) -> bool:
    return scope is None or incident.get("unit") in scope


class Incidents:
    """The ``incidents`` tables of control.db."""

    def __init__(self, db: Database, store: Store) -> None:
        self.db = db
        self.store = store

    def _load(self, row: Any) -> dict[str, Any]:
        incident = dict(row)
        incident["national_security"] = bool(incident["national_security"])
        incident["personal_data"] = bool(incident["personal_data"])
        reader = self.db.reader()
        incident["systems"] = [r[0] for r in reader.execute(
            "SELECT system_id FROM incident_systems WHERE incident_id = ? ORDER BY system_id", (incident["id"],))]
        incident["updates"] = [dict(r) for r in reader.execute(
            "SELECT at, note, author FROM incident_updates WHERE incident_id = ? ORDER BY at, id", (incident["id"],))]
        return incident

    def get(self, incident_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
        row = self.db.reader().execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None or not _visible(dict(row), scope):
            raise NotFoundError(f"incident {incident_id} not found")
        return self._load(row)

    def list_incidents(self, scope: frozenset[str] | None, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.reader().execute("SELECT * FROM incidents ORDER BY detected_at DESC").fetchall()
        return [self._load(r) for r in rows if _visible(dict(r), scope)][:limit]

    def detected_between(self, start: datetime, end: datetime, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        """Incidents detected in ``[start, end)`` (the annual report's figures), oldest first."""
        rows = self.db.reader().execute(
            "SELECT * FROM incidents WHERE detected_at >= ? AND detected_at < ? ORDER BY detected_at",
            (isoformat(start), isoformat(end)),
        ).fetchall()
        return [self._load(r) for r in rows if _visible(dict(r), scope)]

    def create(self, body: IncidentCreate, *, actor: str, created_by: str, unit: str | None,
               scope: frozenset[str] | None, case: dict[str, Any] | None = None,
               now: datetime | None = None) -> dict[str, Any]:
        """A new incident; from ``case`` (already checked visible by the caller) it takes the case's unit."""
        owner_unit = body.unit or (case or {}).get("unit") or unit
        if scope is not None and owner_unit not in scope:
            raise NotFoundError(f"unit {owner_unit} not found")
        stamp = now or utcnow()
        detected = body.detected_at or stamp
        if detected > stamp + timedelta(minutes=5):
            raise RequestError("detected_at is in the future")
        incident_id = new_id()[:12]
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO incidents (id, title, case_id, unit, severity, national_security, personal_data, "
                "description, detected_at, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (incident_id, body.title, body.case_id, owner_unit, body.severity, int(body.national_security),
                 int(body.personal_data), body.description, isoformat(detected), created_by, isoformat(stamp),
                 isoformat(stamp)),
            )
            conn.executemany("INSERT INTO incident_systems (incident_id, system_id) VALUES (?, ?)",
                             [(incident_id, s) for s in dict.fromkeys(body.systems)])
        incident = self.get(incident_id, None)
        audit.append(self.store, actor, "incident.create", f"incident:{incident_id}", None, incident, owner_unit)
        return incident

    def update(self, incident_id: str, body: IncidentUpdate, *, actor: str, scope: frozenset[str] | None,
               now: datetime | None = None) -> dict[str, Any]:
        """Change the fields given in ``body`` (audited ``incident.edit`` with before and after).

        Setting the personal-data flag starts its 72-hour clock at ``body.personal_data_at`` or now; clearing it
        is refused once its notice is recorded (that record would lose its meaning).
        """
        before = self.get(incident_id, scope)
        stamp = now or utcnow()
        given = body.model_fields_set
        changes: dict[str, Any] = {}
        for name in ("title", "severity", "description"):
            if name in given:
                value = getattr(body, name)
                if value is None and name != "description":
                    raise RequestError(f"{name} may not be empty")
                changes[name] = value
        if "national_security" in given and body.national_security is not None:
            changes["national_security"] = int(body.national_security)
        flag = body.personal_data if "personal_data" in given else None
        if body.personal_data_at is not None and not (flag or (flag is None and before["personal_data"])):
            raise RequestError("personal_data_at needs the personal-data flag")
        if body.personal_data_at is not None and body.personal_data_at > stamp + timedelta(minutes=5):
            raise RequestError("personal_data_at is in the future")
        if flag is True and not before["personal_data"]:
            changes |= {"personal_data": 1, "personal_data_at": isoformat(body.personal_data_at or stamp)}
        elif flag is False and before["personal_data"]:
            if before["personal_data_notice_at"] is not None:
                raise RequestError("the personal-data notice is already recorded: the flag stays")
            changes |= {"personal_data": 0, "personal_data_at": None}
        elif body.personal_data_at is not None:  # a corrected discovery time for a breach already flagged
            changes["personal_data_at"] = isoformat(body.personal_data_at)
        with self.db.write() as conn:
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)  # columns from the fixed list above
                conn.execute(f"UPDATE incidents SET {assignments}, updated_at = ? WHERE id = ?",
                             (*changes.values(), isoformat(stamp), incident_id))
            if "systems" in given and body.systems is not None:
                conn.execute("DELETE FROM incident_systems WHERE incident_id = ?", (incident_id,))
                conn.executemany("INSERT INTO incident_systems (incident_id, system_id) VALUES (?, ?)",
                                 [(incident_id, s) for s in dict.fromkeys(body.systems)])
        after = self.get(incident_id, scope)
        audit.append(self.store, actor, "incident.edit", f"incident:{incident_id}", before, after, before.get("unit"))
        return after

    def record(self, incident_id: str, body: MilestoneRecord, *, actor: str, author: str,
               scope: frozenset[str] | None, now: datetime | None = None) -> dict[str, Any]:
        """Record a report sent (or an update); a milestone already recorded is refused, not overwritten."""
        before = self.get(incident_id, scope)
        at = body.at or now or utcnow()
        with self.db.write() as conn:
            if body.milestone == "update":
                conn.execute("INSERT INTO incident_updates (id, incident_id, at, note, author) VALUES (?,?,?,?,?)",
                             (new_id(), incident_id, isoformat(at), body.note, author))
            else:
                if body.milestone == "personal_data" and not before["personal_data"]:
                    raise RequestError("this incident is not a personal-data breach")
                column = MILESTONE_COLUMN[body.milestone]
                if before[column] is not None:
                    raise RequestError(f"{body.milestone} was already recorded at {before[column]}")
                conn.execute(f"UPDATE incidents SET {column} = ?, updated_at = ? WHERE id = ?",
                             (isoformat(at), isoformat(now or utcnow()), incident_id))
        after = self.get(incident_id, scope)
        audit.append(self.store, actor, f"incident.{body.milestone}", f"incident:{incident_id}", before, after,
                     before.get("unit"))
        return after

    # --- notices sent: the receipt of each (what, to whom, its SHA-256, when, by whom, the outbox key) -----
    def record_send(self, incident_id: str, *, kind: str, channel: str, recipient: str, sha256: str, at: datetime,
                    author: str, idempotency_key: str) -> dict[str, Any]:
        receipt = {"id": new_id(), "kind": kind, "channel": channel, "recipient": recipient, "sha256": sha256,
                   "sent_at": isoformat(at), "sent_by": author, "idempotency_key": idempotency_key}
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO incident_sends (id, incident_id, kind, channel, recipient, sha256, sent_at, sent_by, "
                "idempotency_key) VALUES (?,?,?,?,?,?,?,?,?)",
                (receipt["id"], incident_id, kind, channel, recipient, sha256, receipt["sent_at"], author,
                 idempotency_key))
        return receipt

    def sends(self, incident_id: str) -> list[dict[str, Any]]:
        rows = self.db.reader().execute(
            "SELECT id, kind, channel, recipient, sha256, sent_at, sent_by, idempotency_key FROM incident_sends "
            "WHERE incident_id = ? ORDER BY sent_at, id", (incident_id,)).fetchall()
        return [dict(r) for r in rows]

    # --- escalation bookkeeping (the e-mail itself goes through the playbook outbox) -------------
    def escalated(self, incident_id: str) -> set[str]:
        rows = self.db.reader().execute(
            "SELECT deadline FROM incident_escalations WHERE incident_id = ?", (incident_id,)).fetchall()
        return {r[0] for r in rows}

    def mark_escalated(self, incident_id: str, deadline: str, at: datetime) -> bool:
        """True the first time only: one escalation per incident and deadline."""
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO incident_escalations (incident_id, deadline, escalated_at) VALUES (?, ?, ?)",
                (incident_id, deadline, isoformat(at)))
            return bool(cur.rowcount)


__all__ = [
    "MILESTONE_COLUMN",
    "Deadline",
    "IncidentCreate",
    "IncidentUpdate",
    "Incidents",
    "MilestoneRecord",
    "deadlines",
]
