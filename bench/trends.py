"""Statistical trend detection benchmark: what the overview and the reports pay for it.

    .venv/bin/python bench/trends.py --json                       # SQLite, 10x a province's month
    .venv/bin/python bench/trends.py --alerts 100000 --json
    .venv/bin/python bench/trends.py --opensearch-url http://127.0.0.1:9200 --alerts 100000 --json

Alerts spread over five weeks (a daily and weekly pattern), 2,500 hosts, 30 units, 60 rules, written through
the Store contract; then timed: the overview's pass (the last 24 hours judged per total/unit/rule/host, and the
7-day baseline chart), and a monthly report's pass (every hour of four weeks). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from soclite.config import Settings, StoreSettings
from soclite.models import Alert, AlertStatus, Level, fingerprint, severity_of
from soclite.reports.trends import baseline_chart_data, detect, detect_period, floor_hour
from soclite.store.base import Store

LEVELS = [Level.LOW, Level.LOW, Level.MEDIUM, Level.MEDIUM, Level.HIGH, Level.CRITICAL]


def seed(store: Store, n: int, now: datetime, rng: random.Random) -> None:
    hosts = [f"h{i:04d}" for i in range(2500)]
    start = now - timedelta(days=35)
    batch: list[Alert] = []
    for i in range(n):
        # office hours weigh 4x: draw an hour, keep it with its weight
        while True:
            ts = start + timedelta(seconds=rng.uniform(0, 35 * 86400))
            local_hour = (ts.hour + 7) % 24
            if rng.random() < (1.0 if 8 <= local_hour < 17 else 0.25):
                break
        rule = f"rule-{rng.randint(0, 59):02d}"
        host = rng.choice(hosts)
        level = rng.choice(LEVELS)
        batch.append(Alert(id=f"b{i:08d}", fingerprint=fingerprint(rule, host, {"i": i}), rule_id=rule,
                           rule_title=rule, level=level, severity=severity_of(level.value), status=AlertStatus.NEW,
                           host=host, unit=f"u{int(host[1:]) % 30:02d}", first_seen=ts, last_seen=ts))
        if len(batch) == 5000:
            store.put_alerts(batch)
            batch = []
    if batch:
        store.put_alerts(batch)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=700_000, help="alerts over five weeks (default: 10x a province)")
    parser.add_argument("--opensearch-url")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    now = floor_hour(datetime.now(UTC))
    with tempfile.TemporaryDirectory() as tmp:
        if args.opensearch_url:
            from soclite.store.opensearch import OpenSearchStore

            settings = Settings(environment="test", data_dir=Path(tmp), store=StoreSettings(
                kind="opensearch", opensearch_url=[args.opensearch_url], index_prefix=f"bt{uuid.uuid4().hex[:8]}"))
            store: Store = OpenSearchStore.from_settings(settings, refresh_events=True)
        else:
            from soclite.store.sqlite import SQLiteStore

            settings = Settings(environment="test", data_dir=Path(tmp))
            store = SQLiteStore(Path(tmp) / "events.db")
        store.open()
        try:
            t0 = time.perf_counter()
            seed(store, args.alerts, now, random.Random(1))
            seed_s = time.perf_counter() - t0
            hours = [now - timedelta(hours=h) for h in range(24, 0, -1)]
            t0 = time.perf_counter()
            flags = detect(store, settings, hours)
            chart = baseline_chart_data(store, settings, now, None)
            overview_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            month_flags = detect_period(store, settings, now - timedelta(days=28), now, None)
            month_s = time.perf_counter() - t0
        finally:
            if args.opensearch_url:
                store.drop_all()  # type: ignore[attr-defined]
            store.close()
    result = {
        "store": "opensearch" if args.opensearch_url else "sqlite", "alerts": args.alerts,
        "seed_seconds": round(seed_s, 1), "overview_seconds": round(overview_s, 2), "overview_flags": len(flags),
        "chart_points": len(chart), "month_report_seconds": round(month_s, 2), "month_flags": len(month_flags),
        "rss_mb_max": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
    }
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
