"""The Administration pages (one top link, "Quản trị", then sub-links): person tokens, agents and their
enrollment tokens, units, information systems. Users stay in ``account_pages``.

Every operation is the one the API or CLI uses (``api.admin_ops``, ``control.systems``); these handlers
only read the form, check CSRF and the role, and render. Errors a person can fix are shown on the page
they came from (422/409); an object outside the admin's subtree is a 404 page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from soclite.api import admin_ops
from soclite.api.deps import get_runtime, scope_of
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import admin_user, language, login_user, render, require_write
from soclite.control.audit import actor_of
from soclite.control.identity import Principal, Role
from soclite.control.systems import SystemCreate, SystemPatch, retention_months
from soclite.errors import AuthError, ConflictError, NotFoundError, RequestError, UiError
from soclite.models import utcnow

router = APIRouter(include_in_schema=False)

PERSON_ROLES = tuple(Role)


def _units(request: Request, me: Principal) -> list[Any]:
    scope = scope_of(get_runtime(request), me)
    return [u for u in get_runtime(request).store.list_units() if scope is None or u.code in scope]


def _names(request: Request) -> dict[str, str]:
    """Unit code → the name to show (GLOSSARY: a unit is shown by name, never by code; English where set)."""
    runtime = get_runtime(request)
    english = language(request, runtime) == "en"
    return {u.code: (u.name_en if english and u.name_en else u.name) for u in runtime.store.list_units()}


def _attempt(call: Callable[[], Any], *, not_found: int = 404) -> tuple[Any, str | None, int]:
    """Run one change: (its result, None, 200) or (None, the reason to show, the status to answer).

    ``not_found=422``: a missing object is something the person typed (a host name), shown on the form.
    """
    try:
        return call(), None, 200
    except NotFoundError as exc:
        if not_found == 422:
            return None, str(exc), 422
        raise UiError(404, str(exc)) from exc
    except ConflictError as exc:
        return None, str(exc), 409
    except (AuthError, RequestError) as exc:
        return None, str(exc), 422
    except ValidationError as exc:
        return None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 422


@router.get("/admin")
def admin_home(request: Request) -> Response:
    return render(request, "admin.html", me=admin_user(request))


# --- person tokens -------------------------------------------------------------------------------
def _tokens_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> Response:
    runtime = get_runtime(request)
    managed = admin_ops.subtree_tokens(runtime, me) if me.role is Role.ADMIN else []
    return render(request, "tokens.html", status=status, me=me, unit_names=_names(request), own=admin_ops.own_tokens(runtime, me),
                  managed=managed, now=utcnow(), mine=actor_of(me), token_days=runtime.settings.auth.token_days,
                  max_days=runtime.settings.auth.token_max_days, **extra)  # fmt: skip


@router.get("/account/tokens")
def tokens_page(request: Request) -> Response:
    return _tokens_page(request, login_user(request))


@router.post("/account/tokens")
async def token_create(request: Request) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_token_create, request, fields)


def _token_create(request: Request, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=PERSON_ROLES)
    days = fields.get("days", "").strip()
    if days and not days.isdigit():
        return _tokens_page(request, me, status=422, error="Lifetime: a whole number of days")
    made, error, status = _attempt(lambda: admin_ops.create_own_token(get_runtime(request), me,
                                                                      fields.get("name", ""), int(days) if days else None))
    if error:
        return _tokens_page(request, me, status=status, error=error)
    return _tokens_page(request, me, new_token={"name": made[0].name, "secret": made[1]})


@router.post("/account/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_token_revoke, request, token_id, fields)


def _token_revoke(request: Request, token_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=PERSON_ROLES)
    _done, error, status = _attempt(lambda: admin_ops.revoke_person_token(get_runtime(request), me, token_id))
    if error:
        return _tokens_page(request, me, status=status, error=error)
    return RedirectResponse("/account/tokens", status_code=303)


# --- agents --------------------------------------------------------------------------------------
def _agents_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> Response:
    runtime = get_runtime(request)
    rows, total = admin_ops.agents(runtime, me)
    return render(request, "agents.html", status=status, me=me, unit_names=_names(request), agents=rows, agent_total=total,
                  enroll_tokens=admin_ops.enroll_tokens(runtime, me), units=_units(request, me),
                  province_wide=scope_of(runtime, me) is None, now=utcnow(), **extra)  # fmt: skip


@router.get("/admin/agents")
def agents_page(request: Request) -> Response:
    return _agents_page(request, admin_user(request))


@router.post("/admin/agents/{what}")
async def agents_post(request: Request, what: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_agents_post, request, what, "", fields)


@router.post("/admin/agents/{target}/{what}")
async def agent_change(request: Request, target: str, what: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_agents_post, request, what, target, fields)


def _agents_post(request: Request, what: str, target: str, fields: dict[str, str]) -> Response:
    me = admin_user(request, fields)
    runtime = get_runtime(request)
    made: Any = None
    if what == "enroll-tokens" and not target:
        try:
            uses, hours = int(fields.get("uses") or 1), float(fields.get("hours") or 24)
        except ValueError:
            return _agents_page(request, me, status=422, error="Uses and validity must be numbers")
        made, error, status = _attempt(lambda: admin_ops.create_enroll_token(
            runtime, me, fields.get("unit") or None, uses, hours))
    elif what == "revoke-enroll-token" and target:
        _r, error, status = _attempt(lambda: admin_ops.revoke_enroll_token(runtime, me, target))
    elif what == "revoke" and target:
        _r, error, status = _attempt(lambda: admin_ops.revoke_agent(runtime, me, target))
    elif what == "rekey" and target:
        made, error, status = _attempt(lambda: admin_ops.rekey_agent(runtime, me, target))
    else:
        raise UiError(404, "unknown action")
    if error:
        return _agents_page(request, me, status=status, error=error)
    if made is not None:
        return _agents_page(request, me, new_token={"secret": made[1], "unit": made[0].unit,
                                                    "rekey": what == "rekey", "agent": target})
    return RedirectResponse("/admin/agents", status_code=303)


# --- units ---------------------------------------------------------------------------------------
def _tree(units: list[Any]) -> list[tuple[int, Any]]:
    """Units depth-first under their parents, with their depth (roots: the units whose parent is not shown)."""
    codes = {u.code for u in units}
    children: dict[str | None, list[Any]] = {}
    for unit in units:
        children.setdefault(unit.parent if unit.parent in codes else None, []).append(unit)
    out: list[tuple[int, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for unit in sorted(children.get(parent, []), key=lambda u: u.code):
            out.append((depth, unit))
            if depth < 50:  # a stored cycle (never written by put_unit) cannot loop forever
                walk(unit.code, depth + 1)

    walk(None, 0)
    return out


def _units_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> Response:
    units = _units(request, me)
    return render(request, "units.html", status=status, me=me, unit_names=_names(request), tree=_tree(units), units=units,
                  province_wide=scope_of(get_runtime(request), me) is None, **extra)  # fmt: skip


@router.get("/admin/units")
def units_page(request: Request) -> Response:
    return _units_page(request, admin_user(request))


@router.post("/admin/units")
async def unit_put(request: Request) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_unit_post, request, "", fields)


@router.post("/admin/units/{code}/delete")
async def unit_delete(request: Request, code: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_unit_post, request, code, fields)


def _unit_post(request: Request, delete: str, fields: dict[str, str]) -> Response:
    me = admin_user(request, fields)
    runtime = get_runtime(request)
    if delete:
        _r, error, status = _attempt(lambda: admin_ops.delete_unit(runtime, me, delete))
    else:
        code, name = fields.get("code", "").strip(), fields.get("name", "").strip()
        if not code or not name or len(code) > 64 or len(name) > 300 or not code.replace("-", "").replace(
                ".", "").replace("_", "").isalnum():
            return _units_page(request, me, status=422,
                               error="A unit needs a code (letters, digits, . _ -) and a Vietnamese name")
        _r, error, status = _attempt(lambda: admin_ops.put_unit(
            runtime, me, code, name, fields.get("parent") or None, fields.get("name_en", "").strip()[:300] or None))
    if error:
        return _units_page(request, me, status=status, error=error)
    return RedirectResponse("/admin/units", status_code=303)


# --- information systems (issue 17) --------------------------------------------------------------
SYSTEM_TEXT = ("name", "owner", "operator", "approval_decision", "security_regulation", "expected_approval_date",
               "expected_completion")


def _system_body(fields: dict[str, str], multi: dict[str, list[str]]) -> dict[str, Any]:
    body: dict[str, Any] = {k: fields.get(k, "").strip() or None for k in SYSTEM_TEXT}
    body["level"] = int(fields["level"]) if fields.get("level", "").isdigit() else None
    body["approval_status"] = fields.get("approval_status") or None
    body["deployment_state"] = fields.get("deployment_state") or None
    body["review_done"] = fields.get("review_done") == "1"
    body["hosts"] = sorted({h.strip().lower() for h in fields.get("hosts", "").replace(",", "\n").splitlines()
                            if h.strip()})  # fmt: skip
    body["units"] = sorted(set(multi.get("units", [])))
    return body


def _systems_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> Response:
    runtime = get_runtime(request)
    systems = runtime.systems.list_systems(scope_of(runtime, me))
    for system in systems:
        system["retention_months"] = retention_months(system["level"], runtime.settings)
    return render(request, "systems.html", status=status, me=me, unit_names=_names(request), systems=systems, units=_units(request, me),
                  province_wide=scope_of(runtime, me) is None, edit=extra.pop("edit", None), **extra)  # fmt: skip


@router.get("/admin/systems")
def systems_page(request: Request, edit: str = "") -> Response:
    me = admin_user(request)
    runtime = get_runtime(request)
    editing = None
    if edit:
        try:
            editing = runtime.systems.get(edit, scope_of(runtime, me))
        except NotFoundError as exc:
            raise UiError(404, str(exc)) from exc
    return _systems_page(request, me, edit=editing)


@router.post("/admin/systems")
async def system_create(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_system_post, request, "", "", fields, multi)


@router.post("/admin/systems/{system_id}/{what}")
async def system_change(request: Request, system_id: str, what: str) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_system_post, request, system_id, what, fields, multi)


def _system_post(request: Request, system_id: str, what: str, fields: dict[str, str],
                 multi: dict[str, list[str]]) -> Response:
    me = admin_user(request, fields)
    runtime = get_runtime(request)
    scope = scope_of(runtime, me)
    actor = actor_of(me)
    if not system_id:
        body = _system_body(fields, multi) | {"unit": fields.get("unit") or me.unit}
        _r, error, status = _attempt(lambda: runtime.systems.create(
            SystemCreate.model_validate({k: v for k, v in body.items() if v is not None}),
            actor=actor, unit=me.unit, scope=scope), not_found=422)
    elif what == "edit":
        _attempt(lambda: runtime.systems.get(system_id, scope))  # another unit's system: 404, not a form error
        body = _system_body(fields, multi)
        _r, error, status = _attempt(lambda: runtime.systems.update(
            system_id, SystemPatch.model_validate({k: v for k, v in body.items() if v is not None}),
            actor=actor, scope=scope), not_found=422)
    elif what == "retire":  # kept for the Form 08 history and the retention it set; only its state changes
        _r, error, status = _attempt(lambda: runtime.systems.update(
            system_id, SystemPatch(deployment_state="retired"), actor=actor, scope=scope))
    else:
        raise UiError(404, "unknown action")
    if error:
        return _systems_page(request, me, status=status, error=error)
    return RedirectResponse("/admin/systems", status_code=303)
