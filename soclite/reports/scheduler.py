"""Scheduled reports: APScheduler 3 with a persistent SQLAlchemy job store.

Jobs live in ``data_dir/scheduler.db`` so their next run time survives a
restart. A run missed while soclite was down is produced at the next start:
the persisted job's next run time is in the past, ``misfire_grace_time`` is
large and ``coalesce`` folds several missed runs into one; the run itself then
produces every period of the schedule not archived yet since its last report
(bounded), so a month skipped during a long outage is not lost either.
Producing a (schedule, period) pair is idempotent: a second run skips it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from soclite.config import ReportSchedule
from soclite.errors import ConfigError, SocliteError
from soclite.reports.annual_schedule import AnnualPass
from soclite.reports.annual_schedule import run_pass as run_annual_pass
from soclite.reports.archive import ReportArchive
from soclite.reports.delivery import deliver, submit_national, sync_outbox_deliveries
from soclite.reports.periods import SCHEDULE_KINDS, Period, last_completed, parse_period, timezone_of
from soclite.reports.service import ReportRequest, generate

log = logging.getLogger(__name__)

JOB_PREFIX = "report:"
RETRY_JOB = "report-deliveries:retry"
INCIDENT_JOB = "incidents:escalate"
RETENTION_JOB = "retention:run"
ANNUAL_JOB = "annual-report:calendar"
TREND_JOB = "trends:detect"
REVIEW_JOB = "reviews:remind"
#: a run missed by up to 40 days (a monthly report over a long outage) still runs at the next start
MISFIRE_GRACE_SECONDS = 40 * 86400
#: at most this many missed periods are produced by one run (a daily schedule after a long outage)
MAX_CATCH_UP = 31

#: the running scheduler: persisted jobs refer to module-level functions, which find it here.
_ACTIVE: dict[str, ReportScheduler] = {}
_ACTIVE_LOCK = threading.Lock()


def trigger_for(schedule: ReportSchedule, tz: str) -> BaseTrigger:
    """When a schedule runs: its cron line if given, else by ``every`` / ``day`` / ``hour``."""
    zone = timezone_of(tz)
    if schedule.cron:
        fields = schedule.cron.split()
        try:
            if len(fields) == 5:
                return CronTrigger.from_crontab(schedule.cron, timezone=zone)
            if len(fields) == 6:
                second, minute, hour, day, month, dow = fields
                return CronTrigger(
                    second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=zone
                )
        except ValueError as exc:
            raise ConfigError(f"invalid cron {schedule.cron!r}: {exc}", key=f"reports.schedules.{schedule.name}.cron") from exc
        raise ConfigError(
            f"invalid cron {schedule.cron!r}: expected 5 or 6 fields", key=f"reports.schedules.{schedule.name}.cron"
        )
    every = schedule.every
    if every == "daily":
        return CronTrigger(hour=schedule.hour, minute=0, timezone=zone)
    if every == "weekly":
        # day 1..7 = Monday..Sunday; larger values wrap so any valid config works
        return CronTrigger(day_of_week=(schedule.day - 1) % 7, hour=schedule.hour, minute=0, timezone=zone)
    if every == "monthly":
        return CronTrigger(day=schedule.day, hour=schedule.hour, minute=0, timezone=zone)
    if every == "quarterly":
        return CronTrigger(month="1,4,7,10", day=schedule.day, hour=schedule.hour, minute=0, timezone=zone)
    return CronTrigger(month="1,7", day=schedule.day, hour=schedule.hour, minute=0, timezone=zone)


def run_schedule(name: str) -> None:
    """Job entry point (referenced by text in the job store)."""
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is None:
        log.warning("report schedule %s fired with no active ReportScheduler", name)
        return
    scheduler.run(name)


def retry_deliveries() -> None:
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is not None:
        scheduler.retry_failed_deliveries()


def check_incidents() -> None:
    """Job entry point of the incident clock (referenced by text in the job store)."""
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is not None:
        scheduler.escalate_incidents()


def run_retention_job() -> None:
    """Job entry point of the daily retention run (referenced by text in the job store)."""
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is not None:
        scheduler.run_retention()


def annual_calendar() -> None:
    """Job entry point of the annual report's draft and reminders (referenced by text in the job store)."""
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is not None:
        scheduler.annual_pass()


def detect_trends() -> None:
    """Job entry point of statistical trend detection (referenced by text in the job store)."""
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is not None:
        scheduler.trend_pass()


def remind_reviews_job() -> None:
    """Job entry point of the log-review and threshold-tuning reminders (referenced by text in the job store)."""
    with _ACTIVE_LOCK:
        scheduler = _ACTIVE.get("current")
    if scheduler is not None:
        scheduler.review_pass()


class ReportScheduler:
    """Runs ``settings.reports.schedules``; ``start()`` / ``shutdown()`` are called by the server."""

    def __init__(self, runtime: Any, *, retry_minutes: int = 15, incident_seconds: float = 60.0) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        #: how often the incident clock looks for deadlines to escalate
        self.incident_seconds = incident_seconds
        self.archive = ReportArchive(self.settings.data_dir, getattr(runtime, "control", None))
        self.retry_minutes = retry_minutes
        url = f"sqlite:///{(self.settings.data_dir / 'scheduler.db').resolve()}"
        self._scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=url, tablename="report_jobs")},
            job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS, "max_instances": 1},
            timezone=timezone_of(self.settings.timezone),
        )
        self.produced: list[str] = []

    @property
    def schedules(self) -> dict[str, ReportSchedule]:
        """The settings file's schedules and those admins made in the UI (control.db); a name in the settings
        file wins (the UI refuses to reuse one, so this only matters if the file gains it later)."""
        managed = getattr(self.runtime, "report_schedules", None)
        made_in_ui = {m.schedule.name: m.schedule for m in managed.list_all()} if managed is not None else {}
        return made_in_ui | {s.name: s for s in self.settings.reports.schedules}

    def start(self) -> None:
        """Load persisted jobs, reconcile them with the configuration, then run (missed runs fire now)."""
        with _ACTIVE_LOCK:
            _ACTIVE["current"] = self
        self._scheduler.start(paused=True)
        self.reconcile()
        self._add_fixed_jobs()
        self._scheduler.resume()

    def reconcile(self) -> None:
        """Make the report jobs match :attr:`schedules` (called at start and after a change in the UI)."""
        existing = {job.id: job for job in self._scheduler.get_jobs()}
        wanted: set[str] = set()
        for name, schedule in self.schedules.items():
            job_id = JOB_PREFIX + name
            wanted.add(job_id)
            trigger = trigger_for(schedule, self.settings.timezone)
            job = existing.get(job_id)
            if job is not None and str(job.trigger) == str(trigger) and tuple(job.args) == (name,):
                # unchanged: keep the persisted next run time, so a run missed while down fires at resume
                continue
            self._scheduler.add_job(
                "soclite.reports.scheduler:run_schedule",
                trigger,
                args=[name],
                id=job_id,
                name=f"report {name} ({schedule.every})",
                replace_existing=True,
            )
        for job_id in existing:
            if job_id.startswith(JOB_PREFIX) and job_id not in wanted:
                self._scheduler.remove_job(job_id)

    def _add_fixed_jobs(self) -> None:
        self._scheduler.add_job(
            "soclite.reports.scheduler:retry_deliveries",
            IntervalTrigger(minutes=self.retry_minutes),
            id=RETRY_JOB,
            replace_existing=True,
        )
        if getattr(self.runtime, "incidents", None) is not None and getattr(self.runtime, "outbox", None) is not None:
            self._scheduler.add_job(
                "soclite.reports.scheduler:check_incidents",
                IntervalTrigger(seconds=self.incident_seconds),
                id=INCIDENT_JOB,
                replace_existing=True,
            )
        if getattr(self.runtime, "systems", None) is not None:
            # daily, in the small hours of the site's day; a run missed while down fires at the next start
            self._scheduler.add_job(
                "soclite.reports.scheduler:run_retention_job",
                CronTrigger(hour=self.settings.store.retention_hour, minute=17,
                            timezone=timezone_of(self.settings.timezone)),
                id=RETENTION_JOB,
                name="retention by security level (archive, then delete)",
                replace_existing=True,
            )
        annual = self.settings.compliance.annual_report
        if annual.enabled:  # daily: the pass itself knows which days of December matter
            self._scheduler.add_job(
                "soclite.reports.scheduler:annual_calendar",
                CronTrigger(hour=annual.hour, minute=0, timezone=timezone_of(self.settings.timezone)),
                id=ANNUAL_JOB,
                replace_existing=True,
            )
        elif self._scheduler.get_job(ANNUAL_JOB) is not None:
            self._scheduler.remove_job(ANNUAL_JOB)
        trends = self.settings.compliance.trends
        if trends.enabled and getattr(self.runtime, "outbox", None) is not None:
            self._scheduler.add_job(
                "soclite.reports.scheduler:detect_trends",
                IntervalTrigger(minutes=trends.every_minutes),
                id=TREND_JOB,
                replace_existing=True,
            )
        if self.settings.compliance.reviews.enabled and getattr(self.runtime, "reviews", None) is not None:
            # daily, like the annual calendar: a due date is a day, and a pass missed while down fires at start
            self._scheduler.add_job(
                "soclite.reports.scheduler:remind_reviews_job",
                CronTrigger(hour=annual.hour, minute=5, timezone=timezone_of(self.settings.timezone)),
                id=REVIEW_JOB,
                replace_existing=True,
            )
        elif self._scheduler.get_job(REVIEW_JOB) is not None:
            self._scheduler.remove_job(REVIEW_JOB)

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        with _ACTIVE_LOCK:
            if _ACTIVE.get("current") is self:
                del _ACTIVE["current"]
        self.archive.close()

    def next_run_times(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def due_periods(self, schedule: ReportSchedule, now: datetime) -> list[Period]:
        """The periods this run should produce: the last completed one, plus any skipped since the last report."""
        kind = SCHEDULE_KINDS[schedule.every]
        latest = last_completed(kind, now, self.settings.timezone)
        last_code = self.archive.last_scheduled_period(schedule.name)
        if last_code is None:
            return [latest]
        try:
            period = parse_period(last_code, self.settings.timezone).next()
        except SocliteError:
            return [latest]
        periods: list[Period] = []
        while period.start <= latest.start and len(periods) < MAX_CATCH_UP:
            periods.append(period)
            period = period.next()
        return periods

    def run(self, name: str, now: datetime | None = None) -> list[str]:
        """Produce (and deliver) the due reports of schedule ``name``; return the archived report ids."""
        schedule = self.schedules.get(name)
        if schedule is None:
            log.warning("report schedule %s is no longer configured; skipping", name)
            return []
        moment = now or datetime.now(UTC)
        produced: list[str] = []
        for period in self.due_periods(schedule, moment):
            if self.archive.find_scheduled(name, period.code) is not None:
                continue
            request = ReportRequest(
                period=period.code,
                lang=schedule.lang,
                formats=tuple(schedule.formats),
                unit=schedule.unit,
                requested_by=f"schedule:{name}",
                schedule=name,
            )
            try:
                report, _ctx, _out = generate(
                    self.runtime.store, self.settings, self.archive, request, runtime=self.runtime
                )
            except SocliteError:
                log.exception("scheduled report %s for %s failed", name, period.code)
                continue
            produced.append(report.id)
            self.produced.append(report.id)
            log.info("scheduled report %s for %s archived as %s", name, period.code, report.id)
            outbox = getattr(self.runtime, "outbox", None)
            if schedule.recipients:
                deliver(self.archive, report, schedule.recipients, self.settings.smtp, outbox=outbox)
            if schedule.national:
                submit_national(self.archive, report, self.settings, outbox=outbox)
        return produced

    def escalate_incidents(self, now: datetime | None = None) -> list[str]:
        """One pass of the incident clock: escalation e-mails for deadlines due soon or passed."""
        from soclite.reports.incidents import escalate_due

        try:
            return escalate_due(self.runtime.incidents, self.runtime.outbox, self.settings, now or datetime.now(UTC))
        except SocliteError:
            log.exception("the incident clock's escalation pass failed")
            return []

    def run_retention(self, now: datetime | None = None) -> Any:
        """One retention run (:mod:`soclite.control.retention`); a failure is recorded there and logged here."""
        from soclite.control.retention import run_retention

        try:
            return run_retention(self.runtime.control, self.runtime.systems, self.runtime.store, self.settings, now)
        except (SocliteError, OSError):
            log.exception("the retention run failed")
            return None

    def annual_pass(self, now: datetime | None = None) -> AnnualPass:
        """The annual report's (Form 08) draft and deadline reminders for ``now`` (soclite.reports.annual_schedule)."""
        try:
            return run_annual_pass(self.runtime, self.archive, now or datetime.now(UTC))
        except SocliteError:
            log.exception("the annual report's calendar pass failed")
            return AnnualPass(draft=None, reminders=[])

    def trend_pass(self, now: datetime | None = None) -> list[str]:
        """Statistical trend detection over the last full hour; notifications for new rises."""
        from soclite.reports.trends import notify_trends

        try:
            return notify_trends(self.runtime, now or datetime.now(UTC))
        except SocliteError:
            log.exception("the trend detection pass failed")
            return []

    def review_pass(self, now: datetime | None = None) -> list[str]:
        """Reminders for the log reviews and threshold tunings due (soclite.reports.review_reminders)."""
        from soclite.reports.review_reminders import remind_reviews

        try:
            return remind_reviews(self.runtime.reviews, self.runtime.outbox, self.settings, now or datetime.now(UTC))
        except SocliteError:
            log.exception("the review reminders pass failed")
            return []

    def retry_failed_deliveries(self) -> None:
        """Direct SMTP deliveries that failed are tried again (the outbox retries its own, whose outcome
        is copied into the archive here)."""
        try:
            sync_outbox_deliveries(self.archive, getattr(self.runtime, "outbox", None))
        except SocliteError:
            log.exception("reading delivery outcomes from the outbox failed")
        for report_id, recipient in self.archive.failed_deliveries():
            try:
                report = self.archive.get(report_id)
                deliver(self.archive, report, [recipient], self.settings.smtp, attempts=1)
            except SocliteError:
                log.exception("retrying delivery of report %s to %s failed", report_id, recipient)
