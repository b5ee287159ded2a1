"""Cases as the API and the web UI call them: the request's principal becomes the actor.

The repository (SQL, visibility, audit) is :class:`soclite.control.cases.Cases` (``runtime.cases``).
"""

from __future__ import annotations

from typing import Any

from soclite.control.audit import actor_of
from soclite.control.cases import CaseCreate, CasePatch, CaseStatus
from soclite.control.identity import Principal
from soclite.runtime import Runtime

__all__ = ["CaseCreate", "CasePatch", "CaseStatus", "add_alerts", "alert_ids", "cases_of_alert", "create", "get",
           "list_cases", "update"]


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
