"""Web pages for incidents and their legal clock: the list (nearest deadline first) and one incident with a
countdown to each deadline, counted from detection (soclite.control.incidents.deadlines), and its notice and
reports to download as text, PDF or DOCX (/api/v1/incidents/{id}/notice).

Reading only: recording a report sent stays in the API (POST /api/v1/incidents/{id}/milestones), audited
there. The countdown is rendered by the server and kept ticking by app.js (data-due), so the page is right
without the script too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from soclite import sitetime
from soclite.api.deps import get_runtime
from soclite.api.ui.i18n import translator
from soclite.api.ui.web import language, login_user, render, scope
from soclite.control.incidents import deadlines
from soclite.errors import NotFoundError, UiError
from soclite.models import isoformat, utcnow
from soclite.reports.incidents import DEADLINE_NAMES

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
    return render(request, "incidents.html", me=me, items=items)


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
    return render(request, "incident.html", me=me, incident=incident, clock=_clock(incident, utcnow(), warn, _, tz),
                  detected=detected.strftime("%H:%M %d/%m/%Y"), updates=updates, notice_kinds=list(DEADLINE_NAMES),
                  unit_name={u.code: u.name for u in runtime.store.list_units()}.get(incident["unit"], incident["unit"]))
