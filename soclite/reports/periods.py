"""Reporting periods: parse ``2024-08`` / ``2024-Q3`` / ``2024-H2`` (and daily/weekly forms) into exact bounds.

The annual report (Form 08) has its own year, ``2026-Y``: 15/12/2025 to 14/12/2026, so that units can
report to the system owner before 20/12 and the owner to the Ministry of Public Security before 25/12
(docs/LEGAL.md: per issue 17, the decree's text not verified).

Boundaries are local midnights in the configured time zone (Asia/Ho_Chi_Minh by
default), because "August" for a Vietnamese province starts at 00:00 ICT on
1 August, which is 17:00 UTC on 31 July. The store is queried with the UTC
equivalents, half-open ``[start, end)`` like every store query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soclite.errors import ReportError

PeriodKind = Literal["day", "week", "month", "quarter", "half", "year"]

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}

_PATTERNS: list[tuple[PeriodKind, re.Pattern[str]]] = [
    ("day", re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")),
    ("week", re.compile(r"^(\d{4})-W(\d{1,2})$", re.IGNORECASE)),
    ("month", re.compile(r"^(\d{4})-(\d{1,2})$")),
    ("quarter", re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)),
    ("half", re.compile(r"^(\d{4})-H([12])$", re.IGNORECASE)),
    ("year", re.compile(r"^(\d{4})-Y$", re.IGNORECASE)),
]

#: the annual report's year ends on 14 December and the next starts on 15 December (Form 08)
YEAR_START_MONTH, YEAR_START_DAY = 12, 15

#: Sane bounds of a period's year: nothing was monitored before 2000, and past MAX_YEAR the
#: bounds' arithmetic (year 9999 + 6 months) would overflow; a future period is refused anyway.
MIN_YEAR, MAX_YEAR = 2000, 2200

PERIOD_HELP = (
    "2024-08 (month), 2024-Q3 (quarter), 2024-H2 (half-year), 2024-W33 (ISO week), 2024-08-15 (day) "
    "or 2024-Y (the annual report's year, 15/12/2023 to 14/12/2024)"
)


def timezone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportError(f"unknown time zone {name!r} (settings: timezone)") from exc


@dataclass(frozen=True)
class Period:
    """One reporting period: its kind, its first local day and the day after its last."""

    kind: PeriodKind
    first_day: date
    end_day: date  # exclusive
    tz: str = "Asia/Ho_Chi_Minh"

    @property
    def code(self) -> str:
        d = self.first_day
        if self.kind == "day":
            return d.isoformat()
        if self.kind == "week":
            iso = d.isocalendar()
            return f"{iso.year}-W{iso.week:02d}"
        if self.kind == "month":
            return f"{d.year}-{d.month:02d}"
        if self.kind == "quarter":
            return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
        if self.kind == "year":
            return f"{self.end_day.year}-Y"
        return f"{d.year}-H{1 if d.month <= 6 else 2}"

    @property
    def start(self) -> datetime:
        """The first instant, in UTC."""
        return _local_midnight(self.first_day, self.tz)

    @property
    def end(self) -> datetime:
        """The instant after the last one, in UTC (exclusive)."""
        return _local_midnight(self.end_day, self.tz)

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def previous(self) -> Period:
        """The period of the same kind just before this one (for the comparison section)."""
        return period_containing(self.kind, self.first_day - timedelta(days=1), self.tz)

    def next(self) -> Period:
        return period_containing(self.kind, self.end_day, self.tz)

    def label(self, lang: str) -> str:
        """How the period reads in a sentence: ``tháng 8/2024``, ``quý III/2024``, ``August 2024``."""
        d = self.first_day
        last = self.end_day - timedelta(days=1)
        if lang == "vi":
            if self.kind == "day":
                return f"ngày {d.day}/{d.month}/{d.year}"
            if self.kind == "week":
                return f"tuần từ {d.day}/{d.month}/{d.year} đến {last.day}/{last.month}/{last.year}"
            if self.kind == "month":
                return f"tháng {d.month}/{d.year}"
            if self.kind == "quarter":
                return f"quý {_ROMAN[(d.month - 1) // 3 + 1]}/{d.year}"
            if self.kind == "year":
                return f"năm {self.end_day.year}"
            return f"6 tháng {'đầu' if d.month <= 6 else 'cuối'} năm {d.year}"
        if self.kind == "day":
            return f"{d.strftime('%B')} {d.day}, {d.year}"
        if self.kind == "week":
            return f"the week of {d.isoformat()} to {last.isoformat()}"
        if self.kind == "month":
            return f"{d.strftime('%B')} {d.year}"
        if self.kind == "quarter":
            return f"Q{(d.month - 1) // 3 + 1} {d.year}"
        if self.kind == "year":
            return f"the year {self.end_day.year}"
        return f"the {'first' if d.month <= 6 else 'second'} half of {d.year}"

    def range_text(self, lang: str) -> str:
        last = self.end_day - timedelta(days=1)
        if lang == "vi":
            return f"từ ngày {self.first_day.strftime('%d/%m/%Y')} đến ngày {last.strftime('%d/%m/%Y')}"
        return f"from {self.first_day.isoformat()} to {last.isoformat()}"


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone_of(tz)).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + (day.month - 1) + months
    return date(total // 12, total % 12 + 1, 1)


def period_containing(kind: PeriodKind, day: date, tz: str = "Asia/Ho_Chi_Minh") -> Period:
    """The period of ``kind`` that contains the local date ``day``."""
    if kind == "day":
        return Period(kind, day, day + timedelta(days=1), tz)
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        return Period(kind, first, first + timedelta(days=7), tz)
    if kind == "month":
        first = date(day.year, day.month, 1)
        return Period(kind, first, _add_months(first, 1), tz)
    if kind == "quarter":
        first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return Period(kind, first, _add_months(first, 3), tz)
    if kind == "half":
        first = date(day.year, 1 if day.month <= 6 else 7, 1)
        return Period(kind, first, _add_months(first, 6), tz)
    if kind == "year":
        start_this_year = date(day.year, YEAR_START_MONTH, YEAR_START_DAY)
        first = start_this_year if day >= start_this_year else start_this_year.replace(year=day.year - 1)
        return Period(kind, first, first.replace(year=first.year + 1), tz)
    raise ReportError(f"unknown period kind {kind!r}")


def parse_period(text: str, tz: str = "Asia/Ho_Chi_Minh") -> Period:
    """Parse a period code; anything else is a :class:`ReportError` naming the accepted forms."""
    value = (text or "").strip()
    timezone_of(tz)
    for kind, pattern in _PATTERNS:
        match = pattern.match(value)
        if not match:
            continue
        numbers = [int(g) for g in match.groups()]
        try:
            if kind == "day":
                day = date(numbers[0], numbers[1], numbers[2])
            elif kind == "week":
                day = date.fromisocalendar(numbers[0], numbers[1], 1)
            elif kind == "month":
                day = date(numbers[0], numbers[1], 1)
            elif kind == "quarter":
                day = date(numbers[0], (numbers[1] - 1) * 3 + 1, 1)
            elif kind == "year":  # "2026-Y" ends on 14/12/2026
                day = date(numbers[0], YEAR_START_MONTH, YEAR_START_DAY - 1)
            else:
                day = date(numbers[0], 1 if numbers[1] == 1 else 7, 1)
        except ValueError as exc:
            raise ReportError(f"invalid period {text!r}: {exc}; expected {PERIOD_HELP}") from exc
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise ReportError(f"invalid period {text!r}: the year must be {MIN_YEAR}-{MAX_YEAR}")
        return period_containing(kind, day, tz)
    raise ReportError(f"unknown period {text!r}; expected {PERIOD_HELP}")


def check_started(period: Period, now: datetime) -> None:
    """Refuse a period that has not begun at ``now`` (site-local): it has nothing to report, and
    generating it would spend an official document number. The current, unfinished period is allowed."""
    today = now.astimezone(timezone_of(period.tz)).date()
    if period.first_day > today:
        raise ReportError(f"period {period.code} has not started yet (today is {today.isoformat()} in {period.tz})")


#: ReportSchedule.every → the kind of period a run of that schedule reports on.
SCHEDULE_KINDS: dict[str, PeriodKind] = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "half_yearly": "half",
}


def last_completed(kind: PeriodKind, now: datetime, tz: str = "Asia/Ho_Chi_Minh") -> Period:
    """The most recent period of ``kind`` that has fully ended at ``now`` (what a scheduled run reports on)."""
    local_today = now.astimezone(timezone_of(tz)).date()
    return period_containing(kind, local_today, tz).previous()
