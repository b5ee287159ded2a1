"""The ingest journal: durable append, batch-id dedup, consumer offsets, compaction and the disk bound."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from soclite.errors import JournalError
from soclite.store.deadletter import DeadLetters
from soclite.store.journal import Journal


def ev(i: int) -> dict[str, object]:
    return {"event.id": f"e{i:08d}", "@timestamp": "2026-11-23T10:00:00.000Z", "message": f"m{i}"}


def test_append_read_commit_lag(journal: Journal) -> None:
    assert journal.append("b1", [ev(1), ev(2), ev(3)]) == (3, False)
    assert journal.append("b1", [ev(1), ev(2), ev(3)]) == (0, True)
    assert journal.append(None, [ev(4)]) == (1, False)
    first = journal.read("pipeline", 2)
    assert [e["message"] for _, e in first] == ["m1", "m2"]
    journal.commit("pipeline", first[-1][0])
    assert journal.lag("pipeline") == 2
    rest = journal.read("pipeline", 10)
    assert [e["message"] for _, e in rest] == ["m3", "m4"]
    journal.commit("pipeline", rest[-1][0])
    journal.commit("pipeline", 1)  # never moves backwards
    assert journal.lag("pipeline") == 0


def test_compaction_waits_for_every_consumer(journal: Journal) -> None:
    journal.append("a", [ev(i) for i in range(10)])
    journal.register("store")
    offsets = journal.read("correlator", 10)
    journal.commit("correlator", offsets[-1][0])
    assert journal.compact() == 0  # "store" has not read anything
    journal.commit("store", offsets[4][0])
    assert journal.compact() == 5
    assert journal.count() == 5
    assert [e["message"] for _, e in journal.read("store", 100)] == [f"m{i}" for i in range(5, 10)]
    # batch ids survive compaction: a late resend is still a duplicate
    assert journal.append("a", [ev(0)]) == (0, True)


def test_compaction_deletes_in_chunks_and_keeps_what_a_consumer_has_not_read(tmp_path: Path) -> None:
    # A minute of a province's traffic deleted in one transaction held the write lock for about a second,
    # and ingest and the alerts' journal commits waited behind it: the deletes go a chunk at a time.
    journal = Journal(tmp_path / "j.db", max_bytes=64 * 1024 * 1024, compact_chunk=1000)
    total = 2 * 1000 + 500
    journal.append("big", [ev(i) for i in range(total)])
    rows = journal.read("pipeline", total)
    journal.register("store")
    journal.commit("pipeline", rows[-1][0])
    journal.commit("store", rows[total - 101][0])  # the slower consumer has read all but the last 100
    statements: list[str] = []
    journal.db._write_conn.set_trace_callback(statements.append)
    try:
        assert journal.compact() == total - 100
    finally:
        journal.db._write_conn.set_trace_callback(None)
    assert len([s for s in statements if s.startswith("DELETE FROM events")]) == 3
    assert journal.count() == 100
    assert [e["message"] for _, e in journal.read("store", 1000)] == [f"m{i}" for i in range(total - 100, total)]
    journal.close()


def test_old_batch_ids_expire(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", max_bytes=8 * 1024 * 1024, batch_retention_seconds=0)
    j.append("x", [ev(1)])
    j.compact()
    assert j.append("x", [ev(1)]) == (1, False)
    j.close()


def test_disk_bound_refuses_and_warns_and_recovers(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, warn_ratio=0.5)
    # random text: bodies are compressed, and repeated text would take almost no room
    big = [{"message": os.urandom(500).hex(), "n": i} for i in range(100)]
    accepted = 0
    with pytest.raises(JournalError, match="full"):
        for n in range(100):
            accepted += j.append(f"b{n}", big)[0]
    assert j.health_warnings() and "journal" in j.health_warnings()[0]
    # everything acknowledged is still there: nothing was dropped to make room
    assert j.count() == accepted
    rows = j.read("pipeline", 100000)
    j.commit("pipeline", rows[-1][0])
    j.compact()
    assert j.health_warnings() == []
    assert j.append("after", big) == (100, False)
    j.close()


def windows_event(i: int) -> dict[str, object]:
    """An event shaped like the soak's Sysmon ones: ~1 KB of JSON, much of it repeated between events."""
    return {
        "event.id": f"e{i:08d}", "@timestamp": f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "host.name": f"ws-{i % 2500:04d}.sotttt.tinh.gov.vn", "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1, "Image": f"C:\\Windows\\System32\\svchost{i % 7}.exe", "ProcessId": 1000 + i,
        "CommandLine": f"C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule {i}",
        "ParentImage": "C:\\Windows\\System32\\services.exe", "User": f"SOTTTT\\canbo{i % 300}",
        "Hashes": f"SHA256={i:064x}", "IntegrityLevel": "System", "LogonId": f"0x{i * 997:x}",
        "message": f"Process Create: RuleName: - UtcTime: 2026-11-23 10:00:00.000 ProcessGuid: {{{i:08x}-1111-2222-3333}}",
    }  # fmt: skip


def stored_bodies(path: Path) -> list[bytes]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT body FROM events ORDER BY offset")]
    finally:
        conn.close()


def test_bodies_are_compressed_with_a_dictionary_trained_on_the_journals_events(tmp_path: Path) -> None:
    # At the end of a 15,000 ev/s burst the store was 1.6M events behind: as JSON that filled the 2 GiB
    # bound and ingest refused (503) while nothing was wrong. Compressed, the same backlog takes ~1/10.
    path = tmp_path / "j.db"
    j = Journal(path, max_bytes=64 * 1024 * 1024)
    events = [windows_event(i) for i in range(5000)]
    j.append("small", events[:10])  # the first dictionary, from ten events
    j.append("large", events[10:])  # a better one, from this batch
    bodies = stored_bodies(path)
    json_bytes = sum(len(orjson.dumps(e)) for e in events)
    assert {b[0] for b in bodies[:10]} == {1} and {b[0] for b in bodies[10:]} == {2}
    assert sum(len(b) for b in bodies[10:]) * 4 < json_bytes  # measured: about 1/8 here
    assert j.used_bytes() * 3 < json_bytes
    assert [e for _, e in j.read("pipeline", 10_000)] == events
    j.close()


def test_a_journal_reads_what_another_process_compressed_with_a_newer_dictionary(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    reader = Journal(path, max_bytes=64 * 1024 * 1024)  # opened first: knows no dictionary yet
    writer = Journal(path, max_bytes=64 * 1024 * 1024)
    writer.append(None, [windows_event(i) for i in range(3)])
    assert [e["event.id"] for _, e in reader.read("pipeline", 10)] == ["e00000000", "e00000001", "e00000002"]
    reader.append(None, [windows_event(i) for i in range(3, 200)])  # trains dictionary 2 (after 1, seen in its transaction)
    writer.append(None, [windows_event(200)])  # written with dictionary 2, which the writer reads first
    assert {b[0] for b in stored_bodies(path)} == {1, 2}
    assert [e["event.id"] for _, e in writer.read("store", 1000)] == [f"e{i:08d}" for i in range(201)]
    writer.close()
    reader.close()


def test_dead_letters_with_batch_and_alone(journal: Journal) -> None:
    journal.append("b", [ev(1)], [("http:agent", "line 2: invalid JSON", b"{nope\xff")])
    letters = DeadLetters(journal.db)
    letters.add("file:/x.jsonl", "line 9: not an object", b"[1]")
    assert letters.count() == 2
    page, cursor = letters.list(limit=1)
    assert page[0].reason == "line 9: not an object" and cursor is not None
    page2, cursor2 = letters.list(limit=1, cursor=cursor)
    assert page2[0].raw == b"{nope\xff" and page2[0].source == "http:agent" and cursor2 is None


WRITER = """
import sys
from pathlib import Path
from soclite.store.journal import Journal
j = Journal(Path(sys.argv[1]), max_bytes=64 * 1024 * 1024)
n = 0
while True:
    events = [{"message": f"m{n * 10 + k}"} for k in range(10)]
    j.append(f"batch-{n}", events)
    print(n, flush=True)  # the acknowledgement: printed only after append returned
    n += 1
"""


def test_acknowledged_batches_survive_sigkill(tmp_path: Path) -> None:
    """A writer process is SIGKILLed mid-stream: every batch it acknowledged is in the journal, whole."""
    path = tmp_path / "j.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked: list[int] = []
    while len(acked) < 50:
        line = proc.stdout.readline()
        assert line, "writer died"
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [int(line) for line in proc.stdout.read().split()]
    j = Journal(path, max_bytes=64 * 1024 * 1024)
    messages = [e["message"] for _, e in j.read("check", 1_000_000)]
    assert len(messages) % 10 == 0  # batches are atomic
    assert len(messages) == len(set(messages))
    assert set(messages) >= {f"m{n * 10 + k}" for n in acked for k in range(10)}
    # a resend of every acknowledged batch is recognised as a duplicate
    assert all(j.append(f"batch-{n}", [ev(0)]) == (0, True) for n in acked)
    j.close()


def test_offsets_never_restart_when_the_journal_is_recreated(tmp_path: Path) -> None:
    """Alerts keep a watermark of journal offsets: a new journal.db must not reuse old offsets."""
    import time

    path = tmp_path / "j.db"
    j = Journal(path, max_bytes=8 * 1024 * 1024)
    j.append(None, [ev(1), ev(2)])
    first = [offset for offset, _ in j.read("pipeline", 10)]
    assert first[1] == first[0] + 1
    assert first[0] > int((time.time() - 3600) * 1_000_000)  # seeded from the clock, not 1
    assert j.lag("pipeline") == 2  # counted, not "last offset - 0"
    j.commit("pipeline", first[-1])
    assert j.lag("pipeline") == 0
    j.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    j = Journal(path, max_bytes=8 * 1024 * 1024)
    j.append(None, [ev(3)])
    ((again, _),) = j.read("pipeline", 10)
    assert again > first[-1]
    assert j.lag("pipeline") == 1  # the recreated journal has a new consumers table: committed 0
    j.close()


def test_an_existing_journal_is_seeded_without_reordering(tmp_path: Path) -> None:
    """Upgrading a v2 journal (offsets from 1) keeps its events and continues above the clock seed."""
    from soclite.db import Database
    from soclite.store.journal import MIGRATIONS

    path = tmp_path / "j.db"
    old = Database(path, MIGRATIONS[:2], name="journal")
    with old.write() as conn:
        conn.executemany("INSERT INTO events (body) VALUES (?)", [(b'{"message": "old%d"}' % i,) for i in range(3)])
    old.close()
    j = Journal(path, max_bytes=8 * 1024 * 1024)
    j.append(None, [ev(9)])
    rows = j.read("pipeline", 10)
    assert [e["message"] for _, e in rows] == ["old0", "old1", "old2", "m9"]
    assert [o for o, _ in rows][:3] == [1, 2, 3] and rows[3][0] > 10**15
    assert j.lag("pipeline") == 4
    j.close()
    bodies = stored_bodies(path)
    assert bodies[0][0] == ord("{") and bodies[3][0] == 1  # old rows stay JSON, new ones are compressed


def test_dead_letters_are_bounded_apart_from_events(tmp_path: Path) -> None:
    """A flood of malformed (unauthenticated) input evicts old dead letters; it never blocks events."""
    cap = 64 * 1024
    j = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, deadletter_max_bytes=cap)
    line = b"<13>garbage " + b"x" * 1000
    # through append (ingest's path): evicted as they come, far past both bounds in total
    for _ in range(40):
        j.append(None, [], [("syslog:udp", "unparseable", line)] * 100)
    assert j.deadletters_evicted > 3000
    assert j.deadletter_bytes() <= cap
    letters = DeadLetters(j.db)
    newest, _ = letters.list(limit=1)
    assert newest[0].id == 4000 and letters.count() < 70  # the newest kept, the oldest gone
    assert any("dead letters evicted" in w for w in j.health_warnings())
    assert j.append("good", [ev(1)]) == (1, False)
    j.close()


def test_compact_evicts_and_expires_dead_letters_written_elsewhere(tmp_path: Path) -> None:
    cap = 64 * 1024
    j = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, deadletter_max_bytes=cap, deadletter_days=30)
    other = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, deadletter_max_bytes=10 * 1024 * 1024)
    letters = DeadLetters(other.db)
    letters.add("file:/old.log", "too old", b"ancient")
    with other.db.write() as conn:
        conn.execute("UPDATE deadletters SET at = '2020-01-01T00:00:00Z'")
    for n in range(3):  # another process (an import) with a bigger cap of its own
        other.append(None, [], [("file:/x.jsonl", f"line {n * 100 + k}: invalid JSON", b"y" * 1000) for k in range(100)])
    assert letters.count() == 301
    assert j.append("before", [ev(1)]) == (1, False)
    j.compact()
    assert j.deadletters_expired == 1
    assert j.deadletters_evicted > 200
    assert j.deadletter_bytes() <= cap
    kept, _ = letters.list(limit=500)
    assert kept[0].reason == "line 299: invalid JSON"
    assert all(k.reason != "too old" for k in kept) and kept[-1].reason != "line 0: invalid JSON"
    assert j.append("after", [ev(2)]) == (1, False)
    other.close()
    j.close()


def test_dead_letters_alone_never_make_ingest_refuse(tmp_path: Path) -> None:
    """Even with a dead-letter cap above the events' bound, the bound counts events only."""
    j = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, deadletter_max_bytes=8 * 1024 * 1024)
    other = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, deadletter_max_bytes=8 * 1024 * 1024)
    for _ in range(10):  # 1 MB here, 1 MB from another process: both over the 1 MiB of events
        j.append(None, [], [("syslog:udp", "unparseable", b"z" * 1000)] * 100)
        other.append(None, [], [("syslog:udp", "unparseable", b"w" * 1000)] * 100)
    j.compact()  # re-measures the file: 2 MB of pages, nearly all dead letters
    assert j.deadletters_evicted == 0 and j.deadletter_bytes() > 2_000_000
    assert j.used_bytes() < 200_000 and j.health_warnings() == []
    big = [{"message": "x" * 1000, "n": i} for i in range(100)]
    assert j.append("events", big) == (100, False)
    assert other.append("events-too", big) == (100, False)  # its estimate catches up when it re-measures
    other.close()
    j.close()


def test_deadletter_purge_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    j = Journal(data / "journal.db", max_bytes=8 * 1024 * 1024)
    j.append(None, [], [("syslog:udp", "unparseable", b"a"), ("syslog:udp", "unparseable", b"b")])
    with j.db.write() as conn:
        conn.execute("UPDATE deadletters SET at = '2025-01-01T00:00:00Z' WHERE raw = x'61'")
    j.close()
    cli = [sys.executable, "-m", "soclite.cli", "deadletter", "purge", "--data-dir", str(data)]
    done = subprocess.run([*cli, "--before", "2026-01-01"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "deleted 1 dead letter" in done.stdout
    bad = subprocess.run([*cli, "--before", "yesterday"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "yesterday" in bad.stderr
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert "deleted 1 dead letter" in done.stdout
    j = Journal(data / "journal.db", max_bytes=8 * 1024 * 1024)
    assert DeadLetters(j.db).count() == 0
    j.close()


def test_the_single_pipeline_consumer_of_an_older_version_is_taken_over_by_both(tmp_path: Path) -> None:
    """Upgrading: detection and storage start where "pipeline" was, and its row no longer holds compaction."""
    j = Journal(tmp_path / "j.db", max_bytes=8 * 1024 * 1024)
    j.append(None, [ev(1), ev(2), ev(3)])
    rows = j.read("pipeline", 10)
    j.commit("pipeline", rows[1][0])
    j.register("detection", "storage", replaces="pipeline")
    assert j.consumers() == {"detection": rows[1][0], "storage": rows[1][0]}
    assert j.lags() == {"detection": 1, "storage": 1}
    j.commit("detection", rows[2][0])
    assert j.compact() == 2  # the slowest consumer (storage) decides
    j.commit("storage", rows[2][0])
    assert j.compact() == 1
    j.register("detection", "storage", replaces="pipeline")  # again at the next start: changes nothing
    assert j.consumers() == {"detection": rows[2][0], "storage": rows[2][0]}
    j.close()
