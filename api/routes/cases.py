"""Cases grouping alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from soclite.api import cases
from soclite.api.deps import AnalystDep, RuntimeDep, ScopeDep

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.get("")
def list_cases(
    runtime: RuntimeDep, scope: ScopeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    items = cases.list_cases(runtime, scope, limit)
    return {"total": len(items), "items": items, "next": None}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_case(body: cases.CaseCreate, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep) -> dict[str, Any]:
    return cases.create(runtime, principal, body, scope)


@router.get("/{case_id}")
def get_case(case_id: str, runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    """The case with its tasks and history (changes, comments, tasks, alerts added)."""
    return cases.detail(runtime, case_id, scope)


@router.patch("/{case_id}")
def patch_case(
    case_id: str, body: cases.CasePatch, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.update(runtime, principal, case_id, body, scope)


class AddAlerts(BaseModel):
    model_config = {"extra": "forbid"}

    alert_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=1000)


@router.post("/{case_id}/alerts")
def add_alerts(
    case_id: str, body: AddAlerts, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.add_alerts(runtime, principal, case_id, body.alert_ids, scope)


class CommentBody(BaseModel):
    model_config = {"extra": "forbid"}

    body: str = Field(min_length=1, max_length=20000)


@router.post("/{case_id}/comments", status_code=status.HTTP_201_CREATED)
def add_comment(
    case_id: str, body: CommentBody, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.comment(runtime, principal, case_id, body.body, scope)


@router.post("/{case_id}/tasks", status_code=status.HTTP_201_CREATED)
def add_task(
    case_id: str, body: cases.TaskCreate, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.add_task(runtime, principal, case_id, body, scope)


class TaskPatch(BaseModel):
    model_config = {"extra": "forbid"}

    done: bool


@router.patch("/{case_id}/tasks/{task_id}")
def patch_task(
    case_id: str, task_id: str, body: TaskPatch, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.set_task_done(runtime, principal, case_id, task_id, body.done, scope)
