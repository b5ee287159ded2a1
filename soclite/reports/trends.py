"""Statistical trend detection: hourly alert and event volumes against a seasonal baseline.

Provincial operation centres sell this as "AI warnings"; it is statistics, and the UI says so.

For a volume (all alerts, or those of one unit, rule or host; all events, or one unit's) and an hour, the
baseline is the **median of the same hour of the week in the previous weeks** and its spread the **median
absolute deviation** (MAD, scaled by 1.4826 to estimate a standard deviation). The hour is flagged when it
rises above ``median + k x spread`` and also by at least ``min_excess`` over the median with at least
``min_count`` in the hour — so three alerts where one is usual never raise a warning.

Why this and not STL (statsmodels' seasonal-trend decomposition): STL needs at least two full seasonal
cycles (two weeks of hourly points for a weekly season) before it decomposes anything, is fitted per series
(thousands of hosts and rules), smooths a past surge into the seasonal component, and is unstable on sparse
counts that are mostly zero. The same-hour-of-week median works from two weeks of history, captures the daily
and the weekly pattern at once, ignores one anomalous past week out of four (the median's breakdown point),
costs one histogram query per dimension, and needs no new dependency. Its limit: it does not model a slow
drift over the weeks (a steady growth flags a little late or not at all), which is not what this warns of.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from soclite.config import Settings, TrendSettings
from soclite.store.base import AlertQuery, EventQuery, Store

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)
#: 1.4826 x MAD estimates the standard deviation of normally distributed counts
MAD_SCALE = 1.4826
#: alert dimensions, as ``Store.alert_histogram`` groups them ("" = all alerts)
ALERT_DIMENSIONS: tuple[str, ...] = ("total", "unit", "rule_id", "host")

Source = Literal["alerts", "events"]


@dataclass(frozen=True)
class Baseline:
    median: float
    spread: float
    threshold: float
    weeks: int


@dataclass(frozen=True)
class TrendFlag:
    """One hour of one volume that rose beyond its seasonal baseline."""

    source: Source
    dimension: str  # total | unit | rule_id | host
    key: str
    hour: datetime  # the hour's start, UTC
    observed: int
    median: float
    threshold: float

    @property
    def ratio(self) -> float:
        return self.observed / self.median if self.median else float("inf")


def floor_hour(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def baseline(history: list[int], settings: TrendSettings) -> Baseline | None:
    """The seasonal baseline from the same hour of the week in earlier weeks; None = too few weeks to judge."""
    if len(history) < settings.min_weeks:
        return None
    median = float(statistics.median(history))
    mad = float(statistics.median(abs(x - median) for x in history))
    # counts are Poisson-like: with a MAD of 0 (identical weeks) the spread is at least sqrt(median), or 1
    spread = max(MAD_SCALE * mad, median ** 0.5, 1.0)
    return Baseline(median, spread, median + settings.k * spread, len(history))


def is_rise(observed: int, base: Baseline, settings: TrendSettings) -> bool:
    return (
        observed > base.threshold
        and observed - base.median >= settings.min_excess
        and observed >= settings.min_count
    )


def detect_series(
    series: Mapping[datetime, int], hours: list[datetime], settings: TrendSettings, *, history_start: datetime,
) -> list[tuple[datetime, int, Baseline]]:
    """Flag ``hours`` of one hourly series (``{hour start (UTC): count}``, missing = 0).

    ``history_start``: the first hour data could exist for (weeks before it are not counted as zeros).
    """
    flagged = []
    for hour in hours:
        history = [
            series.get(hour - WEEK * i, 0)
            for i in range(1, settings.weeks + 1)
            if hour - WEEK * i >= history_start
        ]
        base = baseline(history, settings)
        observed = series.get(hour, 0)
        if base is not None and is_rise(observed, base, settings):
            flagged.append((hour, observed, base))
    return flagged


def alert_series(
    store: Store, start: datetime, end: datetime, units: frozenset[str] | None,
) -> dict[str, dict[str, dict[datetime, int]]]:
    """``{dimension: {key: {hour: count}}}`` of alerts in ``[start, end)`` (one histogram query per dimension)."""
    out: dict[str, dict[str, dict[datetime, int]]] = {}
    for dimension in ALERT_DIMENSIONS:
        group = "severity" if dimension == "total" else dimension
        buckets = store.alert_histogram(AlertQuery(start=start, end=end, units=units), "hour", group_by=group)
        per_key: dict[str, dict[datetime, int]] = {}
        for bucket in buckets:
            hour = floor_hour(bucket.start)
            for key, n in bucket.counts.items():
                name = "" if dimension == "total" else key
                per_key.setdefault(name, {})
                per_key[name][hour] = per_key[name].get(hour, 0) + n
        out[dimension] = per_key
    return out


def event_series(
    store: Store, hours: list[datetime], settings: TrendSettings, units: list[str],
) -> dict[str, dict[str, dict[datetime, int]]]:
    """Event counts for ``hours`` and their same hours of earlier weeks: all events and per unit.

    The store has no event histogram, so this counts hour by hour: (weeks + 1) x len(hours) x (1 + units)
    queries; used for the last hour only (the notification pass and the overview), not for a month's report.
    """
    wanted = sorted({h - WEEK * i for h in hours for i in range(settings.weeks + 1)})
    out: dict[str, dict[str, dict[datetime, int]]] = {"total": {"": {}}, "unit": {u: {} for u in units}}
    for hour in wanted:
        out["total"][""][hour] = store.count_events(EventQuery(start=hour, end=hour + HOUR, limit=1))
        for unit in units:
            out["unit"][unit][hour] = store.count_events(
                EventQuery(start=hour, end=hour + HOUR, units=frozenset({unit}), limit=1))
    return out


def detect(
    store: Store, settings: Settings, hours: list[datetime], *, units: frozenset[str] | None = None,
    events: bool = False, history_start: datetime | None = None,
) -> list[TrendFlag]:
    """Every volume flagged in ``hours`` (hour starts, UTC), largest excess first."""
    trends = settings.compliance.trends
    if not hours:
        return []
    first, last = min(hours), max(hours)
    since = history_start or first - WEEK * trends.weeks
    flags: list[TrendFlag] = []
    sources: list[tuple[Source, dict[str, dict[str, dict[datetime, int]]]]] = [
        ("alerts", alert_series(store, first - WEEK * trends.weeks, last + HOUR, units))]
    if events:
        unit_codes = sorted(u.code for u in store.list_units() if units is None or u.code in units)
        sources.append(("events", event_series(store, hours, trends, unit_codes)))
    for source, by_dimension in sources:
        for dimension, per_key in by_dimension.items():
            for key, series in per_key.items():
                for hour, observed, base in detect_series(series, hours, trends, history_start=since):
                    flags.append(TrendFlag(source, dimension, key, hour, observed, base.median, base.threshold))
    flags.sort(key=lambda f: (-(f.observed - f.median), f.hour, f.source, f.dimension, f.key))
    return flags


def detect_period(store: Store, settings: Settings, start: datetime, end: datetime,
                  units: frozenset[str] | None) -> list[TrendFlag]:
    """Alert volumes flagged in every hour of ``[start, end)`` (the periodic report's section)."""
    hours = []
    hour = floor_hour(start)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return detect(store, settings, hours, units=units)


def baseline_chart_data(store: Store, settings: Settings, now: datetime, units: frozenset[str] | None,
                        days: int = 7) -> list[tuple[datetime, int, float | None, float | None]]:
    """All alerts per hour over the last ``days`` with their baseline and threshold (the overview's chart)."""
    trends = settings.compliance.trends
    end = floor_hour(now)
    start = end - timedelta(days=days)
    series: dict[datetime, int] = {}
    for bucket in store.alert_histogram(AlertQuery(start=start - WEEK * trends.weeks, end=end, units=units), "hour"):
        hour = floor_hour(bucket.start)
        series[hour] = series.get(hour, 0) + sum(bucket.counts.values())
    rows = []
    hour = start
    while hour < end:
        history = [series.get(hour - WEEK * i, 0) for i in range(1, trends.weeks + 1)]
        base = baseline(history, trends)
        rows.append((hour, series.get(hour, 0), base.median if base else None, base.threshold if base else None))
        hour += HOUR
    return rows


def notify_trends(runtime: Any, now: datetime) -> list[str]:
    """Detect over the last complete hour (alerts and events) and e-mail each new rise through the outbox."""
    settings: Settings = runtime.settings
    trends = settings.compliance.trends
    outbox = getattr(runtime, "outbox", None)
    to = trends.notify or settings.compliance.incident_notify
    if not trends.enabled or outbox is None or not to:
        return []
    hour = floor_hour(now) - HOUR
    queued = []
    for flag in detect(runtime.store, settings, [hour], events=True):
        key = f"trend:{flag.source}:{flag.dimension}:{flag.key}:{hour.isoformat()}"
        if outbox.get_by_key(key) is not None:
            continue
        what = {"total": "toàn tỉnh", "unit": f"đơn vị {flag.key}", "rule_id": f"luật {flag.key}",
                "host": f"máy {flag.key}"}[flag.dimension]
        noun = "cảnh báo" if flag.source == "alerts" else "sự kiện"
        outbox.submit(
            "notify_email",
            {
                "to": list(to),
                "subject": f"[Phát hiện xu hướng bằng thống kê] Số {noun} của {what} tăng bất thường",
                "body": (
                    f"Giờ bắt đầu {hour.isoformat()} (UTC): {flag.observed} {noun}, trong khi trung vị cùng giờ "
                    f"các tuần trước là {flag.median:g} (ngưỡng {flag.threshold:.1f}).\n"
                    "Phương pháp: so sánh với trung vị và độ lệch tuyệt đối trung vị (MAD) cùng giờ trong tuần."
                ),
            },
            idempotency_key=key,
            requested_by="trend-detection",
            payload={"source": flag.source, "dimension": flag.dimension, "key": flag.key, "hour": hour.isoformat(),
                     "observed": flag.observed, "median": flag.median},
        )
        log.warning("trend: %s %s=%s rose to %d (median %g) in the hour from %s", flag.source, flag.dimension,
                    flag.key, flag.observed, flag.median, hour.isoformat())
        queued.append(key)
    return queued


__all__ = [
    "Baseline", "TrendFlag", "baseline", "baseline_chart_data", "detect", "detect_period", "detect_series",
    "floor_hour", "is_rise", "notify_trends",
]
