"""Report schedules and their recipients, managed by admins (the UI's reports page and /api/v1/reports/schedules).

Permissions are the reports API's, narrowed to admins for a standing order: a province-wide admin manages
every schedule, a unit admin the schedules of its subtree's units only (never a province-wide one), and
nobody sees another unit's schedule or its recipients. Schedules from the settings file are listed
read-only: they belong to the operator. Every change is audited; the running scheduler picks it up at once.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from soclite.api import audit
from soclite.api.deps import scope_of
from soclite.config import ReportSchedule
from soclite.control.audit import actor_of
from soclite.control.identity import Principal, Role
from soclite.errors import AuthError, NotFoundError, RequestError
from soclite.runtime import Runtime

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# an address the SMTP sender will take: one @, no spaces or list separators (RFC 5321's full grammar is not
# needed to refuse typing mistakes; the server's answer is the real check and a failure shows in the archive)
EMAIL = re.compile(r"^[^@\s,;<>]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_RECIPIENTS = 50


def _visible(runtime: Runtime, me: Principal, schedule: ReportSchedule) -> bool:
    scope = scope_of(runtime, me)
    return scope is None or (schedule.unit is not None and schedule.unit in scope)


def listing(runtime: Runtime, me: Principal) -> list[dict[str, Any]]:
    """The schedules the caller may see: the UI-managed ones (editable) and the settings file's (read-only)."""
    if me.role is not Role.ADMIN:
        raise AuthError("report schedules: admins only")
    out = [{"schedule": m.schedule, "source": "ui", "updated_by": m.updated_by, "updated_at": m.updated_at}
           for m in runtime.report_schedules.list_all() if _visible(runtime, me, m.schedule)]  # fmt: skip
    out += [{"schedule": s, "source": "settings", "updated_by": None, "updated_at": None}
            for s in runtime.settings.reports.schedules if _visible(runtime, me, s)]  # fmt: skip
    return sorted(out, key=lambda item: item["schedule"].name)


def save(runtime: Runtime, me: Principal, data: dict[str, Any]) -> ReportSchedule:
    """Create or replace a schedule from ``data`` (the ReportSchedule fields)."""
    if me.role is not Role.ADMIN:
        raise AuthError("report schedules: admins only")
    name = str(data.get("name") or "").strip()
    if not NAME.match(name):
        raise RequestError("schedule name: 1 to 64 letters, digits, . _ - (starting with a letter or digit)")
    if name in {s.name for s in runtime.settings.reports.schedules}:
        raise RequestError(f"schedule {name!r} is defined in the settings file; choose another name")
    recipients = [r.strip() for r in data.get("recipients") or [] if r.strip()]
    bad = [r for r in recipients if not EMAIL.match(r)]
    if bad or len(recipients) > MAX_RECIPIENTS:
        raise RequestError(f"recipients: up to {MAX_RECIPIENTS} e-mail addresses" + (f"; not one: {bad[0]}" if bad else ""))
    if not data.get("formats"):
        raise RequestError("choose at least one format (PDF, HTML, CSV, DOCX)")
    try:
        schedule = ReportSchedule.model_validate({**data, "name": name, "recipients": recipients})
    except ValidationError as exc:
        raise RequestError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    scope = scope_of(runtime, me)
    if schedule.unit is not None and schedule.unit not in {u.code for u in runtime.store.list_units()}:
        raise RequestError(f"unknown unit {schedule.unit!r}")
    if scope is not None and (schedule.unit is None or schedule.unit not in scope):
        raise AuthError("a unit admin may only schedule reports of its own subtree")
    before = runtime.report_schedules.get(name)
    if before is not None and not _visible(runtime, me, before.schedule):
        raise AuthError(f"schedule {name!r} belongs to another unit; choose another name")
    if schedule.cron:  # refuse a bad crontab now, not when the scheduler next starts
        from soclite.reports.scheduler import trigger_for

        try:
            trigger_for(schedule, runtime.settings.timezone)
        except Exception as exc:  # ConfigError, or APScheduler's ValueError for a field out of range
            raise RequestError(str(exc)) from exc
    runtime.report_schedules.put(schedule, actor_of(me))
    audit.record(runtime, me, "report_schedule.put", f"report-schedule:{name}",
                 before.schedule.model_dump(mode="json") if before else None, schedule.model_dump(mode="json"),
                 schedule.unit)  # fmt: skip
    _resync(runtime)
    return schedule


def remove(runtime: Runtime, me: Principal, name: str) -> None:
    if me.role is not Role.ADMIN:
        raise AuthError("report schedules: admins only")
    found = runtime.report_schedules.get(name)
    if found is None or not _visible(runtime, me, found.schedule):
        raise NotFoundError(f"no report schedule {name!r} made in the UI in your units")
    runtime.report_schedules.delete(name)
    audit.record(runtime, me, "report_schedule.delete", f"report-schedule:{name}",
                 found.schedule.model_dump(mode="json"), None, found.schedule.unit)  # fmt: skip
    _resync(runtime)


def _resync(runtime: Runtime) -> None:
    if runtime.scheduler is not None:
        runtime.scheduler.reconcile()
