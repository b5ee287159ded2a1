"""A report's days are the site's days: an alert at 00:30 local time belongs to that local day.

00:30 ICT on 1 December 2026 is 17:30 UTC on 30 November: it must count in December's report, on
the bar of 01/12, and not in November's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from soclite.config import Settings
from soclite.models import Alert, Level, Severity, fingerprint
from soclite.reports.charts import bar_labels
from soclite.reports.context import build_context
from soclite.reports.periods import parse_period
from soclite.store.sqlite import SQLiteStore


def _alert(n: int, at: datetime) -> Alert:
    return Alert(fingerprint=fingerprint("r", f"ws-{n}"), rule_id="r", rule_title="R", level=Level.HIGH,
                 severity=Severity.HIGH, host=f"ws-{n}", first_seen=at, last_seen=at)


def test_alert_just_after_local_midnight_is_on_the_local_day_of_the_report(tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path)
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    try:
        store.put_alerts([
            _alert(1, datetime(2026, 11, 30, 17, 30, tzinfo=UTC)),  # 00:30 on 01/12 local
            _alert(2, datetime(2026, 12, 1, 16, 59, tzinfo=UTC)),  # 23:59 on 01/12 local
            _alert(3, datetime(2026, 11, 30, 16, 30, tzinfo=UTC)),  # 23:30 on 30/11 local: November
        ])
        december = build_context(store, settings, parse_period("2026-12", settings.timezone))
        november = build_context(store, settings, parse_period("2026-11", settings.timezone))
    finally:
        store.close()
    assert december.total == 2 and november.total == 1
    assert len(december.histogram) == 31
    assert sum(december.histogram[0].counts.values()) == 2
    assert sum(sum(b.counts.values()) for b in december.histogram[1:]) == 0
    labels = bar_labels(december)
    assert labels[0] == "01/12" and labels[-1] == "31/12"
    assert sum(november.histogram[-1].counts.values()) == 1 and bar_labels(november)[-1] == "30/11"
