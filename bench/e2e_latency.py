"""End-to-end detection latency: a line written on the endpoint → the alert readable through the API.

Real processes: `soclite server` (embedded SQLite store, default rules, port on 127.0.0.1) and `soclite agent`
tailing one log file. A writer thread appends benign syslog lines to that file at --rate lines/s (the background
load goes through the agent, the same path as the probes: tail → gzip batch → POST /api/v1/ingest → journal →
correlator → store). Every --interval seconds it appends one ClamAV "FOUND" line instead. The server binds an
enrolled agent's events to the host it enrolled as, so every probe lands on the same alert (same rule, same
host) and raises its ``count``. A poller asks GET /api/v1/alerts every --poll seconds (one request per turn:
rule_id of the ClamAV rule) and, the data directory being new, takes the sum of those alerts' counts as the
number of probes detected so far: one file, one agent, one journal keep them in order, so probe k is seen
when the sum reaches k. Latency = that moment minus the moment the line was written (the polling period adds
up to --poll, on average half of it).

At the end a marker line is written after the load and the time until it is searchable is reported: a pipeline
that did not keep up with the load would show it there.

The agent's batching is the main knob: a partial batch is shipped after ``flush_interval`` seconds (or as soon as
``batch_size`` lines are waiting). Playbooks are off here (they run after the alert is stored and do not change
when it is readable).

    .venv/bin/python bench/e2e_latency.py [--rate 1000] [--probes 100] [--interval 0.5] [--flush-interval 0.25]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SOCLITE = str(Path(sys.executable).with_name("soclite"))
CLAMAV_RULE = "98c10100-e28c-4c57-b5f0-299ae4c02df6"  # rules/antivirus/malware_detected.yml, level high
BENIGN = [
    "web01 CRON[{n}]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)",
    "web01 systemd[1]: Started session {n} of user www-data.",
    "db01 kernel: [{n}.123456] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex",
    "web01 nginx[{n}]: 10.0.3.{m} - - GET /portal/tin-tuc?page={m} HTTP/1.1 200 5123",
    "mail01 postfix/smtpd[{n}]: connect from unknown[10.0.4.{m}]",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = work / "endpoint.log"
        self.log.touch()
        self.run_id = secrets.token_hex(3)
        self.env = {**os.environ, "SOCLITE_AUTH__SECRET_KEY": secrets.token_urlsafe(48)}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()
        self.written: list[float] = []  # probe k-1 -> monotonic time its line was written
        self.seen: list[float] = []  # probe k-1 -> latency (seconds)
        self.background = 0
        self.stop_writing = threading.Event()
        self.stop_polling = threading.Event()
        self.poll_errors = 0
        #: ClamAV detections beyond the probes written (must stay 0: the counts would not be the probes)
        self.miscount = 0

    # --- processes -------------------------------------------------------------------------------
    def spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.work / log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        config = self.work / "soclite.yml"
        config.write_text(f"server:\n  syslog_port: 0\n  http_port: {self.port}\nplaybooks: []\n")
        data = self.work / "data"
        server = self.spawn(
            [SOCLITE, "server", "--config", str(config), "--data-dir", str(data)], "server.log"
        )
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise SystemExit("server exited:\n" + (self.work / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not become healthy")
            time.sleep(0.2)

        def cli(*args: str) -> str:
            done = subprocess.run([SOCLITE, *args, "--data-dir", str(data)], capture_output=True, text=True,
                                  env=self.env, cwd=ROOT, check=True)  # fmt: skip
            return done.stdout.strip()

        self.token = cli("token", "create", "--role", "admin")
        enroll = cli("agent", "enroll-token", "create", "--unit", "bench")
        agent_yml = self.work / "agent.yml"
        agent_yml.write_text(
            f"files:\n  - path: {self.log}\nflush_interval: {self.args.flush_interval}\n"
            f"poll_interval: {self.args.agent_poll}\nbatch_size: {self.args.batch_size}\n"
        )
        self.spawn([SOCLITE, "agent", "--server", self.base, "--enroll-token", enroll, "--state-dir",
                    str(self.work / "agent-state"), "--config", str(agent_yml)], "agent.log")  # fmt: skip
        self.client = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    # --- load and probes ---------------------------------------------------------------------------
    def writer(self) -> None:
        """Append --rate lines/s in 10 ms slices; every --interval s one of them is a probe."""
        rate, interval = self.args.rate, self.args.interval
        start = time.monotonic()
        next_probe = start + self.args.warmup
        probes = 0
        n = 0
        with self.log.open("a", encoding="utf-8") as fh:
            while not self.stop_writing.is_set():
                now = time.monotonic()
                due = int((now - start) * rate) - n
                lines = []
                wall = datetime.now(UTC)
                for _ in range(max(0, due)):
                    n += 1
                    lines.append(f"{stamp(wall)} " + BENIGN[n % len(BENIGN)].format(n=n, m=n % 250) + "\n")
                probe = None
                if probes < self.args.probes and now >= next_probe:
                    probes += 1
                    next_probe += interval
                    probe = f"probe-{self.run_id}-{probes:04d}"
                    lines.append(
                        f"{stamp(wall)} web01 clamd[812]: /home/user/Downloads/{probe}.exe: "
                        "Win.Trojan.Agent-1234567 FOUND\n"
                    )
                if lines:
                    fh.write("".join(lines))
                    fh.flush()
                    if probe is not None:
                        with self.lock:
                            self.written.append(time.monotonic())
                self.background = n
                time.sleep(0.01)

    def poller(self) -> None:
        """One API request per turn: the ClamAV rule's alerts, whose counts add up to the probes detected."""
        while not self.stop_polling.is_set():
            with self.lock:
                waiting = len(self.written) > len(self.seen)
            if waiting:
                try:
                    resp = self.client.get("/api/v1/alerts", params={"rule_id": CLAMAV_RULE, "limit": 100})
                    resp.raise_for_status()
                    arrived = time.monotonic()
                    detected = sum(int(a["count"]) for a in resp.json()["items"])
                    with self.lock:
                        if detected > len(self.written):  # the bench's premise broke: say so, do not guess
                            self.miscount = max(self.miscount, detected - len(self.written))
                        while len(self.seen) < min(detected, len(self.written)):
                            self.seen.append(arrived - self.written[len(self.seen)])
                except httpx.HTTPError:
                    self.poll_errors += 1
            time.sleep(self.args.poll)

    def drain_time(self) -> float | None:
        """Seconds from a marker line written after the load until the event is searchable."""
        marker = f"drainmarker{self.run_id}"
        written = time.monotonic()
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp()} web01 bench: {marker}\n")
        deadline = written + 120
        while time.monotonic() < deadline:
            resp = self.client.get("/api/v1/events", params={"q": marker, "limit": 1})
            if resp.status_code == 200 and resp.json()["items"]:
                return time.monotonic() - written
            time.sleep(0.05)
        return None

    def run(self) -> dict[str, Any]:
        writer = threading.Thread(target=self.writer, daemon=True)
        poller = threading.Thread(target=self.poller, daemon=True)
        t0 = time.monotonic()
        writer.start()
        poller.start()
        limit = t0 + self.args.duration
        while time.monotonic() < limit:
            with self.lock:
                if len(self.written) == self.args.probes and len(self.seen) == self.args.probes:
                    break
            time.sleep(0.1)
        self.stop_writing.set()
        writer.join(5)
        load_seconds = time.monotonic() - t0
        background = self.background
        # the stragglers get a few more seconds after the load stops
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(self.seen) < len(self.written):
            time.sleep(0.05)
        self.stop_polling.set()
        poller.join(5)
        drain = self.drain_time()
        latencies = sorted(self.seen)
        result: dict[str, Any] = {
            "rate_target": self.args.rate,
            "rate_achieved": round(background / load_seconds),
            "background_lines": background,
            "probes_written": len(self.written),
            "probes_seen": len(latencies),
            "flush_interval": self.args.flush_interval,
            "agent_poll_interval": self.args.agent_poll,
            "batch_size": self.args.batch_size,
            "api_poll": self.args.poll,
            "poll_errors": self.poll_errors,
            "detections_beyond_probes": self.miscount,
            "drain_seconds": None if drain is None else round(drain, 3),
        }
        if latencies:
            result.update({
                "p50_ms": round(statistics.median(latencies) * 1000),
                "p90_ms": round(percentile(latencies, 90) * 1000),
                "p99_ms": round(percentile(latencies, 99) * 1000),
                "max_ms": round(latencies[-1] * 1000),
                "min_ms": round(latencies[0] * 1000),
            })  # fmt: skip
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="background lines per second (default 1000)")
    parser.add_argument("--probes", type=int, default=100, help="probe lines (default 100)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between probes (default 0.5)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the first probe")
    parser.add_argument("--duration", type=float, default=None,
                        help="give up after this many seconds (default: warmup + probes x interval + 30)")  # fmt: skip
    parser.add_argument(
        "--flush-interval", type=float, default=0.25, help="agent flush_interval (default 0.25)"
    )
    parser.add_argument("--agent-poll", type=float, default=0.1, help="agent poll_interval (default 0.1)")
    parser.add_argument("--batch-size", type=int, default=500, help="agent batch_size (default 500)")
    parser.add_argument("--poll", type=float, default=0.02, help="API polling period (default 0.02)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result to this file")
    args = parser.parse_args()
    if args.duration is None:
        args.duration = args.warmup + args.probes * args.interval + 30
    work = Path(tempfile.mkdtemp(prefix="soclite-e2e-latency-"))
    bench = Bench(args, work)
    try:
        bench.start()
        result = bench.run()
    finally:
        bench.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["probes_seen"] == args.probes and result.get("p99_ms", 10**9) < 1000
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
