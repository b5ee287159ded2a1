"""The annual report's calendar: the Form 08 draft after the year closes, reminders before 20/12 and 25/12.

The year closes on 14 December; on ``draft_day`` (15/12 by default) one draft of the province-wide report is
generated and archived under the schedule name ``annual`` (idempotent: a second pass finds it). Before each
deadline — the units' report to the system owner (before 20/12) and the owner's to the Ministry of Public
Security (before 25/12), per issue 17's reading of Decree 331/2026 Art. 35-36 (docs/LEGAL.md) — a reminder is
e-mailed through the playbook outbox ``remind_days_before`` days ahead. Every reminder has its own
idempotency key, so a daily pass can run as often as it likes and one missed while soclite was down goes
out at the next pass, as long as its deadline has not passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from soclite.config import Settings
from soclite.errors import SocliteError
from soclite.reports.archive import ReportArchive
from soclite.reports.periods import Period, period_containing, timezone_of
from soclite.reports.service import ReportRequest, generate

log = logging.getLogger(__name__)

SCHEDULE_NAME = "annual"

DEADLINE_TEXT = {
    "unit": "Đơn vị gửi báo cáo hằng năm (Mẫu số 08) tới chủ quản hệ thống thông tin",
    "owner": "Chủ quản hệ thống thông tin gửi báo cáo hằng năm (Mẫu số 08) tới Bộ Công an",
}


@dataclass
class AnnualPass:
    """What one pass did: the draft generated (report id) and the reminders newly queued (idempotency keys)."""

    draft: str | None
    reminders: list[str]


def closing_year(settings: Settings, today: date) -> Period:
    """The Form 08 year that closed most recently (on 14/12): the one whose deadlines fall in December."""
    return period_containing("year", today, settings.timezone).previous()


def deadlines(settings: Settings, year: Period) -> dict[str, date]:
    """The year's two deadlines: the dates *before* which each report is due."""
    a = settings.compliance.annual_report
    december = year.end_day.year
    return {"unit": date(december, 12, a.unit_deadline_day), "owner": date(december, 12, a.owner_deadline_day)}


def run_pass(runtime: Any, archive: ReportArchive, now: datetime) -> AnnualPass:
    """One pass of the annual calendar at ``now`` (the scheduler calls it daily; tests with a fixed clock)."""
    settings: Settings = runtime.settings
    a = settings.compliance.annual_report
    done = AnnualPass(draft=None, reminders=[])
    if not a.enabled:
        return done
    today = now.astimezone(timezone_of(settings.timezone)).date()
    if today.month != 12 or today.day < 15:
        return done
    year = closing_year(settings, today)
    if today.day >= a.draft_day and archive.find_scheduled(SCHEDULE_NAME, year.code) is None:
        request = ReportRequest(period=year.code, lang=a.lang, formats=tuple(a.formats), requested_by="schedule:annual",
                                schedule=SCHEDULE_NAME)
        try:
            report, _ctx, _out = generate(runtime.store, settings, archive, request, now=now, runtime=runtime)
            done.draft = report.id
            log.info("annual report (Form 08) draft for %s archived as %s", year.code, report.id)
        except SocliteError:
            log.exception("the annual report draft for %s failed", year.code)
    outbox = getattr(runtime, "outbox", None)
    to = a.notify or settings.compliance.incident_notify
    if outbox is None or not to:
        return done
    draft = archive.find_scheduled(SCHEDULE_NAME, year.code)
    for name, due in deadlines(settings, year).items():
        for days in sorted(set(a.remind_days_before), reverse=True):
            if not due - timedelta(days=days) <= today < due:
                continue
            key = f"annual:{year.code}:{name}:{days}"
            if outbox.get_by_key(key) is not None:
                continue  # queued by an earlier pass (the outbox would ignore it anyway; this keeps the count honest)
            left = (due - today).days
            outbox.submit(
                "notify_email",
                {
                    "to": list(to),
                    "subject": f"[Nhắc hạn] {DEADLINE_TEXT[name]} trước ngày {due.strftime('%d/%m/%Y')} "
                               f"(còn {left} ngày)",
                    "body": (
                        f"{DEADLINE_TEXT[name]}: hạn trước ngày {due.strftime('%d/%m/%Y')}.\n"
                        f"Kỳ báo cáo: {year.label('vi')} ({year.range_text('vi')}).\n"
                        + (f"Bản dự thảo đã được lập: số {draft.doc_number} (mã {draft.id}), xem tại mục Báo cáo.\n"
                           if draft is not None else "Chưa lập được bản dự thảo; hãy lập tại mục Báo cáo.\n")
                    ),
                },
                idempotency_key=key,
                requested_by="annual-report",
                payload={"period": year.code, "deadline": name, "due": due.isoformat()},
            )
            done.reminders.append(key)
    return done


__all__ = ["SCHEDULE_NAME", "AnnualPass", "closing_year", "deadlines", "run_pass"]
