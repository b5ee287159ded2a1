"""User administration: admins of a unit manage the users of its subtree, province admins everyone.

The UI (``ui/account_pages.py``) calls these; every change is audited with the user's unit. A one-time
password (new account, reset) is returned once to show to the admin and is never stored in clear; the
user must replace it at the next login (``must_change_password``). Password rules are the identity
store's (:meth:`UserStore.add` / :meth:`UserStore.set_password` check them).
"""

from __future__ import annotations

from soclite.api import audit
from soclite.api.deps import scope_of
from soclite.control.identity import Principal, Role, User, generate_password
from soclite.errors import AuthError, NotFoundError
from soclite.runtime import Runtime

ROLES = (Role.ADMIN, Role.ANALYST, Role.VIEWER, Role.AUDITOR)


def _may_manage_unit(runtime: Runtime, admin: Principal, unit: str | None) -> bool:
    scope = scope_of(runtime, admin)
    return scope is None or (unit is not None and unit in scope)


def manageable(runtime: Runtime, admin: Principal) -> list[User]:
    """The users ``admin`` may see and change."""
    return [u for u in runtime.users.all() if _may_manage_unit(runtime, admin, u.unit)]


def _target(runtime: Runtime, admin: Principal, username: str) -> User:
    user = runtime.users.get_by_name(username)
    if user is None or not _may_manage_unit(runtime, admin, user.unit):
        raise NotFoundError(f"user {username!r} not found")  # outside the subtree is "not found", as elsewhere
    return user


def _check_unit(runtime: Runtime, admin: Principal, unit: str | None) -> None:
    if unit is not None and unit not in {u.code for u in runtime.store.list_units()}:
        raise AuthError(f"unknown unit {unit!r}")
    if not _may_manage_unit(runtime, admin, unit):
        raise AuthError("a unit admin may only give units of its own subtree (not the whole province)")


def _snapshot(user: User) -> dict[str, object]:
    return {"role": user.role.value, "unit": user.unit, "disabled": user.disabled,
            "must_change_password": user.must_change_password}  # fmt: skip


def create(runtime: Runtime, admin: Principal, username: str, role: str, unit: str | None,
           display_name: str | None) -> tuple[User, str]:
    """A new account and its one-time password (shown once)."""
    _check_unit(runtime, admin, unit)
    if role not in {r.value for r in ROLES}:
        raise AuthError(f"unknown role {role!r}")
    password = generate_password()
    user = runtime.users.add(username, password, role=role, unit=unit, display_name=display_name or None,
                             must_change_password=True)  # fmt: skip
    audit.record(runtime, admin, "user.create", f"user:{user.username}", None, _snapshot(user), user.unit)
    return user, password


def set_disabled(runtime: Runtime, admin: Principal, username: str, disabled: bool) -> User:
    user = _target(runtime, admin, username)
    if user.id == admin.id and disabled:
        raise AuthError("you cannot disable your own account")
    after = runtime.users.set_disabled(user.username, disabled)
    audit.record(runtime, admin, "user.disable" if disabled else "user.enable", f"user:{user.username}",
                 _snapshot(user), _snapshot(after), user.unit)  # fmt: skip
    return after


def reset_password(runtime: Runtime, admin: Principal, username: str) -> tuple[User, str]:
    """A new one-time password (shown once); the user's sessions end and the next login must change it."""
    user = _target(runtime, admin, username)
    password = generate_password()
    after = runtime.users.set_password(user.username, password, must_change=True)
    audit.record(runtime, admin, "user.password_reset", f"user:{user.username}", _snapshot(user), _snapshot(after),
                 user.unit)  # fmt: skip
    return after, password


def set_role(runtime: Runtime, admin: Principal, username: str, role: str, unit: str | None) -> User:
    user = _target(runtime, admin, username)
    _check_unit(runtime, admin, unit)
    if role not in {r.value for r in ROLES}:
        raise AuthError(f"unknown role {role!r}")
    if user.id == admin.id and (role != user.role.value or unit != user.unit):
        raise AuthError("you cannot change your own role or unit")
    after = runtime.users.set_role(user.username, role, unit, keep_unit=False)
    audit.record(runtime, admin, "user.role", f"user:{user.username}", _snapshot(user), _snapshot(after),
                 after.unit)  # fmt: skip
    return after


def change_own_password(runtime: Runtime, me: Principal, current: str, new: str, confirm: str) -> User:
    if new != confirm:
        raise AuthError("the two new passwords differ")
    user = runtime.users.change_own_password(me.id, current, new)
    audit.record(runtime, me, "user.password_change", f"user:{user.username}", None, None, user.unit)
    return user
