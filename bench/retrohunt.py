"""Retro-hunt benchmark: one Sigma rule over N stored events, per store (issue 12).

    .venv/bin/python bench/retrohunt.py --events 300000 --json
    .venv/bin/python bench/retrohunt.py --events 300000 --store opensearch --opensearch-url http://127.0.0.1:9200 --json

Events are Windows process creations over 10 days, 3 units, 1 in 1,000 a match. The embedded store is
scanned through the engine (day files, oldest first); OpenSearch answers the rule as a query (pySigma's
OpenSearch backend), so its time is the cluster's search plus paging through the hits. Prints events/s
of the hunt (load excluded), hits, and peak RSS; the last line is JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soclite.config import Settings, StoreSettings  # noqa: E402
from soclite.control.retrohunt import HuntRequest, run_hunt  # noqa: E402
from soclite.models import isoformat  # noqa: E402
from soclite.store.base import Store  # noqa: E402

RULE = r"""
title: bench whoami
id: 3d0b0c2e-4c1f-4a8e-8f3a-9b1c2d3e4f50
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\whoami.exe'
        CommandLine|contains: '/all'
    condition: sel
level: high
"""
T0 = datetime(2024, 8, 1, tzinfo=UTC)


def events(n: int) -> list[dict[str, Any]]:
    step = timedelta(days=10) / n
    out = []
    for i in range(n):
        hit = i % 1000 == 7
        out.append({
            "@timestamp": isoformat(T0 + step * i), "event.id": f"b{i:09d}", "host.name": f"PC-{i % 2500:04d}",
            "soclite.unit": f"u{i % 3}", "logsource.product": "windows", "logsource.category": "process_creation",
            "Image": "C:\\Windows\\System32\\whoami.exe" if hit else f"C:\\Program Files\\App{i % 50}\\app.exe",
            "CommandLine": "whoami /all" if hit else f"app.exe --job {i}", "User": f"CORP\\user{i % 700}",
            "ParentImage": "C:\\Windows\\explorer.exe", "event.original": f"process {i}",
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--store", choices=["sqlite", "opensearch"], default="sqlite")
    ap.add_argument("--opensearch-url", default=os.environ.get("OPENSEARCH_URL"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="retrohunt-"))
    store: Store
    if args.store == "sqlite":
        from soclite.store.sqlite import SQLiteStore

        store = SQLiteStore.from_settings(Settings(environment="test", data_dir=tmp))
    else:
        from soclite.store.opensearch import OpenSearchStore

        if not args.opensearch_url:
            sys.exit("--opensearch-url (or OPENSEARCH_URL) is needed for --store opensearch")
        settings = Settings(environment="test", data_dir=tmp, store=StoreSettings(
            kind="opensearch", opensearch_url=[args.opensearch_url], index_prefix=f"bench{uuid.uuid4().hex[:8]}",
            allow_plaintext_auth=True))
        store = OpenSearchStore.from_settings(settings)
    store.open()
    try:
        docs = events(args.events)
        t_load = time.perf_counter()
        for start in range(0, len(docs), 5000):
            store.write_events(docs[start:start + 5000])
        if args.store == "opensearch":
            store.client.indices.refresh(index=f"{store.prefix}-events-*")  # type: ignore[attr-defined]
        load_s = time.perf_counter() - t_load
        del docs
        req = HuntRequest(rule_yaml=RULE, origin="bench", start=T0, end=T0 + timedelta(days=11), units=None)
        scoped = HuntRequest(rule_yaml=RULE, origin="bench", start=T0, end=T0 + timedelta(days=11),
                             units=frozenset({"u1"}))
        t0 = time.perf_counter()
        hits = sum(1 for _ in run_hunt(store, req))
        hunt_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        scoped_hits = sum(1 for _ in run_hunt(store, scoped))
        scoped_s = time.perf_counter() - t1
    finally:
        if args.store == "opensearch":
            store.drop_all()  # type: ignore[attr-defined]
        store.close()
    result = {
        "store": args.store, "events": args.events, "hits": hits, "hunt_seconds": round(hunt_s, 2),
        "events_per_s": round(args.events / hunt_s), "unit_scoped_hits": scoped_hits,
        "unit_scoped_seconds": round(scoped_s, 2), "load_seconds": round(load_s, 1),
        "rss_mb_max": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
    }
    if not args.json:
        for key, value in result.items():
            print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
