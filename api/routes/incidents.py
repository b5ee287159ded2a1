"""Incidents with their legal clock (DESIGN.md contract): each deadline, the time left and its state."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from soclite.api.deps import AnalystDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.control import audit
from soclite.control.audit import actor_of
from soclite.control.identity import Principal
from soclite.control.incidents import (
    MILESTONE_COLUMN,
    IncidentCreate,
    IncidentUpdate,
    MilestoneRecord,
    deadlines,
)
from soclite.errors import NotFoundError, RequestError
from soclite.models import utcnow
from soclite.reports.incidents import NOTICE_NAMES, render_notice
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
    return _with_clock(runtime, create(runtime, principal, body, scope))


def create(runtime: Runtime, principal: Principal, body: IncidentCreate,
           scope: frozenset[str] | None) -> dict[str, Any]:
    """A new incident, from ``body.case_id`` when given (the case must be visible): the API's and the UI's way."""
    case = runtime.cases.get(body.case_id, scope) if body.case_id else None
    return runtime.incidents.create(body, actor=actor_of(principal), created_by=principal.name,
                                    unit=principal.unit, scope=scope, case=case)


@router.get("/{incident_id}")
def get_incident(incident_id: str, runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    return _with_clock(runtime, runtime.incidents.get(incident_id, scope)) | {
        "sends": sends_with_status(runtime, incident_id)}


@router.patch("/{incident_id}")
def update_incident(incident_id: str, body: IncidentUpdate, runtime: RuntimeDep, principal: AnalystDep,
                    scope: ScopeDep) -> dict[str, Any]:
    """Change severity, systems, flags, title or description; audited ``incident.edit``."""
    return _with_clock(runtime, update(runtime, principal, incident_id, body, scope)) | {
        "sends": sends_with_status(runtime, incident_id)}


def update(runtime: Runtime, principal: Principal, incident_id: str, body: IncidentUpdate,
           scope: frozenset[str] | None) -> dict[str, Any]:
    """The API's and the UI's way to change an incident: it must be visible, and so must each system named."""
    runtime.incidents.get(incident_id, scope)
    for system in body.systems or []:
        runtime.systems.get(system, scope)
    return runtime.incidents.update(incident_id, body, actor=actor_of(principal), scope=scope)


@router.post("/{incident_id}/milestones")
def record_milestone(incident_id: str, body: MilestoneRecord, runtime: RuntimeDep, principal: AnalystDep,
                     scope: ScopeDep) -> dict[str, Any]:
    incident = runtime.incidents.record(incident_id, body, actor=actor_of(principal), author=principal.name,
                                        scope=scope)
    return _with_clock(runtime, incident)


def _notice_inputs(runtime: Runtime, incident_id: str, scope: frozenset[str] | None) -> tuple[Any, Any, Any, Any]:
    """The incident, its case, the case's alerts and their hosts: what a notice is pre-filled from."""
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
    return incident, case, alerts, hosts


class NoticeSend(BaseModel):
    model_config = {"extra": "forbid"}

    kind: str
    #: e-mail recipients (each gets its own receipt)
    to: list[Annotated[str, Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$", max_length=254)]] = Field(
        min_length=1, max_length=20)
    #: the text as edited by the sender; default: the template pre-filled from the incident
    text: str | None = Field(None, max_length=100000)
    #: also record the stage as done (the milestone of ``kind``) at the time of sending
    mark_done: bool = False


def sends_with_status(runtime: Runtime, incident_id: str) -> list[dict[str, Any]]:
    """The incident's receipts with each e-mail's delivery status read from the outbox now."""
    out = []
    for receipt in runtime.incidents.sends(incident_id):
        record = runtime.outbox.get_by_key(receipt["idempotency_key"])
        out.append(receipt | {"status": record.status.value if record is not None else "unknown",
                              "last_error": record.last_error if record is not None else None})
    return out


@router.post("/{incident_id}/send")
def send_notice(incident_id: str, body: NoticeSend, runtime: RuntimeDep, principal: AnalystDep,
                scope: ScopeDep) -> dict[str, Any]:
    """E-mail the notice or report ``kind`` (the edited text, or the template pre-filled) through the playbook
    outbox, keep a receipt per recipient (SHA-256 of the text, time, recipient; delivery status from the outbox),
    and optionally record the stage as done."""
    send(runtime, principal, incident_id, body, scope)
    return _with_clock(runtime, runtime.incidents.get(incident_id, scope)) | {
        "sends": sends_with_status(runtime, incident_id)}


def notice_text(runtime: Runtime, incident_id: str, kind: str, scope: frozenset[str] | None) -> str:
    """The plain text of notice ``kind`` pre-filled from the incident, its case's alerts and their hosts."""
    incident, case, alerts, hosts = _notice_inputs(runtime, incident_id, scope)
    return render_notice(kind, incident, settings=runtime.settings, alerts=alerts, hosts=hosts, case=case,
                         now=utcnow())


def send(runtime: Runtime, principal: Principal, incident_id: str, body: NoticeSend,
         scope: frozenset[str] | None) -> str:
    """Queue the e-mails, keep the receipts, audit, mark the stage done if asked; the SHA-256 of the text sent.
    The API route and the incident page both send through here."""
    if body.kind not in NOTICE_NAMES:
        raise RequestError(f"no notice {body.kind!r}; known: {', '.join(NOTICE_NAMES)}")
    incident, case, alerts, hosts = _notice_inputs(runtime, incident_id, scope)
    now = utcnow()
    text = body.text if body.text and body.text.strip() else render_notice(
        body.kind, incident, settings=runtime.settings, alerts=alerts, hosts=hosts, case=case, now=now)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    subject = f"{NOTICE_NAMES[body.kind]} - sự cố {incident['title']} (mã {incident_id})"
    for recipient in dict.fromkeys(body.to):
        key = f"incident-send:{incident_id}:{body.kind}:{recipient}:{digest[:16]}"
        runtime.outbox.submit("notify_email", {"to": [recipient], "subject": subject, "body": text},
                              idempotency_key=key, requested_by=actor_of(principal),
                              payload={"incident": incident_id, "unit": incident["unit"], "kind": body.kind,
                                       "sha256": digest})
        runtime.incidents.record_send(incident_id, kind=body.kind, channel="email", recipient=recipient,
                                      sha256=digest, at=now, author=principal.name, idempotency_key=key)
    audit.append(runtime.store, actor_of(principal), "incident.send", f"incident:{incident_id}", None,
                 {"kind": body.kind, "to": body.to, "sha256": digest}, incident["unit"])
    if body.kind == "update":  # each update sent is its own record in the incident's history
        runtime.incidents.record(
            incident_id, MilestoneRecord(milestone="update", at=now,
                                         note=f"{NOTICE_NAMES['update']} đã gửi tới {', '.join(dict.fromkeys(body.to))} "
                                              f"(SHA-256 {digest})"),
            actor=actor_of(principal), author=principal.name, scope=scope)
    elif body.mark_done and body.kind in MILESTONE_COLUMN and incident[MILESTONE_COLUMN[body.kind]] is None:
        incident = runtime.incidents.record(incident_id, MilestoneRecord(milestone=body.kind, at=now),  # type: ignore[arg-type]
                                            actor=actor_of(principal), author=principal.name, scope=scope)
    return digest


_NOTICE_MEDIA = {
    "pdf": "application/pdf", "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@router.get("/{incident_id}/notice", response_model=None)
def notice(incident_id: str, runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep,
           kind: str = "initial_notice", format: str = "txt") -> Response:
    """The notice or report ``kind`` pre-filled from the incident, its case's alerts and their hosts: plain text
    (``txt``, to paste into a form) or the administrative document (``pdf``, ``docx``, ``html``)."""
    if kind not in NOTICE_NAMES:
        raise NotFoundError(f"no notice {kind!r}; known: {', '.join(NOTICE_NAMES)}")
    if format not in ("txt", *_NOTICE_MEDIA):
        raise RequestError(f"unknown format {format!r}; expected txt, pdf, docx or html")
    incident, case, alerts, hosts = _notice_inputs(runtime, incident_id, scope)
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
