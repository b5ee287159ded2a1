"""Admin endpoints for agents: enrollment tokens (list, create, revoke) and enrolled agents (list, revoke,
re-key). The same operations as the UI's Agents page (``api.admin_ops``): unit-scoped and audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from soclite.api import admin_ops
from soclite.api.deps import AdminDep, RuntimeDep
from soclite.control.agents import EnrollTokenInfo
from soclite.errors import RequestError
from soclite.models import isoformat, utcnow

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


def _enroll_json(token: EnrollTokenInfo) -> dict[str, Any]:
    return {"id": token.id, "unit": token.unit, "uses_left": token.uses_left, "state": token.state(utcnow()),
            "created_at": isoformat(token.created_at), "expires_at": isoformat(token.expires_at)}  # fmt: skip


class EnrollTokenBody(BaseModel):
    model_config = {"extra": "forbid"}

    unit: str | None = Field(None, max_length=64)
    uses: int = Field(1, ge=1, le=10_000)
    hours: float = Field(24.0, ge=0.01, le=24 * 90)


@router.get("")
def list_agents(runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Enrolled agents of the caller's units: host, unit, version, last heartbeat, key state."""
    rows, total = admin_ops.agents(runtime, principal)
    items = [{
        "id": r.agent.id, "hostname": r.agent.hostname, "unit": r.agent.unit, "host_id": r.host.id if r.host else None,
        "agent_version": r.host.agent_version if r.host else None, "enrolled_at": isoformat(r.agent.enrolled_at),
        "last_heartbeat": isoformat(r.agent.last_heartbeat) if r.agent.last_heartbeat else None, "key": r.key_state,
    } for r in rows]  # fmt: skip
    return {"total": total, "items": items, "next": None}


@router.get("/enroll-tokens")
def list_enroll_tokens(runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    items = [_enroll_json(t) for t in admin_ops.enroll_tokens(runtime, principal)]
    return {"total": len(items), "items": items, "next": None}


@router.post("/enroll-tokens", status_code=status.HTTP_201_CREATED)
def create_enroll_token(body: EnrollTokenBody, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """A new enrollment token; ``token`` is shown this once."""
    try:
        info, secret = admin_ops.create_enroll_token(runtime, principal, body.unit, body.uses, body.hours)
    except RequestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return _enroll_json(info) | {"token": secret}


@router.post("/enroll-tokens/{token_id}/revoke")
def revoke_enroll_token(token_id: str, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    admin_ops.revoke_enroll_token(runtime, principal, token_id)
    return {"id": token_id, "state": "revoked"}


@router.post("/{agent_id}/revoke")
def revoke_agent(agent_id: str, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Cut the agent off: its key is refused from now on."""
    admin_ops.revoke_agent(runtime, principal, agent_id)
    return {"id": agent_id, "key": "revoked"}


@router.post("/{agent_id}/rekey")
def rekey_agent(agent_id: str, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """A one-use re-enrollment token for the agent's host (``token``, shown once); when the host enrolls
    again with it, its old key is revoked and a new one issued."""
    info, secret = admin_ops.rekey_agent(runtime, principal, agent_id)
    return _enroll_json(info) | {"token": secret, "agent_id": agent_id}
