"""Web pages: hosts (with isolate/release for admins), rules and exceptions, reports, audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from soclite.api import response, schedule_admin, tuning
from soclite.api.deps import deny, get_runtime
from soclite.api.routes.audit import audit_page
from soclite.api.routes.hosts import hosts_json
from soclite.api.routes.reports import generate_for, visible_reports
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import _, login_user, render, require_write, safe_next, scope
from soclite.control import rule_health
from soclite.control.identity import Role
from soclite.errors import (
    AuthError,
    ConflictError,
    InvalidCursor,
    NotFoundError,
    ReportError,
    RequestError,
    UiError,
)
from soclite.store.base import HostQuery

router = APIRouter(include_in_schema=False)


@router.get("/hosts")
def hosts_page(request: Request, type: str = "", q: str = "", cursor: str = "") -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    host_type = type if type in ("server", "workstation") else None
    try:
        page = runtime.store.query_hosts(HostQuery(units=scope(request, me), type=host_type, q=q or None,
                                                   limit=200, cursor=cursor or None))
    except InvalidCursor as exc:
        raise UiError(400, str(exc)) from exc
    hosts = hosts_json(page.items, runtime)
    names = {u.code: u.name for u in runtime.store.list_units()}
    return render(request, "hosts.html", me=me, hosts=hosts, page=page, type=host_type or "", q=q,
                  unit_names=names, outbox=runtime.outbox is not None)


@router.post("/hosts/{host_id}/{kind}")
async def host_action(request: Request, host_id: str, kind: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_host_action, request, host_id, kind, fields)


def _host_action(request: Request, host_id: str, kind: str, fields: dict[str, str]) -> Response:
    """The UI's Isolate/Release: the same request as the API's, waiting for approval in the response queue
    unless the site turned that off (``response.ui_isolation_requires_approval``)."""
    me = login_user(request, fields)
    if kind == "scan":  # reads the host, changes nothing: analysts may ask for it too
        return _scan(request, me, host_id, fields)
    require_write(request, me, fields, roles=(Role.ADMIN,))
    if kind not in ("isolate", "release"):
        raise UiError(404, "unknown action")
    runtime = get_runtime(request)
    try:
        host = runtime.store.get_host(host_id.lower(), scope(request, me))
    except NotFoundError:
        raise UiError(404, "host not found") from None
    try:
        response.request_host_action(
            runtime, me, host, "isolate" if kind == "isolate" else "release", reason=fields.get("reason", "")[:1000],
            alert_id=fields.get("alert_id") or None, idempotency_key=fields.get("idempotency_key") or None,
            requires_approval=runtime.settings.response.ui_isolation_requires_approval,
        )  # fmt: skip
    except response.NoAgent:
        raise UiError(409, _("This host has no enrolled agent, so nothing on it can apply an isolation, and no "
                             "network-level isolation is configured. Enrol an agent on the host first.")) from None
    except ConflictError:
        raise UiError(409, _("A request for this host is already under way: approve, reject or cancel it in "
                             "the response queue.")) from None
    return RedirectResponse(safe_next(fields.get("return_to") or "/hosts"), status_code=303)


def _scan(request: Request, me: Any, host_id: str, fields: dict[str, str]) -> Response:
    """The hosts page's "Scan for malware": absolute paths, one a line, scanned by the host's agent with ClamAV."""
    require_write(request, me, fields)
    runtime = get_runtime(request)
    try:
        host = runtime.store.get_host(host_id.lower(), scope(request, me))
    except NotFoundError:
        raise UiError(404, "host not found") from None
    paths = [p.strip() for p in fields.get("paths", "").splitlines() if p.strip()]
    if not paths or len(paths) > 64 or any(not (p.startswith("/") or p[1:3] in (":\\", ":/")) for p in paths):
        raise UiError(422, _("Give 1 to 64 absolute paths to scan, one a line (/home or C:\\Users)."))
    try:
        response.request_scan(runtime, me, host, paths, reason=fields.get("reason", "")[:1000], alert_id=None)
    except response.NoAgent:
        raise UiError(409, _("This host has no enrolled agent, so nothing on it can run a malware scan.")) from None
    return RedirectResponse("/actions", status_code=303)


@router.get("/rules")
def rules_page(request: Request) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    rules: list[dict[str, Any]] | None = None
    state = request.query_params.get("state") or None
    if state not in (None, *rule_health.STATES):
        raise UiError(422, f"unknown rule state {state!r}; expected one of {list(rule_health.STATES)}")
    if runtime.engine is not None:
        from soclite.api.routes.rules import rules_list

        rules = rules_list(runtime, scope(request, me), state=state)
    exceptions = tuning.list_all(runtime, scope(request, me))
    return render(request, "rules.html", me=me, rules=rules, exceptions=exceptions, state=state,
                  states=rule_health.STATES)  # fmt: skip


@router.post("/rules/{rule_id}/toggle")
async def rule_toggle(request: Request, rule_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_rule_toggle, request, rule_id, fields)


def _rule_toggle(request: Request, rule_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=(Role.ADMIN,))
    runtime = get_runtime(request)
    if not tuning.may_toggle_rules(me):  # a rule is shared by every unit: province-wide admins only
        raise UiError(403, str(deny(runtime, me, request,
                                    "only a province-wide admin may enable or disable rules").detail))
    if runtime.engine is None:
        raise UiError(503, "engine")
    enabled = fields.get("enabled") == "1"
    try:
        tuning.set_rule_enabled(runtime, me, rule_id, enabled, not enabled)
    except NotFoundError:
        raise UiError(404, "rule not found") from None
    return RedirectResponse("/rules", status_code=303)


@router.post("/exceptions/{exception_id}/toggle")
async def exception_toggle(request: Request, exception_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_exception_toggle, request, exception_id, fields)


def _exception_toggle(request: Request, exception_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    try:
        tuning.set_enabled(get_runtime(request), me, exception_id, fields.get("enabled") == "1", scope(request, me))
    except NotFoundError:
        raise UiError(404, "exception not found") from None
    return RedirectResponse("/rules#exceptions", status_code=303)


@router.get("/reports")
def reports_page(request: Request) -> Response:
    """The archive (newest first, with each file's SHA-256 and who generated it) and, for admins and analysts,
    a form to generate one: the same functions and permissions as /api/v1/reports."""
    me = login_user(request)
    edit = request.query_params.get("schedule") or None
    return _reports(request, me, edit_schedule=edit)


def _reports(request: Request, me: Any, status: int = 200, error: str | None = None, **extra: Any) -> Response:
    """The reports page; for admins with the report schedules of their units (``api.schedule_admin``)."""
    runtime = get_runtime(request)
    visible_to = scope(request, me)
    units = [u for u in runtime.store.list_units() if visible_to is None or u.code in visible_to]
    schedules = schedule_admin.listing(runtime, me) if me.role is Role.ADMIN else []
    wanted = extra.pop("edit_schedule", None)
    editing = next((i["schedule"] for i in schedules if i["source"] == "ui" and i["schedule"].name == wanted), None)
    return render(request, "reports.html", status=status, me=me, reports=visible_reports(runtime, me, 50),
                  units=units, province_wide=visible_to is None, error=error, schedules=schedules,
                  editing=editing, **extra)  # fmt: skip


@router.post("/reports/schedules")
async def schedule_save(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_schedule_post, request, "", fields, multi)


@router.post("/reports/schedules/{name}/delete")
async def schedule_delete(request: Request, name: str) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_schedule_post, request, name, fields, multi)


def _schedule_post(request: Request, delete: str, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=(Role.ADMIN,))
    runtime = get_runtime(request)
    try:
        if delete:
            schedule_admin.remove(runtime, me, delete)
        else:
            recipients = fields.get("recipients", "").replace(",", "\n").replace(";", "\n").splitlines()
            data: dict[str, Any] = {
                "name": fields.get("name", ""), "every": fields.get("every", ""), "lang": fields.get("lang", "vi"),
                "formats": multi.get("formats", []), "recipients": recipients, "unit": fields.get("unit") or None,
                "day": fields.get("day") or 1, "hour": fields.get("hour") or 7, "cron": fields.get("cron") or None,
            }  # fmt: skip
            schedule_admin.save(runtime, me, data)
    except NotFoundError as exc:
        raise UiError(404, str(exc)) from exc
    except (AuthError, RequestError) as exc:
        return _reports(request, me, status=422, schedule_error=str(exc))
    return RedirectResponse("/reports#schedules", status_code=303)


@router.post("/reports")
async def report_generate(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_report_generate, request, fields, multi)


def _report_generate(request: Request, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)  # admins and analysts, as POST /api/v1/reports
    runtime = get_runtime(request)
    formats = tuple(f for f in multi.get("formats", []) if f in ("pdf", "html", "csv", "docx")) or ("pdf", "html", "csv")
    lang = fields.get("lang", "vi") if fields.get("lang") in ("vi", "en") else "vi"
    kind = "annual" if fields.get("kind") == "annual" else "periodic"
    try:
        report = generate_for(runtime, me, fields.get("period", "").strip(), lang, formats,
                              fields.get("unit") or None, kind)  # fmt: skip
    except AuthError as exc:
        raise UiError(403, str(exc)) from exc
    except ReportError as exc:
        return _reports(request, me, status=422, error=str(exc))
    return RedirectResponse(f"/reports#report-{report.id}", status_code=303)


@router.get("/audit")
def audit_log(request: Request, cursor: str = "") -> Response:
    me = login_user(request)
    if me.role not in (Role.ADMIN, Role.AUDITOR):
        from soclite.api.deps import deny

        raise UiError(403, str(deny(get_runtime(request), me, request, "audit log: admins and auditors only").detail))
    try:
        items, total, nxt = audit_page(get_runtime(request), scope(request, me), None, None, 100, cursor or None)
    except InvalidCursor as exc:
        raise UiError(400, str(exc)) from exc
    return render(request, "audit.html", me=me, entries=items, total=total, next=nxt)
