"""Render a :class:`ReportContext` to HTML (jinja2), PDF (WeasyPrint) and CSV.

The HTML is the one layout; the PDF is that HTML printed by WeasyPrint with a
font that covers Vietnamese embedded (Noto Sans from Debian's fonts-noto-core,
else DejaVu Sans from fonts-dejavu-core), referenced by file:// URL so the PDF
does not depend on fontconfig picking the right fallback for each diacritic.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from soclite.csvsafe import safe_row
from soclite.errors import ReportError
from soclite.reports import charts
from soclite.reports.context import INCIDENT_ROWS, ReportContext
from soclite.reports.i18n import TACTICS, check_language, minutes, num, pct, t
from soclite.reports.periods import timezone_of

FORMATS = ("pdf", "html", "csv")
TEMPLATE_DIR = Path(__file__).parent / "templates"

#: (regular, bold) candidates, first found wins: both cover Vietnamese fully.
FONT_CANDIDATES: list[tuple[str, Path, Path]] = [
    (
        "Noto Sans",
        Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
        Path("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    ),
    (
        "DejaVu Sans",
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ),
]


@dataclass
class Header:
    """The administrative header of the document."""

    doc_number: str
    issuing_unit: str
    recipient: str
    province: str


def parse_formats(text: str | list[str] | tuple[str, ...]) -> list[str]:
    items = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    if not items:
        raise ReportError(f"no output format given; expected some of {', '.join(FORMATS)}")
    for item in items:
        if item not in FORMATS:
            raise ReportError(f"unknown format {item!r}; expected some of {', '.join(FORMATS)}")
    return list(dict.fromkeys(items))


def font_faces() -> list[dict[str, str]]:
    """@font-face declarations for the first installed Vietnamese-capable font family."""
    for family, regular, bold in FONT_CANDIDATES:
        if regular.is_file():
            faces = [{"family": family, "weight": "normal", "url": regular.as_uri()}]
            if bold.is_file():
                faces.append({"family": family, "weight": "bold", "url": bold.as_uri()})
            return faces
    return []


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _date_line(ctx: ReportContext, province: str, lang: str) -> str:
    local = ctx.generated_at.astimezone(timezone_of(ctx.period.tz))
    if lang == "vi":
        return f"{province}, ngày {local.day:02d} tháng {local.month:02d} năm {local.year}"
    return f"{province}, {local.strftime('%d %B %Y')}"


def _local(ts: datetime, ctx: ReportContext) -> str:
    return ts.astimezone(timezone_of(ctx.period.tz)).strftime("%d/%m/%Y %H:%M")


def summary_sentence(ctx: ReportContext, lang: str) -> str:
    """The sentence leaders quote: exact counts, the period as it reads in a sentence."""
    if ctx.total == 0:
        return t("empty", lang)
    return t(
        "summary",
        lang,
        period=ctx.period.label(lang),
        total=num(ctx.total, lang),
        high=num(ctx.high, lang),
        medlow=num(ctx.medium_low, lang),
    )


def render_html(ctx: ReportContext, header: Header, lang: str, *, for_pdf: bool = False) -> str:
    check_language(lang)
    h = ctx.handling
    template = _environment().get_template("report.html.j2")
    return template.render(
        ctx=ctx,
        h=h,
        header=header,
        lang=lang,
        for_pdf=for_pdf,
        fonts=font_faces() if for_pdf else [],
        t=lambda key, **kw: t(key, lang, **kw),
        n=lambda value: num(value, lang),
        pct=lambda part, whole: pct(part, whole, lang),
        minutes=lambda value: minutes(value, lang),
        local=lambda ts: _local(ts, ctx),
        tactic_name=lambda name: TACTICS.get(name, {}).get(lang, name),
        date_line=_date_line(ctx, header.province, lang),
        summary=summary_sentence(ctx, lang),
        summary_handled=(
            t(
                "summary_handled",
                lang,
                closed=num(ctx.closed, lang),
                closed_pct=pct(ctx.closed, ctx.total, lang),
                open=num(h.unhandled, lang),
                on_time=num(h.on_time, lang),
            )
            if ctx.total
            else ""
        ),
        period_label=ctx.period.label(lang),
        period_range=ctx.period.range_text(lang),
        previous_label=ctx.previous.label(lang),
        chart_time=charts.severity_over_time(ctx, lang),
        chart_unit=charts.by_unit(ctx, lang),
        incident_rows=ctx.incidents[:INCIDENT_ROWS],
        malware_rows=ctx.malware_rows[:INCIDENT_ROWS],
        sla_text=t("sla_text", lang, **{k: num(v, lang) for k, v in ctx.sla_minutes.items()}),
    )


def render_pdf(html: str) -> bytes:
    """Print the HTML with WeasyPrint; the fonts are subset and embedded by WeasyPrint itself."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: pango/cairo missing on the system
        raise ReportError(f"PDF output needs WeasyPrint and the pango library: {exc}") from exc
    pdf: bytes | None = HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf()
    if not pdf:
        raise ReportError("WeasyPrint produced no PDF")
    return pdf


class _SafeWriter:
    """A csv writer whose text cells cannot start a spreadsheet formula (rule titles, hosts come from logs)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(safe_row(row))


def render_csv(ctx: ReportContext, header: Header, lang: str) -> bytes:
    """A summary block (one figure per line) then the annex: one row per alert of the period.

    UTF-8 with a BOM so spreadsheet programs open the Vietnamese correctly; figures unformatted.
    """
    out = io.StringIO()
    w = _SafeWriter(csv.writer(out, lineterminator="\r\n"))
    w.writerow(["section", "key", "label", "value"])
    w.writerow(["header", "doc_number", t("doc_number", lang), header.doc_number])
    w.writerow(["header", "period", t("period", lang), ctx.period.code])
    w.writerow(["header", "scope_unit", t("scope_unit", lang), ctx.scope_unit or ""])
    w.writerow(["summary", "sentence", "", summary_sentence(ctx, lang)])
    labels = {
        "total": t("total", lang),
        "high": t("high", lang),
        "medium": t("medium", lang),
        "low": t("low", lang),
        "medium_low": t("medlow", lang),
        "malware": t("malware", lang),
        "isolations": t("isolations", lang),
        "previous_total": t("previous", lang),
        "intel.iocs_received": t("iocs_received", lang),
        "intel.iocs_held": t("iocs_held", lang),
        "intel.iocs_sent": t("iocs_sent", lang),
        "intel.downtime_minutes": t("connector_downtime", lang),
        "intel.outages": t("connector_outages", lang),
    }
    for key, value in ctx.numbers().items():
        w.writerow(["summary", key, labels.get(key, ""), "" if value is None else value])
    for status, count in sorted(ctx.by_status.items()):
        w.writerow(["status", status, "", count])
    for tactic, count in ctx.by_tactic:
        w.writerow(["tactic", tactic, TACTICS[tactic][lang], count])
    w.writerow(["tactic", "untagged", t("untagged", lang), ctx.untagged])
    for code, name, count in ctx.by_unit:
        w.writerow(["unit", code, name, count])
    for rule, title, count in ctx.all_rules:
        w.writerow(["rule", rule, title, count])
    for host, count in ctx.all_hosts:
        w.writerow(["host", host, "", count])
    w.writerow([])
    w.writerow(
        ["alert_id", "first_seen", "last_seen", "severity", "level", "rule_id", "rule_title", "host", "unit",
         "status", "count", "late"]
    )
    for r in ctx.rows:
        w.writerow(
            [r.id, r.first_seen.isoformat(), r.last_seen.isoformat(), r.severity, r.level, r.rule_id, r.rule_title,
             r.host, r.unit, r.status, r.count, int(r.late)]
        )
    return out.getvalue().encode("utf-8-sig")


def render_all(ctx: ReportContext, header: Header, lang: str, formats: list[str]) -> dict[str, bytes]:
    """``{format: bytes}`` for each requested format."""
    check_language(lang)
    result: dict[str, bytes] = {}
    for fmt in parse_formats(formats):
        if fmt == "html":
            result["html"] = render_html(ctx, header, lang).encode("utf-8")
        elif fmt == "pdf":
            result["pdf"] = render_pdf(render_html(ctx, header, lang, for_pdf=True))
        else:
            result["csv"] = render_csv(ctx, header, lang)
    return result


__all__ = ["FORMATS", "Header", "parse_formats", "render_all", "render_csv", "render_html", "render_pdf"]
