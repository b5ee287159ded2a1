"""Schedules: on time, after a crash and restart (missed run produced at start), catch-up, delivery by e-mail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from soclite.config import Settings, load_settings
from soclite.reports.archive import ReportArchive
from soclite.reports.delivery import deliver
from soclite.reports.periods import last_completed
from soclite.reports.scheduler import ReportScheduler
from soclite.reports.service import ReportRequest, generate
from soclite.store.sqlite import SQLiteStore
from tests.reports.seed import seed
from tests.reports.smtp import free_port, start_smtp

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _cron_at(moment: datetime) -> str:
    """A 6-field cron (seconds first) firing once a day at ``moment`` (local time)."""
    local = moment.astimezone(ZONE)
    return f"{local.second} {local.minute} {local.hour} * * *"


def _config(data_dir: Path, schedules: list[dict[str, Any]], smtp_port: int = 25) -> Path:
    path = data_dir / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "environment": "test",
                "data_dir": str(data_dir),
                "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "soc@tinh.gov.vn"},
                "reports": {"schedules": schedules},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return path


def _runtime(settings: Settings) -> Any:
    store = SQLiteStore.from_settings(settings)
    store.open()
    return SimpleNamespace(settings=settings, store=store, outbox=None, engine=None)


def _wait_for(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    seed(store, august=50)
    store.close()
    yield tmp_path


def test_schedule_runs_on_time_and_mails_the_report(data_dir: Path) -> None:
    port = free_port()
    controller, inbox = start_smtp(port)
    fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    settings = load_settings(_config(data_dir, [
        {"name": "hang-ngay", "every": "daily", "cron": _cron_at(fire), "formats": ["csv", "html"],
         "recipients": ["lanhdao@tinh.gov.vn"]},
    ], smtp_port=port))
    runtime = _runtime(settings)
    scheduler = ReportScheduler(runtime)
    try:
        scheduler.start()
        period = last_completed("day", fire, settings.timezone)
        report = _wait_for(lambda: scheduler.archive.find_scheduled("hang-ngay", period.code), 60)
        assert report is not None, "the scheduled report was not produced"
        assert fire - timedelta(seconds=1) <= report.created_at <= fire + timedelta(seconds=10)
        assert _wait_for(lambda: inbox.messages, 10)
        msg = inbox.messages[0]
        assert msg["To"] == "lanhdao@tinh.gov.vn" and report.doc_number in msg["Subject"]
        names = sorted(part.get_filename() for part in msg.iter_attachments())
        assert names == sorted(f"{report.doc_number.replace('/', '-')}_{period.code}.{f}" for f in ("csv", "html"))
        delivered = _wait_for(lambda: scheduler.archive.get(report.id).deliveries, 5)
        assert delivered[0]["status"] == "sent"
    finally:
        scheduler.shutdown()
        runtime.store.close()
        controller.stop()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from soclite.config import load_settings
    from soclite.store.sqlite import SQLiteStore
    from soclite.reports.scheduler import ReportScheduler
    from types import SimpleNamespace
    settings = load_settings(sys.argv[1])
    store = SQLiteStore.from_settings(settings); store.open()
    scheduler = ReportScheduler(SimpleNamespace(settings=settings, store=store, outbox=None, engine=None))
    scheduler.start()
    print("started", flush=True)
    time.sleep(120)
    """
)


def test_run_missed_while_down_is_produced_at_restart(data_dir: Path) -> None:
    # far enough ahead that a child starting on a loaded machine (full suite, 2 cores) is up before it
    fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    config = _config(data_dir, [{"name": "hang-ngay", "every": "daily", "cron": _cron_at(fire), "formats": ["csv"]}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCLITE_")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(config)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        assert datetime.now(UTC) < fire, "the child started too late for this test"
    finally:
        child.send_signal(signal.SIGKILL)  # a crash: no orderly shutdown
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    period = last_completed("day", fire, "Asia/Ho_Chi_Minh")
    archive = ReportArchive(data_dir)
    assert archive.find_scheduled("hang-ngay", period.code) is None
    archive.close()
    time.sleep(max(0.0, (fire - datetime.now(UTC)).total_seconds()) + 1.5)  # soclite is down at fire time

    settings = load_settings(config)
    runtime = _runtime(settings)
    scheduler = ReportScheduler(runtime)
    started = datetime.now(UTC)
    try:
        scheduler.start()
        report = _wait_for(lambda: scheduler.archive.find_scheduled("hang-ngay", period.code), 60)
        assert report is not None, "the missed run was not produced at restart"
        assert report.created_at >= started > fire
        # the job keeps its daily rhythm: next run tomorrow at the same time
        nxt = scheduler.next_run_times()["report:hang-ngay"]
        assert nxt is not None and nxt.astimezone(UTC) > fire + timedelta(hours=23)
    finally:
        scheduler.shutdown()
        runtime.store.close()


def test_catch_up_and_idempotence(data_dir: Path) -> None:
    settings = load_settings(_config(data_dir, [{"name": "thang", "every": "monthly", "formats": ["csv"]}]))
    runtime = _runtime(settings)
    scheduler = ReportScheduler(runtime)  # not started: run() is called directly with a chosen "now"
    try:
        first = scheduler.run("thang", now=datetime(2024, 7, 2, 1, 0, tzinfo=UTC))
        assert [scheduler.archive.get(i).period for i in first] == ["2024-06"]
        # soclite was down through August: September's run produces July and August
        caught = scheduler.run("thang", now=datetime(2024, 9, 2, 1, 0, tzinfo=UTC))
        assert [scheduler.archive.get(i).period for i in caught] == ["2024-07", "2024-08"]
        assert scheduler.run("thang", now=datetime(2024, 9, 3, 1, 0, tzinfo=UTC)) == []
        august = scheduler.archive.get(caught[1])
        assert august.summary.startswith("Trong tháng 8/2024, đã ghi nhận ")
    finally:
        scheduler.shutdown()
        runtime.store.close()


def test_failed_delivery_keeps_the_report_and_is_retried(data_dir: Path) -> None:
    port = free_port()  # nothing listens here yet
    settings = load_settings(_config(data_dir, [], smtp_port=port))
    runtime = _runtime(settings)
    scheduler = ReportScheduler(runtime)
    try:
        report, _ctx, _out = generate(runtime.store, settings, scheduler.archive,
                                      ReportRequest(period="2024-08", formats=("csv",)))
        result = deliver(scheduler.archive, report, ["a@tinh.gov.vn"], settings.smtp, attempts=2,
                         backoff_seconds=0.05)
        assert result == {"a@tinh.gov.vn": "failed"}
        shown = scheduler.archive.get(report.id)
        assert shown.deliveries[0]["status"] == "failed" and shown.deliveries[0]["attempts"] == 2
        assert "127.0.0.1" in shown.deliveries[0]["last_error"]
        assert scheduler.archive.file_path(shown, "csv").is_file()  # the report is not lost
        controller, inbox = start_smtp(port)
        try:
            scheduler.retry_failed_deliveries()
            assert len(inbox.messages) == 1
            assert scheduler.archive.get(report.id).deliveries[0]["status"] == "sent"
        finally:
            controller.stop()
    finally:
        scheduler.shutdown()
        runtime.store.close()
