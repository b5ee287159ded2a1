"""Statistical trend detection on a real SQLite store: quiet on a seasonal week, loud on a synthetic surge.

Five weeks of alerts with a daily pattern (office hours busy, nights quiet), a weekly one (weekends quiet)
and Poisson noise are written through the Store contract; the fifth week is judged against the four before.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from soclite.config import Settings, TrendSettings
from soclite.models import Alert, AlertStatus, Level, Unit, fingerprint, severity_of
from soclite.reports.trends import baseline, baseline_chart_data, detect, detect_period, is_rise, poisson_tail
from soclite.store.base import Store
from soclite.store.sqlite import SQLiteStore
from tests.opensearch_node import OPENSEARCH_URL, require_real_node_in_ci
from tests.reports.conftest import make_settings

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
#: Monday 00:00 ICT: the first of five weeks
START = datetime(2026, 9, 7, tzinfo=ZONE).astimezone(UTC)
WEEK5 = START + timedelta(days=28)
RULES = ["r-logon", "r-powershell", "r-dns"]
HOSTS = ["srv-1", "srv-2", "ws-1", "ws-2", "ws-3"]
UNITS = ["u1", "u2"]
SURGE_AT = datetime(2026, 10, 7, 10, tzinfo=ZONE).astimezone(UTC)  # Wednesday of week 5, 10:00 ICT


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means here
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _mean(hour: datetime) -> float:
    """The seasonal shape: busy office hours on weekdays, a quiet night, quieter weekends."""
    local = hour.astimezone(ZONE)
    if local.weekday() >= 5:
        return 1.5
    return 14.0 if 8 <= local.hour < 17 else 3.0 if 6 <= local.hour < 22 else 1.0


def _alert(i: int, at: datetime, rng: random.Random, *, rule: str | None = None, host: str | None = None,
           unit: str | None = None) -> Alert:
    rule = rule or rng.choice(RULES)
    host = host or rng.choice(HOSTS)
    return Alert(id=f"t{i:07d}", fingerprint=fingerprint(rule, host, {"i": i}), rule_id=rule, rule_title=rule,
                 level=Level("medium"), severity=severity_of("medium"), status=AlertStatus.NEW, host=host,
                 unit=unit or rng.choice(UNITS), first_seen=at, last_seen=at, count=1, event_ids=[], event={},
                 tags=[], kind="sigma")


def _store(path: Path, seed: int, surge: int = 0, kind: str = "sqlite") -> Store:
    rng = random.Random(seed)
    store: Store
    if kind == "opensearch":
        from soclite.store.opensearch import OpenSearchStore

        require_real_node_in_ci()
        if not OPENSEARCH_URL:
            pytest.skip("OPENSEARCH_URL not set (a real node: make opensearch)")
        store = OpenSearchStore.from_settings(make_settings(path, "opensearch", OPENSEARCH_URL), refresh_events=True)
    else:
        store = SQLiteStore(path / "events.db")
    store.open()
    for code in UNITS:
        store.put_unit(Unit(code=code, name=code))
    alerts: list[Alert] = []
    for h in range(35 * 24):
        hour = START + timedelta(hours=h)
        for _ in range(_poisson(rng, _mean(hour))):
            alerts.append(_alert(len(alerts), hour + timedelta(seconds=rng.randint(0, 3599)), rng))
    for _ in range(surge):  # one host, one rule, one unit, in one hour
        alerts.append(_alert(len(alerts), SURGE_AT + timedelta(seconds=rng.randint(0, 3599)), rng,
                             rule="r-powershell", host="ws-3", unit="u1"))
    for i in range(0, len(alerts), 2000):
        store.put_alerts(alerts[i : i + 2000])
    return store


def _week5_hours() -> list[datetime]:
    return [WEEK5 + timedelta(hours=h) for h in range(7 * 24)]


SETTINGS = Settings(environment="test")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_on_a_seasonal_week(tmp_path: Path, seed: int) -> None:
    store = _store(tmp_path, seed)
    try:
        flags = detect(store, SETTINGS, _week5_hours(), history_start=START)
    finally:
        store.close()
    assert flags == [], flags[:5]


@pytest.mark.parametrize("kind", ["sqlite", "opensearch"])
def test_flags_a_synthetic_surge_on_every_dimension(tmp_path: Path, kind: str) -> None:
    store = _store(tmp_path, 1, surge=40, kind=kind)
    try:
        flags = detect(store, SETTINGS, _week5_hours(), history_start=START)
        period = detect_period(store, SETTINGS, WEEK5, WEEK5 + timedelta(days=7), None)
        scoped = detect(store, SETTINGS, _week5_hours(), units=frozenset({"u2"}), history_start=START)
        chart = baseline_chart_data(store, SETTINGS, WEEK5 + timedelta(days=7), None)
    finally:
        if kind == "opensearch":
            store.drop_all()  # type: ignore[attr-defined]
        store.close()
    assert {f.hour for f in flags} == {SURGE_AT}, flags
    assert {(f.dimension, f.key) for f in flags} == {("total", ""), ("unit", "u1"), ("rule_id", "r-powershell"),
                                                     ("host", "ws-3")}
    total = next(f for f in flags if f.dimension == "total")
    assert total.observed >= 40 and total.median < 20 and total.observed > total.threshold
    assert period == flags  # the report's pass over the period finds the same
    assert scoped == []  # the surge is in u1: u2's analyst sees no warning
    # the overview's chart: one point per hour of the week, the baseline drawn beside the surge
    assert len(chart) == 7 * 24
    surge_point = next(p for p in chart if p[0] == SURGE_AT)
    assert surge_point[1] == total.observed and surge_point[2] == total.median


def test_no_warning_in_the_first_weeks_of_a_new_installation(tmp_path: Path) -> None:
    """Weeks before the first alert are unknown, not zero: judged as zeros, every office hour of the second week
    was a "rise" (a regression found by bench/trends.py: 702 flags in a month of uniform data)."""
    store = _store(tmp_path, 1)
    try:
        second_week = detect_period(store, SETTINGS, START + timedelta(days=7), START + timedelta(days=14), None)
        third_week = detect_period(store, SETTINGS, START + timedelta(days=14), START + timedelta(days=21), None)
    finally:
        store.close()
    assert second_week == []  # one week of history: not enough to judge
    assert third_week == []  # two weeks: judged, and the seasonal pattern is no rise


def test_baseline_needs_enough_weeks_and_is_robust_to_one_bad_week() -> None:
    trends = TrendSettings()
    assert baseline([5], trends) is None  # one week cannot make a baseline
    base = baseline([10, 11, 9, 80], trends)  # last month's incident week does not lift the baseline
    assert base is not None and base.median == 10.5 and base.threshold < 30
    assert is_rise(40, base, trends) and not is_rise(20, base, trends)
    # a small absolute rise on a tiny volume is not a trend: 3 where 0 is usual
    zero = baseline([0, 0, 0, 0], trends)
    assert zero is not None and not is_rise(3, zero, trends) and is_rise(12, zero, trends)
    # two weeks of a small count: 13 where [1, 2] was seen is within chance of a usual 4-5 an hour
    few = baseline([1, 2], trends)
    assert few is not None and not is_rise(13, few, trends) and is_rise(30, few, trends)
    assert abs(poisson_tail(1, 1.0) - (1 - math.exp(-1))) < 1e-9 and poisson_tail(0, 3.0) == 1.0
    assert abs(poisson_tail(3, 2.0) - (1 - math.exp(-2) * (1 + 2 + 2))) < 1e-9


def test_the_periodic_report_summarises_the_rise(tmp_path: Path) -> None:
    """The week's report (HTML, CSV, DOCX) has the statistical trend section with the surge's figures."""
    import csv
    import io

    import docx

    from soclite.reports.archive import ReportArchive
    from soclite.reports.service import ReportRequest, generate
    from tests.reports.expected import html_figures

    store = _store(tmp_path, 1, surge=40)
    settings = Settings(environment="test", data_dir=tmp_path)
    archive = ReportArchive(tmp_path)
    try:
        _r, ctx, out = generate(store, settings, archive,
                                ReportRequest(period="2026-W41", formats=("html", "csv", "docx")),
                                now=WEEK5 + timedelta(days=8))
    finally:
        archive.close()
        store.close()
    assert ctx.trends is not None and len(ctx.trends) == 4
    observed = next(f.observed for f in ctx.trends if f.dimension == "total")
    html = out["html"].decode("utf-8")
    assert "VIII. Phát hiện xu hướng bằng thống kê" in html and html_figures(html)["trends.flags"] == 4
    assert "07/10/2026 10:00" in html and "Máy: ws-3" in html
    rows = list(csv.reader(io.StringIO(out["csv"].decode("utf-8-sig"))))
    assert ["summary", "trends.flags", "Số giờ tăng vượt đường cơ sở", "4"] in rows
    host = next(f for f in ctx.trends if f.dimension == "host")
    assert ["trend", "host:ws-3", "Máy: ws-3", str(host.observed), SURGE_AT.isoformat(), str(round(host.median, 2)),
            str(round(host.threshold, 2))] in rows
    document = docx.Document(io.BytesIO(out["docx"]))
    table = next(tb for tb in document.tables if tb.rows[0].cells[0].text == "Chỉ số")
    total_row = next(r for r in table.rows if r.cells[0].text == "Tổng số cảnh báo")
    assert total_row.cells[1].text == "07/10/2026 10:00" and total_row.cells[2].text == str(observed)


def test_a_quiet_period_says_so(tmp_path: Path) -> None:
    from soclite.reports.archive import ReportArchive
    from soclite.reports.service import ReportRequest, generate

    store = _store(tmp_path, 2)
    archive = ReportArchive(tmp_path)
    try:
        _r, ctx, out = generate(store, Settings(environment="test", data_dir=tmp_path), archive,
                                ReportRequest(period="2026-W41", formats=("html",)), now=WEEK5 + timedelta(days=8))
    finally:
        archive.close()
        store.close()
    assert ctx.trends == []
    assert 'id="trends-none"' in out["html"].decode("utf-8")


def test_notification_for_an_event_surge_once(tmp_path: Path) -> None:
    """The hourly pass: events of the last complete hour far above the same hour of the four weeks before are
    e-mailed through the outbox (all events and the unit's), once; the alerts, flat, raise nothing."""
    from soclite.models import new_id
    from soclite.reports.trends import notify_trends
    from tests.playbooks.support import build_runtime
    from tests.playbooks.support import make_settings as playbook_settings

    settings = playbook_settings(tmp_path, compliance={"trends": {"notify": ["truc-ca@tinh.gov.vn"]}})
    runtime = build_runtime(settings)
    try:
        runtime.store.put_unit(Unit(code="SO", name="Sở"))
        now = datetime(2026, 10, 7, 11, 5, tzinfo=ZONE).astimezone(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        events = []
        for weeks_back, count in ((0, 60), (1, 5), (2, 6), (3, 4), (4, 5)):
            start = hour - timedelta(days=7 * weeks_back)
            for k in range(count):
                ts = start + timedelta(seconds=30 * k)
                events.append({"@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "event.id": new_id(),
                               "host.name": "ws-1", "soclite.unit": "SO", "event.original": f"line {k}"})
        runtime.store.write_events(events)
        queued = notify_trends(runtime, now)
        key = f"{hour.isoformat()}"
        assert sorted(queued) == sorted([f"trend:events:total::{key}", f"trend:events:unit:SO:{key}"])
        row = runtime.outbox.get_by_key(f"trend:events:total::{key}")
        assert row is not None and row.params["to"] == ["truc-ca@tinh.gov.vn"]
        assert "Phát hiện xu hướng bằng thống kê" in row.params["subject"] and "60 sự kiện" in row.params["body"]
        assert notify_trends(runtime, now + timedelta(minutes=20)) == []  # the same hour again: nothing new
        # the notification centre's record: both rises once; a unit-bound user sees only its unit's
        kept = runtime.trend_warnings.since(hour, None)
        assert sorted((w["dimension"], w["key"], w["observed"]) for w in kept) == [("total", "", 60), ("unit", "SO", 60)]
        assert [w["key"] for w in runtime.trend_warnings.since(hour, frozenset({"SO"}))] == ["SO"]
    finally:
        runtime.close()


def test_the_overview_panel_is_computed_once_per_few_minutes(tmp_path: Path) -> None:
    from soclite.reports.trends import overview_panel

    store = _store(tmp_path, 1, surge=40)
    settings = Settings(environment="test", data_dir=tmp_path)
    now = SURGE_AT + timedelta(hours=3, minutes=10)
    try:
        first = overview_panel(store, settings, now, None)
        assert overview_panel(store, settings, now + timedelta(minutes=2), None) is first  # cached
        assert {f.hour for f in first[0]} == {SURGE_AT} and len(first[1]) == 7 * 24
        scoped = overview_panel(store, settings, now, frozenset({"u2"}))
        assert scoped is not first and scoped[0] == []  # another scope is its own entry
    finally:
        store.close()
