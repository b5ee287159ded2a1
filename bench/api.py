"""Benchmark: a filtered alert page through the HTTP API over 1,000,000 alerts in the embedded store.

    .venv/bin/python bench/api.py            # 1,000,000 alerts (generated once, reused from --data-dir)
    .venv/bin/python bench/api.py --quick    # 100,000 alerts, fewer requests

The app runs under uvicorn on 127.0.0.1; requests go through httpx over real
loopback HTTP with a bearer token, like an analyst's browser or a script.
Target (issue 5): p95 of a filtered alert page <= 200 ms.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.models import Alert, AlertStatus, Level, Unit, fingerprint, severity_of
from soclite.runtime import Runtime

UNITS = ["PROV", "SO-TC", "SO-YT", "SO-GD", "H-A", "H-B", "H-C", "H-A-X1", "H-B-X1", "H-C-X1"]
LEVELS = [Level.CRITICAL, Level.HIGH, Level.HIGH, Level.MEDIUM, Level.MEDIUM, Level.LOW, Level.LOW, Level.INFORMATIONAL]
STATUSES = [AlertStatus.NEW] * 5 + [AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS, AlertStatus.RESOLVED,
                                     AlertStatus.FALSE_POSITIVE]


def generate(runtime: Runtime, total: int, batch: int = 20_000) -> float:
    store = runtime.store
    for code in UNITS:
        parent = None if code == "PROV" else ("PROV" if code.count("-") == 1 else code.rsplit("-", 1)[0])
        store.put_unit(Unit(code=code, name=code, parent=parent))
    rng = random.Random(42)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    span = 180 * 86400
    began = time.perf_counter()
    made = 0
    while made < total:
        alerts = []
        for _ in range(min(batch, total - made)):
            host = f"ws-{rng.randrange(2600):04d}"
            rule = f"rule-{rng.randrange(400)}"
            level = rng.choice(LEVELS)
            ts = start + timedelta(seconds=rng.randrange(span))
            status = rng.choice(STATUSES)
            alerts.append(Alert(
                fingerprint=fingerprint(rule, host, {"n": made}), rule_id=rule, rule_title=f"Rule {rule}",
                level=level, severity=severity_of(level), status=status, host=host, unit=rng.choice(UNITS),
                first_seen=ts, last_seen=ts, event_ids=[f"{made:032x}"],
                event={"host.name": host, "CommandLine": f"cmd /c job{made}"},
                close_reason="bench" if status in (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE) else None,
            ))
            made += 1
        store.put_alerts(alerts)
        print(f"  {made:,} alerts stored", end="\r", flush=True)
    print()
    return time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> dict[str, float]:
    times = []
    for i in range(n + 3):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        elapsed = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise SystemExit(f"{url}: HTTP {r.status_code} {r.text[:200]}")
        if i >= 3:  # warm-up excluded
            times.append(elapsed)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(len(times) * 0.95) - 1], "max": times[-1],
            "total": float(r.json().get("total", -1))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 alerts and fewer requests")
    parser.add_argument("--alerts", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse/keep the dataset here")
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    total = args.alerts or (100_000 if args.quick else 1_000_000)
    n = args.requests or (40 if args.quick else 100)
    data_dir = args.data_dir or Path(__file__).resolve().parent / "results" / f"api-{total}"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(environment="test", data_dir=data_dir,
                        auth=AuthSettings(secret_key="bench-secret-0123456789", secure_cookies=False))
    runtime = Runtime.build(settings)
    from soclite.store.base import AlertQuery

    have = runtime.store.count_alerts(AlertQuery()).get("total", 0)
    if have < total:
        print(f"generating {total - have:,} alerts into {data_dir} ...")
        seconds = generate(runtime, total - have)
        print(f"stored in {seconds:.1f} s ({(total - have) / seconds:,.0f} alerts/s)")
    else:
        print(f"reusing {have:,} alerts in {data_dir}")
    admin = runtime.identity.create_token(role="admin", name="bench")
    scoped = runtime.identity.create_token(role="analyst", unit="H-A", name="bench-ha")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    queries = [
        ("queue: severity=high&status=new", "/api/v1/alerts?severity=high&status=new&limit=50", admin),
        ("queue, unit-scoped token (H-A subtree)", "/api/v1/alerts?severity=high&status=new&limit=50", scoped),
        ("one host, last 30 days", "/api/v1/alerts?host=ws-0042&from=2026-06-01T00:00:00Z&limit=50", admin),
        ("rule + status, sorted by severity",
         "/api/v1/alerts?rule_id=rule-7&status=new&sort=severity&limit=50", admin),
        ("unfiltered first page", "/api/v1/alerts?limit=50", admin),
        ("stats summary (whole period)", "/api/v1/stats/summary", admin),
        ("full text q=job12345 (informational)", "/api/v1/alerts?q=job12345&limit=50", admin),
    ]
    worst = 0.0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        print(f"\n{'query':45} {'total':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, url, token in queries:
            res = measure(client, url, {"Authorization": f"Bearer {token}"}, n if "summary" not in name and "informational" not in name else 10)
            print(f"{name:45} {res['total']:>10,.0f} {res['p50']:>8.1f} {res['p95']:>8.1f} {res['max']:>8.1f}")
            if "summary" not in name and "informational" not in name:
                worst = max(worst, res["p95"])
    server.should_exit = True
    thread.join(10)
    runtime.close()
    verdict = "OK" if worst <= 200 else "OVER TARGET"
    print(f"\nworst p95 of a filtered alert page: {worst:.1f} ms (target <= 200 ms): {verdict}")
    return 0 if worst <= 200 else 1


if __name__ == "__main__":
    sys.exit(main())
