"""Response actions (the playbook outbox) and the national connector's state.

GET /api/v1/actions lists actions (per alert, by status — ``status=dead`` is the dead-letter list);
admins approve or reject actions awaiting approval (isolation) and retry dead letters. Every change is
written to the audit chain.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from soclite.api.deps import AdminDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.errors import NotFoundError, PlaybookError
from soclite.playbooks.actions.host import unit_conflict
from soclite.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["actions"])


class RejectBody(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=2000)


def _outbox(runtime: Runtime) -> Any:
    if runtime.outbox is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the playbook outbox is not running")
    return runtime.outbox


#: actions on a host: authorised against the target host's unit, never the alert's
HOST_ACTIONS = frozenset({"isolate_host", "release_host"})


def _host_id(record: Any) -> str:
    return str((record.params or {}).get("host_id") or (record.payload or {}).get("host") or "").lower()


def _unit_of(runtime: Runtime, record: Any) -> str | None:
    """The unit an action concerns: for isolate/release the TARGET host's unit, else its alert's unit.

    An alert's unit is the sender's; the host it names is only a name it carried, so a host action
    belongs to the host's unit (an alert of unit A naming B's host must not make the action A's).
    Manual actions made before the host's unit was stored in the payload have none;
    their host is looked up so the unit's own users still see their hosts' actions.
    """
    if record.action in HOST_ACTIONS:
        host_id = _host_id(record)
        host = runtime.store.find_host(host_id) if host_id else None
        if host is not None:
            return host.unit
    unit = (record.payload or {}).get("unit")
    if unit is None:
        host_id = str((record.params or {}).get("host_id") or "")
        host = runtime.store.find_host(host_id) if host_id else None
        unit = host.unit if host is not None else None
    return str(unit) if unit is not None else None


def _visible(runtime: Runtime, record: Any, scope: frozenset[str] | None) -> bool:
    if scope is None:
        return True
    unit = _unit_of(runtime, record)
    return unit is not None and unit in scope


def _audit(runtime: Runtime, principal: Any, what: str, before: Any, after: Any) -> None:
    try:
        from soclite.api import audit
    except ImportError:  # pragma: no cover - the API package ships audit; kept lazy for split deployments
        return
    audit.record(
        runtime,
        principal,
        what,
        f"action:{after.id}",
        before.model_dump(mode="json", include={"status", "attempts", "last_error"}),
        after.model_dump(mode="json", include={"status", "approved_by", "last_error", "action", "params"}),
        _unit_of(runtime, after),
    )


@router.get("/actions")
def list_actions(
    runtime: RuntimeDep,
    principal: ReaderDep,
    scope: ScopeDep,
    alert_id: str | None = None,
    status_: list[str] | None = Query(None, alias="status"),
    action: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, description="cursor: the seq of the last item of the previous page"),
) -> dict[str, Any]:
    outbox = _outbox(runtime)
    records = outbox.list_actions(
        alert_id=alert_id, status=status_, action=action, limit=limit, before_seq=before
    )
    items = [r.model_dump(mode="json") for r in records if _visible(runtime, r, scope)]
    next_cursor = records[-1].seq if len(records) == limit else None
    return {"items": items, "next": next_cursor}


@router.get("/actions/{action_id}")
def get_action(action_id: str, runtime: RuntimeDep, principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    outbox = _outbox(runtime)
    record = outbox.get(action_id)
    if not _visible(runtime, record, scope):
        raise NotFoundError(f"action {action_id} not found")
    data: dict[str, Any] = record.model_dump(mode="json")
    data["history"] = [h.model_dump() for h in outbox.history(action_id)]
    return data


def _change(
    runtime: Runtime, principal: Any, action_id: str, what: str, scope: frozenset[str] | None, **kwargs: Any
) -> dict[str, Any]:
    """Approve/reject/retry; an action outside the caller's units is "not found", like on GET."""
    outbox = _outbox(runtime)
    before = outbox.get(action_id)
    if not _visible(runtime, before, scope):
        raise NotFoundError(f"action {action_id} not found")
    if what in ("approve", "retry") and before.action in HOST_ACTIONS and before.alert_id:
        refused = unit_conflict(runtime.store, _host_id(before), before.payload)
        if refused:
            raise HTTPException(status.HTTP_403_FORBIDDEN, refused)
    try:
        if what == "approve":
            after = outbox.approve(action_id, principal.name)
        elif what == "reject":
            after = outbox.reject(action_id, principal.name, kwargs["reason"])
        else:
            after = outbox.retry(action_id, principal.name)
    except PlaybookError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if what == "reject" and after.action == "isolate_host":
        _clear_requested(runtime, str(after.params.get("host_id") or ""))
    _audit(runtime, principal, f"action.{what}", before, after)
    result: dict[str, Any] = after.model_dump(mode="json")
    return result


def _clear_requested(runtime: Runtime, host_id: str) -> None:
    """A rejected isolation request no longer shows as "requested" on the host."""
    from soclite.models import IsolationState, utcnow

    host = runtime.store.find_host(host_id) if host_id else None
    if host is not None:
        runtime.store.update_host(
            host.id,
            # decided on the host as stored: an isolation that moved on meanwhile is left alone
            lambda current: (
                {"isolation": IsolationState.NONE, "isolation_updated_at": utcnow()}
                if current.isolation == IsolationState.REQUESTED
                else {}
            ),
        )


@router.post("/actions/{action_id}/approve")
def approve(action_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    return _change(runtime, principal, action_id, "approve", scope)


@router.post("/actions/{action_id}/reject")
def reject(
    action_id: str, body: RejectBody, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep
) -> dict[str, Any]:
    return _change(runtime, principal, action_id, "reject", scope, reason=body.reason)


@router.post("/actions/{action_id}/retry")
def retry(action_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    return _change(runtime, principal, action_id, "retry", scope)


@router.get("/connector")
def connector(runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    national = runtime.settings.national
    outbox = _outbox(runtime)
    state: dict[str, Any] = outbox.connector_status(national.kind).model_dump()
    state["enabled"] = national.enabled
    state["kind"] = national.kind
    state["warnings"] = outbox.health_warnings(connector=national.kind) if national.enabled else []
    return state
