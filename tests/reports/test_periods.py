"""Periods, labels, number formatting, and the clear errors for bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from soclite.config import Settings
from soclite.errors import ReportError
from soclite.models import Unit
from soclite.reports.archive import ReportArchive
from soclite.reports.i18n import num
from soclite.reports.periods import last_completed, parse_period
from soclite.reports.service import ReportRequest, generate
from soclite.store.sqlite import SQLiteStore


@pytest.mark.parametrize(
    ("code", "start", "end", "vi", "en"),
    [
        ("2024-08", "2024-07-31T17:00:00+00:00", "2024-08-31T17:00:00+00:00", "tháng 8/2024", "August 2024"),
        ("2024-Q3", "2024-06-30T17:00:00+00:00", "2024-09-30T17:00:00+00:00", "quý III/2024", "Q3 2024"),
        ("2024-Q1", "2023-12-31T17:00:00+00:00", "2024-03-31T17:00:00+00:00", "quý I/2024", "Q1 2024"),
        ("2024-H2", "2024-06-30T17:00:00+00:00", "2024-12-31T17:00:00+00:00", "6 tháng cuối năm 2024",
         "the second half of 2024"),
        ("2024-H1", "2023-12-31T17:00:00+00:00", "2024-06-30T17:00:00+00:00", "6 tháng đầu năm 2024",
         "the first half of 2024"),
        ("2024-08-15", "2024-08-14T17:00:00+00:00", "2024-08-15T17:00:00+00:00", "ngày 15/8/2024",
         "August 15, 2024"),
        ("2024-W33", "2024-08-11T17:00:00+00:00", "2024-08-18T17:00:00+00:00",
         "tuần từ 12/8/2024 đến 18/8/2024", "the week of 2024-08-12 to 2024-08-18"),
    ],
)
def test_period_bounds_are_local_midnights_in_utc(code: str, start: str, end: str, vi: str, en: str) -> None:
    period = parse_period(code)
    assert period.start.isoformat() == start
    assert period.end.isoformat() == end
    assert period.label("vi") == vi
    assert period.label("en") == en
    assert period.code == code
    assert period.next().previous() == period


def test_previous_periods() -> None:
    assert parse_period("2024-01").previous().code == "2023-12"
    assert parse_period("2024-Q1").previous().code == "2023-Q4"
    assert parse_period("2024-H1").previous().code == "2023-H2"
    assert parse_period("2024-08-01").previous().code == "2024-07-31"


def test_last_completed_period_uses_local_date() -> None:
    # 17:30 UTC on 31 August is already 1 September in Viet Nam: August is complete
    now = datetime(2024, 8, 31, 17, 30, tzinfo=UTC)
    assert last_completed("month", now).code == "2024-08"
    assert last_completed("month", datetime(2024, 8, 31, 16, 30, tzinfo=UTC)).code == "2024-07"
    assert last_completed("quarter", now).code == "2024-Q2"
    assert last_completed("day", now).first_day == date(2024, 8, 31)


def test_vietnamese_numbers() -> None:
    assert num(69600, "vi") == "69.600"
    assert num(19879, "vi") == "19.879"
    assert num(69600, "en") == "69,600"


@pytest.mark.parametrize("code", ["2024-13", "2024-Q5", "2024-H3", "August", "", "2024-8-1", "2024-W54", "1999-01"])
def test_unknown_period_is_a_clear_error(code: str) -> None:
    with pytest.raises(ReportError, match="period"):
        parse_period(code)


def test_bad_language_format_and_unit_are_clear_errors(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    store.put_unit(Unit(code="syt", name="Sở Y tế"))
    archive = ReportArchive(tmp_path)
    settings = Settings(environment="test", data_dir=tmp_path)
    try:
        with pytest.raises(ReportError, match="language 'fr'"):
            generate(store, settings, archive, ReportRequest(period="2024-08", lang="fr"))
        with pytest.raises(ReportError, match="format 'xlsx'"):  # docx became a format (issue 17)
            generate(store, settings, archive, ReportRequest(period="2024-08", formats=("xlsx",)))
        with pytest.raises(ReportError, match=r"unknown unit 'nope'.*syt"):
            generate(store, settings, archive, ReportRequest(period="2024-08", unit="nope"))
        with pytest.raises(ReportError, match="unknown period"):
            generate(store, settings, archive, ReportRequest(period="2024/08"))
        assert archive.recent() == []  # nothing half-made was archived
    finally:
        archive.close()
        store.close()
