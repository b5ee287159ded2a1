"""Cases as the API and the web UI call them: the request's principal becomes the actor.

The repository (SQL, visibility, audit) is :class:`soclite.control.cases.Cases` (``runtime.cases``).
"""

from __future__ import annotations

from typing import Any

from soclite.control.audit import actor_of
from soclite.control.cases import CLOSE_REASONS, CaseCreate, CasePatch, CaseStatus, TaskCreate
from soclite.control.identity import Principal
from soclite.runtime import Runtime

__all__ = ["CLOSE_REASONS", "CaseCreate", "CasePatch", "CaseStatus", "TaskCreate", "add_alerts", "add_task",
           "alert_ids", "cases_of_alert", "comment", "create", "detail", "get", "list_cases", "set_task_done",
           "update"]


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
