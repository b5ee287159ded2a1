"""An incident's notice and reports as documents in the administrative form (PDF and DOCX).

The text form (``incident_notice.txt.j2``) is what is pasted into the national lane's form or an e-mail; these
are the same fields laid out as the signed document an office files (Decree 30/2020/NĐ-CP: the header block,
"Kính gửi", "Nơi nhận", the signer), with the number left blank for the office's register.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soclite.config import Settings
from soclite.reports.document import _para, _run, _table, finish, new_document
from soclite.reports.i18n import t
from soclite.reports.incidents import NOTICE_NAMES, local_text, severity_text, status_lines
from soclite.reports.periods import timezone_of
from soclite.reports.render import TEMPLATE_DIR, Header, _environment, font_faces, render_pdf


@dataclass
class NoticeDocument:
    title: str
    incident_title: str
    header: Header
    date_text: str
    #: (label, value) rows, in the order of the text notice
    rows: list[tuple[str, str]]
    hosts: list[str]
    rules: list[str]
    #: each deadline's state in Vietnamese ("…: Đã gửi đúng hạn lúc …")
    statuses: list[str]


def build_notice(kind: str, incident: dict[str, Any], *, settings: Settings, alerts: list[Any], hosts: list[Any],
                 case: dict[str, Any] | None, now: datetime, unit_names: dict[str, str] | None = None) -> NoticeDocument:
    """The notice's fields; ``unit_names``: unit code → name (the glossary: units by name, never by code)."""
    names = unit_names or {}
    if kind not in NOTICE_NAMES:
        raise KeyError(kind)
    zone = timezone_of(settings.timezone)

    def local(value: str | datetime | None) -> str:
        return local_text(value, zone)

    header = Header.from_settings(settings, f"      /{settings.reports.document_prefix}")
    today = now.astimezone(zone)
    date_text = t("place_date", "vi", place=header.place or header.province, day=today.day, month=today.month,
                  year=today.year, date=today.strftime("%d %B %Y"))
    severity = severity_text(incident)
    description = incident.get("description") or (case or {}).get("description") or "(bổ sung)"
    rows = [
        ("Đơn vị báo cáo", header.issuing_unit + (f" (đơn vị xảy ra sự cố: {names.get(incident['unit'], incident['unit'])})"
                                                   if incident.get("unit") else "")),
        ("Thời điểm phát hiện", local(incident["detected_at"])),
        ("Mức độ", severity),
        ("Hệ thống thông tin bị ảnh hưởng", ", ".join(incident["systems"]) or "chưa xác định"),
        ("Số máy bị ảnh hưởng", str(len(hosts))),
        ("Số cảnh báo liên quan", str(len(alerts))),
        ("Mô tả", description),
    ]
    if alerts:
        rows.insert(6, ("Thời gian các cảnh báo", f"từ {local(min(a.first_seen for a in alerts))} "
                                                  f"đến {local(max(a.last_seen for a in alerts))}"))
    if kind == "update":
        rows += [("Diễn biến từ lần báo cáo trước", "(bổ sung)"), ("Biện pháp đã thực hiện", "(bổ sung)"),
                 ("Kế hoạch xử lý tiếp theo", "(bổ sung)")]
    elif kind != "initial_notice":
        rows += [("Nguyên nhân", "(bổ sung)"), ("Phạm vi ảnh hưởng", "(bổ sung)"),
                 ("Biện pháp khắc phục đã và đang thực hiện", "(bổ sung)")]
    for update in incident.get("updates", []):
        rows.append((f"Cập nhật {local(update['at'])}", update["note"]))
    host_lines = [f"{h.name} ({h.id}{', ' + ', '.join(h.ips) if getattr(h, 'ips', None) else ''}"
                  f"{', đơn vị ' + names.get(h.unit, h.unit) if h.unit else ''})" for h in hosts]
    return NoticeDocument(NOTICE_NAMES[kind].upper(), incident["title"], header, date_text, rows, host_lines,
                          sorted({a.rule_title for a in alerts}), status_lines(incident, settings, now))


def render_notice_html(doc: NoticeDocument, *, for_pdf: bool = False) -> str:
    return _environment().get_template("incident_notice.html.j2").render(
        doc=doc, header=doc.header, date_line=doc.date_text, distribution=doc.header.distribution("vi"),
        fonts=font_faces() if for_pdf else [], t=lambda key, **kw: t(key, "vi", **kw),
    )


def render_notice_pdf(doc: NoticeDocument) -> bytes:
    return render_pdf(render_notice_html(doc, for_pdf=True))


def render_notice_docx(doc: NoticeDocument) -> bytes:
    document = new_document(doc.header, "vi", doc.date_text)
    _para(document, space_after=0)
    _para(document, doc.title, align="center", bold=True, size=14, space_after=0)
    _para(document, f"Sự cố: {doc.incident_title}", align="center", bold=True, size=14)
    recipient = _para(document, align="center", space_after=8)
    _run(recipient, "Kính gửi: ")
    _run(recipient, doc.header.recipient, bold=True)
    _table(document, ["Nội dung", "Thông tin"], [[label, value] for label, value in doc.rows], numeric_from=99)
    _para(document, "Các máy bị ảnh hưởng:", bold=True)
    for line in doc.hosts or ["chưa xác định"]:
        _para(document, f"- {line}", space_after=0)
    if doc.rules:
        _para(document, "Các luật phát hiện đã cảnh báo:", bold=True)
        for rule in doc.rules:
            _para(document, f"- {rule}", space_after=0)
    _para(document, "Tình trạng thông báo, báo cáo:", bold=True)
    for line in doc.statuses:
        _para(document, f"- {line}", space_after=0)
    return finish(document, doc.header, "vi")


__all__ = [
    "TEMPLATE_DIR",
    "NoticeDocument",
    "build_notice",
    "render_notice_docx",
    "render_notice_html",
    "render_notice_pdf",
]
