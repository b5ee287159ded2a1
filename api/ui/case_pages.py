"""Web pages for cases: the list, one case, and adding alerts to a case from the queue or an alert.

Every read and write goes through :mod:`api.cases`, the same functions the JSON
API (``/api/v1/cases``) calls, with the caller's unit scope; so a unit-bound
analyst can neither see another unit's case nor put another unit's alert in a
case, here exactly as in the API. Writes need the admin or analyst role (the
API's ``AnalystDep``) and the session's CSRF token (:func:`api.ui.web.require_write`).

Working a case: comments, tasks (assignee, due date typed in the site's zone), "assign to me",
and closing with a reason from the fixed list; the history shows who did what and when. The case
API has no "remove an alert", so neither does the UI: it offers only what the API can do and audit.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from soclite import sitetime
from soclite.api import cases
from soclite.api.deps import get_runtime
from soclite.api.routes.cases import attachment_response, upload_of
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import form_errors, login_user, render, require_write, scope, validation_text
from soclite.control.identity import Principal
from soclite.errors import NotFoundError, RequestError, TooLarge, TriageError, UiError, UnsupportedType
from soclite.models import Alert, utcnow

router = APIRouter(include_in_schema=False)

CASE_STATUSES = ["open", "in_progress", "closed"]
CASE_SEVERITIES = ["high", "medium", "low"]
MAX_IDS = 1000
_ID_SPLIT = re.compile(r"[\s,;]+")


def _unit_names(request: Request) -> dict[str, str]:
    return {u.code: u.name for u in get_runtime(request).store.list_units()}


def _visible_units(request: Request, me: Principal) -> list[Any]:
    units = scope(request, me)
    return [u for u in get_runtime(request).store.list_units() if units is None or u.code in units]


def open_cases(request: Request, me: Principal) -> list[dict[str, Any]]:
    """Cases in the caller's scope that are not closed: the choices of "add to an existing case"."""
    return [c for c in cases.list_cases(get_runtime(request), scope(request, me), limit=200)
            if c.get("status") != "closed"]


def cases_of_alert(request: Request, me: Principal, alert_id: str) -> list[dict[str, Any]]:
    """The cases holding an alert, only those the caller may see (a case of another unit stays hidden)."""
    runtime = get_runtime(request)
    units = scope(request, me)
    out = []
    for row in cases.cases_of_alert(runtime, alert_id, units):
        try:
            out.append(cases.get(runtime, row["id"], units))
        except NotFoundError:
            continue
    return out


def _ids(multi: dict[str, list[str]], fields: dict[str, str]) -> list[str]:
    """Alert ids from checkboxes (``ids``) and/or a pasted list (``alert_ids``: spaces, commas, lines)."""
    ids = [i.strip() for i in multi.get("ids", []) if i.strip()]
    ids += [i for i in _ID_SPLIT.split(fields.get("alert_ids", "")) if i]
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_IDS:
        raise UiError(422, f"at most {MAX_IDS} alerts at a time")
    return ids


# --- list and create ----------------------------------------------------------------


@router.get("/cases")
def case_list(request: Request, status: str = "") -> Response:
    me = login_user(request)
    items = cases.list_cases(get_runtime(request), scope(request, me), limit=1000)
    if status in CASE_STATUSES:
        items = [c for c in items if c.get("status") == status]
    elif status == "active":
        items = [c for c in items if c.get("status") != "closed"]
    items.sort(key=lambda c: str(c.get("updated_at") or ""), reverse=True)
    return render(request, "cases.html", me=me, cases=items, status_filter=status, statuses=CASE_STATUSES,
                  severities=CASE_SEVERITIES, units=_visible_units(request, me), unit_names=_unit_names(request))


@router.post("/cases")
async def case_create(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_create, request, fields, multi)


def _create(request: Request, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    case = _new_case(request, me, fields, _ids(multi, fields))
    return RedirectResponse(f"/cases/{case['id']}", status_code=303)


def _new_case(request: Request, me: Principal, fields: dict[str, str], ids: list[str]) -> dict[str, Any]:
    with form_errors(request_errors=False):  # an alert or unit outside the caller's scope: nothing was created
        body = cases.CaseCreate(
            title=fields.get("title", "").strip(), description=fields.get("description", "").strip() or None,
            severity=fields.get("severity") or None,  # pydantic validates the literal
            unit=fields.get("unit") or None, owner=fields.get("owner", "").strip() or None, alert_ids=ids,
        )
        return cases.create(get_runtime(request), me, body, scope(request, me))


@router.post("/cases/add-alerts")
async def case_add_from_alerts(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_add_from_alerts, request, fields, multi)


def _add_from_alerts(request: Request, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    """From the queue's bulk bar or an alert page: the selected alerts go to an existing case or a new one."""
    me = login_user(request, fields)
    require_write(request, me, fields)
    ids = _ids(multi, fields)
    if not ids:
        raise UiError(422, "no alerts selected")
    case_id = fields.get("case_id", "").strip()
    if not case_id or case_id == "new":
        if not fields.get("title", "").strip():
            raise UiError(422, "a new case needs a title")
        case = _new_case(request, me, {**_defaults_from_alerts(request, me, ids), **fields}, ids)
    else:
        case = _add(request, me, case_id, ids)
    return RedirectResponse(f"/cases/{case['id']}", status_code=303)


def _defaults_from_alerts(request: Request, me: Principal, ids: list[str]) -> dict[str, str]:
    """A new case made from alerts takes their unit when they share one, and their highest severity.

    Without this a province-wide analyst's case would have no unit, and the
    unit's own analysts, who work those alerts, could not see it.
    """
    runtime = get_runtime(request)
    units = scope(request, me)
    found: list[Alert] = []
    for alert_id in ids:
        try:
            found.append(runtime.store.get_alert(alert_id, units))
        except NotFoundError:
            raise UiError(404, f"alert {alert_id} not found") from None
    out: dict[str, str] = {}
    alert_units = {a.unit for a in found}
    if len(alert_units) == 1 and (unit := alert_units.pop()):
        out["unit"] = unit
    severities = {str(a.severity.value) for a in found}
    for severity in CASE_SEVERITIES:
        if severity in severities:
            out["severity"] = severity
            break
    return out


def _add(request: Request, me: Principal, case_id: str, ids: list[str]) -> dict[str, Any]:
    try:
        return cases.add_alerts(get_runtime(request), me, case_id, ids, scope(request, me))
    except NotFoundError as exc:  # the case or one alert is not visible: nothing was added
        raise UiError(404, str(exc)) from None


# --- one case -----------------------------------------------------------------------


@router.get("/cases/{case_id}")
def case_detail(request: Request, case_id: str) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    units = scope(request, me)
    try:
        case = cases.get(runtime, case_id, units)
    except NotFoundError:
        raise UiError(404, "case not found") from None
    alerts: list[Alert] = []
    # alerts put in this case by someone with a wider scope: counted, never shown
    hidden = int(case.get("hidden_alerts", 0))
    for alert_id in case["alert_ids"]:
        try:
            alerts.append(runtime.store.get_alert(alert_id, units))
        except NotFoundError:
            hidden += 1
    return render(request, "case.html", me=me, case=case, alerts=alerts, hidden=hidden,
                  statuses=CASE_STATUSES, unit_names=_unit_names(request), close_reasons=cases.CLOSE_REASONS,
                  tasks=runtime.cases.tasks(case_id, units), history=runtime.cases.events(case_id, units),
                  attachments=cases.attachments(runtime, case_id, units),
                  max_attachment=runtime.settings.cases.attachment_max_bytes,
                  systems=runtime.systems.list_systems(units),
                  detected_default=sitetime.local(utcnow(), sitetime.zone(runtime.settings.timezone))
                  .strftime(sitetime.INPUT_FORMAT))


@router.post("/cases/{case_id}/update")
async def case_update(request: Request, case_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_update, request, case_id, fields)


def _update(request: Request, case_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    try:
        patch = cases.CasePatch(
            status=fields.get("status") or None,  # pydantic validates the literal
            owner=fields["owner"].strip() if "owner" in fields else None,
            description=fields.get("description"),
            close_reason=(fields.get("close_reason") or None) if fields.get("status") == "closed" else None,
            close_note=fields.get("close_note", "").strip() or None,
        )
        cases.update(get_runtime(request), me, case_id, patch, scope(request, me))
    except NotFoundError:
        raise UiError(404, "case not found") from None
    except ValidationError as exc:
        raise UiError(422, validation_text(exc)) from None
    except TriageError as exc:
        raise UiError(422, str(exc)) from None
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/alerts")
async def case_add_alerts(request: Request, case_id: str) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_add_alerts, request, case_id, fields, multi)


def _add_alerts(request: Request, case_id: str, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    ids = _ids(multi, fields)
    if not ids:
        raise UiError(422, "no alert ids given")
    _add(request, me, case_id, ids)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


# --- attachments and the export --------------------------------------------------------------


@router.post("/cases/{case_id}/attachments")
async def case_attach(request: Request, case_id: str) -> Response:
    runtime = get_runtime(request)
    try:
        upload, fields = await upload_of(request, runtime.settings.cases.attachment_max_bytes)
    except (TooLarge, UnsupportedType, RequestError) as exc:
        raise UiError.of(_status_of(exc), exc) from None
    try:
        return await in_thread(_attach, request, case_id, fields, upload)
    finally:
        await upload.close()


def _status_of(exc: RequestError) -> int:
    return 413 if isinstance(exc, TooLarge) else 415 if isinstance(exc, UnsupportedType) else 422


def _attach(request: Request, case_id: str, fields: dict[str, str], upload: UploadFile) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    try:
        cases.add_attachment(get_runtime(request), me, case_id, upload.filename or "", upload.file,
                             scope(request, me))  # fmt: skip
    except NotFoundError:
        raise UiError(404, "case not found") from None
    except (TooLarge, UnsupportedType) as exc:
        raise UiError.of(_status_of(exc), exc) from None
    return RedirectResponse(f"/cases/{case_id}#case-attachments", status_code=303)


@router.get("/cases/{case_id}/attachments/{attachment_id}")
def case_attachment(request: Request, case_id: str, attachment_id: str) -> Response:
    me = login_user(request)
    try:
        row, path = cases.open_attachment(get_runtime(request), case_id, attachment_id, scope(request, me))
    except NotFoundError:
        raise UiError(404, "attachment not found") from None
    return attachment_response(row, path)


@router.post("/cases/{case_id}/attachments/{attachment_id}/delete")
async def case_attachment_delete(request: Request, case_id: str, attachment_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_delete_attachment, request, case_id, attachment_id, fields)


def _delete_attachment(request: Request, case_id: str, attachment_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    try:
        cases.delete_attachment(get_runtime(request), me, case_id, attachment_id, scope(request, me))
    except NotFoundError:
        raise UiError(404, "attachment not found") from None
    return RedirectResponse(f"/cases/{case_id}#case-attachments", status_code=303)


@router.get("/cases/{case_id}/export")
def case_export(request: Request, case_id: str, format: str = "html") -> Response:
    """The incident-report export: a printable page (the default) or the API's JSON as a download."""
    me = login_user(request)
    try:
        data = cases.export(get_runtime(request), me, case_id, scope(request, me))
    except NotFoundError:
        raise UiError(404, "case not found") from None
    if format == "json":
        return JSONResponse(data, headers={"Content-Disposition": f'attachment; filename="case-{case_id}.json"'})
    return render(request, "case_export.html", me=me, notices=[], export=data, case=data["case"],
                  unit_names=_unit_names(request))


# after every fixed /cases/{id}/... route: the first matching route wins
@router.post("/cases/{case_id}/{what}")
async def case_work(request: Request, case_id: str, what: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_work, request, case_id, what, fields)


def _work(request: Request, case_id: str, what: str, fields: dict[str, str]) -> Response:
    """assign-me, comment, task (new), task-done / task-reopen (``task_id``)."""
    me = login_user(request, fields)
    require_write(request, me, fields)
    runtime, units = get_runtime(request), scope(request, me)
    try:
        if what == "assign-me":
            cases.update(runtime, me, case_id, cases.CasePatch(owner=me.name), units)
        elif what == "comment":
            cases.comment(runtime, me, case_id, fields.get("body", ""), units)
        elif what == "task":
            due = fields.get("due", "").strip()
            task = cases.TaskCreate(title=fields.get("title", "").strip(), assignee=fields.get("assignee", "").strip()
                                    or None, due_at=_end_of_day(runtime, due) if due else None)  # fmt: skip
            cases.add_task(runtime, me, case_id, task, units)
        elif what in ("task-done", "task-reopen"):
            cases.set_task_done(runtime, me, case_id, fields.get("task_id", ""), what == "task-done", units)
        else:
            raise UiError(404, "unknown action")
    except NotFoundError:
        raise UiError(404, "case not found") from None
    except ValidationError as exc:
        raise UiError(422, validation_text(exc)) from None
    except (TriageError, ValueError) as exc:
        raise UiError(422, str(exc)) from None
    return RedirectResponse(f"/cases/{case_id}#case-work", status_code=303)


def _end_of_day(runtime: Any, day: str) -> datetime:
    """A due date typed as a day means the end of that day in the site's zone (stored in UTC)."""
    # 2026-12-07 (an <input type=date>) or 07/12/2026 (typed in the Vietnamese UI); InvalidTime for a wrong one
    date = sitetime.parse_date(day)
    if date is None:
        raise ValueError(f"due date {day!r}: expected dd/mm/yyyy or YYYY-MM-DD")
    return datetime.combine(date, time(23, 59, 59), tzinfo=ZoneInfo(runtime.settings.timezone))
