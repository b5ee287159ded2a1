"""Web pages for incidents and their legal clock: the list (nearest deadline first) and one incident with a
countdown to each deadline, counted from detection (soclite.control.incidents.deadlines), and its notice and
reports to download as text, PDF or DOCX (/api/v1/incidents/{id}/notice).

Working an incident (admin and analyst, CSRF, unit scope, as the API): each stage has the notice text
pre-filled from its template (editable), recipients pre-filled from ``compliance.incident_notify``, a send
button and "mark as done without sending" with a note; below, its receipts with the delivery status read from
the outbox. The progress update is a stage without a deadline: sent as often as needed, each send an update
record. The edit form changes severity, systems, flags (a personal-data breach found later: its own 72-hour
clock from the time typed, dd/mm/yyyy HH:MM in the site's zone) and the texts. An incident is opened from a case (its button on the case page) with severity and the information
systems affected. Every write calls the function the JSON API calls (api/routes/incidents.py: ``create``,
``send``, ``update``; ``Incidents.record``), which audits it. The countdown is rendered by the server and kept ticking by
app.js (data-due), so the page is right without the script too.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from soclite import sitetime
from soclite.api.deps import get_runtime
from soclite.api.routes import incidents as api
from soclite.api.ui.i18n import translator
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import form_errors, language, login_user, render, require_write, scope
from soclite.control.audit import actor_of
from soclite.control.incidents import (
    MILESTONE_COLUMN,
    IncidentCreate,
    IncidentUpdate,
    MilestoneRecord,
    deadlines,
)
from soclite.errors import NotFoundError, UiError
from soclite.models import isoformat, parse_timestamp, utcnow
from soclite.reports.incidents import DEADLINE_NAMES, NOTICE_NAMES

router = APIRouter(include_in_schema=False)


def remaining_text(seconds: float, _: Any) -> str:
    """"3 h 12 min left" / "overdue by 2 h 05 min", in whole minutes."""
    minutes = int(abs(seconds) // 60)
    text = f"{minutes // 60} {_('hours (countdown)')} {minutes % 60:02d} {_('minutes (countdown)')}"
    return str(_("%(time)s left", time=text) if seconds >= 0 else _("overdue by %(time)s", time=text))


def _clock(incident: dict[str, Any], now: datetime, warn: timedelta, _: Any, tz: Any) -> list[dict[str, Any]]:
    rows = []
    for d in deadlines(incident, now, warn):
        rows.append({
            "name": d.name, "label": _(f"deadline_{d.name}"), "state": d.state, "state_label": _(f"clock_{d.state}"),
            "due": d.due_at.astimezone(tz).strftime("%H:%M %d/%m/%Y") if d.due_at else "–",
            "due_iso": isoformat(d.due_at) if d.due_at and d.done_at is None else "",
            "done": d.done_at.astimezone(tz).strftime("%H:%M %d/%m/%Y") if d.done_at else "",
            "remaining": remaining_text(d.remaining_seconds, _) if d.remaining_seconds is not None else "",
        })
    return rows


@router.get("/incidents")
def incidents_page(request: Request) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    _ = translator(language(request, runtime))
    tz = sitetime.zone(runtime.settings.timezone)
    now = utcnow()
    warn = timedelta(minutes=runtime.settings.compliance.incident_warn_minutes)
    items = []
    unit_names = {u.code: u.name for u in runtime.store.list_units()}
    for incident in runtime.incidents.list_incidents(scope(request, me)):
        clock = _clock(incident, now, warn, _, tz)
        pending = [c for c in clock if c["due_iso"]]
        detected = datetime.fromisoformat(incident["detected_at"].replace("Z", "+00:00")).astimezone(tz)
        items.append({"incident": incident, "next": pending[0] if pending else None,
                      "detected": detected.strftime("%H:%M %d/%m/%Y"),
                      "unit": unit_names.get(incident["unit"], incident["unit"]) if incident["unit"] else "–"})
    return render(request, "incidents.html", me=me, items=items,
                  systems=runtime.systems.list_systems(scope(request, me)),
                  detected_default=sitetime.local(now, tz).strftime(sitetime.INPUT_FORMAT))


def _personal_data_start(incident: dict[str, Any], tz: Any) -> str:
    """When the personal-data clock starts, as typed in the edit form (empty when not a breach)."""
    if not incident["personal_data"]:
        return ""
    start = parse_timestamp(incident["personal_data_at"] or incident["detected_at"])
    return sitetime.local(start, tz).strftime(sitetime.INPUT_FORMAT)


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: str) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    _ = translator(language(request, runtime))
    tz = sitetime.zone(runtime.settings.timezone)
    try:
        incident = runtime.incidents.get(incident_id, scope(request, me))
    except NotFoundError:
        raise UiError(404, "incident not found") from None
    warn = timedelta(minutes=runtime.settings.compliance.incident_warn_minutes)
    detected = datetime.fromisoformat(incident["detected_at"].replace("Z", "+00:00")).astimezone(tz)
    updates = [(datetime.fromisoformat(u["at"].replace("Z", "+00:00")).astimezone(tz).strftime("%H:%M %d/%m/%Y"),
                u["note"], u["author"]) for u in incident["updates"]]
    units = scope(request, me)
    sends = api.sends_with_status(runtime, incident_id)
    kinds = [k for k in NOTICE_NAMES if k != "personal_data" or incident["personal_data"]]
    stages = [{"kind": kind, "label": _("notice_update") if kind == "update" else _(f"deadline_{kind}"),
               "done": kind in MILESTONE_COLUMN and incident[MILESTONE_COLUMN[kind]] is not None,
               "text": api.notice_text(runtime, incident_id, kind, units),
               "receipts": [r | {"at": datetime.fromisoformat(r["sent_at"].replace("Z", "+00:00")).astimezone(tz)
                                 .strftime("%H:%M:%S %d/%m/%Y")} for r in sends if r["kind"] == kind]}
              for kind in kinds]
    return render(request, "incident.html", me=me, incident=incident, clock=_clock(incident, utcnow(), warn, _, tz),
                  detected=detected.strftime("%H:%M %d/%m/%Y"), updates=updates, notice_kinds=list(NOTICE_NAMES),
                  stages=stages, systems=runtime.systems.list_systems(units),
                  personal_data_start=_personal_data_start(incident, tz), recipients=", ".join(runtime.settings.compliance.incident_notify),
                  unit_name={u.code: u.name for u in runtime.store.list_units()}.get(incident["unit"], incident["unit"]))


# --- working the incident: every write through the API's own functions (they audit) -----------------------

_SPLIT = re.compile(r"[\s,;]+")
#: the API's address check (NoticeSend.to), to name the addresses it refuses
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@router.post("/incidents")
async def incident_create(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_create, request, fields, multi)


def _create(request: Request, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    runtime = get_runtime(request)
    tz = sitetime.zone(runtime.settings.timezone)
    with form_errors():
        typed = fields.get("detected_at", "").strip()  # the site's wall clock, dd/mm/yyyy HH:MM; empty: now
        body = IncidentCreate(
            title=fields.get("title", "").strip(), severity=fields.get("severity") or "serious",  # type: ignore[arg-type]
            detected_at=sitetime.parse_local_time(typed, tz, name="detected_at") if typed else None,
            description=fields.get("description", "").strip() or None, case_id=fields.get("case_id") or None,
            national_security=fields.get("national_security") == "1", personal_data=fields.get("personal_data") == "1",
            systems=[s for s in multi.get("systems", []) if s])
        units = scope(request, me)
        for system in body.systems:  # only systems the caller may see
            runtime.systems.get(system, units)
        incident = api.create(runtime, me, body, units)
    return RedirectResponse(f"/incidents/{incident['id']}", status_code=303)


@router.post("/incidents/{incident_id}/send")
async def incident_send(request: Request, incident_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_send, request, incident_id, fields)


def _send(request: Request, incident_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    runtime = get_runtime(request)
    recipients = [r for r in _SPLIT.split(fields.get("to", "")) if r]
    if not recipients:
        raise UiError(422, "Give at least one recipient.")
    bad = [r for r in recipients if not _ADDRESS.match(r) or len(r) > 254]
    if bad:
        raise UiError(422, "Not a valid e-mail address: %(addresses)s", params={"addresses": ", ".join(bad)})
    with form_errors("incident not found"):
        body = api.NoticeSend(kind=fields.get("kind", ""), to=recipients, text=fields.get("text") or None,
                              mark_done=fields.get("mark_done") == "1")
        api.send(runtime, me, incident_id, body, scope(request, me))
    return RedirectResponse(f"/incidents/{incident_id}#stage-{body.kind}", status_code=303)


@router.post("/incidents/{incident_id}/record")
async def incident_record(request: Request, incident_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_record, request, incident_id, fields)


def _record(request: Request, incident_id: str, fields: dict[str, str]) -> Response:
    """A stage marked done without sending (its note kept as an update), or an update with its note."""
    me = login_user(request, fields)
    require_write(request, me, fields)
    runtime, units = get_runtime(request), scope(request, me)
    milestone, note = fields.get("milestone", ""), fields.get("note", "").strip()
    if milestone == "update" and not note:
        raise UiError(422, "Write the update's note.")
    with form_errors("incident not found"):
        if milestone != "update":
            runtime.incidents.record(incident_id, MilestoneRecord(milestone=milestone),  # type: ignore[arg-type]
                                     actor=actor_of(me), author=me.name, scope=units)
            note = f"{DEADLINE_NAMES[milestone]}: {note}" if note else ""
        if note:
            runtime.incidents.record(incident_id, MilestoneRecord(milestone="update", note=note),
                                     actor=actor_of(me), author=me.name, scope=units)
    return RedirectResponse(f"/incidents/{incident_id}#stage-{milestone}", status_code=303)


@router.post("/incidents/{incident_id}/edit")
async def incident_edit(request: Request, incident_id: str) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_edit, request, incident_id, fields, multi)


def _edit(request: Request, incident_id: str, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    """The edit form: every field as shown, through the API's ``update`` (which audits ``incident.edit``)."""
    me = login_user(request, fields)
    require_write(request, me, fields)
    runtime, units = get_runtime(request), scope(request, me)
    tz = sitetime.zone(runtime.settings.timezone)
    with form_errors("incident not found"):
        incident = runtime.incidents.get(incident_id, units)
        changes: dict[str, Any] = {
            "title": fields.get("title", "").strip(), "severity": fields.get("severity") or incident["severity"],
            "description": fields.get("description", "").strip() or None,
            "national_security": fields.get("national_security") == "1",
            "personal_data": fields.get("personal_data") == "1",
        }
        if fields.get("systems_shown") == "1":  # the select was on the page: what is selected is the new list
            changes["systems"] = [s for s in multi.get("systems", []) if s]
        typed = fields.get("personal_data_at", "").strip()
        # the start as shown unchanged is not a new discovery time (it would drop the seconds)
        if typed and changes["personal_data"] and typed != _personal_data_start(incident, tz):
            changes["personal_data_at"] = sitetime.parse_local_time(typed, tz, name="personal_data_at")
        api.update(runtime, me, incident_id, IncidentUpdate(**changes), units)
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)
