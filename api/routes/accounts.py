"""Account controls: bearer tokens (list, revoke), account unlock, and the caller's own sessions.

An admin sees and revokes the tokens bound to their unit's subtree (a
province-wide admin: every token, province-wide ones included) and unlocks
the users of that subtree. Every change is audited; a token's secret is never
shown (only its SHA-256 is stored).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from soclite.api import audit
from soclite.api.deps import AdminDep, PrincipalDep, RuntimeDep, end_session, scope_of
from soclite.control.identity import Principal, TokenInfo
from soclite.models import utcnow
from soclite.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["identity"])

TokenId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
UserName = Annotated[str, Path(min_length=1, max_length=64)]


def _visible_token(runtime: Runtime, principal: Principal, token_id: str) -> TokenInfo:
    """The token if it exists within the admin's subtree; 404 otherwise (no existence leak)."""
    token = runtime.identity.get_token(token_id)
    scope = scope_of(runtime, principal)
    if token is None or (scope is not None and (token.unit is None or token.unit not in scope)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token {token_id!r} in your units")
    return token


@router.get("/tokens")
def list_tokens(runtime: RuntimeDep, principal: AdminDep,
                include_inactive: Annotated[bool, Query(description="also revoked and expired tokens")] = False
                ) -> dict[str, Any]:
    """Tokens of the caller's units: id, name, role, unit, created/expires/revoked, state — never a secret."""
    now = utcnow()
    tokens = runtime.identity.list_tokens(scope_of(runtime, principal), include_inactive=include_inactive)
    return {"total": len(tokens), "items": [t.to_json(now) for t in tokens], "next": None}


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: TokenId, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    token = _visible_token(runtime, principal, token_id)
    if not runtime.identity.revoke_token(token.id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"token {token_id!r} is already revoked")
    after = runtime.identity.get_token(token.id)
    assert after is not None
    audit.record(runtime, principal, "token.revoke", f"token:{token.id}", {"state": token.state(utcnow())},
                 {"state": "revoked", "name": token.name, "role": token.role.value}, token.unit)
    return after.to_json(utcnow())


@router.post("/users/{username}/unlock")
def unlock_user(username: UserName, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Unlock an account locked after repeated failed logins (and reset its failure count)."""
    user = runtime.users.get_by_name(username)
    scope = scope_of(runtime, principal)
    if user is None or (scope is not None and (user.unit is None or user.unit not in scope)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r} in your units")
    after = runtime.users.unlock(user.username)
    audit.record(runtime, principal, "user.unlock", f"user:{user.username}",
                 {"locked": user.locked_at is not None, "failed_logins": user.failed_logins},
                 {"locked": False, "failed_logins": 0}, user.unit)
    return {"username": after.username, "locked": after.locked_at is not None, "failed_logins": after.failed_logins}


@router.post("/me/logout")
def logout(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """End this web session on the server (the cookie is refused from now on). Needs X-CSRF-Token."""
    return {"sessions_ended": end_session(runtime, principal, everywhere=False)}


@router.post("/me/logout-everywhere")
def logout_everywhere(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """End every web session of the calling user, on every device. Needs X-CSRF-Token."""
    return {"sessions_ended": end_session(runtime, principal, everywhere=True)}
