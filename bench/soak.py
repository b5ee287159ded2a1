"""Soak: a province's traffic at a fixed rate for minutes, and whether every acknowledged event is kept.

Starts a real ``soclite server`` (subprocess, its detection child included) on a fresh data dir and
offers a generated, deterministic province profile at ``--rate`` events/s for ``--minutes``, half
through syslog TCP (Linux auth, web access logs, network devices, cron) and half through
``POST /api/v1/ingest`` (Windows Security and Sysmon as NXLog JSON), optionally with a burst
(``--burst 15000:5`` = 15,000 events/s for 5 minutes in the middle). Every event carries a unique
sequence marker. Once a second a ClamAV "FOUND" line from a new host name (a probe) goes through
syslog: the time until its alert is readable through the API is the alert latency.

When the offer ends the run waits for the pipeline to drain (at most ``--drain-minutes``), then
reads every stored event back from the store and counts the markers: ``lost`` = acknowledged
markers not stored, ``duplicated`` = markers stored more than once. TCP syslog has no application
acknowledgement: a line counts as acknowledged once ``sendall`` returned.

The last line printed is one JSON object (the contract of DESIGN.md):
``offered acknowledged stored lost duplicated alert_latency_p99_s max_journal_lag
final_journal_lag rss_mb_max disk_bytes_per_million_events`` plus the rates per minute and the
machine it ran on.

    .venv/bin/python bench/soak.py --rate 5000 --minutes 60 --burst 15000:5 --store sqlite --json
    .venv/bin/python bench/soak.py --rate 500 --minutes 1 --json                 # the smoke run of make test
    OPENSEARCH_URL=http://127.0.0.1:9200 .venv/bin/python bench/soak.py --store opensearch --rate 2000 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

CLAMAV_RULE = "98c10100-e28c-4c57-b5f0-299ae4c02df6"  # rules/antivirus/malware_detected.yml, level high
SOCLITE = str(Path(sys.executable).with_name("soclite"))
TICK = 0.1  # seconds between two sends of each sender
#: syslog (RFC 3164) and NXLog times carry no zone: soclite reads them in its `timezone` setting (the default)
SITE_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

SYSLOG = [
    "<38>{ts} web{h:02d} sshd[{p}]: Failed password for root from 203.0.113.{o} port {port} ssh2 {m}",
    "<38>{ts} web{h:02d} sshd[{p}]: Accepted publickey for canbo{o} from 10.10.{h}.{o} port {port} ssh2 {m}",
    "<86>{ts} app{h:02d} sudo:   canbo{o} : TTY=pts/0 ; PWD=/home/canbo{o} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx {m}",
    '<190>{ts} web{h:02d} nginx: 10.20.{h}.{o} - - [{clf}] "GET /portal/tin-tuc?id={p}&m={m} HTTP/1.1" 200 5123 "-" "Mozilla/5.0"',
    "<134>{ts} fw{h:02d} date=2026-12-07 devname=fw{h:02d} type=traffic subtype=forward srcip=10.30.{h}.{o} dstip=198.51.100.{o} dstport=443 action=accept msg={m}",
    "<78>{ts} db{h:02d} CRON[{p}]: (root) CMD (run-parts /etc/cron.hourly) {m}",
]
WINDOWS = [
    {"EventID": 4624, "Channel": "Security", "SourceName": "Microsoft-Windows-Security-Auditing",
     "TargetUserName": "canbo{o}", "LogonType": 3, "IpAddress": "10.40.{h}.{o}"},
    {"EventID": 4625, "Channel": "Security", "SourceName": "Microsoft-Windows-Security-Auditing",
     "TargetUserName": "administrator", "LogonType": 3, "IpAddress": "203.0.113.{o}"},
    {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "SourceName": "Microsoft-Windows-Sysmon",
     "Image": "C:\\Windows\\System32\\svchost.exe", "CommandLine": "svchost.exe -k netsvcs -p {p}",
     "ParentImage": "C:\\Windows\\System32\\services.exe", "User": "NT AUTHORITY\\SYSTEM"},
    {"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "SourceName": "Microsoft-Windows-Sysmon",
     "Image": "C:\\Program Files\\Mozilla Firefox\\firefox.exe", "DestinationIp": "198.51.100.{o}",
     "DestinationPort": 443, "Protocol": "tcp"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]  # nearest rank


def windowed_p99(sent: list[tuple[float, float]], width: float) -> list[float | None]:
    """p99 latency of the probes sent in each window of ``width`` seconds ((sent at, latency) pairs)."""
    windows: dict[int, list[float]] = {}
    for at, latency in sent:
        windows.setdefault(int(at // width), []).append(latency)
    return [percentile(windows.get(i, []), 99) for i in range(max(windows, default=-1) + 1)]


def storage_rates(samples: list[dict[str, Any]]) -> list[float]:
    """Events stored per second in each minute: offered minus the storage consumer's lag, per sample."""
    done = [(float(s["t"]), int(s["offered"]) - int(s.get("lags", {}).get("storage", s["lag"]))) for s in samples
            if int(s["lag"]) >= 0]  # fmt: skip
    rates = []
    for minute in range(int(done[-1][0] // 60) if done else 0):
        inside = [d for d in done if minute * 60 <= d[0] < (minute + 1) * 60 + 5]
        if len(inside) >= 2:
            rates.append(round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 1))
    return rates


def rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc (MB)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def rfc3164(moment: datetime) -> str:
    """RFC 3164 TIMESTAMP: ``Mmm dd hh:mm:ss`` with the day padded by a space."""
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}"


class Profile:
    """Deterministic events: the n-th event is always the same (apart from its timestamp)."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.marker = re.compile(rf"soak{run}n(\d+)\b".encode())

    def mark(self, n: int) -> str:
        return f"soak{self.run}n{n}"

    def syslog(self, n: int, now: datetime) -> bytes:
        local = now.astimezone(SITE_ZONE)
        line = SYSLOG[n % len(SYSLOG)].format(
            ts=rfc3164(local),
            clf=local.strftime("%d/%b/%Y:%H:%M:%S %z"), h=n % 97, p=1000 + n % 50_000, o=n % 250 + 1,
            port=1024 + n % 60_000, m=self.mark(n),
        )  # fmt: skip
        return line.encode() + b"\n"

    def windows(self, n: int, now: datetime) -> bytes:
        template = WINDOWS[n % len(WINDOWS)]
        record: dict[str, Any] = {}
        for key, value in template.items():
            record[key] = value.format(h=n % 97, o=n % 250 + 1, p=n) if isinstance(value, str) else value
        record.update({
            "Hostname": f"pc-{n % 2500:04d}.tinh.gov.vn",
            "EventTime": now.astimezone(SITE_ZONE).strftime("%Y-%m-%d %H:%M:%S"),
            "RecordNumber": n, "SoakMarker": self.mark(n),
        })  # fmt: skip
        return orjson.dumps(record)


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.run = secrets.token_hex(3)
        self.profile = Profile(self.run)
        self.http_port, self.syslog_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.data = work / "data"
        self.env = {**os.environ, "SOCLITE_AUTH__SECRET_KEY": secrets.token_urlsafe(48)}
        if args.store == "opensearch":
            url = os.environ.get("OPENSEARCH_URL")
            if not url:
                raise SystemExit("--store opensearch needs OPENSEARCH_URL (make opensearch starts a node)")
            self.env |= {"SOCLITE_STORE__KIND": "opensearch", "SOCLITE_STORE__OPENSEARCH_URL": url,
                         "SOCLITE_STORE__INDEX_PREFIX": f"soak-{self.run}"}  # fmt: skip
        self.lock = threading.Lock()
        self.next_seq = 0
        self.acked: bytearray = bytearray()  # 1 per acknowledged sequence number
        self.http_retries = 0
        self.raw_bytes = 0
        self.probes: dict[str, float] = {}  # probe host -> monotonic time written
        self.seen: dict[str, float] = {}
        self.samples: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.server: subprocess.Popen[bytes] | None = None

    # --- the server ------------------------------------------------------------------------------
    def start(self) -> None:
        config = self.work / "soclite.yml"
        config.write_text("playbooks: []\nenvironment: production\n")
        token = subprocess.run([SOCLITE, "token", "create", "--data-dir", str(self.data), "--role", "admin"],
                               capture_output=True, text=True, check=True, env=self.env).stdout.strip()  # fmt: skip
        self.token = token
        with (self.work / "server.log").open("wb") as log:
            self.server = subprocess.Popen(
                [SOCLITE, "server", "--config", str(config), "--data-dir", str(self.data),
                 "--http-port", str(self.http_port), "--syslog-port", str(self.syslog_port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            if self.server.poll() is not None:
                raise SystemExit("server exited:\n" + (self.work / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not become healthy")
            time.sleep(0.2)
        self.client = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def shutdown(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(60)
            except subprocess.TimeoutExpired:
                self.server.kill()

    # --- offering --------------------------------------------------------------------------------
    def rate_at(self, elapsed: float) -> float:
        if self.args.burst:
            burst_rate, burst_minutes = self.args.burst
            start = (self.args.minutes * 60 - burst_minutes * 60) / 2
            if start <= elapsed < start + burst_minutes * 60:
                return float(burst_rate)
        return float(self.args.rate)

    def take(self, count: int) -> range:
        with self.lock:
            first = self.next_seq
            self.next_seq += count
            self.acked.extend(b"\0" * count)
        return range(first, first + count)

    def ack(self, seqs: range) -> None:
        with self.lock:
            self.acked[seqs.start:seqs.stop] = b"\1" * len(seqs)

    def paced(self, share: float) -> Iterator[int]:
        """How many events to send at each tick for this sender's share of the rate."""
        start = time.monotonic()
        owed = 0.0
        tick = 0
        while not self.stop.is_set():
            elapsed = time.monotonic() - start
            if elapsed >= self.args.minutes * 60:
                return
            owed += self.rate_at(elapsed) * share * TICK
            whole = int(owed)
            owed -= whole
            if whole:
                yield whole
            tick += 1
            delay = start + tick * TICK - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def syslog_sender(self, share: float) -> None:
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as sock:
            for count in self.paced(share):
                seqs = self.take(count)
                now = datetime.now(UTC)
                sock.sendall(b"".join(self.profile.syslog(n, now) for n in seqs))
                self.ack(seqs)

    def http_sender(self, share: float, index: int) -> None:
        with httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=60) as client:
            for batch, count in enumerate(self.paced(share)):
                seqs = self.take(count)
                now = datetime.now(UTC)
                body = b"\n".join(self.profile.windows(n, now) for n in seqs)
                headers = {"X-Batch-Id": f"soak-{self.run}-{index}-{batch}"}
                for _attempt in range(60):  # a refused batch is resent with the same id until it is taken
                    try:
                        resp = client.post("/api/v1/ingest", content=body, headers=headers)
                    except httpx.HTTPError:
                        resp = None
                    if resp is not None and resp.status_code == 200:
                        self.ack(seqs)
                        break
                    self.http_retries += 1
                    retry_after = float(resp.headers.get("Retry-After", 1)) if resp is not None else 1.0
                    time.sleep(min(retry_after, 5.0))

    def prober(self) -> None:
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as sock:
            k = 0
            while not self.stop.wait(1.0):
                host = f"probe-{self.run}-{k}"
                stamp = rfc3164(datetime.now(SITE_ZONE))
                line = f"<38>{stamp} {host} clamd[1]: /tmp/q{k}.exe: Win.Trojan.Agent-{k} FOUND\n"
                with self.lock:
                    self.probes[host] = time.monotonic()
                sock.sendall(line.encode())
                k += 1

    def poller(self, since: datetime) -> None:
        while not self.stop.wait(0.25) or len(self.seen) < len(self.probes):
            try:
                resp = self.client.get("/api/v1/alerts", params={"rule_id": CLAMAV_RULE, "limit": 500,
                                                                 "from": since.isoformat().replace("+00:00", "Z")})  # fmt: skip
                items = resp.json().get("items", []) if resp.status_code == 200 else []
            except httpx.HTTPError:
                continue
            now = time.monotonic()
            for alert in items:
                host = str(alert.get("host") or "")
                if host in self.probes and host not in self.seen:
                    self.seen[host] = now
            if self.stop.is_set() and time.monotonic() > self.drain_deadline:
                return

    def lag(self) -> int:
        """The largest journal lag over the consumers (detection, storage); -1 when unreadable."""
        lags = self.lags()
        return max(lags.values()) if lags else -1

    def lags(self) -> dict[str, int]:
        """Journal lag per consumer, from /metrics (the journal file itself when the server is gone)."""
        try:
            text = self.client.get("/metrics", timeout=5).text
        except httpx.HTTPError:
            return self._journal_lags()
        found = re.findall(r'^soclite_journal_lag\{consumer="([^"]+)"\}\s+([0-9.e+]+)', text, re.M)
        return {name: int(float(value)) for name, value in found} or self._journal_lags()

    def _journal_lags(self) -> dict[str, int]:
        from soclite.store.journal import Journal

        journal = Journal(self.data / "journal.db", max_bytes=1 << 40)
        try:
            return journal.lags()
        finally:
            journal.close()

    def sampler(self, started: float) -> None:
        assert self.server is not None
        while not self.stop.wait(5.0):
            lags = self.lags()
            self.samples.append({"t": time.monotonic() - started, "lag": max(lags.values(), default=-1), "lags": lags,
                                 "rss_mb": rss_mb(self.server.pid), "offered": self.next_seq,
                                 "journal_bytes": self.journal_bytes()})  # fmt: skip

    def journal_bytes(self) -> int:
        """The journal's files (transient: compacted once both consumers have passed its records)."""
        return sum(p.stat().st_size for p in self.data.glob("journal.db*") if p.is_file())

    # --- counting --------------------------------------------------------------------------------
    def stored_markers(self) -> tuple[bytearray, int, int]:
        """(1 per marker found in the store, duplicates, events read), read back from the store itself."""
        seen = bytearray(len(self.acked))
        duplicates = read = 0
        self.raw_bytes = 0
        for doc in self.store_docs():
            read += 1
            self.raw_bytes += len(doc)
            match = self.profile.marker.search(doc)
            if match is None:
                continue
            n = int(match.group(1))
            if n >= len(seen):
                continue
            if seen[n]:
                duplicates += 1
            seen[n] = 1
        return seen, duplicates, read

    def store_docs(self) -> Iterator[bytes]:
        if self.args.store == "sqlite":
            # Through the store itself: events are in compressed day files (soclite.store._sqlite_events).
            from soclite.store.base import EventQuery
            from soclite.store.sqlite import SQLiteStore

            store = SQLiteStore(self.data / "events.db")
            store.open()
            try:
                cursor = None
                while True:
                    page = store.query_events(EventQuery(limit=5000, cursor=cursor))
                    for event in page.items:
                        yield orjson.dumps(event)
                    cursor = page.next
                    if cursor is None:
                        return
            finally:
                store.close()
        from opensearchpy import OpenSearch, helpers

        client = OpenSearch(os.environ["OPENSEARCH_URL"].split(","), timeout=120)
        client.indices.refresh(index=f"soak-{self.run}-events*")
        for hit in helpers.scan(client, index=f"soak-{self.run}-events*", query={"query": {"match_all": {}}},
                                size=5000, preserve_order=False):  # fmt: skip
            yield orjson.dumps(hit["_source"])

    def disk_bytes(self) -> int:
        if self.args.store == "sqlite":
            files = [*self.data.glob("events.db*"), *self.data.glob("events-partitions/*")]
            return sum(p.stat().st_size for p in files if p.is_file())
        return self.event_index_bytes()

    def disk_parts(self) -> dict[str, int]:
        """Where the store's bytes are: the event day files, events.db (alerts, matched events, hosts), journal."""
        if self.args.store != "sqlite":
            return {"event_indices": self.event_index_bytes(), "journal": self.journal_bytes()}
        days = [p for p in self.data.glob("events-partitions/*") if p.is_file()]
        return {"event_day_files": sum(p.stat().st_size for p in days),
                "events_db": sum(p.stat().st_size for p in self.data.glob("events.db*") if p.is_file()),
                "journal": self.journal_bytes()}  # fmt: skip

    def event_index_bytes(self) -> int:
        resp = httpx.get(f"{os.environ['OPENSEARCH_URL'].split(',')[0]}/_cat/indices/soak-{self.run}-events*",
                         params={"bytes": "b", "h": "store.size", "format": "json"}, timeout=30)  # fmt: skip
        return sum(int(row["store.size"] or 0) for row in resp.json())

    # --- the run ---------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        self.start()
        started = time.monotonic()
        since = datetime.now(UTC) - timedelta(minutes=5)
        self.drain_deadline = float("inf")
        senders = [threading.Thread(target=self.syslog_sender, args=(0.25,), daemon=True) for _ in range(2)]
        senders += [threading.Thread(target=self.http_sender, args=(0.25, i), daemon=True) for i in range(2)]
        helpers_ = [threading.Thread(target=self.prober, daemon=True),
                    threading.Thread(target=self.poller, args=(since,), daemon=True),
                    threading.Thread(target=self.sampler, args=(started,), daemon=True)]  # fmt: skip
        for thread in senders + helpers_:
            thread.start()
        for thread in senders:
            thread.join()
        offer_seconds = time.monotonic() - started
        self.drain_deadline = time.monotonic() + self.args.drain_minutes * 60
        self.stop.set()
        while time.monotonic() < self.drain_deadline:
            lag = self.lag()
            if lag == 0:
                break
            time.sleep(1.0)
        drained = time.monotonic() - started
        final_lags = self.lags()
        final_lag = max(final_lags.values(), default=-1)
        for thread in helpers_:
            thread.join(timeout=30)
        assert self.server is not None
        rss_max = max([s["rss_mb"] for s in self.samples] + [rss_mb(self.server.pid)])
        self.shutdown()
        seen, duplicated, read = self.stored_markers()
        stored = sum(seen)
        acknowledged = sum(self.acked)
        lost = sum(1 for acked, found in zip(self.acked, seen, strict=True) if acked and not found)
        latencies = [self.seen[h] - t for h, t in self.probes.items() if h in self.seen]
        # the slowest probes with when they were sent (seconds into the run): a tail that repeats on a
        # period points at a periodic job (journal compaction, checkpoints, the scheduler)
        worst = sorted(((round(self.seen[h] - t, 2), round(t - started, 1)) for h, t in self.probes.items()
                        if h in self.seen), reverse=True)[:5]  # fmt: skip
        sent = [(t - started, self.seen[h] - t) for h, t in self.probes.items() if h in self.seen]
        disk = self.disk_bytes()
        parts = self.disk_parts()
        journal_max = max([int(s.get("journal_bytes", 0)) for s in self.samples] + [parts["journal"]])
        return {
            "store": self.args.store,
            "rate": self.args.rate,
            "minutes": self.args.minutes,
            "burst": self.args.burst,
            "offered": self.next_seq,
            "acknowledged": acknowledged,
            "stored": stored,
            "lost": lost,
            "duplicated": duplicated,
            "events_read_back": read,
            "http_retries": self.http_retries,
            "offer_seconds": round(offer_seconds, 1),
            "drain_seconds": round(drained - offer_seconds, 1),
            "end_to_end_events_per_s": round(stored / drained, 1) if drained else None,
            "probes": len(self.probes),
            "probes_alerted": len(latencies),
            "alert_latency_p50_s": percentile(latencies, 50),
            "alert_latency_p99_s": percentile(latencies, 99),
            "alert_latency_max_s": max(latencies, default=None),
            "alert_latency_worst": [{"latency_s": lat, "sent_at_s": at} for lat, at in worst],
            "probes_over_2s": sum(1 for lat in latencies if lat > 2.0),
            # p99 of the probes sent in each 5 minutes of the run: "under 2 s throughout" is read here
            "alert_latency_p99_s_by_5min": windowed_p99(sent, 300.0),
            "stored_events_per_s_by_minute": storage_rates(self.samples),
            "max_journal_lag": max([int(s["lag"]) for s in self.samples] + [final_lag]),
            "final_journal_lag": final_lag,
            "max_journal_lag_by_consumer": {
                name: max([int(s.get("lags", {}).get(name, 0)) for s in self.samples] + [lag])
                for name, lag in final_lags.items()
            },
            "final_journal_lag_by_consumer": final_lags,
            "rss_mb_max": round(rss_max, 1),
            "disk_bytes_per_million_events": round(disk / stored * 1_000_000) if stored else None,
            # the raw JSON of the stored events over the store's bytes; the journal is not in disk_bytes (it is
            # transient), its size at the end and its largest sample are given beside it
            "raw_json_bytes_per_million_events": round(self.raw_bytes / stored * 1_000_000) if stored else None,
            "compression_ratio": round(self.raw_bytes / disk, 2) if disk else None,
            "disk_bytes_by_part_per_million_events": {k: round(v / stored * 1_000_000) for k, v in parts.items()}
            if stored else {},
            "journal_bytes_final": parts["journal"],
            "journal_bytes_max": journal_max,
            "disk_bytes_per_million_events_with_journal_max": round((disk + journal_max) / stored * 1_000_000)
            if stored else None,
            "lag_samples": [(round(s["t"]), int(s["lag"])) for s in self.samples],
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_implementation()} "
                       f"{platform.python_version()}",
        }


def burst(value: str) -> tuple[int, float]:
    rate, _, minutes = value.partition(":")
    return int(rate), float(minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=5000, help="events/s offered (half syslog TCP, half HTTP)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--burst", type=burst, default=None, help="RATE:MINUTES in the middle of the run")
    parser.add_argument("--store", choices=("sqlite", "opensearch"), default="sqlite")
    parser.add_argument("--drain-minutes", type=float, default=15.0, help="longest wait for the pipeline to catch up")
    parser.add_argument("--json", action="store_true", help="only the JSON result line")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data dir and logs here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="soclite-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    soak = Soak(args, work)
    try:
        result = soak.execute()
    finally:
        soak.shutdown()
    if not args.json:
        for key, value in result.items():
            if key != "lag_samples":
                print(f"{key:32} {value}", file=sys.stderr)
    print(json.dumps(result))
    if args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
