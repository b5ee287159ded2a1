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
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import audit
from api.deps import RuntimeDep, require_roles
from api.identity import Principal, Role
from collectors.agent.enrollment import AgentRegistry
from collectors.commands import CommandQueue
from soclite.errors import AuthError, NotFoundError
from soclite.models import Host, HostType, IsolationState, utcnow
from soclite.runtime import Runtime

log = logging.getLogger("soclite.api.agents")

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

AgentDep = Annotated[Principal, require_roles(Role.AGENT)]

#: longest a command poll may be held open (agents poll again right after)
MAX_POLL_WAIT = 30

_lock = threading.Lock()


def registry_of(runtime: Runtime) -> AgentRegistry:
    """The agent register (data_dir/agents.db), opened on first use and kept on the runtime."""
    with _lock:
        registry = runtime.extras.get("agents")
        if registry is None:
            registry = AgentRegistry.open(runtime.settings.data_dir)
            runtime.extras["agents"] = registry
    assert isinstance(registry, AgentRegistry)
    return registry


def commands_of(runtime: Runtime) -> CommandQueue:
    """runtime.commands, built here when the server wiring has not set it."""
    with _lock:
        if runtime.commands is None:
            runtime.commands = CommandQueue.open(runtime.settings.data_dir, runtime.store)
    queue: CommandQueue = runtime.commands
    return queue


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
    dropped: int = Field(0, ge=0)
    isolation: IsolationReport = Field(default_factory=IsolationReport)
    spool: dict[str, int] = Field(default_factory=dict)


class CommandResult(BaseModel):
    ok: bool
    detail: str = Field("", max_length=200_000)


_IN_FLIGHT = {IsolationState.REQUESTED, IsolationState.PENDING, IsolationState.RELEASE_PENDING}


def upsert_host(
    runtime: Runtime, agent_id: str, unit: str | None, inv: Inventory, isolation: IsolationReport | None
) -> Host:
    """Create or refresh the Host of an agent from its inventory (read-modify-write on the freshest copy)."""
    store = runtime.store
    host_id = inv.hostname.lower()
    try:
        host = store.get_host(host_id)
    except NotFoundError:
        host = Host(id=host_id, name=inv.hostname)
    if host.agent_id and host.agent_id != agent_id:
        log.warning(
            "host %s now reported by agent %s (was %s): re-enrolled?", host_id, agent_id, host.agent_id
        )
    update: dict[str, Any] = {
        "name": inv.hostname, "type": inv.host_type, "unit": unit, "os": inv.os, "ips": inv.ips, "macs": inv.macs,
        "agent_id": agent_id, "agent_version": inv.agent_version, "last_seen": utcnow(),
    }  # fmt: skip
    if isolation is not None and host.isolation not in _IN_FLIGHT:
        now = utcnow()
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
    new = host.model_copy(update=update)
    store.put_host(new)
    return new


@router.post("/enroll")
def enroll(body: EnrollRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """One-time enrollment token → per-agent key (shown once) and agent id."""
    registry = registry_of(runtime)
    try:
        grant = registry.consume(body.enroll_token)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    api_key: str = runtime.identity.create_token(role=Role.AGENT, unit=grant.unit, name=body.hostname)
    agent_id = api_key.split("_", 2)[1]
    registry.register(agent_id, body.hostname, grant.unit, grant.token_id)
    host = upsert_host(runtime, agent_id, grant.unit, body, None)
    audit.record(
        runtime, f"enroll-token:{grant.token_id}", "agent.enroll", f"host:{host.id}", None,
        {"agent_id": agent_id, "hostname": body.hostname, "unit": grant.unit}, grant.unit,
    )  # fmt: skip
    return {"agent_id": agent_id, "api_key": api_key, "unit": grant.unit, "host_id": host.id}


@router.post("/heartbeat")
def heartbeat(body: Heartbeat, runtime: RuntimeDep, principal: AgentDep) -> dict[str, Any]:
    """Inventory → Host upsert; answers whether commands are waiting (the agent then polls at once)."""
    host = upsert_host(runtime, principal.id, principal.unit, body, body.isolation)
    registry_of(runtime).heartbeat(
        principal.id, dropped=body.dropped, spool_batches=body.spool.get("batches", 0)
    )
    if body.dropped:
        log.warning("agent %s (%s) evicted %d lines from its full spool", principal.id, host.id, body.dropped)
    queue = commands_of(runtime)
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
    queue = commands_of(runtime)
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
    queue = commands_of(runtime)
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
