"""Incidents with their legal clock (DESIGN.md contract): each deadline, the time left and its state."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import PlainTextResponse, Response

from soclite.api.deps import AnalystDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.control.audit import actor_of
from soclite.control.incidents import IncidentCreate, MilestoneRecord, deadlines
from soclite.errors import NotFoundError, RequestError
from soclite.models import utcnow
from soclite.reports.incidents import DEADLINE_NAMES, render_notice
from soclite.runtime import Runtime
from soclite.store.base import AlertQuery

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


def _with_clock(runtime: Runtime, incident: dict[str, Any]) -> dict[str, Any]:
    warn = timedelta(minutes=runtime.settings.compliance.incident_warn_minutes)
    clock = [d.to_json() for d in deadlines(incident, utcnow(), warn)]
    return incident | {"deadlines": clock}


@router.get("")
def list_incidents(
    runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    items = [_with_clock(runtime, i) for i in runtime.incidents.list_incidents(scope, limit)]
    return {"total": len(items), "items": items, "next": None}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_incident(body: IncidentCreate, runtime: RuntimeDep, principal: AnalystDep,
                    scope: ScopeDep) -> dict[str, Any]:
    case = runtime.cases.get(body.case_id, scope) if body.case_id else None
    incident = runtime.incidents.create(body, actor=actor_of(principal), created_by=principal.name,
                                        unit=principal.unit, scope=scope, case=case)
    return _with_clock(runtime, incident)


@router.get("/{incident_id}")
def get_incident(incident_id: str, runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    return _with_clock(runtime, runtime.incidents.get(incident_id, scope))


@router.post("/{incident_id}/milestones")
def record_milestone(incident_id: str, body: MilestoneRecord, runtime: RuntimeDep, principal: AnalystDep,
                     scope: ScopeDep) -> dict[str, Any]:
    incident = runtime.incidents.record(incident_id, body, actor=actor_of(principal), author=principal.name,
                                        scope=scope)
    return _with_clock(runtime, incident)


_NOTICE_MEDIA = {
    "pdf": "application/pdf", "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@router.get("/{incident_id}/notice", response_model=None)
def notice(incident_id: str, runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep,
           kind: str = "initial_notice", format: str = "txt") -> Response:
    """The notice or report ``kind`` pre-filled from the incident, its case's alerts and their hosts: plain text
    (``txt``, to paste into a form) or the administrative document (``pdf``, ``docx``, ``html``)."""
    if kind not in DEADLINE_NAMES:
        raise NotFoundError(f"no notice {kind!r}; known: {', '.join(DEADLINE_NAMES)}")
    if format not in ("txt", *_NOTICE_MEDIA):
        raise RequestError(f"unknown format {format!r}; expected txt, pdf, docx or html")
    incident = runtime.incidents.get(incident_id, scope)
    case = runtime.cases.get(incident["case_id"], scope) if incident["case_id"] else None
    alerts = []
    if case and case["alert_ids"]:
        alerts = runtime.store.query_alerts(AlertQuery(ids=case["alert_ids"][:500], units=scope, limit=500)).items
    hosts = []
    for host_id in dict.fromkeys(a.host for a in alerts if a.host):
        try:
            hosts.append(runtime.store.get_host(host_id, scope))
        except NotFoundError:
            continue
    if format == "txt":
        return PlainTextResponse(render_notice(kind, incident, settings=runtime.settings, alerts=alerts, hosts=hosts,
                                               case=case, now=utcnow()))
    from soclite.reports import notice_document as nd

    doc = nd.build_notice(kind, incident, settings=runtime.settings, alerts=alerts, hosts=hosts, case=case,
                          now=utcnow(), unit_names={u.code: u.name for u in runtime.store.list_units()})
    body = (nd.render_notice_pdf(doc) if format == "pdf" else nd.render_notice_docx(doc) if format == "docx"
            else nd.render_notice_html(doc).encode("utf-8"))
    filename = f"incident_{incident_id}_{kind}.{format}"
    return Response(body, media_type=_NOTICE_MEDIA[format],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
