"""Response actions (the playbook outbox) and the national connector's state.

GET /api/v1/actions lists actions (per alert, by status — ``status=dead`` is the dead-letter list);
admins approve or reject actions awaiting approval (isolation), retry dead letters and cancel what has not
run. Every change is written to the audit chain (:mod:`soclite.api.response` does the work, for the UI too).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from soclite.api import response
from soclite.api.deps import MAX_SEQ, AdminDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.errors import NotFoundError, PlaybookError
from soclite.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["actions"])


class RejectBody(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=2000)


def _outbox(runtime: Runtime) -> Any:
    if runtime.outbox is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the playbook outbox is not running")
    return runtime.outbox


def _scan(runtime: Runtime, record: Any) -> dict[str, Any]:
    """A scan_host action carries its scan's state ("scan": queued/running/clean/infected/not_available/…)."""
    state = response.scan_of(runtime, record)
    return {"scan": state} if state is not None else {}


@router.get("/actions")
def list_actions(
    runtime: RuntimeDep,
    principal: ReaderDep,
    scope: ScopeDep,
    alert_id: str | None = None,
    status_: list[str] | None = Query(None, alias="status"),
    action: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, ge=0, le=MAX_SEQ, description="cursor: the seq of the last item of the previous page"),
) -> dict[str, Any]:
    outbox = _outbox(runtime)
    records = outbox.list_actions(
        alert_id=alert_id, status=status_, action=action, limit=limit, before_seq=before
    )
    items = [r.model_dump(mode="json") | _scan(runtime, r) for r in records if response.visible(runtime, r, scope)]
    next_cursor = records[-1].seq if len(records) == limit else None
    return {"items": items, "next": next_cursor}


@router.get("/actions/{action_id}")
def get_action(action_id: str, runtime: RuntimeDep, principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    outbox = _outbox(runtime)
    record = outbox.get(action_id)
    if not response.visible(runtime, record, scope):
        raise NotFoundError(f"action {action_id} not found")
    data: dict[str, Any] = record.model_dump(mode="json") | _scan(runtime, record)
    data["history"] = [h.model_dump() for h in outbox.history(action_id)]
    return data


def _change(
    runtime: Runtime, principal: Any, action_id: str, what: str, scope: frozenset[str] | None, reason: str = ""
) -> dict[str, Any]:
    """approve/reject/retry/cancel (:func:`soclite.api.response.change_action`): 409 when the status does not
    allow it, 403 under the two-person rule, 404 outside the caller's units."""
    _outbox(runtime)
    try:
        after = response.change_action(runtime, principal, action_id, what, scope, reason)
    except PlaybookError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    result: dict[str, Any] = after.model_dump(mode="json")
    return result


@router.post("/actions/{action_id}/approve")
def approve(action_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    return _change(runtime, principal, action_id, "approve", scope)


@router.post("/actions/{action_id}/reject")
def reject(
    action_id: str, body: RejectBody, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep
) -> dict[str, Any]:
    return _change(runtime, principal, action_id, "reject", scope, body.reason)


@router.post("/actions/{action_id}/retry")
def retry(action_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    return _change(runtime, principal, action_id, "retry", scope)


@router.post("/actions/{action_id}/cancel")
def cancel(
    action_id: str, body: RejectBody, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep
) -> dict[str, Any]:
    """Withdraw an action that has not run (awaiting approval, pending, failed) or dismiss a dead letter."""
    return _change(runtime, principal, action_id, "cancel", scope, body.reason)


@router.get("/connector")
def connector(runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    national = runtime.settings.national
    outbox = _outbox(runtime)
    state: dict[str, Any] = outbox.connector_status(national.kind).model_dump()
    state["enabled"] = national.enabled
    state["kind"] = national.kind
    state["warnings"] = outbox.health_warnings(connector=national.kind) if national.enabled else []
    return state
