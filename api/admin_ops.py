"""Administration of person tokens, agents and units: the operations behind the UI's admin pages.

Scope is the one rule everywhere: an admin bound to a unit sees and changes the objects of its unit's
subtree only (anything outside is "not found", never "forbidden", so nothing leaks that it exists); a
province-wide admin (no unit) sees everything. A person sees and revokes the tokens they created
themselves. Every change is audited with the unit it concerns; a secret (bearer token, enrollment
token) is returned once to be shown and only its hash is stored.

Re-keying an agent is an explicit re-enrollment: it issues a one-use enrollment token bound to the
agent's unit; the host's agent enrolls with it again (``soclite agent --enroll-token`` with an empty
state directory) and the enrollment endpoint, seeing the same host name in the same unit, revokes the
old key as it issues the new one (``routes/agents.enroll``). "Revoke" cuts the agent off at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soclite.api import audit
from soclite.api.deps import scope_of
from soclite.control.agents import AgentInfo, EnrollTokenInfo
from soclite.control.audit import actor_of
from soclite.control.identity import Principal, Role, TokenInfo, token_lifetime
from soclite.errors import AuthError, ConflictError, NotFoundError, RequestError
from soclite.models import Host, Unit, isoformat, utcnow
from soclite.runtime import Runtime
from soclite.store.base import HostQuery, unit_subtree

#: re-key tokens are for one host, now: one use, a day to use it
REKEY_HOURS = 24.0
#: the agents page lists this many (the host lookups are one each); the count says when there are more
AGENTS_SHOWN = 500


def _in_scope(scope: frozenset[str] | None, unit: str | None) -> bool:
    return scope is None or (unit is not None and unit in scope)


def _require_admin(admin: Principal) -> None:
    if admin.role is not Role.ADMIN:
        raise AuthError("administration: admins only")


# --- person tokens -------------------------------------------------------------------------------
def own_tokens(runtime: Runtime, me: Principal) -> list[TokenInfo]:
    """The tokens the caller created for themselves (revoked and expired ones too), newest first."""
    mine = actor_of(me)
    return [t for t in runtime.identity.list_tokens(include_inactive=True)
            if t.created_by == mine and t.role is not Role.AGENT]  # fmt: skip


def subtree_tokens(runtime: Runtime, admin: Principal) -> list[TokenInfo]:
    """Person tokens bound to the admin's subtree (a province admin: all of them)."""
    _require_admin(admin)
    tokens = runtime.identity.list_tokens(scope_of(runtime, admin), include_inactive=True)
    return [t for t in tokens if t.role is not Role.AGENT]


def create_own_token(runtime: Runtime, me: Principal, name: str, days: int | None) -> tuple[TokenInfo, str]:
    """A bearer token with the caller's own role and unit (never more), its lifetime within the site's limits."""
    if me.role is Role.AGENT or me.kind != "session":
        raise AuthError("only a person signed in to the web UI may create a token here")
    name = name.strip()[:100] or f"{me.name}-token"
    lifetime = token_lifetime(me.role, days, default_days=runtime.settings.auth.token_days,
                              max_days=runtime.settings.auth.token_max_days)  # fmt: skip
    secret = runtime.identity.create_token(role=me.role, unit=me.unit, name=name, days=lifetime,
                                           created_by=actor_of(me))  # fmt: skip
    info = runtime.identity.get_token(secret.split("_", 2)[1])
    assert info is not None
    audit.record(runtime, me, "token.create", f"token:{info.id}", None,
                 {"role": info.role.value, "unit": info.unit, "name": info.name,
                  "expires_at": isoformat(info.expires_at) if info.expires_at else None}, info.unit)  # fmt: skip
    return info, secret


def revoke_person_token(runtime: Runtime, me: Principal, token_id: str) -> TokenInfo:
    """Revoke one of the caller's own tokens, or (admins) a person token of their subtree."""
    token = runtime.identity.get_token(token_id)
    own = token is not None and token.created_by == actor_of(me)
    managed = (token is not None and me.role is Role.ADMIN
               and (scope_of(runtime, me) is None or token.unit is not None)
               and _in_scope(scope_of(runtime, me), token.unit))  # fmt: skip
    if token is None or token.role is Role.AGENT or not (own or managed):
        raise NotFoundError(f"no token {token_id!r} you may manage")
    if not runtime.identity.revoke_token(token.id):
        raise ConflictError(f"token {token_id!r} is already revoked")
    audit.record(runtime, me, "token.revoke", f"token:{token.id}", {"state": token.state(utcnow())},
                 {"state": "revoked", "name": token.name, "role": token.role.value}, token.unit)
    after = runtime.identity.get_token(token.id)
    assert after is not None
    return after


# --- agents --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentRow:
    """An enrolled agent with what the host inventory and the key say of it."""

    agent: AgentInfo
    host: Host | None
    key_state: str  # active, revoked, expired, unknown


def enroll_tokens(runtime: Runtime, admin: Principal) -> list[EnrollTokenInfo]:
    _require_admin(admin)
    return runtime.agents.list_enroll_tokens(scope_of(runtime, admin))


def _check_unit(runtime: Runtime, admin: Principal, unit: str | None) -> None:
    scope = scope_of(runtime, admin)
    if unit is None:
        if scope is not None:
            raise AuthError("a unit admin must bind the token to a unit of its subtree")
        return
    if unit not in {u.code for u in runtime.store.list_units()}:
        raise RequestError(f"unknown unit {unit!r}")
    if not _in_scope(scope, unit):
        raise AuthError("a unit admin may only give units of its own subtree")


def create_enroll_token(runtime: Runtime, admin: Principal, unit: str | None, uses: int,
                        hours: float) -> tuple[EnrollTokenInfo, str]:
    """A new enrollment token (shown once) for ``uses`` agents of ``unit``, valid ``hours``."""
    _require_admin(admin)
    _check_unit(runtime, admin, unit)
    if not 1 <= uses <= 10_000:
        raise RequestError("uses: from 1 to 10000")
    if not 0.01 <= hours <= 24 * 90:
        raise RequestError("validity: from a minute to 90 days")
    secret = runtime.agents.create_enroll_token(unit=unit, uses=uses, expires_hours=hours)
    info = runtime.agents.get_enroll_token(secret.split("_", 2)[1])
    assert info is not None
    audit.record(runtime, admin, "enroll_token.create", f"enroll-token:{info.id}", None,
                 {"unit": unit, "uses": uses, "expires_hours": hours}, unit)  # fmt: skip
    return info, secret


def revoke_enroll_token(runtime: Runtime, admin: Principal, token_id: str) -> None:
    _require_admin(admin)
    token = runtime.agents.get_enroll_token(token_id)
    if token is None or not _in_scope(scope_of(runtime, admin), token.unit):
        raise NotFoundError(f"no enrollment token {token_id!r} in your units")
    if not runtime.agents.revoke_enroll_token(token.id):
        raise ConflictError(f"enrollment token {token_id!r} is already revoked")
    audit.record(runtime, admin, "enroll_token.revoke", f"enroll-token:{token.id}",
                 {"state": token.state(utcnow())}, {"state": "revoked"}, token.unit)  # fmt: skip


def agents(runtime: Runtime, admin: Principal) -> tuple[list[AgentRow], int]:
    """The enrolled agents of the admin's subtree (the first :data:`AGENTS_SHOWN`) and how many there are."""
    _require_admin(admin)
    found = runtime.agents.list_agents(scope_of(runtime, admin))
    now = utcnow()
    rows = []
    for agent in found[:AGENTS_SHOWN]:
        token = runtime.identity.get_token(agent.id)
        host = runtime.store.find_host(agent.id)
        rows.append(AgentRow(agent, host if host is not None and host.agent_id == agent.id else None,
                             token.state(now) if token else "unknown"))  # fmt: skip
    return rows, len(found)


def _agent(runtime: Runtime, admin: Principal, agent_id: str) -> AgentInfo:
    _require_admin(admin)
    agent = runtime.agents.get_agent(agent_id)
    if agent is None or not _in_scope(scope_of(runtime, admin), agent.unit):
        raise NotFoundError(f"no agent {agent_id!r} in your units")
    return agent


def revoke_agent(runtime: Runtime, admin: Principal, agent_id: str) -> None:
    """Cut an agent off: its key is refused from now on (its host and events stay)."""
    agent = _agent(runtime, admin, agent_id)
    if not runtime.identity.revoke_token(agent.id):
        raise ConflictError(f"the key of agent {agent_id!r} is already revoked")
    audit.record(runtime, admin, "agent.revoke", f"agent:{agent.id}", {"key": "active"},
                 {"key": "revoked", "hostname": agent.hostname}, agent.unit)  # fmt: skip


def rekey_agent(runtime: Runtime, admin: Principal, agent_id: str) -> tuple[EnrollTokenInfo, str]:
    """A one-use re-enrollment token for the agent's host (see the module docstring)."""
    agent = _agent(runtime, admin, agent_id)
    secret = runtime.agents.create_enroll_token(unit=agent.unit, uses=1, expires_hours=REKEY_HOURS)
    info = runtime.agents.get_enroll_token(secret.split("_", 2)[1])
    assert info is not None
    audit.record(runtime, admin, "agent.rekey", f"agent:{agent.id}", None,
                 {"enroll_token": info.id, "hostname": agent.hostname, "expires_hours": REKEY_HOURS}, agent.unit)
    return info, secret


# --- units ---------------------------------------------------------------------------------------
def put_unit(runtime: Runtime, admin: Principal, code: str, name: str, parent: str | None,
             name_en: str | None = None) -> Unit:
    """Create, rename or move a unit. A unit-bound admin works inside its subtree only, and never on its own
    unit's place in the tree (moving it would move the admin's whole scope). Cycles are refused."""
    _require_admin(admin)
    existing = {u.code: u for u in runtime.store.list_units()}
    scope = scope_of(runtime, admin)
    if parent is not None and parent not in existing:
        raise RequestError(f"parent unit {parent!r} does not exist")
    if parent == code:
        raise RequestError("a unit cannot be its own parent")
    if code in existing and parent is not None and parent in unit_subtree(list(existing.values()), code):
        raise RequestError("the parent is below this unit (a cycle)")
    if scope is not None:
        if parent not in scope or (code in existing and code not in scope):
            raise AuthError("a unit-bound admin may only add units inside its own unit")
        if code == admin.unit and parent != existing[code].parent:
            raise AuthError("a unit-bound admin may not move its own unit")
    before = existing[code].model_dump(mode="json") if code in existing else None
    unit = runtime.store.put_unit(Unit(code=code, name=name, parent=parent, name_en=name_en or None))
    audit.record(runtime, admin, "unit.put", f"unit:{unit.code}", before, unit.model_dump(mode="json"), unit.code)
    return unit


def delete_unit(runtime: Runtime, admin: Principal, code: str) -> None:
    """Delete an empty unit: no child unit, host, user, person token or enrolled agent may still belong to it."""
    _require_admin(admin)
    units = runtime.store.list_units()
    scope = scope_of(runtime, admin)
    target = next((u for u in units if u.code == code), None)
    if target is None or not _in_scope(scope, code):
        raise NotFoundError(f"no unit {code!r} in your units")
    if code == admin.unit:
        raise AuthError("an admin may not delete its own unit")
    users: list[Any] = [u for u in runtime.users.all() if u.unit == code]
    held = {
        "child units": sum(1 for u in units if u.parent == code),
        "hosts": runtime.store.query_hosts(HostQuery(units=frozenset({code}), limit=1)).total,
        "users": len(users),
        "agents": len(runtime.agents.list_agents(frozenset({code}))),
    }
    busy = {k: v for k, v in held.items() if v}
    if busy:
        raise ConflictError(f"unit {code!r} still has " + ", ".join(f"{v} {k}" for k, v in busy.items()))
    runtime.store.delete_unit(code)
    audit.record(runtime, admin, "unit.delete", f"unit:{code}", target.model_dump(mode="json"), None, code)
