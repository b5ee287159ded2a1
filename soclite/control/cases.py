"""Cases: an incident that groups related alerts, kept in the control database.

A case belongs to a unit (the creator's, or one inside the creator's scope);
only alerts the caller can see may be added, so a case never leaks alerts of
another unit. Every change is appended to the audit trail under the ``actor``
the caller names (a request's principal, or a system actor such as a playbook).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from soclite.control import audit
from soclite.db import Database
from soclite.errors import NotFoundError
from soclite.models import isoformat, new_id, utcnow
from soclite.store import AlertQuery
from soclite.store.base import Store

CaseStatus = Literal["open", "in_progress", "closed"]


class CaseCreate(BaseModel):
    model_config = {"extra": "forbid"}

    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20000)
    severity: Literal["high", "medium", "low"] | None = None
    unit: str | None = Field(None, max_length=64)
    owner: str | None = Field(None, max_length=64)
    alert_ids: list[str] = Field(default_factory=list, max_length=1000)


class CasePatch(BaseModel):
    model_config = {"extra": "forbid"}

    title: str | None = Field(None, min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20000)
    status: CaseStatus | None = None
    owner: str | None = Field(None, max_length=64)


def _visible(case: dict[str, Any], scope: frozenset[str] | None) -> bool:
    return scope is None or case.get("unit") in scope


class Cases:
    """The case repository: the ``cases`` and ``case_alerts`` tables, checked against the store's alerts."""

    def __init__(self, db: Database, store: Store) -> None:
        self.db = db
        self.store = store

    def _row(self, case_id: str) -> dict[str, Any] | None:
        row = self.db.reader().execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        return dict(row) if row is not None else None

    def alert_ids(self, case_id: str) -> list[str]:
        rows = self.db.reader().execute(
            "SELECT alert_id FROM case_alerts WHERE case_id = ? ORDER BY added_at, rowid", (case_id,)
        ).fetchall()
        return [r["alert_id"] for r in rows]

    def _scoped_alert_ids(self, case_id: str, scope: frozenset[str] | None) -> tuple[list[str], int]:
        """The case's alert ids the caller may see, and how many others it holds (counted, never named)."""
        ids = self.alert_ids(case_id)
        if scope is None or not ids:
            return ids, 0
        visible: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            visible.update(a.id for a in self.store.query_alerts(AlertQuery(ids=chunk, units=scope, limit=500)).items)
        kept = [i for i in ids if i in visible]
        return kept, len(ids) - len(kept)

    def get(self, case_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
        case = self._row(case_id)
        if case is None or not _visible(case, scope):
            raise NotFoundError(f"case {case_id} not found")
        case["alert_ids"], case["hidden_alerts"] = self._scoped_alert_ids(case_id, scope)
        return case

    def list_cases(self, scope: frozenset[str] | None, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.reader().execute("SELECT * FROM cases ORDER BY created_at DESC").fetchall()
        out = []
        for row in rows:
            case = dict(row)
            if _visible(case, scope):
                case["alert_ids"], case["hidden_alerts"] = self._scoped_alert_ids(case["id"], scope)
                out.append(case)
            if len(out) >= limit:
                break
        return out

    def of_alert(self, alert_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        """The cases holding an alert that the caller may see (another unit's case stays hidden)."""
        rows = self.db.reader().execute(
            "SELECT c.id, c.title, c.status, c.unit FROM cases c JOIN case_alerts ca ON ca.case_id = c.id "
            "WHERE ca.alert_id = ?",
            (alert_id,),
        ).fetchall()
        return [{"id": r["id"], "title": r["title"], "status": r["status"]} for r in rows if _visible(dict(r), scope)]

    def create(self, body: CaseCreate, *, actor: str, created_by: str, unit: str | None,
               scope: frozenset[str] | None) -> dict[str, Any]:
        """A new case in ``body.unit`` or else ``unit`` (the creator's); ``created_by`` is the name shown."""
        unit = body.unit or unit
        if scope is not None and unit not in scope:
            raise NotFoundError(f"unit {unit} not found")
        for alert_id in body.alert_ids:  # all visible, or nothing is created
            self.store.get_alert(alert_id, scope)
        case_id = new_id()[:12]
        now = isoformat(utcnow())
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO cases (id, title, description, status, severity, unit, owner, created_by, created_at, "
                "updated_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                (case_id, body.title, body.description, body.severity, unit, body.owner, created_by, now, now),
            )
            for alert_id in dict.fromkeys(body.alert_ids):
                conn.execute("INSERT INTO case_alerts (case_id, alert_id, added_at) VALUES (?, ?, ?)",
                             (case_id, alert_id, now))
        case = self.get(case_id, None)
        audit.append(self.store, actor, "case.create", f"case:{case_id}", None, case, unit)
        return case

    def update(self, case_id: str, patch: CasePatch, *, actor: str, scope: frozenset[str] | None) -> dict[str, Any]:
        before = self.get(case_id, scope)
        changes = patch.model_dump(exclude_none=True)
        if changes:
            sets = ", ".join(f"{name} = ?" for name in changes)
            with self.db.write() as conn:
                conn.execute(f"UPDATE cases SET {sets}, updated_at = ? WHERE id = ?",
                             (*changes.values(), isoformat(utcnow()), case_id))
        after = self.get(case_id, scope)
        audit.append(self.store, actor, "case.update", f"case:{case_id}", before, after, before.get("unit"))
        return after

    def add_alerts(self, case_id: str, ids: list[str], *, actor: str, scope: frozenset[str] | None) -> dict[str, Any]:
        self.get(case_id, scope)
        for alert_id in ids:
            self.store.get_alert(alert_id, scope)
        now = isoformat(utcnow())
        with self.db.write() as conn:
            for alert_id in dict.fromkeys(ids):
                conn.execute(
                    "INSERT OR IGNORE INTO case_alerts (case_id, alert_id, added_at) VALUES (?, ?, ?)",
                    (case_id, alert_id, now),
                )
        after = self.get(case_id, scope)
        audit.append(self.store, actor, "case.add_alerts", f"case:{case_id}", None, {"alert_ids": ids},
                     after.get("unit"))
        return after
