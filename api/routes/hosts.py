"""Hosts: inventory (servers vs workstations, unit, online/offline, isolation) and isolate/release."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, status
from pydantic import BaseModel, Field

from soclite.api import audit
from soclite.api.deps import AdminDep, RuntimeDep, ScopeDep, narrow
from soclite.control import audit as control_audit
from soclite.models import Host, IsolationState, new_id, utcnow
from soclite.runtime import Runtime
from soclite.store.base import HostQuery

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])


def is_online(host: Host, runtime: Runtime, now: datetime | None = None) -> bool:
    if host.last_seen is None:
        return False
    limit = timedelta(seconds=runtime.settings.agent.offline_after_seconds)
    return (now or utcnow()) - host.last_seen <= limit


def host_json(host: Host, runtime: Runtime, now: datetime | None = None) -> dict[str, Any]:
    data = host.model_dump(mode="json")
    online = is_online(host, runtime, now)
    data["online"] = online
    data["status"] = "online" if online else "offline"
    return data


def jsonable(value: Any) -> Any:
    """An outbox record (pydantic model or dataclass) as JSON data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return control_audit.jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return control_audit.jsonable(value)
    return str(value)


@router.get("")
def list_hosts(
    runtime: RuntimeDep,
    scope: ScopeDep,
    type: Annotated[Literal["server", "workstation"] | None, Query()] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Hosts in scope → {"total", "items", "next"}; each with online/status computed from last_seen."""
    try:
        page = runtime.store.query_hosts(
            HostQuery(units=narrow(scope, unit, runtime), type=type, q=q or None, limit=limit, cursor=cursor or None)
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid query: {exc}") from exc
    now = utcnow()
    return {"total": page.total, "items": [host_json(h, runtime, now) for h in page.items], "next": page.next}


@router.get("/{host_id}")
def get_host(host_id: str, runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    return host_json(runtime.store.get_host(host_id.lower(), scope), runtime)


class IsolationRequest(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field("", max_length=1000)
    alert_id: str | None = Field(None, max_length=64)


def _respond(
    kind: Literal["isolate", "release"], host_id: str, body: IsolationRequest | None, runtime: Runtime,
    principal: Any, scope: frozenset[str] | None, key: str | None,
) -> dict[str, Any]:
    host = runtime.store.get_host(host_id.lower(), scope)
    reason = body.reason if body else ""
    action = "isolate_host" if kind == "isolate" else "release_host"
    record = runtime.outbox.submit(
        action, {"host_id": host.id, "reason": reason},
        idempotency_key=key or f"{action}:{host.id}:{new_id()}",
        alert_id=body.alert_id if body else None,
        requested_by=principal.name, requires_approval=False,
        # the unit, so the host's unit sees this action (action lists are scoped by payload unit)
        payload={"host": host.id, "unit": host.unit},
    )
    before = host.model_dump(mode="json", include={"isolation", "isolation_updated_at"})
    host = runtime.store.update_host(
        host.id,
        {
            "isolation": IsolationState.REQUESTED if kind == "isolate" else IsolationState.RELEASE_PENDING,
            "isolation_updated_at": utcnow(),
        },
    )
    audit.record(runtime, principal, f"host.{kind}", f"host:{host.id}", before,
                 {**host.model_dump(mode="json", include={"isolation", "isolation_updated_at"}), "reason": reason},
                 host.unit)
    return {"host": host_json(host, runtime), "action": jsonable(record)}


@router.post("/{host_id}/isolate", status_code=status.HTTP_202_ACCEPTED)
def isolate(
    host_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep,
    body: IsolationRequest | None = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Record an isolate_host action for the playbooks to execute (admin only)."""
    return _respond("isolate", host_id, body, runtime, principal, scope, idempotency_key)


@router.post("/{host_id}/release", status_code=status.HTTP_202_ACCEPTED)
def release(
    host_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep,
    body: IsolationRequest | None = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Record a release_host action (admin only)."""
    return _respond("release", host_id, body, runtime, principal, scope, idempotency_key)


@router.post("/{host_id}/unbind")
def unbind(host_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    """Release a host from its agent (admin only, audited) so another agent may report it.

    Agents cannot take over a host bound to another agent or unit (409 on heartbeat);
    this is the deliberate move: the old agent's key is revoked (a key belongs to one
    host), the agent binding is cleared, and a province-wide admin also clears the unit
    (a unit-bound admin keeps the host in its unit: only that unit's agents may bind it).
    """
    host = runtime.store.get_host(host_id.lower(), scope)
    before = host.model_dump(mode="json", include={"agent_id", "unit"})
    if host.agent_id:
        runtime.identity.revoke_token(host.agent_id)
    update: dict[str, Any] = {"agent_id": None}
    if principal.unit is None:
        update["unit"] = None
    new = runtime.store.update_host(host.id, update)
    audit.record(runtime, principal, "host.unbind", f"host:{host.id}", before,
                 new.model_dump(mode="json", include={"agent_id", "unit"}), host.unit)
    return host_json(new, runtime)
