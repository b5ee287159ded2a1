"""Alert triage shared by the JSON API and the web UI: lifecycle, SLA, comments, history.

One function per change so both front doors enforce the same rules
(transitions from :data:`soclite.models.ALERT_TRANSITIONS`, a close reason
for resolved/false positive, timestamps) and leave the same audit trail.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from soclite.api import audit
from soclite.api.identity import Principal
from soclite.config import Settings
from soclite.errors import NotFoundError, TransitionConflict, TriageError
from soclite.models import ALERT_TRANSITIONS, CLOSED_STATUSES, Alert, AlertStatus, isoformat, new_id, utcnow
from soclite.runtime import Runtime

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
    """Deadline = first seen + the severity's SLA minutes; on_time/late once closed, open/overdue before."""
    minutes = int(getattr(settings.sla_minutes, alert.severity.value))
    deadline = alert.first_seen + timedelta(minutes=minutes)
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
    """Apply the patch in place; return the changed fields {name: [before, after]}. Raises TriageError."""
    changes: dict[str, Any] = {}
    now = utcnow()
    if patch.status is not None and patch.status != alert.status:
        if patch.status not in ALERT_TRANSITIONS[alert.status]:
            allowed = ", ".join(sorted(s.value for s in ALERT_TRANSITIONS[alert.status]))
            raise TransitionConflict(f"cannot change status from {alert.status.value} to {patch.status.value}; allowed: {allowed}")
        if patch.status in CLOSED_STATUSES:
            reason = (patch.close_reason or "").strip()
            if not reason:
                raise TriageError(f"close_reason is required to set status {patch.status.value}")
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


def update_alert(
    runtime: Runtime, principal: Principal, alert_id: str, patch: AlertPatch, scope: frozenset[str] | None
) -> Alert:
    """Patch one alert in the caller's scope, record its history and audit. NotFoundError/TriageError.

    The store applies the patch to the alert as stored at the moment of the write and changes only
    the triage fields, so a count increment the pipeline writes meanwhile is neither lost nor able
    to revert this change; the transition rules are checked against that same state.
    """
    outcome: dict[str, Any] = {}

    def change(current: Alert) -> dict[str, Any]:
        # May run more than once (optimistic retry on OpenSearch): keep only the last outcome.
        outcome["before"] = current.model_dump(mode="json", include=_AUDITED)
        outcome["changes"] = changes = apply_patch(current, patch, principal.name)
        return {name: getattr(current, name) for name in _TRIAGE_WRITTEN} if changes else {}

    with _update_lock:
        alert = runtime.store.update_alert_fields(alert_id, change, scope)
    changes = outcome["changes"]
    if changes:
        add_history(runtime, alert.id, principal.name, changes)
        audit.record(
            runtime, principal, "alert.update", f"alert:{alert.id}", outcome["before"],
            alert.model_dump(mode="json", include=_AUDITED), alert.unit,
        )
    if patch.comment and patch.comment.strip():
        add_comment(runtime, principal, alert, patch.comment)
    return alert


#: what the audit trail shows before/after a change
_AUDITED = {"status", "assignee", "close_reason"}
#: what apply_patch may change; written back together (all triage-owned, see Store.update_alert_fields)
_TRIAGE_WRITTEN = ("status", "assignee", "close_reason", "acknowledged_at", "closed_at", "updated_at")


# --- comments and history (control database) ---------------------------------


def add_comment(runtime: Runtime, principal: Principal, alert: Alert, body: str) -> dict[str, Any]:
    text = body.strip()
    if not text:
        raise TriageError("a comment cannot be empty")
    comment = {"id": new_id(), "alert_id": alert.id, "author": principal.name, "body": text,
               "created_at": isoformat(utcnow())}
    with runtime.control.write() as conn:
        conn.execute(
            "INSERT INTO alert_comments (id, alert_id, author, body, created_at) VALUES (?, ?, ?, ?, ?)",
            (comment["id"], alert.id, principal.name, text, comment["created_at"]),
        )
    audit.record(runtime, principal, "alert.comment", f"alert:{alert.id}", None, {"comment": text}, alert.unit)
    return comment


def comments(runtime: Runtime, alert_id: str) -> list[dict[str, Any]]:
    rows = runtime.control.reader().execute(
        "SELECT id, alert_id, author, body, created_at FROM alert_comments WHERE alert_id = ? ORDER BY created_at, id",
        (alert_id,),
    ).fetchall()
    return [dict(row) for row in rows]


def add_history(runtime: Runtime, alert_id: str, actor: str, changes: dict[str, Any]) -> None:
    with runtime.control.write() as conn:
        conn.execute(
            "INSERT INTO alert_history (alert_id, actor, at, changes) VALUES (?, ?, ?, ?)",
            (alert_id, actor, isoformat(utcnow()), json.dumps(changes, ensure_ascii=False)),
        )


def history(runtime: Runtime, alert_id: str) -> list[dict[str, Any]]:
    rows = runtime.control.reader().execute(
        "SELECT actor, at, changes FROM alert_history WHERE alert_id = ? ORDER BY id", (alert_id,)
    ).fetchall()
    return [{"actor": r["actor"], "at": r["at"], "changes": json.loads(r["changes"])} for r in rows]


def timeline(alert: Alert, runtime: Runtime) -> list[dict[str, Any]]:
    """First/last seen, every status change and comment, oldest first (the detail page's timeline)."""
    items: list[dict[str, Any]] = [
        {"at": isoformat(alert.first_seen), "kind": "first_seen", "actor": None, "text": alert.rule_title},
    ]
    if alert.count > 1:
        items.append({"at": isoformat(alert.last_seen), "kind": "last_seen", "actor": None, "text": f"x{alert.count}"})
    for entry in history(runtime, alert.id):
        items.append({"at": entry["at"], "kind": "change", "actor": entry["actor"], "changes": entry["changes"]})
    for comment in comments(runtime, alert.id):
        items.append({"at": comment["created_at"], "kind": "comment", "actor": comment["author"], "text": comment["body"]})
    items.sort(key=lambda item: str(item["at"]))
    return items


def get_in_scope(runtime: Runtime, alert_id: str, scope: frozenset[str] | None) -> Alert:
    """The alert, or NotFoundError when missing or outside scope (the two look the same on purpose)."""
    try:
        return runtime.store.get_alert(alert_id, scope)
    except NotFoundError:
        raise NotFoundError(f"alert {alert_id} not found") from None
