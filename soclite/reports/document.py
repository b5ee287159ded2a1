"""The report as a Word document in the administrative format of Decree 30/2020/NĐ-CP (python-docx).

Offices edit, sign and register reports in Word, so the DOCX is the document they file; it carries the
same figures and charts as the HTML/PDF. The form (Decree 30/2020/NĐ-CP, Appendix I, as summarised in
docs/LEGAL.md): A4 portrait; margins 20–25 mm top and bottom, 30–35 mm left, 15–20 mm right; Times New
Roman (Unicode, TCVN 6909:2001) 13–14 pt for the body; in the header the parent agency in capitals above the
issuing body in bold capitals, the number and symbol below; the national name in bold capitals and the motto
in bold beside them, the place and date in italics; "Kính gửi"; at the end "Nơi nhận" (bold italic 12 pt, the
list 11 pt) on the left and the signer block (bold capitals, the name in bold) on the right.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from soclite.errors import ReportError
from soclite.reports import charts
from soclite.reports.context import ReportContext
from soclite.reports.i18n import TACTICS, minutes, num, pct, t

#: inside Decree 30/2020's ranges (20-25, 20-25, 30-35, 15-20 mm) with room for Word's rounding to twips
#: (a margin of exactly 15 mm is stored as 14.99 mm); the PDF's @page uses the same
MARGINS_MM = {"top": 22, "bottom": 22, "left": 32, "right": 17}
FONT = "Times New Roman"
BODY_PT = 13


def _docx() -> Any:
    try:
        import docx
    except ImportError as exc:  # an optional format: the others still work without it
        raise ReportError(f"DOCX output needs python-docx: {exc}") from exc
    return docx


def _run(paragraph: Any, text: str, *, bold: bool = False, italic: bool = False, size: float | None = None,
         underline: bool = False) -> Any:
    from docx.shared import Pt

    run = paragraph.add_run(text)
    run.bold = bold
    run.italic = italic
    run.underline = underline
    if size is not None:
        run.font.size = Pt(size)
    return run


def _para(container: Any, text: str = "", *, align: str = "left", bold: bool = False, italic: bool = False,
          size: float | None = None, space_after: float = 3) -> Any:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    paragraph = container.add_paragraph()
    paragraph.alignment = {
        "left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER,
        "justify": WD_ALIGN_PARAGRAPH.JUSTIFY, "right": WD_ALIGN_PARAGRAPH.RIGHT,
    }[align]
    paragraph.paragraph_format.space_after = Pt(space_after)
    if text:
        _run(paragraph, text, bold=bold, italic=italic, size=size)
    return paragraph


def _set_font(document: Any) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    style = document.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(BODY_PT)
    # Word picks the East Asian / complex-script font from rFonts: name them all, or Vietnamese may fall back
    rfonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        rfonts.set(qn(attr), FONT)


def _table(document: Any, header: list[str], rows: list[list[str]], *, numeric_from: int = 1) -> Any:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for i, text in enumerate(header):
        cell = table.rows[0].cells[i]
        _run(cell.paragraphs[0], text, bold=True, size=12)
    for row in rows:
        cells = table.add_row().cells
        for i, text in enumerate(row):
            paragraph = cells[i].paragraphs[0]
            _run(paragraph, text, size=12)
            if i >= numeric_from:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            paragraph.paragraph_format.space_after = Pt(0)
    _para(document, space_after=2)
    return table


def _picture(document: Any, data_uri: str | None) -> None:
    from docx.shared import Mm

    if not data_uri:
        return
    png = base64.b64decode(data_uri.split(",", 1)[1])
    # text width: A4 210 mm less the left and right margins
    document.add_picture(io.BytesIO(png), width=Mm(210 - MARGINS_MM["left"] - MARGINS_MM["right"]))


def _no_borders(table: Any) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    table._tbl.tblPr.append(borders)


def new_document(header: Any, lang: str, date_text: str) -> Any:
    """A new A4 portrait document with Decree 30/2020's margins, font and header block
    (issuing body | national name, motto, place and date)."""
    docx = _docx()
    from docx.enum.section import WD_ORIENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Mm

    document = docx.Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    _set_font(document)

    head = document.add_table(rows=1, cols=2)
    _no_borders(head)
    left, right = head.rows[0].cells
    first = left.paragraphs[0]
    if header.issuing_parent:
        _run(first, header.issuing_parent.upper(), size=12)
        _para(left, header.issuing_unit.upper(), bold=True, size=12, space_after=0)
    else:
        _run(first, header.issuing_unit.upper(), bold=True, size=12)
    _para(left, f"{t('doc_number', lang)}: {header.doc_number}", size=13)
    for paragraph in left.paragraphs:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run(right.paragraphs[0], t("country", lang), bold=True, size=12)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    motto = _para(right, align="center")
    _run(motto, t("motto", lang), bold=True, size=13, underline=True)
    _para(right, date_text, align="center", italic=True, size=13)
    return document


def start_document(ctx: ReportContext, header: Any, lang: str, subtitle: str) -> Any:
    """A new report document: the header block, the title, ``subtitle``, "Kính gửi" and the scope."""
    from soclite.reports.render import date_line

    document = new_document(header, lang, date_line(ctx, header, lang))

    # --- title, addressee -------------------------------------------------------------------------
    _para(document, space_after=0)
    _para(document, t("title", lang), align="center", bold=True, size=14, space_after=0)
    _para(document, subtitle, align="center", bold=True, size=14)
    recipient = _para(document, align="center", space_after=8)
    _run(recipient, f"{t('recipient', lang)}: ")
    _run(recipient, header.recipient, bold=True)
    scope = f"{ctx.scope_name} ({ctx.scope_unit})" if ctx.scope_unit else t("whole_province", lang)
    _para(document, f"{t('period', lang)}: {ctx.period.label(lang)} ({ctx.period.range_text(lang)}). "
          f"{t('scope_unit', lang)}: {scope}.", align="justify")
    return document


def render_docx(ctx: ReportContext, header: Any, lang: str) -> bytes:
    """The report as DOCX bytes; ``header`` is a :class:`soclite.reports.render.Header`."""
    from soclite.reports.render import full_summary

    if ctx.annual is not None:
        from soclite.reports.annual_document import render_annual_docx

        return render_annual_docx(ctx, header, lang)
    document = start_document(ctx, header, lang, t("subtitle", lang, period=ctx.period.label(lang)))

    def n(value: int) -> str:
        return num(value, lang)

    # --- body ---------------------------------------------------------------------------------------
    h = ctx.handling
    _para(document, t("s_summary", lang), bold=True)
    _para(document, full_summary(ctx, lang), align="justify")

    _para(document, t("s_scope", lang), bold=True)
    _table(document, [t("s_scope", lang), t("count", lang)], [
        [t("servers", lang), n(ctx.scope.servers)],
        [t("workstations", lang), n(ctx.scope.workstations)],
        [t("agents", lang), n(ctx.scope.with_agent)],
        [t("agents_active_count", lang), n(ctx.scope.agents_active)],
    ])

    _para(document, t("s_alerts", lang), bold=True)
    if ctx.total:
        _table(document, [t("severity", lang), t("count", lang), t("share", lang)], [
            [t("high", lang), n(ctx.high), pct(ctx.high, ctx.total, lang)],
            [t("medlow", lang), n(ctx.medium_low), pct(ctx.medium_low, ctx.total, lang)],
            [t("total", lang), n(ctx.total), "100%"],
        ])
        _picture(document, charts.severity_over_time(ctx, lang))
        _table(document, [t("tactic", lang), t("count", lang)],
               [[TACTICS[name][lang], n(count)] for name, count in ctx.by_tactic]
               + [[t("untagged", lang), n(ctx.untagged)]])
        _table(document, [t("unit", lang), t("count", lang)],
               [[name or t("no_unit", lang), n(count)] for _code, name, count in ctx.by_unit])
        _picture(document, charts.by_unit(ctx, lang))
        _table(document, [t("rule", lang), t("count", lang)], [[title, n(c)] for _r, title, c in ctx.top_rules])
    else:
        _para(document, t("empty", lang))

    _para(document, t("s_handling", lang), bold=True)
    _table(document, [t("s_handling", lang), t("count", lang)], [
        [t("handled", lang), n(h.handled)], [t("false_positive", lang), n(h.false_positive)],
        [t("unhandled", lang), n(h.unhandled)], [t("on_time", lang), n(h.on_time)], [t("late", lang), n(h.late)],
        [t("mtta", lang), minutes(h.mtta_minutes, lang)], [t("mttr", lang), minutes(h.mttr_minutes, lang)],
    ])

    _para(document, t("s_incidents", lang), bold=True)
    _table(document, [t("s_incidents", lang), t("count", lang)], [
        [t("incidents", lang), n(len(ctx.incidents))], [t("malware", lang), n(ctx.malware)],
        [t("isolation_requests", lang), n(ctx.isolation_requests)],
        [t("isolation_commands", lang), n(ctx.isolation_commands)],
        [t("isolations", lang), n(ctx.isolations)], [t("hosts_isolated", lang), n(ctx.hosts_isolated)],
        [t("isolated_now", lang), n(ctx.scope.isolated_now)],
    ])

    _para(document, t("s_compare", lang), bold=True)
    _table(document, [t("severity", lang), t("previous", lang), t("current", lang)], [
        [t(key, lang), n(ctx.previous_by_severity.get(key, 0)), n(ctx.by_severity.get(key, 0))]
        for key in ("high", "medium", "low")
    ] + [[t("total", lang), n(ctx.previous_total), n(ctx.total)]])

    if ctx.trends is not None:
        from soclite.reports.render import TREND_ROWS, _local, trend_label

        _para(document, f"VIII. {t('s_trends', lang)}", bold=True)
        _para(document, t("trends_note", lang, k=num(ctx.trends_k, lang)), italic=True, size=12)
        if ctx.trends:
            _table(document, [t("trend_metric", lang), t("trend_hour", lang), t("trend_observed", lang),
                              t("trend_baseline", lang), t("trend_threshold", lang)],
                   [[trend_label(f, ctx, lang), _local(f.hour, ctx), n(f.observed), f"{f.median:.1f}",
                     f"{f.threshold:.1f}"] for f in ctx.trends[:TREND_ROWS]], numeric_from=2)
        else:
            _para(document, t("trends_none", lang))
    return finish(document, header, lang)


def finish(document: Any, header: Any, lang: str) -> bytes:
    """"Nơi nhận" on the left and the signer block on the right, then the document's bytes."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    # --- "Nơi nhận" | signer -------------------------------------------------------------------------
    closing = document.add_table(rows=1, cols=2)
    _no_borders(closing)
    copies, signer = closing.rows[0].cells
    _run(copies.paragraphs[0], f"{t('copies', lang)}:", bold=True, italic=True, size=12)
    for line in header.distribution(lang):
        _para(copies, line, size=11, space_after=0)
    lines = [header.signer_authority.upper()] if header.signer_authority else []
    lines.append((header.signer_title or t("signature", lang)).upper())
    _run(signer.paragraphs[0], lines[0], bold=True)
    signer.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    for line in lines[1:]:
        _para(signer, line, align="center", bold=True, space_after=0)
    _para(signer, t("signed", lang), align="center", italic=True, size=11)
    for _ in range(3):
        _para(signer, space_after=6)
    _para(signer, header.signer_name, align="center", bold=True)

    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


__all__ = ["FONT", "MARGINS_MM", "finish", "new_document", "render_docx", "start_document"]
