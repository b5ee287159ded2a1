"""Produce one report: validate → build the context from the store → render → archive (→ deliver).

The one entry point the CLI, the API and the scheduler share, so a report
made by hand and a scheduled one are the same document.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from soclite.config import Settings
from soclite.control.isolations import isolation_commands_between
from soclite.control.schema import open_control_db
from soclite.db import Database
from soclite.errors import ReportError
from soclite.reports.annual import build_annual
from soclite.reports.archive import ArchivedReport, ReportArchive
from soclite.reports.context import ReportContext, build_context
from soclite.reports.i18n import check_language
from soclite.reports.periods import Period, check_started, parse_period
from soclite.reports.render import Header, full_summary, parse_formats, render_all
from soclite.reports.trends import detect_period
from soclite.store.base import Store, unit_subtree

#: document numbers are sequential: reserve-render-store runs one at a time in a process.
_NUMBER_LOCK = threading.Lock()


@dataclass
class ReportRequest:
    period: str
    lang: str = "vi"
    formats: tuple[str, ...] = ("pdf", "html", "csv")
    unit: str | None = None
    requested_by: str = "cli"
    schedule: str | None = None


ReportKind = Literal["periodic", "annual"]


def period_for_kind(kind: str, period: str) -> str:
    """The period code a request of ``kind`` means: an annual report (Form 08) takes ``2026`` or ``2026-Y``;
    a periodic one anything but a Form 08 year (so a typo cannot file the wrong form)."""
    value = period.strip()
    is_year = bool(re.fullmatch(r"\d{4}(-[Yy])?", value))
    if kind == "annual":
        if not is_year:
            raise ReportError(f"an annual report (Form 08) covers a year such as 2026 (15/12/2025-14/12/2026), "
                              f"not {period!r}")
        return value[:4] + "-Y"
    if kind != "periodic":
        raise ReportError(f"unknown report kind {kind!r}; expected periodic or annual")
    if is_year and len(value) > 4:
        raise ReportError(f"{period!r} is the annual report's year: ask for kind 'annual'")
    return value


def resolve_units(store: Store, unit: str | None) -> frozenset[str] | None:
    """``None`` = the whole province; a unit code = that unit and every unit below it."""
    if unit is None:
        return None
    units = store.list_units()
    if not any(u.code == unit for u in units):
        raise ReportError(f"unknown unit {unit!r}; known units: {', '.join(sorted(u.code for u in units)) or 'none'}")
    return unit_subtree(units, unit)


def validate(request: ReportRequest, settings: Settings, now: datetime | None = None) -> tuple[Period, list[str]]:
    """Refuse a bad period, language or format before touching anything (no document number is
    reserved for a report that cannot be made)."""
    period = parse_period(request.period, settings.timezone)
    check_started(period, now or datetime.now(UTC))
    check_language(request.lang)
    return period, parse_formats(list(request.formats))


def make_context(
    store: Store, settings: Settings, request: ReportRequest, *, now: datetime | None = None, runtime: Any = None,
    control: Database | None = None,
) -> ReportContext:
    """``control``: control.db, for the period's isolation commands (opened from ``settings.data_dir`` if None)."""
    period, _ = validate(request, settings, now)
    units = resolve_units(store, request.unit)
    db = control if control is not None else open_control_db(settings.data_dir)
    try:
        commands = isolation_commands_between(db, period.start, period.end)
        ctx = build_context(
            store,
            settings,
            period,
            units=units,
            scope_unit=request.unit,
            now=now,
            outbox=getattr(runtime, "outbox", None),
            engine=getattr(runtime, "engine", None),
            isolation_commands=commands,
        )
        if period.kind == "year":  # the annual report (Form 08): the inventory and the year's incidents too
            ctx.annual = build_annual(db, store, period, units, request.lang, ctx.generated_at)
        elif settings.compliance.trends.enabled:  # the periodic report summarises the period's rises
            ctx.trends = detect_period(store, settings, period.start, min(period.end, ctx.generated_at), units)
            ctx.trends_k = settings.compliance.trends.k
    finally:
        if control is None:
            db.close()
    return ctx


def generate(
    store: Store,
    settings: Settings,
    archive: ReportArchive,
    request: ReportRequest,
    *,
    now: datetime | None = None,
    runtime: Any = None,
) -> tuple[ArchivedReport, ReportContext, dict[str, bytes]]:
    """Build, render and archive one report; return the archive entry, its figures and its bytes."""
    created = (now or datetime.now(UTC)).astimezone(UTC)
    period, formats = validate(request, settings, created)
    ctx = make_context(store, settings, request, now=created, runtime=runtime, control=archive.db)
    with _NUMBER_LOCK:
        seq, number = archive.reserve_number(settings.reports.document_prefix, created)
        header = Header.from_settings(settings, number)
        outputs = render_all(ctx, header, request.lang, formats)
        params = ctx.query_parameters() | {"lang": request.lang, "formats": formats, "doc_number": number}
        report = archive.store(
            outputs=outputs,
            prefix=settings.reports.document_prefix,
            period=period.code,
            lang=request.lang,
            scope_unit=request.unit,
            units=ctx.units,
            schedule=request.schedule,
            requested_by=request.requested_by,
            params=params,
            summary=full_summary(ctx, request.lang),
            doc_number=(seq, number),
            now=created,
        )
    return report, ctx, outputs
