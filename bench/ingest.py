"""Ingest benchmark: sustained events/s, syslog TCP and HTTP → journal (→ pipeline: correlator → store).

Starts a real ``soclite server`` (subprocess) on a temporary data dir, pushes N events over
syslog TCP (LF framing, several connections) and N over HTTP (NDJSON batches of 1000, several
clients), and measures two rates per transport:

* ingest: events durably in the journal per second (what senders get acknowledged);
* end-to-end: events through the pipeline (correlator + store) per second, when the server runs
  ``soclite.pipeline`` (its consumer offset reaches the journal's end).

Also measures the journal alone (in-process appends of 1000-event batches) as the ceiling.

    .venv/bin/python bench/ingest.py [--events 100000] [--connections 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from soclite.store.journal import Journal

LINES = [
    "<38>Nov 23 17:40:01 web{n:02d} sshd[{p}]: Failed password for root from 203.0.113.{o} port {port} ssh2",
    "<38>Nov 23 17:40:01 web{n:02d} sshd[{p}]: Accepted publickey for alice from 10.0.0.{o} port {port} ssh2",
    "<86>Nov 23 17:40:02 web{n:02d} sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
    '<190>Nov 23 17:40:05 web{n:02d} nginx: 203.0.113.{o} - - [23/Nov/2026:17:40:05 +0700] "GET /index.php?id={p} HTTP/1.1" 200 153 "-" "Mozilla/5.0"',
    "<30>Nov 23 17:45:00 db{n:02d} systemd[1]: Started Session {p} of user alice.",
]


def line(i: int) -> str:
    return LINES[i % len(LINES)].format(n=i % 100, p=1000 + i % 50000, o=i % 250 + 1, port=1024 + i % 60000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate, timeout: float = 600.0) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(0.02)
    return time.monotonic()


def journal_ceiling(tmp: Path, n: int) -> float:
    journal = Journal(tmp / "ceiling.db", max_bytes=8 * 1024**3)
    events = [{"@timestamp": "2026-11-23T10:00:00.000Z", "message": line(i), "event.id": f"{i:032x}"} for i in range(n)]
    start = time.monotonic()
    for i in range(0, n, 1000):
        journal.append(f"b{i}", events[i : i + 1000])
    elapsed = time.monotonic() - start
    journal.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events per transport")
    parser.add_argument("--connections", type=int, default=4, help="TCP connections / HTTP clients")
    args = parser.parse_args()
    n, conns = args.events, args.connections
    has_pipeline = importlib.util.find_spec("soclite.pipeline") is not None

    with tempfile.TemporaryDirectory(prefix="soclite-bench-") as tmpdir:
        tmp = Path(tmpdir)
        print(f"journal alone (1000-event batches): {journal_ceiling(tmp, min(n, 50_000)):,.0f} events/s")
        data = tmp / "data"
        env = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}
        # one key per HTTP client, as several senders (the server lets one sender have
        # server.max_concurrent_batches batches in progress, default 2)
        tokens = [subprocess.run([sys.executable, "-m", "soclite.cli", "token", "create", "--data-dir", str(data),
                                  "--role", "admin"], capture_output=True, text=True, check=True, env=env).stdout.strip()
                  for _ in range(conns)]  # fmt: skip
        http_port, syslog_port = free_port(), free_port()
        log = (tmp / "server.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "soclite.cli", "server", "--data-dir", str(data),
                                   "--http-port", str(http_port), "--syslog-port", str(syslog_port)],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        url = f"http://127.0.0.1:{http_port}"
        try:
            def up() -> bool:
                try:
                    return httpx.get(f"{url}/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait(up, 120)
            journal = Journal(data / "journal.db", max_bytes=8 * 1024**3)

            def through(target: int) -> bool:
                # Stored = both consumers past it: detection (alerts) and storage (every event).
                return min(journal.committed("detection"), journal.committed("storage")) >= target

            # --- syslog TCP -------------------------------------------------------------------
            base = journal.last_offset()
            payloads = []
            for c in range(conns):
                payloads.append("".join(line(i) + "\n" for i in range(c, n, conns)).encode())
            start = time.monotonic()

            def send(payload: bytes) -> None:
                with socket.create_connection(("127.0.0.1", syslog_port)) as sock:
                    sock.sendall(payload)

            threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
            for t in threads:
                t.start()
            in_journal = wait(lambda: journal.last_offset() >= base + n)
            print(f"syslog TCP → journal: {n / (in_journal - start):,.0f} events/s ({n} events, {conns} connections)")
            if has_pipeline:
                done = wait(lambda: through(base + n))
                print(f"syslog TCP → journal → correlator → store: {n / (done - start):,.0f} events/s")
            for t in threads:
                t.join()

            # --- HTTP ---------------------------------------------------------------------------
            base = journal.last_offset()
            bodies = [b"\n".join(orjson.dumps({"message": line(i)}) for i in range(b, min(b + 1000, n)))
                      for b in range(0, n, 1000)]  # fmt: skip
            start = time.monotonic()

            def post(part: list[bytes], k: int) -> None:
                """As a sender should: a 429 (too many batches of this sender in progress) or 503 (journal
                full) is retried after its Retry-After, with the same batch id."""
                with httpx.Client(timeout=120) as client:
                    for j, body in enumerate(part):
                        while True:
                            r = client.post(f"{url}/api/v1/ingest", content=body,
                                            headers={"Authorization": f"Bearer {tokens[k]}", "X-Batch-Id": f"bench-{k}-{j}"})  # fmt: skip
                            if r.status_code not in (429, 503):
                                break
                            retries[0] += 1
                            time.sleep(float(r.headers.get("Retry-After", "1")))
                        r.raise_for_status()

            retries = [0]

            threads = [threading.Thread(target=post, args=(bodies[k::conns], k)) for k in range(conns)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            acked = time.monotonic()
            print(f"HTTP NDJSON → journal (acknowledged): {n / (acked - start):,.0f} events/s ({conns} clients, each its own key, "
                  f"1000/batch, {retries[0]} batches retried after 429/503)")
            if has_pipeline:
                done = wait(lambda: through(base + n))
                print(f"HTTP → journal → correlator → store: {n / (done - start):,.0f} events/s")
            else:
                print("soclite.pipeline not present: end-to-end through the correlator not measured")
            journal.close()
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
