"""The site's time: what a date a person types, filters on or reads means.

Everything is stored and exchanged in UTC; a person works in the site's zone
(``settings.timezone``, Asia/Ho_Chi_Minh by default). So a *date* given as a
filter is a whole local day: ``from=2026-12-07&to=2026-12-07`` is
[00:00 ICT on 7 December, 00:00 ICT on 8 December) = [17:00 UTC on 6 December,
17:00 UTC on 7 December). A datetime with an offset (or ``Z``) keeps its
meaning; a datetime without one is a local wall-clock time (a person typed it).
The trap avoided: pydantic reads ``2026-12-07`` as naive midnight, which the
API used to take as UTC midnight, seven hours into the local day.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soclite.errors import ConfigError, InvalidTime

#: the date forms a person types: ISO (the HTML date input) and the Vietnamese day/month/year.
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_VN_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")

_VN_DATETIME = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})[ T]+(\d{1,2}):(\d{2})$")
#: how a time is shown in a field a person edits (and read back by parse_local_time)
INPUT_FORMAT = "%d/%m/%Y %H:%M"

DATE_HELP = "a date (2026-12-07 or 07/12/2026) or an ISO 8601 datetime (2026-12-07T08:30:00+07:00)"


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of a zone name; an unknown one is a configuration error naming the setting."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}", key="timezone") from exc


def parse_date(text: str) -> date | None:
    """``2026-12-07`` or ``07/12/2026`` as a date; None when ``text`` is not a bare date."""
    value = text.strip()
    match = _ISO_DATE.match(value)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _VN_DATE.match(value)
        if not match:
            return None
        day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise InvalidTime(f"invalid date {text!r}: {exc}", value=text) from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of the local ``day``, in UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """The last millisecond of the local ``day``, in UTC (an expiry typed as a date lasts the whole day)."""
    return local_midnight(day + timedelta(days=1), tz) - timedelta(milliseconds=1)


def parse_bound(text: str | None, tz: ZoneInfo, *, end: bool = False, name: str = "from") -> datetime | None:
    """A ``from`` (``end=False``) or ``to`` (``end=True``) bound typed by a person, as a UTC instant.

    A date is a whole local day: as ``from`` its first instant, as ``to`` the first instant of the
    next day (bounds are half-open, so ``to`` = that date includes the whole of it). A datetime with
    an offset keeps it; a naive datetime is local wall-clock time. Anything else raises InvalidTime.
    """
    if text is None or not text.strip():
        return None
    day = parse_date(text)
    if day is not None:
        return local_midnight(day + timedelta(days=1) if end else day, tz)
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTime(f"invalid datetime {text!r} for '{name}': expected {DATE_HELP}", value=text) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.astimezone(UTC)


def parse_local_time(text: str, tz: ZoneInfo, *, name: str = "time") -> datetime:
    """A time a person types, as a UTC instant: ``07/12/2026 08:30`` (the Vietnamese order, the site's wall
    clock) or ISO 8601 (its offset kept; none: the site's wall clock). Anything else raises InvalidTime."""
    value = text.strip()
    match = _VN_DATETIME.match(value)
    if match:
        day, month, year, hour, minute = (int(g) for g in match.groups())
        try:
            return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)
        except ValueError as exc:
            raise InvalidTime(f"invalid time {text!r} for '{name}': {exc}", value=text) from None
    if parse_date(value) is None and value:
        ts = parse_bound(value, tz, name=name)
        if ts is not None:
            return ts
    raise InvalidTime(f"invalid time {text!r} for '{name}': expected dd/mm/yyyy HH:MM (07/12/2026 08:30) "
                      "or an ISO 8601 datetime", value=text)


def local(ts: datetime, tz: ZoneInfo) -> datetime:
    """``ts`` in the site's zone (a naive value is UTC, the stored form)."""
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(tz)


def offset_label(tz: ZoneInfo, at: datetime | None = None) -> str:
    """``UTC+07:00``: the zone as shown next to times (its offset at ``at``, default now)."""
    offset = (at or datetime.now(UTC)).astimezone(tz).utcoffset() or timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def whole_hour_offsets(tz: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether every offset of ``tz`` between ``start`` and ``end`` is whole hours (checked twice a day).

    Then UTC hour buckets regroup exactly into local days; otherwise (India, Nepal) minute buckets must.
    """
    step = timedelta(hours=12)
    at = start
    while True:
        offset = at.astimezone(tz).utcoffset() or timedelta()
        if offset.total_seconds() % 3600:
            return False
        if at >= end:
            return True
        at = min(at + step, end)
