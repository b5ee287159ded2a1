"""Agent footprint at a steady event rate: RSS and CPU of the real `soclite agent` process.

A local sink speaks the agent contract (enroll, ingest, heartbeat, commands); a file is appended
at --rate lines/s for --seconds; the agent tails and ships it. RSS (VmRSS, peak VmHWM) and CPU
(utime+stime from /proc/PID/stat) are read after a warm-up. Targets: ≤ 40 MB RSS, ≤ 2 % of a core
at 100 events/s.

    .venv/bin/python bench/agent.py [--rate 100] [--seconds 30]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
received = 0
lock = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        global received
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/api/v1/agents/enroll":
            self._reply({"agent_id": "bench", "api_key": "sl_bench_key", "unit": "U"})
        elif self.path == "/api/v1/ingest":
            lines = gzip.decompress(data).count(b"\n")
            with lock:
                received += lines
            self._reply({"accepted": lines, "duplicate": False})
        else:
            self._reply({"ok": True, "commands_pending": 0})

    def do_GET(self) -> None:
        self._reply({"items": []})


def proc_stats(pid: int) -> tuple[int, int, float]:
    """(VmRSS kB, VmHWM kB, cpu seconds)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {
        line.split(":")[0]: line.split()[1]
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(stat[11]) + int(stat[12])  # utime + stime (fields 14, 15)
    return int(fields["VmRSS"]), int(fields["VmHWM"]), ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    tmp = Path(tempfile.mkdtemp(prefix="soclite-agent-bench-"))
    log = tmp / "auth.log"
    log.touch()
    config = tmp / "agent.yml"
    config.write_text(
        f"files:\n  - path: {log}\n    parser: auth\nheartbeat_interval: 30\ncommand_poll_interval: 10\n"
    )
    soclite = ROOT / ".venv" / "bin" / "soclite"
    cmd = [str(soclite), "agent", "--server", url, "--enroll-token", "se_bench", "--state-dir", str(tmp / "state"),
           "--config", str(config), "--log-level", "WARNING"]  # fmt: skip
    agent = subprocess.Popen(cmd, cwd=ROOT)
    try:
        line = "Nov 23 10:00:00 ws-01 sshd[1234]: Failed password for invalid user admin from 203.0.113.7 port 52100 ssh2 #{}\n"
        written = 0
        interval = 1.0 / args.rate
        start = time.monotonic()
        t0: tuple[int, int, float] | None = None
        t0_at = 0.0
        with open(log, "a", encoding="utf-8") as fh:
            while time.monotonic() - start < args.seconds + args.warmup:
                fh.write(line.format(written))
                fh.flush()
                written += 1
                if t0 is None and time.monotonic() - start >= args.warmup:
                    t0, t0_at = proc_stats(agent.pid), time.monotonic()
                next_at = start + written * interval
                time.sleep(max(0.0, next_at - time.monotonic()))
        t1, t1_at = proc_stats(agent.pid), time.monotonic()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and received < written:
            time.sleep(0.1)
        assert t0 is not None
        cpu = (t1[2] - t0[2]) / (t1_at - t0_at) * 100
        print(f"rate={args.rate}/s seconds={args.seconds} written={written} delivered={received}")
        print(f"agent RSS={t1[0] / 1024:.1f} MB peak={t1[1] / 1024:.1f} MB  CPU={cpu:.2f}% of one core")
        ok = t1[1] / 1024 <= 40 and cpu <= 2.0 and received == written
        print("targets (≤ 40 MB, ≤ 2 %, all delivered):", "met" if ok else "NOT met")
    finally:
        agent.terminate()
        agent.wait(20)
        httpd.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
