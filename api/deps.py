"""Dependencies of the API, as ``Annotated`` aliases: the one place routes get their runtime and caller.

A caller is either a bearer token (``Authorization: Bearer sl_...``) or a web
session cookie; with the cookie, unsafe methods must echo the session's CSRF
token in ``X-CSRF-Token`` (forms use ``csrf_token``, checked by the UI routes).

Role policy: agent tokens pass only where a route asks for ``Role.AGENT``
explicitly (ingest and agent routes); every refusal of a logged-in caller is
audited, so a viewer trying to write leaves a trace.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from soclite.api.sessions import SessionCodec, csrf_ok
from soclite.api.viewcache import ViewCache
from soclite.control.identity import Principal, Role
from soclite.errors import AuthError
from soclite.runtime import Runtime
from soclite.store.base import unit_subtree

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The largest integer a query parameter or body field may carry: SQLite binds signed 64-bit
#: integers, and a larger one would be an OverflowError (a 500) instead of the caller's 422.
MAX_SEQ = 2**63 - 1


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool,
# one hop through the event loop each, and under 100 concurrent clients every request queued for its hops
# behind every other request's (bench/api.py --concurrency, issue 15).


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> Runtime:
    return get_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def view_cache(request: Request) -> ViewCache:
    """The app's cache of alert page answers (soclite.api.viewcache)."""
    views: ViewCache = request.app.state.views
    return views


async def _views(request: Request) -> ViewCache:
    return view_cache(request)


ViewsDep = Annotated[ViewCache, Depends(_views)]


def session_codec(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.sessions
    return codec


def optional_principal(request: Request, runtime: Runtime) -> Principal | None:
    """The caller from a bearer token or the session cookie, None when neither is present.

    A bearer token that is present but wrong is an error (401), not "anonymous".
    """
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "malformed Authorization header: expected 'Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            principal: Principal = runtime.identity.authenticate_token(token.strip())
        except AuthError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        return principal
    codec: SessionCodec | None = getattr(request.app.state, "sessions", None)
    if codec is None:
        return None
    return codec.principal(request, runtime.control)


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    # A bearer token is one primary-key read of control.db and a SHA-256, cheaper than a thread-pool hop
    # and its wait under load, so it is checked here; a session (user, session and password reads): in the pool.
    if request.headers.get("authorization"):
        return _checked(request, runtime, optional_principal(request, runtime))
    return await run_in_threadpool(lambda: _checked(request, runtime, optional_principal(request, runtime)))


def _checked(request: Request, runtime: Runtime, principal: Principal | None) -> Principal:
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "authentication required: send a bearer token or log in",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if principal.kind == "session":
        user = runtime.users.get(principal.id)
        if user is not None and user.must_change_password:  # the one-time password opens the password page only
            raise HTTPException(status.HTTP_403_FORBIDDEN, "password change required: choose a new password first")
    unsafe = principal.kind == "session" and request.method not in SAFE_METHODS
    if unsafe and not csrf_ok(principal, request.headers.get("x-csrf-token")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong X-CSRF-Token for a session request")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def deny(runtime: Runtime, principal: Principal, request: Request, why: str) -> HTTPException:
    """Audit a refused request and return the 403 to raise."""
    from soclite.api import audit

    audit.record(
        runtime, principal, "access.denied", f"{request.method} {request.url.path}",
        None, {"reason": why, "role": principal.role.value}, principal.unit,
    )
    return HTTPException(status.HTTP_403_FORBIDDEN, why)


def end_session(runtime: Runtime, principal: Principal, everywhere: bool) -> int:
    """Log a session out on the server (or, ``everywhere``, every session of its user); audited.

    Returns how many sessions were ended. Only a logged-in person has sessions.
    """
    from soclite.api import audit
    from soclite.control.sessions import SessionStore

    if principal.kind != "session":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "only a logged-in user has sessions to end")
    if everywhere:
        ended = runtime.users.end_sessions(principal.name)
        audit.record(runtime, principal, "session.logout_everywhere", f"user:{principal.name}", None,
                     {"sessions_ended": ended}, principal.unit)
        return ended
    ended = 1 if principal.session_id and SessionStore(runtime.control).revoke(principal.session_id, "logout") else 0
    audit.record(runtime, principal, "session.logout", f"user:{principal.name}", None, None, principal.unit)
    return ended


def require_roles(*roles: Role) -> Any:
    """A dependency that lets only the given roles through (403, audited, otherwise)."""
    allowed = frozenset(roles)

    async def check(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            why = f"role {principal.role.value} may not do this (needs: {names})"
            raise await run_in_threadpool(deny, runtime, principal, request, why)  # the audit write blocks
        return principal

    return Depends(check)


READ_ROLES = (Role.ADMIN, Role.ANALYST, Role.VIEWER, Role.AUDITOR)
#: any person (not an agent): dashboards, lists, reports
ReaderDep = Annotated[Principal, require_roles(*READ_ROLES)]
#: triage: status, assignee, comments, cases, exceptions, rules
AnalystDep = Annotated[Principal, require_roles(Role.ADMIN, Role.ANALYST)]
AdminDep = Annotated[Principal, require_roles(Role.ADMIN)]
AuditorDep = Annotated[Principal, require_roles(Role.ADMIN, Role.AUDITOR)]


def scope_of(runtime: Runtime, principal: Principal) -> frozenset[str] | None:
    """The unit codes a principal may see: None for the whole province, else its unit's subtree."""
    if principal.unit is None:
        return None
    return unit_subtree(runtime.store.list_units(), principal.unit)


async def get_scope(runtime: RuntimeDep, principal: ReaderDep) -> frozenset[str] | None:
    if principal.unit is None:  # the whole province: nothing to read
        return None
    return await run_in_threadpool(scope_of, runtime, principal)


ScopeDep = Annotated[frozenset[str] | None, Depends(get_scope)]


def narrow(scope: frozenset[str] | None, unit: str | None, runtime: Runtime) -> frozenset[str] | None:
    """Scope ∩ the subtree of a requested ``unit`` filter (an outside unit gives the empty set)."""
    if unit is None:
        return scope
    wanted = unit_subtree(runtime.store.list_units(), unit)
    return wanted if scope is None else wanted & scope
