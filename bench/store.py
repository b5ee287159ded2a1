"""Store benchmark: bulk event writes per second and the p95 of a filtered alert page.

    .venv/bin/python bench/store.py                  # full run: SQLite at 1,000,000 alerts, OpenSearch API at 50,000
    .venv/bin/python bench/store.py --quick          # a smaller run (a minute or two)
    .venv/bin/python bench/store.py --stores sqlite --alerts 1000000
    .venv/bin/python bench/store.py --sustained 5000000 --json   # event write rate per million as the store grows
    .venv/bin/python bench/store.py --search 5000000 --queries 40 --sqlite-path /tmp/s5m/events.db --json
                                     # event search over the last hour of a 5-million-event store (p50/p95, ms)

The OpenSearch store is measured against osmem-server (the in-memory server
that speaks the OpenSearch REST API, started here) unless --opensearch-url
points at a cluster; osmem figures say nothing about a real cluster's speed,
they only show the client-side path works at volume.

Alerts are realistic in shape: ~30 units, 2,500 hosts, 60 rules, Sigma levels
weighted like a real month (more low/medium than critical), statuses weighted
so older alerts are mostly closed, spread over one month. Each timed query is
what the triage list sends: a unit scope (1-3 units, or all), usually a
severity and a status set, sometimes a time range, sorted by last_seen; the
first page and then the page its cursor points to, both including the total
count. ``--sqlite-path`` keeps the SQLite file so a re-run only times queries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soclite.models import Alert, AlertStatus, Level, fingerprint, isoformat, severity_of  # noqa: E402
from soclite.store.base import AlertQuery, Store  # noqa: E402

UNITS = [f"unit-{i:02d}" for i in range(30)]
HOSTS = [f"ws-{i:04d}" for i in range(2400)] + [f"srv-{i:03d}" for i in range(100)]
LEVELS = [Level.INFORMATIONAL, Level.LOW, Level.MEDIUM, Level.HIGH, Level.CRITICAL]
LEVEL_WEIGHTS = [10, 35, 30, 20, 5]
MONTH_START = datetime(2024, 8, 1, tzinfo=UTC)
MONTH = timedelta(days=31)


def make_events(n: int, rng: random.Random) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        host = rng.choice(HOSTS)
        ts = MONTH_START + timedelta(seconds=rng.randrange(int(MONTH.total_seconds())))
        events.append(
            {
                "@timestamp": isoformat(ts),
                "event.id": f"{i:012x}{rng.getrandbits(64):016x}",
                "host.name": host,
                "soclite.unit": UNITS[hash(host) % len(UNITS)],
                "soclite.input": "agent",
                "logsource.product": "windows",
                "logsource.category": "process_creation",
                "EventID": 1,
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Image": "C:\\Windows\\System32\\cmd.exe",
                "CommandLine": f'cmd.exe /c "whoami /all & net user {rng.randrange(1000)}"',
                "ParentImage": "C:\\Windows\\explorer.exe",
                "User": f"CORP\\user{rng.randrange(3000)}",
                "event.original": f"<14>1 {isoformat(ts)} {host} Sysmon 1 - process create cmd.exe whoami {i}",
            }
        )
    return events


def make_alerts(n: int, rng: random.Random) -> list[Alert]:
    rules = [(f"rule-{i:03d}", f"Phát hiện hành vi đáng ngờ số {i}") for i in range(60)]
    statuses = [
        AlertStatus.NEW,
        AlertStatus.ACKNOWLEDGED,
        AlertStatus.IN_PROGRESS,
        AlertStatus.RESOLVED,
        AlertStatus.FALSE_POSITIVE,
    ]
    out = []
    levels = rng.choices(LEVELS, weights=LEVEL_WEIGHTS, k=n)
    for i in range(n):
        host = rng.choice(HOSTS)
        unit = UNITS[hash(host) % len(UNITS)]
        rule_id, title = rules[rng.randrange(len(rules))]
        last = MONTH_START + timedelta(seconds=rng.randrange(int(MONTH.total_seconds())))
        age = (MONTH_START + MONTH - last) / MONTH  # 0 = newest, 1 = oldest
        status = rng.choices(statuses, weights=[40 * (1 - age) + 2, 10, 8, 30 * age + 10, 10 * age + 3])[0]
        level = levels[i]
        out.append(
            Alert(
                id=f"{i:08x}{rng.getrandbits(64):016x}",
                fingerprint=fingerprint(rule_id, host, {"n": i % 7}),
                rule_id=rule_id,
                rule_title=title,
                level=level,
                severity=severity_of(level),
                status=status,
                assignee=f"analyst{rng.randrange(8)}" if status != AlertStatus.NEW else None,
                host=host,
                unit=unit,
                first_seen=last - timedelta(minutes=rng.randrange(600)),
                last_seen=last,
                count=rng.randrange(1, 50),
                event_ids=[f"{rng.getrandbits(128):032x}"],
                event={"host.name": host, "EventID": 4625, "TargetUserName": "administrator"},
                tags=["attack.credential_access", f"attack.t{1000 + rng.randrange(200)}"],
                created_at=last,
                updated_at=last,
            )
        )
    return out


def random_query(rng: random.Random) -> AlertQuery:
    units = None if rng.random() < 0.2 else frozenset(rng.sample(UNITS, rng.randint(1, 3)))
    severity = [rng.choice(["high", "medium", "low"])] if rng.random() < 0.75 else None
    status = (
        rng.choice([["new"], ["new", "acknowledged", "in_progress"], ["resolved"]])
        if rng.random() < 0.75
        else None
    )
    start = end = None
    if rng.random() < 0.5:
        start = MONTH_START + timedelta(days=rng.randrange(25))
        end = start + timedelta(days=rng.randint(1, 7))
    return AlertQuery(units=units, severity=severity, status=status, start=start, end=end, limit=50)


def sustained_events(start: int, n: int, rng: random.Random, per_second: int) -> list[dict[str, Any]]:
    """Events in arrival order, as the storage consumer writes them: ``per_second`` a second of site time
    from MONTH_START, uuid4-like ids (random, as ``new_id``), 2,500 hosts, a realistic mix of sizes."""
    events = []
    for i in range(start, start + n):
        host = HOSTS[rng.randrange(len(HOSTS))]
        ts = MONTH_START + timedelta(seconds=i / per_second + rng.random())
        events.append({
            "@timestamp": isoformat(ts), "event.id": f"{rng.getrandbits(128):032x}", "host.name": host,
            "soclite.unit": UNITS[hash(host) % len(UNITS)], "soclite.input": "syslog:tcp",
            "logsource.product": "windows", "logsource.category": "process_creation", "EventID": 1,
            "Image": "C:\\Windows\\System32\\cmd.exe", "User": f"CORP\\user{rng.randrange(3000)}",
            "CommandLine": f'cmd.exe /c "whoami /all & net user {rng.randrange(1000)}"' if i % 997 else
                           "C:\\Users\\Public\\mimikatz.exe privilege::debug sekurlsa::logonpasswords",
            "source.ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "event.original": f"<14>1 {isoformat(ts)} {host} Sysmon 1 - process create cmd.exe whoami {i}",
        })  # fmt: skip
    return events


def disk_bytes(path: Path) -> int:
    """Bytes of a store's files: one SQLite file (plus -wal/-shm) or a directory of them."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else list(path.parent.glob(path.name + "*"))
    return sum(p.stat().st_size for p in files)


def partition_bytes(directory: Path) -> dict[str, int]:
    """Bytes per table/index over every day file (SQLite's dbstat), and the -wal/-shm files left beside them."""
    import sqlite3

    out: dict[str, int] = {}
    for db in sorted(directory.glob("events-*.db")):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                out[name] = out.get(name, 0) + int(size)
        finally:
            conn.close()
    for extra in (*directory.glob("*-wal"), *directory.glob("*-shm")):
        out["(wal/shm files)"] = out.get("(wal/shm files)", 0) + extra.stat().st_size
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def bench_sustained(store: Store, path: Path, total: int, batch: int, step: int, per_second: int, seed: int,
                    archive: bool = False) -> dict[str, Any]:
    """Write ``total`` events in batches; the write rate of each ``step`` events, and disk per million."""
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    written = 0
    raw = 0
    while written < total:
        t0 = time.perf_counter()
        c0 = time.process_time()
        gen = 0.0
        gen_cpu = 0.0
        done = 0
        while done < step and written < total:
            g0 = time.perf_counter()
            gc0 = time.process_time()
            events = sustained_events(written, min(batch, total - written), rng, per_second)
            raw += sum(len(orjson.dumps(e)) for e in events)
            gen += time.perf_counter() - g0
            gen_cpu += time.process_time() - gc0
            store.write_events(events)
            written += len(events)
            done += len(events)
        seconds = time.perf_counter() - t0 - gen  # generation is not the store's time
        cpu = time.process_time() - c0 - gen_cpu  # the store's CPU: what a loaded machine does not distort
        size = disk_bytes(path)
        steps.append({"events": written, "events_per_s": round(done / seconds), "disk_bytes": size,
                      "cpu_us_per_event": round(cpu / done * 1e6, 1)})
        print(f"{written:>12,} events  {done / seconds:>10,.0f} ev/s  {cpu / done * 1e6:6.1f} CPU us/event  "
              f"{size / written * 1e6 / 1e6:8.1f} MB/million", file=sys.stderr, flush=True)
    size = disk_bytes(path)
    parts = partition_bytes(path) if path.is_dir() else {}
    cold = None
    if archive and hasattr(store, "events"):  # the cold archive's segments of the same events (gzip JSONL)
        from soclite.store.archive import EventArchive

        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            segments = [EventArchive(Path(tmp)).add(day, store.events.iter_day(day)) for day in store.events.days()]
            cold = round(sum(s.bytes for s in segments) / written * 1e6)
    return {
        "mode": "sustained", "store": store.kind, "events": written, "batch": batch,
        "events_per_s_first_step": steps[0]["events_per_s"], "events_per_s_last_step": steps[-1]["events_per_s"],
        "steps": steps, "disk_bytes": size, "disk_bytes_per_million_events": round(size / written * 1e6),
        "json_bytes_per_million_events": round(raw / written * 1e6),
        "compression_ratio": round(raw / size, 2) if size else None,
        "bytes_per_event_by_part": {name: round(n / written, 1) for name, n in parts.items()},
        "cpu_us_per_event_first_step": steps[0]["cpu_us_per_event"],
        "cpu_us_per_event_last_step": steps[-1]["cpu_us_per_event"],
        "cold_archive_bytes_per_million_events": cold,
    }


def bench_search(store: Store, path: Path, total: int, per_second: int, queries: int, seed: int,
                 alerts: int) -> dict[str, Any]:
    """Build (or reuse) a store of ``total`` events at ``per_second`` site events/s, then time what an analyst
    sends over the last hour of it: a host, a free-text term, an alert page (p50/p95 in ms, totals included)."""
    from soclite.store.base import EventQuery

    rng = random.Random(seed)
    have = store.count_events(EventQuery(start=MONTH_START - timedelta(days=1)))
    t0 = time.perf_counter()
    written = have
    while written < total:
        n = min(5000, total - written)
        store.write_events(sustained_events(written, n, rng, per_second))
        written += n
        if written % 500_000 == 0:
            print(f"{written:>12,} events stored ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    build_s = time.perf_counter() - t0
    have_alerts = store.count_alerts(AlertQuery())["total"]
    if have_alerts < alerts:
        store.put_alerts(make_alerts(alerts - have_alerts, random.Random(seed + 1)))
    end = MONTH_START + timedelta(seconds=total / per_second + 1)
    start = end - timedelta(hours=1)
    # terms the stored events hold: ~1 in 1,000 runs mimikatz; an IP and a counter are in about one each
    probe = store.query_events(EventQuery(host=HOSTS[42], start=start, end=end, limit=1)).items[0]
    ip = str(probe["source.ip"])
    counter = str(probe["event.original"]).rsplit(" ", 1)[-1]
    kinds: dict[str, Callable[[random.Random], Any]] = {
        "host_last_hour": lambda r: EventQuery(host=r.choice(HOSTS), start=start, end=end, limit=50),
        "host_last_hour_cursor": lambda r: EventQuery(host=r.choice(HOSTS), start=start, end=end, limit=50),
        "term_last_hour:mimikatz": lambda r: EventQuery(q="mimikatz", start=start, end=end, limit=50),
        # a part of a word (what a bare wildcard term such as mimi* searches for): the words holding it first
        "term_last_hour:imikat (inside a word)": lambda r: EventQuery(q="imikat", start=start, end=end, limit=50),
        f"term_last_hour:{counter}": lambda r: EventQuery(q=counter, start=start, end=end, limit=50),
        f"term_last_hour:{ip}": lambda r: EventQuery(q=ip, start=start, end=end, limit=50),
        "term_last_hour:sekurlsa::logonpasswords (two words)": lambda r: EventQuery(
            q="sekurlsa::logonpasswords", start=start, end=end, limit=50),
        "term_and_host_last_hour:whoami (in every event)": lambda r: EventQuery(
            q="whoami", host=r.choice(HOSTS), start=start, end=end, limit=50),
    }
    out: dict[str, Any] = {}
    for name, make in kinds.items():
        times: list[float] = []
        hits = 0
        for _ in range(queries):
            query = make(rng)
            t = time.perf_counter()
            page = store.query_events(query)
            if name.endswith("cursor") and page.next:
                query.cursor = page.next
                t = time.perf_counter()
                page = store.query_events(query)
            times.append((time.perf_counter() - t) * 1000)
            hits = page.total
        out[name] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(pct(times, 0.95), 1),
                     "max_ms": round(max(times), 1), "total_hits_last": hits}
        print(f"{name:55} p50 {out[name]['p50_ms']:>9.1f} ms  p95 {out[name]['p95_ms']:>9.1f} ms  hits {hits:,}",
              file=sys.stderr, flush=True)
    times = []
    for _ in range(queries * 4):
        query = random_query(rng)
        t = time.perf_counter()
        store.query_alerts(query)
        times.append((time.perf_counter() - t) * 1000)
    out["alert_page"] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(pct(times, 0.95), 1),
                         "max_ms": round(max(times), 1), "alerts": max(alerts, have_alerts)}
    print(f"{'alert_page':55} p50 {out['alert_page']['p50_ms']:>9.1f} ms  p95 {out['alert_page']['p95_ms']:>9.1f} ms",
          file=sys.stderr, flush=True)
    size = disk_bytes(path)
    return {
        "mode": "search", "store": store.kind, "events": total, "events_in_last_hour": min(total, per_second * 3600),
        "built_now": total - have, "build_s": round(build_s), "queries_each": queries, "timings": out,
        "disk_bytes_per_million_events": round(size / total * 1e6),
        "bytes_per_event_by_part": {k: round(v / total, 1) for k, v in partition_bytes(path).items()}
        if path.is_dir() else {},
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_store(
    name: str, store: Store, *, events: int, alerts: int, batch: int, queries: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    row: dict[str, Any] = {"store": name, "events": events, "alerts": alerts}
    evs = make_events(events, rng)
    t0 = time.perf_counter()
    for i in range(0, len(evs), batch):
        store.write_events(evs[i : i + batch])
    elapsed = time.perf_counter() - t0
    row["events_per_s"] = events / elapsed if events else float("nan")
    print(f"[{name}] {events:,} events written in {elapsed:.1f} s", flush=True)
    del evs

    t0 = time.perf_counter()
    chunk = 20_000
    done = store.count_alerts(AlertQuery())["total"]  # a kept SQLite file already has them
    while done < alerts:
        n = min(chunk, alerts - done)
        store.put_alerts(make_alerts(n, random.Random(seed + done)))
        done += n
        if done % 200_000 == 0 or done == alerts:
            print(f"[{name}] {done:,} alerts stored ({time.perf_counter() - t0:.0f} s)", flush=True)
    row["alert_load_s"] = time.perf_counter() - t0
    if hasattr(store, "optimize"):
        store.optimize()

    first: list[float] = []
    second: list[float] = []
    for _ in range(queries):
        query = random_query(rng)
        t = time.perf_counter()
        page = store.query_alerts(query)
        first.append((time.perf_counter() - t) * 1000)
        if page.next:
            query.cursor = page.next
            t = time.perf_counter()
            store.query_alerts(query)
            second.append((time.perf_counter() - t) * 1000)
    row.update(
        p50_first=statistics.median(first),
        p95_first=pct(first, 0.95),
        max_first=max(first),
        p95_cursor=pct(second, 0.95) if second else float("nan"),
        p95_all=pct(first + second, 0.95),
        pages=len(first) + len(second),
    )
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    cols: list[tuple[str, str, Callable[[Any], str]]] = [
        ("store", "store", str),
        ("events", "events", lambda v: f"{v:,}"),
        ("events/s", "events_per_s", lambda v: f"{v:,.0f}"),
        ("alerts", "alerts", lambda v: f"{v:,}"),
        ("load s", "alert_load_s", lambda v: f"{v:.0f}"),
        ("p50 page ms", "p50_first", lambda v: f"{v:.1f}"),
        ("p95 page ms", "p95_first", lambda v: f"{v:.1f}"),
        ("max page ms", "max_first", lambda v: f"{v:.1f}"),
        ("p95 cursor ms", "p95_cursor", lambda v: f"{v:.1f}"),
        ("p95 all ms", "p95_all", lambda v: f"{v:.1f}"),
        ("pages", "pages", str),
    ]
    table = [[head for head, _, _ in cols]] + [[fmt(row[key]) for _, key, fmt in cols] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    for n, r in enumerate(table):
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _sqlite_only(args: argparse.Namespace, run: Callable[[Any, Path], dict[str, Any]]) -> int:
    """--search / --sustained: ``run`` on a SQLite store (in a temp dir unless --sqlite-path), its result printed
    as one JSON line with the machine it ran on."""
    from soclite.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        path = args.sqlite_path or Path(tmp) / "events.db"
        store = SQLiteStore(path)
        store.open()
        try:
            result = run(store, path)
        finally:
            store.close()
    result["machine"] = (f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_implementation()} "
                         f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default="sqlite,opensearch", help="comma list: sqlite, opensearch")
    parser.add_argument("--events", type=int, default=200_000, help="events to write (SQLite)")
    parser.add_argument("--batch", type=int, default=1000, help="events per write_events call")
    parser.add_argument("--alerts", type=int, default=1_000_000, help="alerts for the SQLite page timing")
    parser.add_argument("--os-events", type=int, default=50_000, help="events to write (OpenSearch)")
    parser.add_argument("--os-alerts", type=int, default=50_000, help="alerts for the OpenSearch page timing")
    parser.add_argument("--queries", type=int, default=200, help="random filtered page queries")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where the SQLite file goes (default: a temp dir)"
    )
    parser.add_argument("--sqlite-path", type=Path, default=None, help="keep (or reuse) the SQLite file here")
    parser.add_argument("--opensearch-url", default=None, help="a cluster to use instead of osmem-server")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="20k events, 100k/10k alerts, 50 queries")
    parser.add_argument("--sustained", type=int, default=0, metavar="N",
                        help="only: write N events to the SQLite store, the rate per --step as it grows")
    parser.add_argument("--search", type=int, default=0, metavar="N",
                        help="only: a store of N events (--rate a second; kept with --sqlite-path), then p50/p95 of "
                             "host + last hour, a free-text term over the last hour and an alert page")
    parser.add_argument("--archive", action="store_true",
                        help="--sustained: also write the days to a cold archive and report its bytes per million")
    parser.add_argument("--step", type=int, default=1_000_000, help="events per reported step (--sustained)")
    parser.add_argument("--rate", type=int, default=5000, help="site events/s the timestamps advance by (--sustained)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line last")
    args = parser.parse_args(argv)
    if args.search:
        return _sqlite_only(args, lambda store, path: bench_search(
            store, store.events_path, args.search, args.rate, args.queries, args.seed, min(args.alerts, 200_000)))
    if args.sustained:
        return _sqlite_only(args, lambda store, path: bench_sustained(
            store, getattr(store, "events_path", path), args.sustained, max(args.batch, 5000), args.step, args.rate,
            args.seed, args.archive))
    if args.quick:
        args.events, args.alerts, args.os_events, args.os_alerts, args.queries = (
            20_000,
            100_000,
            10_000,
            10_000,
            50,
        )

    rows = []
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "sqlite" in stores:
        from soclite.store.sqlite import SQLiteStore

        with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
            reuse = args.sqlite_path is not None and args.sqlite_path.exists()
            store = SQLiteStore(args.sqlite_path or Path(tmp) / "events.db")
            store.open()
            events = 0 if reuse else args.events  # a kept file: time the queries only
            rows.append(
                bench_store(
                    "sqlite",
                    store,
                    events=events,
                    alerts=args.alerts,
                    batch=args.batch,
                    queries=args.queries,
                    seed=args.seed,
                )
            )
            store.close()
    if "opensearch" in stores:
        from opensearchpy import OpenSearch

        from soclite.store.opensearch import OpenSearchStore

        server = None
        url = args.opensearch_url
        if url is None:
            from osmem_server import OsmemServer

            server = OsmemServer.start()
            url = server.url
        prefix = f"bench{int(time.time())}"
        os_store = OpenSearchStore(OpenSearch(hosts=[url], timeout=120), prefix)
        os_store.open()
        try:
            name = "opensearch" + (" (osmem)" if server else "")
            rows.append(
                bench_store(
                    name,
                    os_store,
                    events=args.os_events,
                    alerts=args.os_alerts,
                    batch=args.batch,
                    queries=args.queries,
                    seed=args.seed,
                )
            )
        finally:
            if server is None:
                os_store.drop_all()
            os_store.close()
            if server is not None:
                server.close()
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
