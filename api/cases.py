"""Cases as the API and the web UI call them: the request's principal becomes the actor.

The repository (SQL, visibility, audit) is :class:`soclite.control.cases.Cases` (``runtime.cases``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from soclite.control import audit
from soclite.control.audit import actor_of
from soclite.control.cases import CLOSE_REASONS, CaseCreate, CasePatch, CaseStatus, TaskCreate
from soclite.control.identity import Principal
from soclite.errors import NotFoundError
from soclite.models import isoformat, utcnow
from soclite.runtime import Runtime

__all__ = ["CLOSE_REASONS", "CaseCreate", "CasePatch", "CaseStatus", "TaskCreate", "add_alerts", "add_attachment",
           "add_task", "alert_ids", "attachments", "cases_of_alert", "comment", "create", "delete_attachment",
           "detail", "export", "get", "list_cases", "open_attachment", "set_task_done", "update"]


def alert_ids(runtime: Runtime, case_id: str) -> list[str]:
    return runtime.cases.alert_ids(case_id)


def get(runtime: Runtime, case_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.get(case_id, scope)


def list_cases(runtime: Runtime, scope: frozenset[str] | None, limit: int = 100) -> list[dict[str, Any]]:
    return runtime.cases.list_cases(scope, limit)


def cases_of_alert(runtime: Runtime, alert_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
    return runtime.cases.of_alert(alert_id, scope)


def create(runtime: Runtime, principal: Principal, body: CaseCreate, scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.create(body, actor=actor_of(principal), created_by=principal.name, unit=principal.unit,
                                scope=scope)


def update(runtime: Runtime, principal: Principal, case_id: str, patch: CasePatch,
           scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.update(case_id, patch, actor=actor_of(principal), scope=scope)


def add_alerts(runtime: Runtime, principal: Principal, case_id: str, ids: list[str],
               scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.add_alerts(case_id, ids, actor=actor_of(principal), scope=scope)


def detail(runtime: Runtime, case_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
    """The case with its tasks and its history (changes, comments, tasks, alerts added), oldest first."""
    case = runtime.cases.get(case_id, scope)
    case["tasks"] = runtime.cases.tasks(case_id, scope)
    case["history"] = runtime.cases.events(case_id, scope)
    case["attachments"] = runtime.attachments.of_case(case_id, scope)
    return case


def comment(runtime: Runtime, principal: Principal, case_id: str, body: str,
            scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.comment(case_id, body, actor=actor_of(principal), scope=scope)


def add_task(runtime: Runtime, principal: Principal, case_id: str, task: TaskCreate,
             scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.add_task(case_id, task, actor=actor_of(principal), created_by=principal.name, scope=scope)


def set_task_done(runtime: Runtime, principal: Principal, case_id: str, task_id: str, done: bool,
                  scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.cases.set_task_done(case_id, task_id, done, actor=actor_of(principal), scope=scope)


# --- attachments and the incident-report export ------------------------------------------------


def attachments(runtime: Runtime, case_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
    return runtime.attachments.of_case(case_id, scope)


def add_attachment(runtime: Runtime, principal: Principal, case_id: str, name: str, source: BinaryIO,
                   scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.attachments.add(case_id, name, source, actor=actor_of(principal), uploaded_by=principal.name,
                                   scope=scope)


def open_attachment(runtime: Runtime, case_id: str, attachment_id: str,
                    scope: frozenset[str] | None) -> tuple[dict[str, Any], Path]:
    return runtime.attachments.open(case_id, attachment_id, scope)


def delete_attachment(runtime: Runtime, principal: Principal, case_id: str, attachment_id: str,
                      scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.attachments.delete(case_id, attachment_id, actor=actor_of(principal), scope=scope)


def export(runtime: Runtime, principal: Principal, case_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
    """The case as the incident report needs it: details, tasks, history with comments, its alerts (the
    caller may see), their hosts, and each attachment's name, size, type and SHA-256 (not the bytes).

    Exporting is audited: the export leaves the system with whatever it holds.
    """
    case = detail(runtime, case_id, scope)
    alerts = []
    host_ids: dict[str, None] = {}
    for alert_id in case["alert_ids"]:
        try:
            alert = runtime.store.get_alert(alert_id, scope)
        except NotFoundError:
            continue
        alerts.append(alert.model_dump(mode="json", exclude={"event"}))
        if alert.host:
            host_ids[alert.host] = None
    hosts = []
    for host_id in host_ids:
        try:
            hosts.append(runtime.store.get_host(host_id, scope).model_dump(mode="json"))
        except NotFoundError:
            hosts.append({"id": host_id, "name": host_id})  # seen in an alert, not (or no longer) inventoried
    audit.append(runtime.store, actor_of(principal), "case.export", f"case:{case_id}", None,
                 {"alerts": len(alerts), "attachments": len(case["attachments"])}, case.get("unit"))
    return {"exported_at": isoformat(utcnow()), "exported_by": principal.name, "case": case, "alerts": alerts,
            "hosts": hosts}
