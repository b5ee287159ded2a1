"""Hosts: inventory (servers vs workstations, unit, online/offline, isolation) and isolate/release."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, status
from pydantic import BaseModel, Field

from soclite.api import audit, response
from soclite.api.deps import AdminDep, AnalystDep, RuntimeDep, ScopeDep, narrow
from soclite.control import audit as control_audit
from soclite.models import Host, parse_timestamp, utcnow
from soclite.runtime import Runtime
from soclite.store.base import HostQuery

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])


def is_online(host: Host, runtime: Runtime, now: datetime | None = None) -> bool:
    if host.last_seen is None:
        return False
    limit = timedelta(seconds=runtime.settings.agent.offline_after_seconds)
    return (now or utcnow()) - host.last_seen <= limit


def host_json(
    host: Host, runtime: Runtime, now: datetime | None = None, heartbeats: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The host with what the console shows: online (seen lately, by agent or logs), the agent (None when the
    host has none: "agent online" is never claimed for a host known only from its logs) and the isolation's age.

    ``heartbeats``: agent id → last heartbeat, read once for a page of hosts (else read here).
    """
    now = now or utcnow()
    data = host.model_dump(mode="json")
    online = is_online(host, runtime, now)
    data["online"] = online
    data["status"] = "online" if online else "offline"
    data["agent"] = None
    if host.agent_id:
        if heartbeats is None:
            heartbeats = runtime.agents.last_heartbeats([host.agent_id])
        beat = heartbeats.get(host.agent_id)
        limit = timedelta(seconds=runtime.settings.agent.offline_after_seconds)
        data["agent"] = {
            "id": host.agent_id, "version": host.agent_version, "last_heartbeat": beat,
            "online": beat is not None and now - parse_timestamp(beat) <= limit,
        }  # fmt: skip
    changed = host.isolation_updated_at
    data["isolation_age_seconds"] = int((now - changed).total_seconds()) if changed else None
    return data


def hosts_json(hosts: list[Host], runtime: Runtime) -> list[dict[str, Any]]:
    now = utcnow()
    beats = runtime.agents.last_heartbeats([h.agent_id for h in hosts if h.agent_id])
    return [host_json(h, runtime, now, beats) for h in hosts]


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
    return {"total": page.total, "items": hosts_json(page.items, runtime), "next": page.next}


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
    """Queue the action through the same checks as the UI (:mod:`soclite.api.response`): 409 with the
    reason for a host without an agent (and no firewall webhook) or with a request already under way."""
    host = runtime.store.get_host(host_id.lower(), scope)
    record = response.request_host_action(
        runtime, principal, host, kind, reason=body.reason if body else "",
        alert_id=body.alert_id if body else None, idempotency_key=key,
        requires_approval=runtime.settings.response.api_isolation_requires_approval,
    )  # fmt: skip
    return {"host": host_json(runtime.store.get_host(host.id), runtime), "action": jsonable(record)}


class ScanRequest(BaseModel):
    model_config = {"extra": "forbid"}

    paths: list[Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(/|[A-Za-z]:[\\/])")]] = Field(
        min_length=1, max_length=64)
    reason: str = Field("", max_length=1000)
    alert_id: str | None = Field(None, max_length=64)


@router.post("/{host_id}/scan", status_code=status.HTTP_202_ACCEPTED)
def scan(host_id: str, body: ScanRequest, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep) -> dict[str, Any]:
    """Ask the host's agent for an on-demand ClamAV scan of absolute ``paths`` (analysts and admins; a scan
    reads and changes nothing, so no approval). 409 for a host without an agent. Its state is the
    action's ``scan`` in /api/v1/actions; its findings arrive as antivirus alerts."""
    host = runtime.store.get_host(host_id.lower(), scope)
    record = response.request_scan(runtime, principal, host, body.paths, reason=body.reason, alert_id=body.alert_id)
    return {"action": jsonable(record) | {"scan": response.scan_of(runtime, record)}}


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
