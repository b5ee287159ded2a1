"""Account pages: the caller's own password (forced after a one-time password) and user administration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from soclite.api import user_admin
from soclite.api.deps import get_runtime, scope_of
from soclite.api.sessions import SessionCodec
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import admin_user, login_user, render, require_write
from soclite.control.identity import Principal, Role
from soclite.control.sessions import SessionStore
from soclite.errors import AuthError, NotFoundError, UiError

router = APIRouter(include_in_schema=False)


@router.get("/account/password")
def password_page(request: Request) -> Response:
    me = login_user(request, password_page=True)
    user = get_runtime(request).users.get(me.id)
    return render(request, "password.html", me=me, forced=bool(user and user.must_change_password), error=None)


@router.post("/account/password")
async def password_submit(request: Request) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_password_submit, request, fields)


def _password_submit(request: Request, fields: dict[str, str]) -> Response:
    me = login_user(request, fields, password_page=True)
    require_write(request, me, fields, roles=tuple(Role))
    runtime = get_runtime(request)
    try:
        user = user_admin.change_own_password(runtime, me, fields.get("current", ""), fields.get("new", ""),
                                              fields.get("confirm", ""))  # fmt: skip
    except AuthError as exc:
        forced = bool((u := runtime.users.get(me.id)) and u.must_change_password)
        return render(request, "password.html", status=422, me=me, forced=forced, error=str(exc))
    response = RedirectResponse("/?password_changed=1", status_code=303)
    # the change ended every session of the user (revoked server-side); this browser gets a new one
    ip = request.client.host if request.client else "-"
    session_id = SessionStore(runtime.control).create(user.id, minutes=runtime.settings.auth.session_minutes, ip=ip)
    codec: SessionCodec = request.app.state.sessions
    codec.issue(response, user.id, user.session_version, session_id)
    return response


def _users_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> Response:
    runtime = get_runtime(request)
    scope = scope_of(runtime, me)
    units = [u for u in runtime.store.list_units() if scope is None or u.code in scope]
    return render(request, "users.html", status=status, me=me, users=user_admin.manageable(runtime, me), units=units,
                  roles=[r.value for r in user_admin.ROLES], province_wide=scope is None, **extra)


@router.get("/admin/users")
def users_page(request: Request) -> Response:
    return _users_page(request, admin_user(request, area="user administration"))


@router.post("/admin/users")
async def user_create(request: Request) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_user_create, request, fields)


def _user_create(request: Request, fields: dict[str, str]) -> Response:
    me = admin_user(request, fields, area="user administration")
    try:
        user, password = user_admin.create(get_runtime(request), me, fields.get("username", ""),
                                           fields.get("role", ""), fields.get("unit") or None,
                                           fields.get("display_name") or None)  # fmt: skip
    except AuthError as exc:
        return _users_page(request, me, status=422, error=str(exc))
    return _users_page(request, me, one_time={"username": user.username, "password": password})


@router.post("/admin/users/{username}/{what}")
async def user_change(request: Request, username: str, what: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_user_change, request, username, what, fields)


def _user_change(request: Request, username: str, what: str, fields: dict[str, str]) -> Response:
    me = admin_user(request, fields, area="user administration")
    runtime = get_runtime(request)
    try:
        if what in ("disable", "enable"):
            user_admin.set_disabled(runtime, me, username, what == "disable")
        elif what == "reset":
            user, password = user_admin.reset_password(runtime, me, username)
            return _users_page(request, me, one_time={"username": user.username, "password": password})
        elif what == "role":
            user_admin.set_role(runtime, me, username, fields.get("role", ""), fields.get("unit") or None)
        else:
            raise UiError(404, "unknown change")
    except NotFoundError:
        raise UiError(404, "user not found") from None
    except AuthError as exc:
        return _users_page(request, me, status=422, error=str(exc))
    return RedirectResponse("/admin/users", status_code=303)


