"""Cases: an incident that groups related alerts, kept in the control database.

A case belongs to a unit (the creator's, or one inside the creator's scope);
only alerts the caller can see may be added, so a case never leaks alerts of
another unit. Every change is appended to the audit trail under the ``actor``
the caller names (a request's principal, or a system actor such as a playbook).

Working a case: its history and comments are one event stream (``case_events``: who, when,
what changed), tasks have an assignee and a due date, and closing needs a reason from a fixed
list (:data:`CLOSE_REASONS`; "other" needs a note). An alert added to a case gets an entry in
its own timeline (``alert_history``: ``case_added``), so the alert page says where it went.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from soclite.control import audit
from soclite.db import Database
from soclite.errors import NotFoundError, TriageError
from soclite.models import isoformat, new_id, utcnow
from soclite.store import AlertQuery
from soclite.store.base import Store

CaseStatus = Literal["open", "in_progress", "closed"]
CloseReason = Literal["true_positive", "false_positive", "benign_true_positive", "duplicate", "other"]
CLOSE_REASONS: tuple[str, ...] = ("true_positive", "false_positive", "benign_true_positive", "duplicate", "other")


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
    close_reason: CloseReason | None = None
    close_note: str | None = Field(None, max_length=5000)


class TaskCreate(BaseModel):
    model_config = {"extra": "forbid"}

    title: str = Field(min_length=1, max_length=500)
    assignee: str | None = Field(None, max_length=64)
    due_at: datetime | None = None


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
        self._note_on_alerts(case, list(dict.fromkeys(body.alert_ids)), actor)
        audit.append(self.store, actor, "case.create", f"case:{case_id}", None, case, unit)
        return case

    def update(self, case_id: str, patch: CasePatch, *, actor: str, scope: frozenset[str] | None) -> dict[str, Any]:
        """Change fields; closing needs a close reason ("other" with a note), reopening clears it.

        Raises NotFoundError (not in scope, checked first) and TriageError (no or bad close reason)."""
        before = self.get(case_id, scope)
        changes = patch.model_dump(exclude_none=True)
        closing = changes.get("status") == "closed" and before["status"] != "closed"
        if closing or (before["status"] == "closed" and "close_reason" in changes):
            reason = changes.get("close_reason") or (None if closing else before.get("close_reason"))
            if reason is None:
                raise TriageError(f"closing a case needs a close reason: one of {', '.join(CLOSE_REASONS)}")
            if reason == "other" and not (changes.get("close_note") or "").strip():
                raise TriageError("close reason 'other' needs a note saying why")
        elif "close_reason" in changes and changes.get("status", before["status"]) != "closed":
            raise TriageError("a close reason is given only when the case is closed")
        if changes.get("status") in ("open", "in_progress"):  # reopened: the old reason no longer holds
            changes |= {"close_reason": None, "close_note": None}
        changes = {k: v for k, v in changes.items() if before.get(k) != v}
        if changes:
            sets = ", ".join(f"{name} = ?" for name in changes)
            with self.db.write() as conn:
                conn.execute(f"UPDATE cases SET {sets}, updated_at = ? WHERE id = ?",
                             (*changes.values(), isoformat(utcnow()), case_id))
            self._event(case_id, actor, "change", {k: [before.get(k), v] for k, v in changes.items()})
        after = self.get(case_id, scope)
        audit.append(self.store, actor, "case.update", f"case:{case_id}", before, after, before.get("unit"))
        return after

    # --- working a case: history, comments, tasks --------------------------------------------------
    def _event(self, case_id: str, actor: str, kind: str, body: Any) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO case_events (case_id, at, actor, kind, body) VALUES (?, ?, ?, ?, ?)",
                (case_id, isoformat(utcnow()), actor, kind, json.dumps(body, ensure_ascii=False, default=str)),
            )
            conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (isoformat(utcnow()), case_id))

    def record(self, case_id: str, actor: str, kind: str, body: Any) -> None:
        """One entry in the case's history, for the case's parts kept elsewhere (its attachments)."""
        self._event(case_id, actor, kind, body)

    def events(self, case_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        """The case's history and comments, oldest first: {at, actor, kind, body}.

        "alerts_added" names only the alerts the caller may see (the others are counted in ``hidden``),
        as the case's alert list does: a wider-scoped colleague's additions never leak ids.
        """
        case = self.get(case_id, scope)
        visible = set(case["alert_ids"])
        rows = self.db.reader().execute(
            "SELECT at, actor, kind, body FROM case_events WHERE case_id = ? ORDER BY id", (case_id,)
        ).fetchall()
        out = []
        for r in rows:
            event = {"at": r["at"], "actor": r["actor"], "kind": r["kind"], "body": json.loads(r["body"])}
            if r["kind"] == "alerts_added" and scope is not None:
                shown = [i for i in event["body"] if i in visible]
                event |= {"body": shown, "hidden": len(event["body"]) - len(shown)}
            out.append(event)
        return out

    def comment(self, case_id: str, body: str, *, actor: str, scope: frozenset[str] | None) -> dict[str, Any]:
        case = self.get(case_id, scope)
        text = body.strip()
        if not text:
            raise TriageError("a comment needs text")
        if len(text) > 20000:
            raise TriageError("a comment is at most 20000 characters")
        self._event(case_id, actor, "comment", text)
        audit.append(self.store, actor, "case.comment", f"case:{case_id}", None, {"body": text}, case.get("unit"))
        return {"case_id": case_id, "actor": actor, "body": text}

    def tasks(self, case_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        self.get(case_id, scope)
        rows = self.db.reader().execute(
            "SELECT * FROM case_tasks WHERE case_id = ? ORDER BY created_at, id", (case_id,)
        ).fetchall()
        return [{**dict(r), "done": bool(r["done"])} for r in rows]

    def add_task(self, case_id: str, task: TaskCreate, *, actor: str, created_by: str,
                 scope: frozenset[str] | None) -> dict[str, Any]:
        case = self.get(case_id, scope)
        task_id = new_id()[:12]
        due = isoformat(task.due_at) if task.due_at else None
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO case_tasks (id, case_id, title, assignee, due_at, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (task_id, case_id, task.title, task.assignee, due, created_by, isoformat(utcnow())),
            )
        data = {"id": task_id, "title": task.title, "assignee": task.assignee, "due_at": due}
        self._event(case_id, actor, "task_added", data)
        audit.append(self.store, actor, "case.task", f"case:{case_id}", None, data, case.get("unit"))
        return data

    def set_task_done(self, case_id: str, task_id: str, done: bool, *, actor: str,
                      scope: frozenset[str] | None) -> dict[str, Any]:
        case = self.get(case_id, scope)
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE case_tasks SET done = ?, done_at = ? WHERE id = ? AND case_id = ?",
                (int(done), isoformat(utcnow()) if done else None, task_id, case_id),
            ).rowcount
        if not changed:
            raise NotFoundError(f"task {task_id} not found in case {case_id}")
        [task] = [t for t in self.tasks(case_id, scope) if t["id"] == task_id]
        self._event(case_id, actor, "task_done" if done else "task_reopened", {"id": task_id, "title": task["title"]})
        audit.append(self.store, actor, "case.task_done" if done else "case.task_reopen", f"case:{case_id}", None,
                     {"task": task_id}, case.get("unit"))  # fmt: skip
        return task

    def _note_on_alerts(self, case: dict[str, Any], ids: list[str], actor: str) -> None:
        """Each alert's own timeline says it went into this case (and by whom)."""
        now = isoformat(utcnow())
        entry = json.dumps({"case_added": {"id": case["id"], "title": case["title"]}}, ensure_ascii=False)
        with self.db.write() as conn:
            for alert_id in ids:
                conn.execute("INSERT INTO alert_history (alert_id, actor, at, changes) VALUES (?, ?, ?, ?)",
                             (alert_id, actor, now, entry))  # fmt: skip

    def add_alerts(self, case_id: str, ids: list[str], *, actor: str, scope: frozenset[str] | None) -> dict[str, Any]:
        case = self.get(case_id, scope)
        for alert_id in ids:
            self.store.get_alert(alert_id, scope)
        now = isoformat(utcnow())
        added: list[str] = []
        with self.db.write() as conn:
            for alert_id in dict.fromkeys(ids):
                if conn.execute(
                    "INSERT OR IGNORE INTO case_alerts (case_id, alert_id, added_at) VALUES (?, ?, ?)",
                    (case_id, alert_id, now),
                ).rowcount:
                    added.append(alert_id)
        if added:
            self._note_on_alerts(case, added, actor)
            self._event(case_id, actor, "alerts_added", added)
        after = self.get(case_id, scope)
        audit.append(self.store, actor, "case.add_alerts", f"case:{case_id}", None, {"alert_ids": ids},
                     after.get("unit"))
        return after
