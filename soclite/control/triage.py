"""Alert triage: lifecycle, SLA, comments and status history (control database).

One method per change so every front door (JSON API, web UI) enforces the same
rules (transitions from :data:`soclite.models.ALERT_TRANSITIONS`, a close reason
for resolved/false positive, timestamps) and leaves the same audit trail.
Refused changes raise :class:`~soclite.errors.TriageError` (a change wrong in
itself) or its :class:`~soclite.errors.TransitionConflict` (not allowed from the
alert's current status).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from soclite.config import Settings
from soclite.control import audit
from soclite.db import Database
from soclite.errors import NotFoundError, TransitionConflict, TriageError
from soclite.models import ALERT_TRANSITIONS, CLOSED_STATUSES, Alert, AlertStatus, isoformat, new_id, utcnow
from soclite.store.base import Store

#: serialises triage writes between API threads (the store makes each atomic against other processes)
_update_lock = threading.Lock()


class AlertPatch(BaseModel):
    """A change to an alert; fields left out are unchanged."""

    model_config = {"extra": "forbid"}

    status: AlertStatus | None = None
    #: user name, or "" to unassign
    assignee: str | None = Field(None, max_length=64)
    #: required when status becomes resolved or false_positive
    close_reason: str | None = Field(None, max_length=2000)
    comment: str | None = Field(None, max_length=20000)


def sla(alert: Alert, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Deadline = created + the severity's SLA minutes; on_time/late once closed, open/overdue before.

    From when soclite created the alert, not the event's own time: that time is the sender's clock, and a
    forged 1971 made a fresh alert "overdue" at once (a 2099 one was never due).
    """
    minutes = int(getattr(settings.sla_minutes, alert.severity.value))
    deadline = alert.created_at + timedelta(minutes=minutes)
    if alert.closed_at is not None:
        state = "on_time" if alert.closed_at <= deadline else "late"
    else:
        state = "open" if (now or utcnow()) <= deadline else "overdue"
    return {"minutes": minutes, "deadline": isoformat(deadline), "state": state,
            "on_time": state in ("on_time", "open")}


def alert_json(alert: Alert, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    data = alert.model_dump(mode="json")
    data["sla"] = sla(alert, settings, now)
    return data


def apply_patch(alert: Alert, patch: AlertPatch, actor: str) -> dict[str, Any]:
    """Apply the patch in place; return the changed fields {name: [before, after]}. Raises TriageError (TransitionConflict for a status change not allowed)."""
    changes: dict[str, Any] = {}
    now = utcnow()
    if patch.status is not None and patch.status != alert.status:
        if patch.status not in ALERT_TRANSITIONS[alert.status]:
            allowed = ", ".join(sorted(s.value for s in ALERT_TRANSITIONS[alert.status]))
            raise TransitionConflict(
                f"cannot change status from {alert.status.value} to {patch.status.value}; allowed: {allowed}",
                msgid="The status cannot change from %(current)s to %(new)s.",
                params={"current": alert.status.value, "new": patch.status.value})
        if patch.status in CLOSED_STATUSES:
            reason = (patch.close_reason or "").strip()
            if not reason:
                raise TriageError(f"close_reason is required to set status {patch.status.value}",
                                  msgid="Give a close reason to set the status %(status)s.",
                                  params={"status": patch.status.value})
            changes["close_reason"] = [alert.close_reason, reason]
            alert.close_reason = reason
            changes["closed_at"] = [None, isoformat(now)]
            alert.closed_at = now
        elif alert.status in CLOSED_STATUSES:  # reopened
            changes["closed_at"] = [isoformat(alert.closed_at) if alert.closed_at else None, None]
            alert.closed_at = None
        if alert.acknowledged_at is None:
            alert.acknowledged_at = now
            changes["acknowledged_at"] = [None, isoformat(now)]
        changes["status"] = [alert.status.value, patch.status.value]
        alert.status = patch.status
    elif patch.close_reason is not None and alert.status in CLOSED_STATUSES and patch.close_reason.strip():
        changes["close_reason"] = [alert.close_reason, patch.close_reason.strip()]
        alert.close_reason = patch.close_reason.strip()
    if patch.assignee is not None:
        new = patch.assignee.strip() or None
        if new != alert.assignee:
            changes["assignee"] = [alert.assignee, new]
            alert.assignee = new
    if changes:
        alert.updated_at = now
    return changes


#: what the audit trail shows before/after a change
_AUDITED = {"status", "assignee", "close_reason"}
#: what apply_patch may change; written back together (all triage-owned, see Store.update_alert_fields)
_TRIAGE_WRITTEN = ("status", "assignee", "close_reason", "acknowledged_at", "closed_at", "updated_at")


class Triage:
    """Alert changes on the store plus their comments and history in the control database."""

    def __init__(self, db: Database, store: Store) -> None:
        self.db = db
        self.store = store

    def update_alert(
        self, alert_id: str, patch: AlertPatch, scope: frozenset[str] | None, *, name: str, actor: str
    ) -> Alert:
        """Patch one alert in the caller's scope, record its history and audit. NotFoundError/TriageError.

        ``name`` is who the history and comments show, ``actor`` who the audit trail names.
        The store applies the patch to the alert as stored at the moment of the write and changes only
        the triage fields, so a count increment the pipeline writes meanwhile is neither lost nor able
        to revert this change; the transition rules are checked against that same state.
        """
        outcome: dict[str, Any] = {}

        def change(current: Alert) -> dict[str, Any]:
            # May run more than once (optimistic retry on OpenSearch): keep only the last outcome.
            outcome["before"] = current.model_dump(mode="json", include=_AUDITED)
            outcome["changes"] = changes = apply_patch(current, patch, name)
            return {field: getattr(current, field) for field in _TRIAGE_WRITTEN} if changes else {}

        with _update_lock:
            alert = self.store.update_alert_fields(alert_id, change, scope)
        changes = outcome["changes"]
        if changes:
            self.add_history(alert.id, name, changes)
            audit.append(
                self.store, actor, "alert.update", f"alert:{alert.id}", outcome["before"],
                alert.model_dump(mode="json", include=_AUDITED), alert.unit,
            )
        if patch.comment and patch.comment.strip():
            self.add_comment(alert, patch.comment, name=name, actor=actor)
        return alert

    # --- comments and history ---------------------------------------------------------------

    def add_comment(self, alert: Alert, body: str, *, name: str, actor: str) -> dict[str, Any]:
        text = body.strip()
        if not text:
            raise TriageError("a comment cannot be empty", msgid="A comment cannot be empty.")
        comment = {"id": new_id(), "alert_id": alert.id, "author": name, "body": text,
                   "created_at": isoformat(utcnow())}
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO alert_comments (id, alert_id, author, body, created_at) VALUES (?, ?, ?, ?, ?)",
                (comment["id"], alert.id, name, text, comment["created_at"]),
            )
        audit.append(self.store, actor, "alert.comment", f"alert:{alert.id}", None, {"comment": text}, alert.unit)
        return comment

    def comments(self, alert_id: str) -> list[dict[str, Any]]:
        rows = self.db.reader().execute(
            "SELECT id, alert_id, author, body, created_at FROM alert_comments WHERE alert_id = ? "
            "ORDER BY created_at, id",
            (alert_id,),
        ).fetchall()
        return [dict(row) for row in rows]

    def add_history(self, alert_id: str, actor: str, changes: dict[str, Any]) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO alert_history (alert_id, actor, at, changes) VALUES (?, ?, ?, ?)",
                (alert_id, actor, isoformat(utcnow()), json.dumps(changes, ensure_ascii=False)),
            )

    def history(self, alert_id: str) -> list[dict[str, Any]]:
        rows = self.db.reader().execute(
            "SELECT actor, at, changes FROM alert_history WHERE alert_id = ? ORDER BY id", (alert_id,)
        ).fetchall()
        return [{"actor": r["actor"], "at": r["at"], "changes": json.loads(r["changes"])} for r in rows]

    def timeline(self, alert: Alert) -> list[dict[str, Any]]:
        """First/last seen, every status change and comment, oldest first (the detail page's timeline)."""
        items: list[dict[str, Any]] = [
            {"at": isoformat(alert.first_seen), "kind": "first_seen", "actor": None, "text": alert.rule_title},
        ]
        if alert.count > 1:
            items.append({"at": isoformat(alert.last_seen), "kind": "last_seen", "actor": None,
                          "text": f"x{alert.count}"})
        for entry in self.history(alert.id):
            added = entry["changes"].get("case_added") if isinstance(entry["changes"], dict) else None
            if added:  # written by Cases when the alert went into a case
                items.append({"at": entry["at"], "kind": "case", "actor": entry["actor"], "case": added})
                continue
            items.append({"at": entry["at"], "kind": "change", "actor": entry["actor"], "changes": entry["changes"]})
        for comment in self.comments(alert.id):
            items.append({"at": comment["created_at"], "kind": "comment", "actor": comment["author"],
                          "text": comment["body"]})
        items.sort(key=lambda item: str(item["at"]))
        return items

    def get_in_scope(self, alert_id: str, scope: frozenset[str] | None) -> Alert:
        """The alert, or NotFoundError when missing or outside scope (the two look the same on purpose)."""
        try:
            return self.store.get_alert(alert_id, scope)
        except NotFoundError:
            raise NotFoundError(f"alert {alert_id} not found") from None
