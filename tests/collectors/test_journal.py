"""The ingest journal: durable append, batch-id dedup, consumer offsets, compaction and the disk bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.deadletter import DeadLetters
from collectors.journal import Journal
from soclite.errors import JournalError


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


def test_old_batch_ids_expire(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", max_bytes=8 * 1024 * 1024, batch_retention_seconds=0)
    j.append("x", [ev(1)])
    j.compact()
    assert j.append("x", [ev(1)]) == (1, False)
    j.close()


def test_disk_bound_refuses_and_warns_and_recovers(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", max_bytes=1024 * 1024, warn_ratio=0.5)
    big = [{"message": "x" * 1000, "n": i} for i in range(100)]
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
from collectors.journal import Journal
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
