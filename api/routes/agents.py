"""Agent endpoints: enrollment, heartbeat (inventory → Host), and the command channel.

Only enrollment is reachable without a key (it needs a one-time enrollment token
instead); everything else requires a per-agent key (role ``agent``), and a person's
token is refused here just as an agent key is refused everywhere else.

The heartbeat makes the host inventory: Host.id is the reported host name
lower-cased, the unit is the one the agent key is bound to (never what the body
says), and last_seen drives online/offline. The isolation state an agent reports is
the kernel's read-back ruleset; it updates the Host only when no command is in flight,
so a stale heartbeat cannot overwrite a newer request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from soclite.api import audit
from soclite.api.deps import MAX_SEQ, RuntimeDep, require_roles
from soclite.control.identity import Principal, Role
from soclite.errors import AuthError, BindingConflict, NotFoundError
from soclite.models import ISOLATION_IN_FLIGHT, Host, HostType, IsolationState, utcnow
from soclite.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

AgentDep = Annotated[Principal, require_roles(Role.AGENT)]

#: longest a command poll may be held open (agents poll again right after)
MAX_POLL_WAIT = 30





class IsolationReport(BaseModel):
    state: Literal["none", "isolated", "failed"] = "none"
    ruleset: str | None = Field(None, max_length=200_000)


class Inventory(BaseModel):
    hostname: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    os: str | None = Field(None, max_length=500)
    host_type: HostType = HostType.WORKSTATION
    agent_version: str | None = Field(None, max_length=64)
    ips: list[str] = Field(default_factory=list, max_length=256)
    macs: list[str] = Field(default_factory=list, max_length=256)


class EnrollRequest(Inventory):
    enroll_token: str = Field(min_length=1, max_length=200)


class Heartbeat(Inventory):
    dropped: int = Field(0, ge=0, le=MAX_SEQ)
    isolation: IsolationReport = Field(default_factory=IsolationReport)
    spool: dict[str, Annotated[int, Field(ge=-MAX_SEQ, le=MAX_SEQ)]] = Field(default_factory=dict)
    #: the Windows event log source's state: {"enabled": bool, "reason"?: str, "channels"?: {name: {...}}}
    windows_event_logs: dict[str, Any] | None = None


class CommandResult(BaseModel):
    ok: bool
    detail: str = Field("", max_length=200_000)


def _report_channel_changes(runtime: Runtime, agent_id: str, host_id: str, report: dict[str, Any] | None) -> None:
    """Warn when a Windows event log channel of an agent becomes unreadable (access denied, missing).

    Only a change is logged: 2,500 agents repeating a known state every heartbeat would drown the log.
    """
    channels = (report or {}).get("channels") or {}
    if not isinstance(channels, dict):
        return
    known = runtime.wineventlog_states
    for name, state in channels.items():
        current = str(state.get("state")) if isinstance(state, dict) else "unknown"
        if known.get((agent_id, name)) == current:
            continue
        previous = known.get((agent_id, name))
        known[(agent_id, name)] = current
        if current != "ok":
            detail = state.get("detail", "") if isinstance(state, dict) else ""
            log.warning("agent %s (%s): Windows event log %r is %s: %r", agent_id, host_id, name, current, detail)
        elif previous is not None:
            log.info("agent %s (%s): Windows event log %r is readable again", agent_id, host_id, name)


_IN_FLIGHT = ISOLATION_IN_FLIGHT


def binding_conflict(host: Host | None, agent_id: str | None, unit: str | None) -> str | None:
    """Why ``agent_id`` of ``unit`` may not report as ``host`` (None when it may).

    A host is bound to the first agent that reports it (and to that agent's unit);
    a host known only from logs binds to an agent of the same unit (or any unit if
    none is known). Moving a host to another agent or unit is an admin action
    (``POST /api/v1/hosts/{id}/unbind``), so one leaked agent key cannot rewrite
    the inventory, unit and isolation target of every host in the province.
    ``agent_id`` None checks the unit only (enrollment, before the key exists).
    """
    if host is None:
        return None
    if host.agent_id and agent_id is not None and host.agent_id != agent_id:
        return f"host {host.id} is bound to another agent; an admin must unbind it first"
    if host.unit != unit and (host.unit is not None or host.agent_id):
        return f"host {host.id} belongs to another unit; an admin must unbind it first"
    return None


def _deny_binding(runtime: Runtime, actor: Principal | str, host: Host, why: str, detail: dict[str, Any]) -> None:
    audit.record(runtime, actor, "agent.bind.denied", f"host:{host.id}", None,
                 {"reason": why, **detail}, host.unit)  # fmt: skip


def upsert_host(
    runtime: Runtime, agent_id: str, unit: str | None, inv: Inventory, isolation: IsolationReport | None
) -> Host:
    """Create or refresh the Host of an agent from its inventory, atomically on the host as stored
    (``update_host``: a concurrent isolation change or last_seen refresh is decided on, never reverted).

    Raises :class:`BindingConflict` when the host is bound to another agent or unit.
    """
    host_id = inv.hostname.lower()

    def change(host: Host) -> dict[str, Any]:
        why = binding_conflict(host, agent_id, unit)
        if why is not None:
            raise BindingConflict(host, why)
        now = utcnow()
        update: dict[str, Any] = {
            "name": inv.hostname, "type": inv.host_type, "unit": unit, "os": inv.os, "ips": inv.ips,
            "macs": inv.macs, "agent_id": agent_id, "agent_version": inv.agent_version,
            "last_seen": max(now, host.last_seen or now),
        }  # fmt: skip
        if isolation is not None and host.isolation not in _IN_FLIGHT:
            if isolation.state == "isolated" and isolation.ruleset:
                if host.isolation is not IsolationState.ISOLATED or host.isolation_detail != isolation.ruleset:
                    update |= {"isolation": IsolationState.ISOLATED, "isolation_detail": isolation.ruleset,
                               "isolation_updated_at": now}  # fmt: skip
            elif isolation.state == "failed":
                update |= {"isolation": IsolationState.FAILED, "isolation_updated_at": now,
                           "isolation_detail": "the agent's isolation table is missing on the host (re-applying)"}  # fmt: skip
            elif host.isolation is IsolationState.ISOLATED:
                update |= {"isolation": IsolationState.FAILED, "isolation_updated_at": now,
                           "isolation_detail": "the agent reports no isolation in force"}  # fmt: skip
        return update

    return runtime.store.update_host(host_id, change, create=Host(id=host_id, name=inv.hostname))


@router.post("/enroll")
def enroll(body: EnrollRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """One-time enrollment token → per-agent key (shown once) and agent id."""
    registry = runtime.agents
    try:
        grant = registry.consume(body.enroll_token)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    actor = f"enroll-token:{grant.token_id}"
    existing = runtime.store.find_host(body.hostname.lower())
    if existing is not None and existing.id != body.hostname.lower():
        existing = None  # find_host also matches agent ids; only the same name is a re-enrollment
    why = binding_conflict(existing, None, grant.unit)
    if existing is not None and why is not None:
        _deny_binding(runtime, actor, existing, why, {"hostname": body.hostname, "unit": grant.unit})
        raise HTTPException(status.HTTP_409_CONFLICT, why)
    api_key: str = runtime.identity.create_token(role=Role.AGENT, unit=grant.unit, name=body.hostname)
    agent_id = api_key.split("_", 2)[1]
    previous: str | None = None
    if existing is not None and existing.agent_id:
        # Re-enrollment: the same host (same unit, an admin-made enrollment token) lost its agent
        # state. The new key replaces the old one, which is revoked so it cannot report any more.
        previous = existing.agent_id
        runtime.identity.revoke_token(previous)
        runtime.store.update_host(existing.id, {"agent_id": None})
    registry.register(agent_id, body.hostname, grant.unit, grant.token_id)
    host = upsert_host(runtime, agent_id, grant.unit, body, None)
    audit.record(
        runtime, actor, "agent.reenroll" if previous else "agent.enroll", f"host:{host.id}",
        {"agent_id": previous} if previous else None,
        {"agent_id": agent_id, "hostname": body.hostname, "unit": grant.unit}, grant.unit,
    )  # fmt: skip
    return {"agent_id": agent_id, "api_key": api_key, "unit": grant.unit, "host_id": host.id}


@router.post("/heartbeat")
def heartbeat(body: Heartbeat, runtime: RuntimeDep, principal: AgentDep) -> dict[str, Any]:
    """Inventory → Host upsert; answers whether commands are waiting (the agent then polls at once).

    A hostname bound to another agent or unit is refused with 409 (and audited).
    """
    try:
        host = upsert_host(runtime, principal.id, principal.unit, body, body.isolation)
    except BindingConflict as exc:
        _deny_binding(runtime, principal, exc.host, exc.why, {"hostname": body.hostname, "unit": principal.unit})
        raise HTTPException(status.HTTP_409_CONFLICT, exc.why) from exc
    runtime.agents.heartbeat(
        principal.id, dropped=body.dropped, spool_batches=body.spool.get("batches", 0)
    )
    if body.dropped:
        log.warning("agent %s (%s) evicted %d lines from its full spool", principal.id, host.id, body.dropped)
    _report_channel_changes(runtime, principal.id, host.id, body.windows_event_logs)
    queue = runtime.commands
    queue.expire()
    waiting = sum(1 for c in queue.list_for_host(host.id, limit=20) if c.status == "pending")
    return {"ok": True, "host_id": host.id, "commands_pending": waiting}


@router.get("/commands")
async def poll_commands(
    runtime: RuntimeDep,
    principal: AgentDep,
    wait: Annotated[int, Query(ge=0, le=MAX_POLL_WAIT)] = 0,
) -> dict[str, Any]:
    """Commands for the caller's host → {"items": [{"id", "kind", "params"}]}; ``wait`` long-polls."""
    queue = runtime.commands
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        commands = await run_in_threadpool(queue.pending_for, principal.id)
        if commands or asyncio.get_running_loop().time() >= deadline:
            return {"items": [c.to_agent() for c in commands]}
        await asyncio.sleep(1.0)


@router.post("/commands/{command_id}/result")
def command_result(
    command_id: str, body: CommandResult, runtime: RuntimeDep, principal: AgentDep
) -> dict[str, Any]:
    """The agent's outcome; isolated only with the ruleset it read back (verified), failed with its error."""
    queue = runtime.commands
    try:
        command = queue.get(command_id)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    host = runtime.store.find_host(principal.id)
    if host is None or host.id != command.host_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this command is not for the calling agent's host")
    before = host.model_dump(mode="json", include={"isolation", "isolation_updated_at"})
    done = queue.report(command_id, body.ok, body.detail)
    after = runtime.store.get_host(host.id)
    audit.record(
        runtime, principal, f"host.{command.kind}.{'confirmed' if body.ok else 'failed'}", f"host:{host.id}", before,
        after.model_dump(mode="json", include={"isolation", "isolation_updated_at"}), host.unit,
    )  # fmt: skip
    return {"ok": True, "command": done.to_dict()}
