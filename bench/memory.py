"""Memory benchmark (issue 13): the server's RSS under a UDP syslog flood and under a gzip bomb batch.

Starts a real ``soclite server`` (subprocess, temporary data dir, the default settings apart from
ports), reads its resident set size from /proc (VmRSS of the server process; the detection child
is reported beside it), and:

1. blasts UDP syslog datagrams at it from sender threads for ``--seconds`` (default 20);
2. posts one NDJSON batch of ``--batch-mb`` (default 60) MB that gzips to about 256 KB, the
   attack of issue 13 item 3 (refused with 413 at the 32 MiB cap: what it costs is the point);
3. posts one batch just under the cap (accepted), to show what a legitimate large batch costs.

RSS is sampled every 50 ms; each step reports its peak above the baseline and the RSS after.
The target is under 300 MB above the baseline for every step.

    .venv/bin/python bench/memory.py [--seconds 20] [--senders 2] [--batch-mb 60] --json

With ``--json`` the last line is one JSON object with every figure and the machine it ran on.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

LINE = b"<38>Dec  6 22:00:00 ws-%03d sshd[1]: Failed password for root from 203.0.113.9 port 4000 ssh2"
TARGET_MB = 300.0


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def rss_mb(pid: int) -> float:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


class Sampler:
    """Peak RSS of one process while a step runs (a thread reading /proc every 50 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.05)

    def __enter__(self) -> Sampler:
        self.peak = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss_mb(self.pid))


def settle(pid: int, seconds: float = 3.0) -> float:
    time.sleep(seconds)
    return rss_mb(pid)


def flood(port: int, seconds: float, senders: int) -> int:
    sent = [0] * senders
    stop = time.monotonic() + seconds

    def blast(k: int) -> None:
        messages = [LINE % (i % 1000) for i in range(1000)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            n = 0
            while time.monotonic() < stop:
                for message in messages:
                    try:
                        s.sendto(message, ("127.0.0.1", port))
                    except OSError:  # ENOBUFS under a flood: the datagram is lost before the server
                        continue
                n += len(messages)
            sent[k] = n

    threads = [threading.Thread(target=blast, args=(k,)) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(sent)


def batch(megabytes: float) -> tuple[bytes, int]:
    """An NDJSON batch of about ``megabytes`` MB of syslog records (compresses ~240:1), gzipped."""
    record = orjson.dumps({"message": (LINE % 1).decode() + " " + "A" * 900}) + b"\n"
    raw = record * int(megabytes * 1024 * 1024 / len(record))
    return gzip.compress(raw, compresslevel=9), len(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--batch-mb", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "target_mb_above_baseline": TARGET_MB,
    }
    with tempfile.TemporaryDirectory(prefix="soclite-bench-memory-") as tmp:
        data = Path(tmp) / "data"
        env = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}
        token = subprocess.run(
            [sys.executable, "-m", "soclite.cli", "token", "create", "--data-dir", str(data), "--role", "admin"],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()  # fmt: skip
        http_port, syslog_port = free_port(), free_port()
        url = f"http://127.0.0.1:{http_port}"
        with (Path(tmp) / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "soclite.cli", "server", "--data-dir", str(data), "--http-port", str(http_port),
                 "--syslog-port", str(syslog_port)], stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"server did not start:\n{(Path(tmp) / 'server.log').read_text()[-3000:]}")
                    time.sleep(0.2)
                pid = server.pid
                baseline = settle(pid, 5.0)
                result["baseline_mb"] = round(baseline, 1)
                kids = children(pid)
                result["detection_child_baseline_mb"] = round(sum(rss_mb(k) for k in kids), 1)

                with Sampler(pid) as sampler:
                    sent = flood(syslog_port, args.seconds, args.senders)
                after = settle(pid)
                inputs = httpx.get(f"{url}/health", timeout=10).json().get("inputs", {})
                udp = inputs.get("syslog-udp", {})
                result["udp_flood"] = {
                    "seconds": args.seconds, "senders": args.senders, "sent": sent,
                    "sent_per_s": round(sent / args.seconds), "received": udp.get("received"),
                    "dropped": udp.get("dropped"), "peak_mb": round(sampler.peak, 1),
                    "peak_above_baseline_mb": round(sampler.peak - baseline, 1), "after_mb": round(after, 1),
                }  # fmt: skip

                headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
                for name, megabytes in (("gzip_bomb", args.batch_mb), ("largest_accepted", 30.0)):
                    body, raw_size = batch(megabytes)
                    base = rss_mb(pid)
                    with Sampler(pid) as sampler:
                        started = time.monotonic()
                        r = httpx.post(f"{url}/api/v1/ingest", content=body, timeout=600,
                                       headers={**headers, "X-Batch-Id": f"bench-{name}"})  # fmt: skip
                        took = time.monotonic() - started
                    after = settle(pid)
                    result[name] = {
                        "compressed_kb": round(len(body) / 1024), "decompressed_mb": round(raw_size / 1024**2, 1),
                        "status": r.status_code, "answer": r.json() if r.headers.get("content-type", "").startswith(
                            "application/json") else r.text[:200], "seconds": round(took, 2),
                        "rss_before_mb": round(base, 1), "peak_mb": round(sampler.peak, 1),
                        "peak_above_baseline_mb": round(sampler.peak - baseline, 1), "after_mb": round(after, 1),
                    }  # fmt: skip
            finally:
                server.terminate()
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    server.kill()
    steps = ("udp_flood", "gzip_bomb", "largest_accepted")
    result["ok"] = all(result[s]["peak_above_baseline_mb"] < TARGET_MB for s in steps)
    if not args.json:
        for step in steps:
            print(f"{step}: {result[step]}")
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
