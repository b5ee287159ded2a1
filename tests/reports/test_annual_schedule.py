"""The annual report's calendar with a controlled clock: the Form 08 draft on 15/12, reminders ahead of 20/12
and 25/12 queued once each, delivered by e-mail through the real outbox and worker to a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from soclite.playbooks.worker import Worker
from soclite.reports.annual_schedule import SCHEDULE_NAME, run_pass
from soclite.reports.archive import ReportArchive
from tests.playbooks.support import build_runtime, make_settings, wait_for
from tests.reports.seed import seed
from tests.reports.smtp import free_port, start_smtp

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def at(day: int, hour: int = 8, month: int = 12, year: int = 2024) -> datetime:
    """A local (ICT) time in December 2024, as the scheduler's clock would read it."""
    return datetime(year, month, day, hour, tzinfo=ZONE).astimezone(UTC)


def test_draft_then_reminders_before_each_deadline(tmp_path: Path) -> None:
    port = free_port()
    controller, inbox = start_smtp(port)
    settings = make_settings(tmp_path, smtp={"host": "127.0.0.1", "port": port, "sender": "soc@tinh.gov.vn"},
                             compliance={"annual_report": {"notify": ["lanh-dao@tinh.gov.vn"],
                                                           "remind_days_before": [3, 1], "formats": ["html", "csv"]}})
    runtime = build_runtime(settings)
    seed(runtime.store, august=50)
    archive = ReportArchive(settings.data_dir, runtime.control)
    worker = Worker(runtime, poll_seconds=0.05)
    try:
        # before the year closes nothing happens, even in December
        assert run_pass(runtime, archive, at(14, 23)).draft is None
        assert archive.find_scheduled(SCHEDULE_NAME, "2024-Y") is None
        first = run_pass(runtime, archive, at(15))
        draft = archive.find_scheduled(SCHEDULE_NAME, "2024-Y")
        assert draft is not None and first.draft == draft.id and first.reminders == []
        assert draft.params["start"] == "2023-12-14T17:00:00+00:00"
        # the same day again: no second draft (no second document number)
        assert run_pass(runtime, archive, at(15, 20)).draft is None
        assert run_pass(runtime, archive, at(16)).reminders == []
        assert run_pass(runtime, archive, at(17)).reminders == ["annual:2024-Y:unit:3"]
        assert run_pass(runtime, archive, at(19)).reminders == ["annual:2024-Y:unit:1"]
        # 20/12: the units' deadline has come (no more reminders for it); the owner's is still 5 days ahead
        assert run_pass(runtime, archive, at(20)).reminders == []
        # soclite down from 21/12 to 23/12: the 22/12 reminder goes out at the next pass, before the deadline
        assert run_pass(runtime, archive, at(23, 9)).reminders == ["annual:2024-Y:owner:3"]
        assert run_pass(runtime, archive, at(24)).reminders == ["annual:2024-Y:owner:1"]
        assert run_pass(runtime, archive, at(25)).reminders == []
        # January: nothing
        assert run_pass(runtime, archive, at(5, month=1, year=2025)).reminders == []

        worker.start()
        wait_for(lambda: len(inbox.messages) >= 4, timeout=60)
        subjects = sorted(str(m["Subject"]) for m in inbox.messages)
        assert len(subjects) == 4, subjects  # one e-mail per reminder
        assert sum("trước ngày 20/12/2024" in s for s in subjects) == 2
        assert sum("trước ngày 25/12/2024" in s and "Bộ Công an" in s for s in subjects) == 2
        body = next(m for m in inbox.messages if "còn 3 ngày" in str(m["Subject"])).get_content()
        assert f"số {draft.doc_number}" in body and "từ ngày 15/12/2023 đến ngày 14/12/2024" in body
        assert all(m["To"] == "lanh-dao@tinh.gov.vn" for m in inbox.messages)
    finally:
        worker.stop()
        archive.close()
        runtime.close()
        controller.stop()


def test_disabled_calendar_does_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, compliance={"annual_report": {"enabled": False},
                                                   "incident_notify": ["x@tinh.gov.vn"]})
    runtime = build_runtime(settings)
    archive = ReportArchive(settings.data_dir, runtime.control)
    try:
        assert run_pass(runtime, archive, at(15) + timedelta(hours=1)).draft is None
        assert run_pass(runtime, archive, at(19)).reminders == []
    finally:
        archive.close()
        runtime.close()


def test_the_scheduler_runs_the_calendar_daily_and_trend_detection_hourly(tmp_path: Path) -> None:
    from soclite.reports.scheduler import ANNUAL_JOB, TREND_JOB, ReportScheduler

    runtime = build_runtime(make_settings(tmp_path, compliance={"incident_notify": ["x@tinh.gov.vn"]}))
    scheduler = ReportScheduler(runtime)
    try:
        scheduler.start()
        runs = scheduler.next_run_times()
        annual, trend = runs[ANNUAL_JOB], runs[TREND_JOB]
        assert annual is not None and annual.astimezone(ZONE).hour == 8 and annual.astimezone(ZONE).minute == 0
        assert trend is not None and timedelta(0) < trend - datetime.now(UTC) <= timedelta(minutes=60)
    finally:
        scheduler.shutdown()
        runtime.close()


def test_a_draft_per_unit_with_systems_scoped_to_it(tmp_path: Path) -> None:
    from soclite.control.systems import SystemCreate

    settings = make_settings(tmp_path, compliance={"annual_report": {"formats": ["csv"]}})
    runtime = build_runtime(settings)
    seed(runtime.store, august=50)
    for name, unit in (("Phần mềm bệnh viện", "bvdk"), ("Hồ sơ sức khỏe", "syt"), ("Một cửa huyện", "ubnd-hx"),
                       ("Cổng tỉnh", None)):
        runtime.systems.create(SystemCreate(name=name, owner="UBND tỉnh", operator="TT", level=3, unit=unit),
                               actor="test", unit=None, scope=None)
    archive = ReportArchive(settings.data_dir, runtime.control)
    try:
        assert run_pass(runtime, archive, at(14, 23)).unit_drafts == {}  # the year has not closed
        first = run_pass(runtime, archive, at(15))
        assert first.draft is not None and sorted(first.unit_drafts) == ["bvdk", "syt", "ubnd-hx"]
        assert run_pass(runtime, archive, at(16)).unit_drafts == {}  # once per unit and year
        texts = {}
        for unit, report_id in first.unit_drafts.items():
            report = archive.find_scheduled(f"{SCHEDULE_NAME}:{unit}", "2024-Y")
            assert report is not None and report.id == report_id and report.scope_unit == unit
            texts[unit] = archive.file_path(report, "csv").read_text(encoding="utf-8")
        province = archive.find_scheduled(SCHEDULE_NAME, "2024-Y")
        assert province is not None and province.scope_unit is None
        whole = archive.file_path(province, "csv").read_text(encoding="utf-8")
        assert all(name in whole for name in ("Phần mềm bệnh viện", "Hồ sơ sức khỏe", "Một cửa huyện", "Cổng tỉnh"))
        # a unit's draft holds its systems and those of the units below it, nobody else's
        assert "Một cửa huyện" in texts["ubnd-hx"] and "Hồ sơ sức khỏe" not in texts["ubnd-hx"]
        assert "Cổng tỉnh" not in texts["ubnd-hx"]
        assert "Phần mềm bệnh viện" in texts["bvdk"] and "Hồ sơ sức khỏe" not in texts["bvdk"]
        assert "Hồ sơ sức khỏe" in texts["syt"] and "Phần mềm bệnh viện" in texts["syt"]  # bvdk is under syt
        assert "Một cửa huyện" not in texts["syt"]
    finally:
        archive.close()
        runtime.close()
