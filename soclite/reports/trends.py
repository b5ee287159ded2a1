"""Statistical trend detection: hourly alert and event volumes against a seasonal baseline.

Provincial operation centres sell this as "AI warnings"; it is statistics, and the UI says so.

For a volume (all alerts, or those of one unit, rule or host; all events, or one unit's) and an hour, the
baseline is the **median of the same hour of the week in the previous weeks** and its spread the **median
absolute deviation** (MAD, scaled by 1.4826 to estimate a standard deviation). The hour is flagged when it
rises above ``median + k x spread`` and also by at least ``min_excess`` over the median with at least
``min_count`` in the hour — so three alerts where one is usual never raise a warning — and when a Poisson count
at an upper bound of the usual rate would reach it with a probability below ``p_value`` (few weeks of small
counts make a noisy median). Weeks before the oldest record in scope are unknown, not zero.

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
import math
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from soclite.config import Settings, TrendSettings
from soclite.errors import SocliteError
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
    #: an upper bound of the hour's usual rate (the median's count over the weeks, plus two standard errors)
    rate_high: float = 0.0


def poisson_tail(k: int, rate: float) -> float:
    """P(X >= k) for X ~ Poisson(rate), summed in log space from k upward (no scipy needed)."""
    if k <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    total, i = 0.0, k
    while True:
        term = math.exp(i * math.log(rate) - rate - math.lgamma(i + 1))
        total += term
        if i > rate and term < total * 1e-12:
            return min(total, 1.0)
        i += 1


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
    # Counts are Poisson-like, so the spread is at least what chance alone gives: the new hour's own variance
    # (about the median) plus that of a median of n weeks (about pi/2 x median / n). With few weeks the MAD
    # of two or three values says little, and this floor keeps a third week's busiest hour from being a "rise".
    floor = (max(median, 1.0) * (1 + 1.571 / len(history))) ** 0.5
    spread = max(MAD_SCALE * mad, floor)
    # the same median as a count over n weeks, plus two Poisson standard errors, per week
    n = len(history)
    rate_high = (n * median + 2 * (n * median) ** 0.5 + 2) / n
    return Baseline(median, spread, median + settings.k * spread, n, rate_high)


def is_rise(observed: int, base: Baseline, settings: TrendSettings) -> bool:
    """Beyond median + k x spread, by a minimum excess and count, and unlikely by chance: a Poisson count at the
    usual rate's upper bound reaches it with a probability below ``p_value``. The last test matters with two or
    three weeks of small counts, where a median of [1, 2] badly underestimates a usual 4 or 5."""
    return (
        observed > base.threshold
        and observed - base.median >= settings.min_excess
        and observed >= settings.min_count
        and poisson_tail(observed, base.rate_high) < settings.p_value
    )


def detect_series(
    series: Mapping[datetime, int], hours: list[datetime], settings: TrendSettings, *, history_start: datetime,
) -> list[tuple[datetime, int, Baseline]]:
    """Flag ``hours`` of one hourly series (``{hour start (UTC): count}``, missing = 0).

    ``history_start``: the first hour data could exist for (weeks before it are not counted as zeros).
    """
    flagged = []
    for hour in hours:
        if series.get(hour, 0) < settings.min_count:
            continue  # cannot be a rise (is_rise needs min_count): skips the medians of thousands of quiet hosts
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


def windows(hours: list[datetime], weeks: int) -> list[tuple[datetime, datetime]]:
    """The time ranges a judgement of ``hours`` reads: the hours' own span and the same span 1..weeks weeks
    earlier, overlapping ones merged. For the overview's last 24 hours that is five single days instead of
    five whole weeks: the cost follows what is judged, not the length of the history."""
    first, end = min(hours), max(hours) + HOUR
    spans = sorted((first - WEEK * k, end - WEEK * k) for k in range(weeks + 1))
    merged: list[tuple[datetime, datetime]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def alert_series(
    store: Store, spans: list[tuple[datetime, datetime]], units: frozenset[str] | None,
) -> dict[str, dict[str, dict[datetime, int]]]:
    """``{dimension: {key: {hour: count}}}`` of alerts in ``spans`` (one histogram query per dimension and span)."""
    out: dict[str, dict[str, dict[datetime, int]]] = {}
    for dimension in ALERT_DIMENSIONS:
        group = "severity" if dimension == "total" else dimension
        per_key: dict[str, dict[datetime, int]] = {}
        for start, end in spans:
            for bucket in store.alert_histogram(AlertQuery(start=start, end=end, units=units), "hour", group_by=group):
                hour = floor_hour(bucket.start)
                for key, n in bucket.counts.items():
                    name = "" if dimension == "total" else key
                    series = per_key.setdefault(name, {})
                    series[hour] = series.get(hour, 0) + n
        out[dimension] = per_key
    return out


def first_alert(store: Store, units: frozenset[str] | None) -> datetime | None:
    """When the store's history begins (the oldest alert in scope): weeks before it are unknown, not zero."""
    page = store.query_alerts(AlertQuery(units=units, sort="last_seen", order="asc", limit=1))
    return floor_hour(page.items[0].last_seen) if page.items else None


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
    # a fresh installation (or a unit just connected) has no weeks behind it: judging them as zeros would flag
    # every busy hour of its first weeks, so each source's history starts with its oldest record in scope
    sources: list[tuple[Source, datetime | None, dict[str, dict[str, dict[datetime, int]]]]] = []
    alerts_since = history_start or first_alert(store, units)
    if alerts_since is not None:
        sources.append(("alerts", alerts_since, alert_series(store, windows(hours, trends.weeks), units)))
    if events:
        unit_codes = sorted(u.code for u in store.list_units() if units is None or u.code in units)
        series = event_series(store, hours, trends, unit_codes)
        seen = [hour for hour, n in series["total"][""].items() if n]
        sources.append(("events", history_start or (min(seen) if seen else None), series))
    flags: list[TrendFlag] = []
    for source, since, by_dimension in sources:
        if since is None:
            continue
        for dimension, per_key in by_dimension.items():
            for key, values in per_key.items():
                for hour, observed, base in detect_series(values, hours, trends, history_start=since):
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
    since = first_alert(store, units) or end
    rows = []
    hour = start
    while hour < end:
        history = [series.get(hour - WEEK * i, 0) for i in range(1, trends.weeks + 1) if hour - WEEK * i >= since]
        base = baseline(history, trends)
        rows.append((hour, series.get(hour, 0), base.median if base else None, base.threshold if base else None))
        hour += HOUR
    return rows


#: the overview's panel, per (store, unit scope, last complete hour): it judges complete hours only, so it
#: changes only with alerts that arrive late; recomputed after OVERVIEW_TTL so those are not missed for long
OVERVIEW_TTL = 300.0
_OVERVIEW_CACHE: dict[tuple[str, str, frozenset[str] | None, datetime], tuple[float, Any]] = {}
_OVERVIEW_LOCK = threading.Lock()


def overview_panel(store: Store, settings: Settings, now: datetime, units: frozenset[str] | None,
                   ) -> tuple[list[TrendFlag], list[tuple[datetime, int, float | None, float | None]]]:
    """The last 24 complete hours' rises and the 7-day baseline chart, cached for OVERVIEW_TTL seconds
    (bench/trends.py: a few seconds of histogram queries at a province's volume, on every overview load)."""
    last = floor_hour(now)
    # the data directory names the installation (not id(store): a closed store's id can be reused)
    key = (str(settings.data_dir), store.kind, units, last)
    with _OVERVIEW_LOCK:
        hit = _OVERVIEW_CACHE.get(key)
        if hit is not None and time.monotonic() - hit[0] < OVERVIEW_TTL:
            return hit[1]  # type: ignore[no-any-return]
    hours = [last - timedelta(hours=h) for h in range(24, 0, -1)]
    value = (detect(store, settings, hours, units=units), baseline_chart_data(store, settings, now, units))
    with _OVERVIEW_LOCK:
        for old in [k for k in _OVERVIEW_CACHE if k[3] != last]:
            del _OVERVIEW_CACHE[old]  # an hour rolled over: the old hour's panels are stale
        _OVERVIEW_CACHE[key] = (time.monotonic(), value)
    return value


def _unit_of(runtime: Any, flag: TrendFlag) -> str | None:
    """The unit a rise belongs to (a unit's own volume, or a host's), None for province-wide ones."""
    if flag.dimension == "unit":
        return flag.key
    if flag.dimension == "host":
        try:
            return runtime.store.get_host(flag.key).unit  # type: ignore[no-any-return]
        except SocliteError:
            return None
    return None


def notify_trends(runtime: Any, now: datetime) -> list[str]:
    """Detect over the last complete hour (alerts and events), record each new rise for the notification centre
    and e-mail it through the outbox."""
    settings: Settings = runtime.settings
    trends = settings.compliance.trends
    outbox = getattr(runtime, "outbox", None)
    to = trends.notify or settings.compliance.incident_notify
    warnings = getattr(runtime, "trend_warnings", None)
    if not trends.enabled or ((outbox is None or not to) and warnings is None):
        return []
    hour = floor_hour(now) - HOUR
    queued = []
    for flag in detect(runtime.store, settings, [hour], events=True):
        if warnings is not None:  # the notification centre shows it even where nobody is e-mailed
            warnings.record(source=flag.source, dimension=flag.dimension, key=flag.key, unit=_unit_of(runtime, flag),
                            hour=hour, observed=flag.observed, median=flag.median, threshold=flag.threshold)
        key = f"trend:{flag.source}:{flag.dimension}:{flag.key}:{hour.isoformat()}"
        if outbox is None or not to or outbox.get_by_key(key) is not None:
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
    "floor_hour", "is_rise", "notify_trends", "overview_panel",
]
