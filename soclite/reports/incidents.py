"""The incident clock's escalation and the notices, in the response layer.

:func:`escalate_due` e-mails ``compliance.incident_notify`` through the playbook outbox
(``notify_email``: durable, retried, visible with the other actions) once per incident and deadline,
when the deadline enters the warning window or has passed without the report being recorded.
:func:`render_notice` fills the Vietnamese notice and reports from the incident, its case, alerts and hosts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import jinja2

from soclite.config import Settings
from soclite.control.incidents import Incidents, deadlines
from soclite.playbooks.outbox import Outbox
from soclite.reports.periods import timezone_of

log = logging.getLogger(__name__)

DEADLINE_NAMES = {
    "initial_notice": "Thông báo ban đầu (24 giờ)",
    "report_72h": "Báo cáo nguyên nhân, phạm vi, biện pháp khắc phục (72 giờ)",
    "personal_data": "Thông báo vi phạm dữ liệu cá nhân (72 giờ)",
    "final_report": "Báo cáo kết thúc",
}
#: every notice that can be rendered and sent: the deadlines' and the progress update (no deadline, many allowed)
NOTICE_NAMES = DEADLINE_NAMES | {"update": "Báo cáo cập nhật tình hình"}
#: the Vietnamese words a notice prints for the stored values (the UI's catalog says the same: incident_*, clock_*)
SEVERITY_VI = {"serious": "Nghiêm trọng", "high": "Cao", "medium": "Trung bình", "low": "Thấp"}
STATE_VI = {"pending": "Chưa đến hạn", "due_soon": "Sắp đến hạn", "overdue": "Quá hạn", "done": "Đã gửi đúng hạn",
            "done_late": "Đã gửi muộn", "open": "Không có hạn"}


def severity_text(incident: dict[str, Any]) -> str:
    """The severity in Vietnamese with the national-security and personal-data flags."""
    text = SEVERITY_VI.get(str(incident["severity"]), str(incident["severity"]))
    if incident["national_security"]:
        text += "; có liên quan đến an ninh quốc gia"
    if incident["personal_data"]:
        text += "; có lộ, lọt dữ liệu cá nhân"
    return text


def status_lines(incident: dict[str, Any], settings: Settings, now: datetime) -> list[str]:
    """Each deadline's state in Vietnamese: "Thông báo ban đầu (24 giờ): Đã gửi đúng hạn lúc 09:00 ngày …"."""
    zone = timezone_of(settings.timezone)
    warn = timedelta(minutes=settings.compliance.incident_warn_minutes)
    lines = []
    for d in deadlines(incident, now, warn):
        line = f"{DEADLINE_NAMES[d.name]}: {STATE_VI[d.state]}"
        if d.done_at is not None:
            line += f" lúc {d.done_at.astimezone(zone).strftime('%H:%M ngày %d/%m/%Y')}"
        elif d.due_at is not None:
            line += f", hạn {d.due_at.astimezone(zone).strftime('%H:%M ngày %d/%m/%Y')}"
        lines.append(line)
    return lines


def escalate_due(incidents: Incidents, outbox: Outbox, settings: Settings, now: datetime) -> list[str]:
    """Queue one escalation e-mail per deadline due soon or overdue; return the idempotency keys queued."""
    to = settings.compliance.incident_notify
    if not to:
        return []
    warn = timedelta(minutes=settings.compliance.incident_warn_minutes)
    zone = timezone_of(settings.timezone)
    queued = []
    for incident in incidents.list_incidents(None, limit=100000):
        done = incidents.escalated(incident["id"])
        for deadline in deadlines(incident, now, warn):
            if deadline.state not in ("due_soon", "overdue") or deadline.name in done or deadline.due_at is None:
                continue
            key = f"incident:{incident['id']}:{deadline.name}"
            due = deadline.due_at.astimezone(zone).strftime("%H:%M ngày %d/%m/%Y")
            late = "ĐÃ QUÁ HẠN" if deadline.state == "overdue" else "SẮP ĐẾN HẠN"
            outbox.submit(
                "notify_email",
                {
                    "to": list(to),
                    "subject": f"[{late}] {DEADLINE_NAMES[deadline.name]} - sự cố {incident['title']}",
                    "body": (
                        f"Sự cố: {incident['title']} (mã {incident['id']}, đơn vị {incident['unit'] or '-'})\n"
                        f"{DEADLINE_NAMES[deadline.name]}: hạn {due} ({settings.timezone}).\n"
                        "Chưa ghi nhận báo cáo này trong soclite."
                    ),
                },
                idempotency_key=key,
                requested_by="incident-clock",
                payload={"incident": incident["id"], "unit": incident["unit"], "deadline": deadline.name},
            )
            incidents.mark_escalated(incident["id"], deadline.name, now)
            log.warning("incident %s: %s %s, escalation queued", incident["id"], deadline.name, deadline.state)
            queued.append(key)
    return queued


def local_text(value: str | datetime | None, zone: tzinfo) -> str:
    """A time (ISO text or datetime) as a notice shows it: in the site's zone, "13:05 ngày 07/12/2026"."""
    if value is None:
        return "chưa có"
    ts = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return ts.astimezone(zone).strftime("%H:%M ngày %d/%m/%Y")


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=False,  # plain text, sent by e-mail or pasted into the official form
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
)


def render_notice(kind: str, incident: dict[str, Any], *, settings: Settings, alerts: list[Any], hosts: list[Any],
                  case: dict[str, Any] | None, now: datetime) -> str:
    """The Vietnamese text of the initial notice / 72-hour report / update / final report, pre-filled."""
    if kind not in NOTICE_NAMES:
        raise KeyError(kind)
    zone = timezone_of(settings.timezone)

    def local(value: str | datetime | None) -> str:
        return local_text(value, zone)

    rules = sorted({a.rule_title for a in alerts})
    return _ENV.get_template("incident_notice.txt.j2").render(
        kind=kind, title=NOTICE_NAMES[kind].upper(), incident=incident, severity=severity_text(incident),
        statuses=status_lines(incident, settings, now), case=case, alerts=alerts, hosts=hosts,
        rules=rules, local=local, now=local(now), settings=settings,
        recipient=settings.reports.recipient_name(settings.province),
        issuing_unit=settings.reports.issuing_unit.replace("{province}", settings.province),
    )


__all__ = ["DEADLINE_NAMES", "NOTICE_NAMES", "SEVERITY_VI", "STATE_VI", "escalate_due", "render_notice",
           "severity_text", "status_lines"]
