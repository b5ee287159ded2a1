"""Reports: list the archive, generate one now, download a file (its SHA-256 checked first).

A unit-scoped caller gets reports of its unit subtree only: what it generates
is limited to its unit (or a unit below it) and what it lists or downloads is
limited to reports whose scope lies inside its subtree.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from soclite.api import schedule_admin
from soclite.api.deps import AdminDep, AnalystDep, ReaderDep, RuntimeDep, scope_of
from soclite.config import ReportSchedule
from soclite.control.identity import Principal
from soclite.errors import AuthError, NotFoundError, ReportError, RequestError
from soclite.reports.archive import ArchivedReport
from soclite.reports.service import ReportRequest, generate, period_for_kind
from soclite.runtime import Runtime

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

_MEDIA = {
    "pdf": "application/pdf", "html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_ARCHIVE_LOCK = threading.Lock()


Format = Literal["pdf", "html", "csv", "docx"]


def _all_formats() -> list[Format]:
    return ["pdf", "html", "csv"]


class GenerateBody(BaseModel):
    #: "annual": the Form 08 report for the 15/12-14/12 year given as period "2026" (or "2026-Y")
    kind: Literal["periodic", "annual"] = "periodic"
    period: str = Field(..., examples=["2024-08", "2024-Q3", "2024-H2", "2024"])
    lang: Literal["vi", "en"] = "vi"
    formats: list[Format] = Field(default_factory=_all_formats)
    unit: str | None = None



def _visible(report: ArchivedReport, scope: frozenset[str] | None) -> bool:
    if scope is None:
        return True
    return report.scope_unit is not None and report.scope_unit in scope


def _get_visible(runtime: Runtime, principal: Principal, report_id: str) -> ArchivedReport:
    report = runtime.reports.get(report_id)
    if not _visible(report, scope_of(runtime, principal)):
        raise NotFoundError(f"report {report_id!r} not found")
    return report


def visible_reports(runtime: Runtime, principal: Principal, limit: int, offset: int = 0) -> list[ArchivedReport]:
    """The newest reports whose scope lies inside the caller's subtree (the UI lists the same)."""
    scope = scope_of(runtime, principal)
    items: list[ArchivedReport] = []
    batch = offset
    # filter after reading: unit-scoped callers see a subset, so read on until the page is full
    while len(items) < limit:
        chunk = runtime.reports.recent(limit=500, offset=batch)
        if not chunk:
            break
        batch += len(chunk)
        items.extend(r for r in chunk if _visible(r, scope))
    return items[:limit]


def generate_for(
    runtime: Runtime, principal: Principal, period: str, lang: str, formats: tuple[str, ...], unit: str | None,
    kind: str = "periodic",
) -> ArchivedReport:
    """Generate, archive and audit a report (API and UI): a unit-scoped caller only for its subtree.

    Raises AuthError (unit outside the scope) and ReportError (bad period, unknown unit, rendering).
    """
    period = period_for_kind(kind, period)
    scope = scope_of(runtime, principal)
    if scope is not None:
        unit = unit or principal.unit
        if unit not in scope:
            raise AuthError(f"unit {unit!r} is outside your scope")
    request = ReportRequest(period=period, lang=lang, formats=formats, unit=unit,
                            requested_by=f"{principal.kind}:{principal.name}")  # fmt: skip
    report, _ctx, _out = generate(runtime.store, runtime.settings, runtime.reports, request, runtime=runtime)
    from soclite.api import audit

    audit.record(
        runtime, principal, "report.generate", report.id, None,
        {"period": report.period, "lang": report.lang, "doc_number": report.doc_number}, unit,
    )  # fmt: skip
    return report


@router.get("")
def list_reports(
    runtime: RuntimeDep,
    principal: ReaderDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    items = [r.to_json() for r in visible_reports(runtime, principal, limit, offset)]
    return {"items": items, "total": len(items)}


@router.post("", status_code=status.HTTP_201_CREATED)
def generate_report(body: GenerateBody, runtime: RuntimeDep, principal: AnalystDep) -> dict[str, Any]:
    """Generate and archive a report: admins and analysts only (each takes an official document number)."""
    try:
        report = generate_for(runtime, principal, body.period, body.lang, tuple(body.formats), body.unit, body.kind)
    except AuthError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except ReportError as exc:
        raise HTTPException(422, str(exc)) from exc
    return report.to_json()


class ScheduleBody(BaseModel):
    """A report schedule made through the API or the UI (``soclite.config.ReportSchedule``'s fields)."""

    model_config = {"extra": "forbid"}

    every: Literal["daily", "weekly", "monthly", "quarterly", "half_yearly"]
    day: int = Field(1, ge=1, le=28)
    hour: int = Field(7, ge=0, le=23)
    lang: Literal["vi", "en"] = "vi"
    formats: list[Format] = Field(default_factory=_all_formats, min_length=1)
    recipients: list[str] = Field(default_factory=list, max_length=50)
    unit: str | None = Field(None, max_length=64)
    cron: str | None = Field(None, max_length=100)
    national: bool = False


def _schedule_json(item: dict[str, Any]) -> dict[str, Any]:
    schedule: ReportSchedule = item["schedule"]
    return schedule.model_dump(mode="json") | {"source": item["source"], "updated_by": item["updated_by"]}


@router.get("/schedules")
def list_schedules(runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Schedules of the caller's units: ``source`` ui (editable here) or settings (the settings file's)."""
    items = [_schedule_json(i) for i in schedule_admin.listing(runtime, principal)]
    return {"total": len(items), "items": items, "next": None}


@router.put("/schedules/{name}")
def put_schedule(name: str, body: ScheduleBody, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Create or replace a schedule made in the UI/API (a name from the settings file is refused)."""
    try:
        schedule = schedule_admin.save(runtime, principal, body.model_dump() | {"name": name})
    except RequestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return schedule.model_dump(mode="json")


@router.delete("/schedules/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_schedule(name: str, runtime: RuntimeDep, principal: AdminDep) -> Response:
    schedule_admin.remove(runtime, principal, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{report_id}")
def get_report(report_id: str, runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    return _get_visible(runtime, principal, report_id).to_json()


@router.get("/{report_id}/{fmt}")
def download_report(report_id: str, fmt: str, runtime: RuntimeDep, principal: ReaderDep) -> FileResponse:
    if fmt not in _MEDIA:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown format {fmt!r}; expected pdf, html or csv")
    report = _get_visible(runtime, principal, report_id)
    try:
        path = runtime.reports.file_path(report, fmt)
    except ReportError as exc:  # the file on disk does not match its recorded hash
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    sha = next(f.sha256 for f in report.files if f.format == fmt)
    filename = f"{report.doc_number.replace('/', '-')}_{report.period}.{fmt}"
    return FileResponse(path, media_type=_MEDIA[fmt], filename=filename, headers={"X-Content-SHA256": sha})
