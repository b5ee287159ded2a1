"""Reminders for the log reviews and alert-threshold tunings each system's level owes (soclite.control.reviews).

A daily pass e-mails, through the playbook outbox, one reminder per task ``remind_days_before`` days ahead of its
due date and one when it has passed. Each has an idempotency key naming the system, the task, the due date and
the step, so passes may run as often as they like; recording the task as done moves the due date and with it
the keys, so the next cycle is reminded afresh.
"""

from __future__ import annotations

import logging
from datetime import datetime

from soclite.config import Settings
from soclite.control.reviews import Reviews
from soclite.playbooks.outbox import Outbox
from soclite.reports.periods import timezone_of

log = logging.getLogger(__name__)

KIND_TEXT = {"log_review": "Rà soát nhật ký (log)", "threshold_tuning": "Điều chỉnh ngưỡng cảnh báo"}


def remind_reviews(reviews: Reviews, outbox: Outbox, settings: Settings, now: datetime) -> list[str]:
    """Queue the reminders due at ``now``; return the idempotency keys newly queued."""
    cfg = settings.compliance.reviews
    to = cfg.notify or settings.compliance.incident_notify
    if not cfg.enabled or not to:
        return []
    zone = timezone_of(settings.timezone)
    queued = []
    for system in reviews.systems.list_systems(None):
        for task in reviews.schedule(system, cfg, now):
            if task.due_at is None:
                continue
            due_day = task.due_at.astimezone(zone).date()
            left = (task.due_at - now).total_seconds() / 86400
            if task.state == "overdue":
                step = "overdue"
            else:
                steps = [d for d in sorted(set(cfg.remind_days_before)) if left <= d]
                if not steps:
                    continue
                step = str(steps[0])
            key = f"review:{system['id']}:{task.kind}:{due_day.isoformat()}:{step}"
            if outbox.get_by_key(key) is not None:
                continue
            when = "ĐÃ QUÁ HẠN" if step == "overdue" else "SẮP ĐẾN HẠN"
            last = task.last_done["done_at"][:10] if task.last_done else "chưa ghi nhận lần nào"
            outbox.submit(
                "notify_email",
                {
                    "to": list(to),
                    "subject": f"[{when}] {KIND_TEXT[task.kind]} - hệ thống {system['name']} (cấp độ {system['level']})",
                    "body": (
                        f"Hệ thống thông tin: {system['name']} (cấp độ {system['level']}, đơn vị {system['unit'] or '-'})\n"
                        f"{KIND_TEXT[task.kind]}: định kỳ {task.interval_months} tháng, hạn ngày "
                        f"{due_day.strftime('%d/%m/%Y')}; lần gần nhất: {last}.\n"
                        "Khi hoàn thành, ghi nhận tại mục Rà soát định kỳ của soclite."
                    ),
                },
                idempotency_key=key,
                requested_by="review-reminder",
                payload={"system": system["id"], "unit": system["unit"], "kind": task.kind,
                         "due": due_day.isoformat(), "step": step},
            )
            log.info("review reminder queued: %s", key)
            queued.append(key)
    return queued


__all__ = ["KIND_TEXT", "remind_reviews"]
