"""The annual report (Form 08) as a Word document, in the administrative form of :mod:`soclite.reports.document`.

Same header, "Kính gửi", "Nơi nhận" and signer block as the periodic report; the body is the per-system
table (eleven columns, set at 9 pt so it fits A4 portrait between Decree 30/2020's margins) and the year's
alert and incident figures.
"""

from __future__ import annotations

from typing import Any

from soclite.reports import charts
from soclite.reports.annual import SYSTEM_COLUMNS
from soclite.reports.context import ReportContext
from soclite.reports.document import _para, _picture, _run, _table, finish, start_document
from soclite.reports.i18n import num, t

SYSTEM_TABLE_PT = 9


def _systems_table(document: Any, ctx: ReportContext, lang: str) -> None:
    from docx.shared import Pt

    assert ctx.annual is not None
    header = [t("col.no", lang), *(t(f"col.{col}", lang) for col in SYSTEM_COLUMNS)]
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for i, text in enumerate(header):
        _run(table.rows[0].cells[i].paragraphs[0], text, bold=True, size=SYSTEM_TABLE_PT)
    for index, row in enumerate(ctx.annual.systems, 1):
        cells = table.add_row().cells
        for i, text in enumerate([str(index), *(row.cells[col] for col in SYSTEM_COLUMNS)]):
            paragraph = cells[i].paragraphs[0]
            _run(paragraph, text, size=SYSTEM_TABLE_PT)
            paragraph.paragraph_format.space_after = Pt(0)
    _para(document, space_after=2)


def render_annual_docx(ctx: ReportContext, header: Any, lang: str) -> bytes:
    from soclite.reports.render import annual_summary

    a = ctx.annual
    assert a is not None
    document = start_document(ctx, header, lang, t("annual_subtitle", lang, period=ctx.period.label(lang)))
    _para(document, t("annual_form", lang), align="right", italic=True)
    _para(document, annual_summary(ctx, lang), align="justify", bold=True)

    def n(value: int) -> str:
        return num(value, lang)

    _para(document, t("s_systems", lang), bold=True)
    if a.systems:
        _systems_table(document, ctx, lang)
    else:
        _para(document, t("no_systems", lang))
    _table(document, [t("s_systems", lang), t("count", lang)], [
        [t("systems_total", lang), n(len(a.systems))],
        *([t("systems_level", lang, level=level), n(count)] for level, count in a.systems_by_level.items()),
        [t("systems_approved", lang), n(a.systems_approved)],
    ])

    h = ctx.handling
    _para(document, t("s_year_alerts", lang), bold=True)
    _table(document, [t("s_year_alerts", lang), t("count", lang)], [
        [t("total", lang), n(ctx.total)], [t("high", lang), n(ctx.high)], [t("medlow", lang), n(ctx.medium_low)],
        [t("handled", lang), n(h.handled)], [t("false_positive", lang), n(h.false_positive)],
        [t("unhandled", lang), n(h.unhandled)], [t("malware", lang), n(ctx.malware)],
        [t("servers", lang), n(ctx.scope.servers)], [t("workstations", lang), n(ctx.scope.workstations)],
    ])
    if ctx.total:
        _picture(document, charts.severity_over_time(ctx, lang))

    _para(document, t("s_year_incidents", lang), bold=True)
    _table(document, [t("s_year_incidents", lang), t("count", lang)], [
        [t("incidents_total", lang), n(a.incidents)],
        *([t(f"incident_sev.{sev}", lang), n(count)] for sev, count in a.incidents_by_severity.items()),
        [t("incidents_national_security", lang), n(a.incidents_national_security)],
        [t("incidents_personal_data", lang), n(a.incidents_personal_data)],
        [t("initial_notice_on_time", lang), n(a.initial_notice_on_time)],
        [t("report_72h_on_time", lang), n(a.report_72h_on_time)],
        [t("final_reports", lang), n(a.final_reports)],
    ])
    return finish(document, header, lang)


__all__ = ["render_annual_docx"]
