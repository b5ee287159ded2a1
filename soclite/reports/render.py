"""Render a :class:`ReportContext` to HTML (jinja2), PDF (WeasyPrint) and CSV.

The HTML is the one layout; the PDF is that HTML printed by WeasyPrint with a
font that covers Vietnamese embedded, referenced by file:// URL so the PDF does
not depend on fontconfig picking the right fallback for each diacritic. Decree
30/2020/NĐ-CP asks for Times New Roman 13-14 pt: Times New Roman itself cannot be
installed offline (Debian's ttf-mscorefonts-installer downloads it), so the PDF
embeds Liberation Serif 2 (Debian's fonts-liberation2), which is metric-compatible
with Times New Roman (same advance widths, so the same line and page breaks) and,
unlike fonts-liberation 1.07, covers every precomposed Vietnamese letter. Noto
Sans / DejaVu Sans remain the fallbacks where it is missing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from soclite.config import Settings
from soclite.csvsafe import safe_row
from soclite.errors import ReportError
from soclite.reports import charts
from soclite.reports.annual import SYSTEM_COLUMNS
from soclite.reports.context import INCIDENT_ROWS, ReportContext
from soclite.reports.i18n import CATALOG, TACTICS, check_language, minutes, num, pct, t
from soclite.reports.periods import timezone_of
from soclite.reports.trends import TrendFlag

FORMATS = ("pdf", "html", "csv", "docx")
TEMPLATE_DIR = Path(__file__).parent / "templates"

#: (family, regular, bold) candidates, first found wins: all cover Vietnamese fully.
FONT_CANDIDATES: list[tuple[str, Path, Path]] = [
    (
        "Liberation Serif",
        Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
        Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf"),
    ),
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
    """The administrative parts of the document (Decree 30/2020/NĐ-CP), resolved from settings."""

    doc_number: str
    issuing_unit: str
    recipient: str
    province: str
    #: the agency the issuing body belongs to (shown above it); empty = none
    issuing_parent: str = ""
    #: "Nơi nhận" after "Như trên", closed by ``archive_copy``
    copies_to: list[str] = field(default_factory=list)
    archive_copy: str = "Lưu: VT"
    place: str | None = None
    signer_authority: str = ""
    signer_title: str = ""
    signer_name: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, doc_number: str) -> Header:
        r = settings.reports
        province = settings.province
        return cls(
            doc_number=doc_number,
            issuing_unit=r.issuing_unit.replace("{province}", province),
            recipient=r.recipient_name(province),
            province=province,
            issuing_parent=r.issuing_parent.replace("{province}", province),
            copies_to=[r.addressee(name, province) for name in r.copies_to],
            archive_copy=r.archive_copy,
            place=r.place,
            signer_authority=r.signer.authority,
            signer_title=r.signer.title,
            signer_name=r.signer.name,
        )

    def distribution(self, lang: str) -> list[str]:
        """The "Nơi nhận" lines: "Như trên", the copies, the archive; ";" between and "." last (Decree 30/2020)."""
        lines = [f"- {t('as_above', lang)}", *(f"- {name}" for name in self.copies_to), f"- {self.archive_copy}"]
        return [line + (";" if i < len(lines) - 1 else ".") for i, line in enumerate(lines)]


def parse_formats(text: str | list[str] | tuple[str, ...]) -> list[str]:
    items = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    if not items:
        raise ReportError(f"no output format given; expected some of {', '.join(FORMATS)}")
    for item in items:
        if item not in FORMATS:
            raise ReportError(f"unknown format {item!r}; expected some of {', '.join(FORMATS)}")
    return list(dict.fromkeys(items))


def font_faces() -> list[dict[str, str]]:
    """@font-face declarations for the first installed Vietnamese-capable font family.

    Italic faces are declared where the family has them (the place and date, "Nơi nhận"), else
    WeasyPrint slants the upright face.
    """
    for family, regular, bold in FONT_CANDIDATES:
        if regular.is_file():
            faces = [{"family": family, "weight": "normal", "style": "normal", "url": regular.as_uri()}]
            if bold.is_file():
                faces.append({"family": family, "weight": "bold", "style": "normal", "url": bold.as_uri()})
            for weight, path in (("normal", _italic(regular)), ("bold", _italic(bold))):
                if path is not None:
                    faces.append({"family": family, "weight": weight, "style": "italic", "url": path.as_uri()})
            return faces
    return []


def _italic(upright: Path) -> Path | None:
    """``LiberationSerif-Regular.ttf`` → ``LiberationSerif-Italic.ttf``, ``-Bold`` → ``-BoldItalic`` (if present)."""
    stem = upright.stem.replace("-Regular", "-Italic") if upright.stem.endswith("-Regular") else upright.stem + "Italic"
    path = upright.with_name(stem + upright.suffix)
    return path if path.is_file() and path != upright else None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def date_line(ctx: ReportContext, header: Header, lang: str) -> str:
    local = ctx.generated_at.astimezone(timezone_of(ctx.period.tz))
    place = header.place or header.province
    return t("place_date", lang, place=place, day=local.day, month=local.month, year=local.year,
             date=local.strftime("%d %B %Y"))


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


def handled_sentence(ctx: ReportContext, lang: str) -> str:
    """Closed vs. still open: never say "handled" of alerts that are not."""
    if ctx.total == 0:
        return ""
    return t(
        "summary_handled",
        lang,
        closed=num(ctx.closed, lang),
        closed_pct=pct(ctx.closed, ctx.total, lang),
        open=num(ctx.handling.unhandled, lang),
        on_time=num(ctx.handling.on_time, lang),
    )


def full_summary(ctx: ReportContext, lang: str) -> str:
    """What is archived and sent with the report: both sentences (the annual report opens with its own)."""
    first = annual_summary(ctx, lang) if ctx.annual is not None else summary_sentence(ctx, lang)
    return " ".join(part for part in (first, handled_sentence(ctx, lang)) if part)


def annual_summary(ctx: ReportContext, lang: str) -> str:
    """The annual report's opening sentence (Form 08): systems, alerts, incidents of the year."""
    a = ctx.annual
    assert a is not None
    return t("annual_summary", lang, period=ctx.period.label(lang), range=ctx.period.range_text(lang),
             systems=num(len(a.systems), lang), total=num(ctx.total, lang), high=num(ctx.high, lang),
             incidents=num(a.incidents, lang))


def trend_label(flag: TrendFlag, ctx: ReportContext, lang: str) -> str:
    """What rose, in words: the whole scope, a unit's name, a rule's title or a host."""
    if flag.dimension == "total":
        return t("trend_all", lang)
    if flag.dimension == "unit":
        names = {code: name for code, name, _n in ctx.by_unit}
        return f"{t('unit', lang)}: {names.get(flag.key) or flag.key}"
    if flag.dimension == "rule_id":
        titles = {rule: title for rule, title, _n in ctx.all_rules}
        return f"{t('rule', lang)}: {titles.get(flag.key) or flag.key}"
    return f"{t('host', lang)}: {flag.key}"


TREND_ROWS = 10


def render_html(ctx: ReportContext, header: Header, lang: str, *, for_pdf: bool = False) -> str:
    check_language(lang)
    h = ctx.handling
    annual = ctx.annual is not None
    template = _environment().get_template("annual.html.j2" if annual else "report.html.j2")
    return template.render(
        a=ctx.annual,
        trend_rows=(ctx.trends or [])[:TREND_ROWS],
        trend_label=lambda flag: trend_label(flag, ctx, lang),
        trend_note=t("trends_note", lang, k=num(ctx.trends_k, lang)) if ctx.trends is not None else "",
        columns=SYSTEM_COLUMNS,
        annual_summary=annual_summary(ctx, lang) if annual else "",
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
        date_line=date_line(ctx, header, lang),
        summary=summary_sentence(ctx, lang),
        summary_handled=handled_sentence(ctx, lang),
        distribution=header.distribution(lang),
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


#: the CSV label of every key of ``ReportContext.numbers()`` (a missing one is a KeyError, not a blank cell)
CSV_LABEL_KEYS: dict[str, str] = {
    "total": "total", "high": "high", "medium": "medium", "low": "low", "medium_low": "medlow",
    "malware": "malware", "isolations": "isolations", "hosts_isolated": "hosts_isolated",
    "isolation_commands": "isolation_commands", "isolation_requests": "isolation_requests",
    "previous_total": "previous",
    "handling.handled": "handled", "handling.false_positive": "false_positive", "handling.unhandled": "unhandled",
    "handling.on_time": "on_time", "handling.late": "late", "handling.within_sla_open": "within_sla_open",
    "handling.mtta_minutes": "mtta_minutes", "handling.mttr_minutes": "mttr_minutes",
    "scope.servers": "servers", "scope.workstations": "workstations", "scope.with_agent": "agents",
    "scope.agents_active": "agents_active_count", "scope.isolated_now": "isolated_now",
    "scope.national_enabled": "national_enabled_flag", "scope.national_state": "national_state",
    "intel.iocs_received": "iocs_received", "intel.iocs_held": "iocs_held", "intel.iocs_sent": "iocs_sent",
    "intel.downtime_minutes": "connector_downtime", "intel.outages": "connector_outages",
    "annual.systems": "systems_total", "annual.systems_approved": "systems_approved",
    "annual.incidents": "incidents_total", "annual.incidents_national_security": "incidents_national_security",
    "annual.incidents_personal_data": "incidents_personal_data",
    "annual.initial_notice_on_time": "initial_notice_on_time", "annual.report_72h_on_time": "report_72h_on_time",
    "annual.final_reports": "final_reports",
    "trends.flags": "trends_flags",
    **{f"annual.incidents_{sev}": f"incident_sev.{sev}" for sev in ("serious", "high", "medium", "low")},
}


def csv_labels(lang: str) -> dict[str, str]:
    labels = {key: t(message, lang) for key, message in CSV_LABEL_KEYS.items()}
    labels.update({f"annual.systems_level_{level}": t("systems_level", lang, level=level) for level in range(1, 6)})
    return labels


def _status_name(status: str, lang: str) -> str:
    key = f"st_{status}"
    return t(key, lang) if key in CATALOG else status


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
    w.writerow(["summary", "sentence", t("summary_sentence", lang), full_summary(ctx, lang)])
    labels = csv_labels(lang)
    for key, value in ctx.numbers().items():
        w.writerow(["summary", key, labels[key], "" if value is None else value])
    for status, count in sorted(ctx.by_status.items()):
        w.writerow(["status", status, f"{t('status_count', lang)}: {_status_name(status, lang)}", count])
    for tactic, count in ctx.by_tactic:
        w.writerow(["tactic", tactic, TACTICS[tactic][lang], count])
    w.writerow(["tactic", "untagged", t("untagged", lang), ctx.untagged])
    for code, name, count in ctx.by_unit:
        w.writerow(["unit", code, name or t("no_unit", lang), count])
    for rule, title, count in ctx.all_rules:
        w.writerow(["rule", rule, title or rule, count])
    for host, count in ctx.all_hosts:
        w.writerow(["host", host, f"{t('host_count', lang)} {host}" if host else t("no_data", lang), count])
    for flag in ctx.trends or []:  # value = the hour's count; then the hour, the baseline and the threshold
        w.writerow(["trend", f"{flag.dimension}:{flag.key}", trend_label(flag, ctx, lang), flag.observed,
                    flag.hour.isoformat(), round(flag.median, 2), round(flag.threshold, 2)])
    if ctx.annual is not None:  # Form 08's per-system table, one row per system, its cells as printed
        w.writerow([])
        w.writerow(["system_id", t("col.no", lang), *(t(f"col.{col}", lang) for col in SYSTEM_COLUMNS)])
        for i, row in enumerate(ctx.annual.systems, 1):
            w.writerow([row.id, i, *(row.cells[col] for col in SYSTEM_COLUMNS)])
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
        elif fmt == "docx":
            from soclite.reports.document import render_docx

            result["docx"] = render_docx(ctx, header, lang)
        else:
            result["csv"] = render_csv(ctx, header, lang)
    return result


__all__ = ["FORMATS", "Header", "parse_formats", "render_all", "render_csv", "render_html", "render_pdf"]
