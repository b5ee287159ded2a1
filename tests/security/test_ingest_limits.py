"""Issue 13, items 3, 5, 6 and 9 on HTTP ingest, against the real app served by uvicorn.

3: a resend costs nothing, decompressed bytes and lines are capped (413 naming the limit), one
sender's concurrent batches are limited (429 + Retry-After); 5: a record nested 1,000 levels deep
is a dead letter, the rest of its batch is accepted; 6: a full disk (SQLITE_FULL, simulated with
SQLite's max_page_count on the journal's writer) is 503 + Retry-After, /health degraded, nothing
acknowledged lost; 9: event times far from the reception time are clamped, the original kept.
"""

from __future__ import annotations

import gzip
import os
import select
import socket
import time
from datetime import timedelta

import httpx
import orjson
import pytest

from soclite.models import parse_timestamp, utcnow
from soclite.runtime import Runtime


def ndjson(*records: object) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records) + b"\n"


def auth(token: str, batch: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", **extra}
    if batch:
        headers["X-Batch-Id"] = batch
    return headers


@pytest.fixture
def admin(runtime: Runtime) -> str:
    return runtime.identity.create_token(role="admin", name="loader")


def test_a_resend_is_answered_before_the_body_is_read(client: httpx.Client, runtime: Runtime, admin: str) -> None:
    body = ndjson({"message": "<13>Dec  6 22:00:00 h1 app: hello"})
    assert client.post("/api/v1/ingest", content=body, headers=auth(admin, "r-1")).json()["accepted"] == 1
    # The resend's body is not even valid gzip: it is never decompressed nor parsed.
    again = client.post("/api/v1/ingest", content=b"\x1f\x8b garbage", headers=auth(admin, "r-1", **{
        "Content-Encoding": "gzip"}))  # fmt: skip
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicate": True}
    assert runtime.journal.count() == 1


def test_decompressed_bytes_are_capped_while_streaming(client: httpx.Client, runtime: Runtime, admin: str) -> None:
    limit = runtime.settings.server.max_batch_bytes
    line = orjson.dumps({"message": "x" * 1000}) + b"\n"
    bomb = gzip.compress(line * (limit // len(line) + 10), compresslevel=9)
    assert len(bomb) < limit // 50  # a small body that expands past the limit
    r = client.post("/api/v1/ingest", content=bomb, headers=auth(admin, "bomb-1", **{"Content-Encoding": "gzip"}))
    assert r.status_code == 413 and str(limit) in r.json()["detail"], r.text
    assert runtime.journal.count() == 0


def test_lines_per_batch_are_capped(client: httpx.Client, runtime: Runtime, admin: str) -> None:
    runtime.settings.server.max_batch_lines = 10
    r = client.post("/api/v1/ingest", content=ndjson(*[{"message": f"m{i}"} for i in range(11)]),
                    headers=auth(admin, "lines-1"))  # fmt: skip
    assert r.status_code == 413 and "10 lines" in r.json()["detail"], r.text
    assert runtime.journal.count() == 0
    ok = client.post("/api/v1/ingest", content=ndjson(*[{"message": f"m{i}"} for i in range(10)]),
                     headers=auth(admin, "lines-2"))  # fmt: skip
    assert ok.json()["accepted"] == 10


def read_response(conn: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_one_sender_has_a_bounded_number_of_batches_in_progress(
    client: httpx.Client, runtime: Runtime, admin: str
) -> None:
    runtime.settings.server.max_concurrent_batches = 1
    first, second = ndjson({"message": "first"}), ndjson({"message": "second"})
    host, port = client.base_url.host, client.base_url.port
    assert port is not None

    def open_slow() -> socket.socket:
        """A slow sender on a raw socket: headers and half of the body now, the rest later."""
        conn = socket.create_connection((host, port), timeout=30)
        conn.sendall(
            f"POST /api/v1/ingest HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {admin}\r\n"
            f"X-Batch-Id: slow-1\r\nContent-Length: {len(first) + len(second)}\r\n\r\n".encode() + first
        )
        return conn

    slow = open_slow()
    try:
        deadline = time.monotonic() + 30
        attempt = 0
        while True:
            attempt += 1
            busy = client.post("/api/v1/ingest", content=ndjson({"message": "x"}),
                               headers=auth(admin, f"busy-{attempt}"))  # fmt: skip
            if busy.status_code == 429 or time.monotonic() > deadline:
                break
            if select.select([slow], [], [], 0.05)[0]:  # the slow batch met a busy one in progress: 429 for it
                assert read_response(slow).startswith("HTTP/1.1 429")
                slow.close()
                slow = open_slow()
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) > 0, busy.text
        slow.sendall(second)
        answer = read_response(slow)
    finally:
        slow.close()
    assert answer.startswith("HTTP/1.1 200") and '"accepted":2' in answer, answer
    after = client.post("/api/v1/ingest", content=ndjson({"message": "x"}), headers=auth(admin, "busy-after"))
    assert after.status_code == 200


def deep(levels: int) -> bytes:
    return b'{"message":"deep","a":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


def test_a_deeply_nested_record_is_a_dead_letter_and_the_rest_is_accepted(
    client: httpx.Client, runtime: Runtime, admin: str
) -> None:
    body = deep(1000) + b"\n" + ndjson({"message": "<13>Dec  6 22:00:00 h1 app: fine"})
    r = client.post("/api/v1/ingest", content=body, headers=auth(admin, "deep-1"))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicate": False, "rejected": 1}
    letters = client.get("/api/v1/deadletters", headers=auth(admin)).json()["items"]
    assert len(letters) == 1 and "nested deeper" in letters[0]["reason"]


def test_a_full_disk_is_503_degraded_and_loses_nothing(client: httpx.Client, runtime: Runtime, admin: str) -> None:
    journal = runtime.journal
    assert journal is not None
    conn = journal.db._write_conn
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count={pages + 2}")  # SQLITE_FULL past two more pages, as a full disk
    # random text: bodies are compressed (the first batch also writes the journal's dictionary)
    body = ndjson(*[{"message": os.urandom(1000).hex()} for _ in range(50)])
    r = client.post("/api/v1/ingest", content=body, headers=auth(admin, "full-1"))
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, r.text
    assert "full" in r.json()["detail"]
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "disk is full" in health["degraded"][0]
    assert journal.count() == 0
    conn.execute("PRAGMA max_page_count=1073741823")  # space again: the sender's retry is accepted whole
    r = client.post("/api/v1/ingest", content=body, headers=auth(admin, "full-1"))
    assert r.json() == {"accepted": 50, "duplicate": False, "rejected": 0}
    assert client.get("/health").json()["status"] == "ok"


def test_event_times_far_from_the_reception_are_clamped_and_kept(
    client: httpx.Client, runtime: Runtime, admin: str
) -> None:
    body = ndjson(
        {"@timestamp": "2099-01-01T00:00:00Z", "logsource.product": "linux", "message": "future"},
        {"@timestamp": "1971-01-01T00:00:00Z", "logsource.product": "linux", "message": "past"},
        {"@timestamp": (utcnow() - timedelta(days=3)).isoformat(), "logsource.product": "linux", "message": "late"},
    )
    before = utcnow()
    assert client.post("/api/v1/ingest", content=body, headers=auth(admin, "skew-1")).json()["accepted"] == 3
    events = {e["message"]: e for _, e in runtime.journal.read("t", 10)}
    for name, original in (("future", "2099-01-01T00:00:00.000Z"), ("past", "1971-01-01T00:00:00.000Z")):
        event = events[name]
        assert event["soclite.original_timestamp"] == original and event["soclite.time_clamped"] is True
        assert abs((parse_timestamp(event["@timestamp"]) - before).total_seconds()) < 60
    # a spooled agent's events of three days ago are within the bound and keep their time
    assert "soclite.time_clamped" not in events["late"]
    assert (before - parse_timestamp(events["late"]["@timestamp"])).days >= 2


def test_the_sla_runs_from_the_alerts_creation_not_the_senders_clock(runtime: Runtime) -> None:
    from datetime import UTC, datetime

    from soclite.control.triage import sla
    from soclite.models import Alert, Level

    now = utcnow()
    forged = Alert(fingerprint="f" * 16, rule_id="r", rule_title="t", level=Level.HIGH, severity="high",
                   first_seen=datetime(1971, 1, 1, tzinfo=UTC), last_seen=datetime(1971, 1, 1, tzinfo=UTC),
                   created_at=now)  # fmt: skip
    assert sla(forged, runtime.settings, now)["state"] == "open"
    assert sla(forged, runtime.settings, now + timedelta(minutes=241))["state"] == "overdue"


def test_a_large_batch_is_held_at_about_its_own_size(client: httpx.Client, runtime: Runtime, admin: str) -> None:
    """Python memory while a 5 MB batch is stored stays a small multiple of it (it was ~40x: 16 KiB per
    event from orjson's unshrunk buffers, all dicts alive at once)."""
    import tracemalloc

    record = orjson.dumps({"message": "<38>Dec  6 22:00:00 ws-1 sshd[1]: Failed password for root " + "A" * 900})
    body = (record + b"\n") * (5 * 1024 * 1024 // (len(record) + 1))
    tracemalloc.start()
    try:
        r = client.post("/api/v1/ingest", content=gzip.compress(body),
                        headers=auth(admin, "big-1", **{"Content-Encoding": "gzip"}))  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and r.json()["accepted"] == body.count(b"\n"), r.text
    assert peak < 8 * len(body), f"peak {peak / 1e6:.0f} MB for a {len(body) / 1e6:.0f} MB batch"
