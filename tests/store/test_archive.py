"""The cold archive: whole days leave the store as hash-chained segments that verify and hunt can read."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson

from soclite.store.archive import MANIFEST, EventArchive, verify
from soclite.store.base import EventQuery
from soclite.store.sqlite import SQLiteStore

from .factories import T0, event


def _store(path: Path) -> SQLiteStore:
    store = SQLiteStore(path / "events.db")
    store.open()
    # 4 events a day over 5 days, written newest first (the archive must still be oldest first)
    store.write_events([event(i, when=T0 + timedelta(hours=6 * i, minutes=1)) for i in reversed(range(20))])
    return store


def test_whole_days_move_to_chained_segments_and_verify(tmp_path: Path) -> None:
    store = _store(tmp_path)
    archive = EventArchive(tmp_path / "archive")
    segments = store.archive_events_before(T0 + timedelta(days=3, hours=5), archive)
    assert [s.day for s in segments] == ["20240801", "20240802", "20240803"]
    assert [s.events for s in segments] == [4, 4, 4]
    assert segments[0].prev == "0" * 64 and segments[1].prev == segments[0].hash
    assert store.count_events(EventQuery()) == 8  # days 4 and 5 stay hot (day 4 is not whole yet)
    day1 = archive.read("20240801")
    assert [e["event.id"] for e in day1] == [f"ev{i:06d}" for i in range(4)]
    assert day1[0] == event(0, when=T0 + timedelta(minutes=1))
    assert verify(archive.dir) == (3, [])
    # again: nothing new, nothing doubled
    assert store.archive_events_before(T0 + timedelta(days=3, hours=5), archive) == []
    assert len(archive.segments()) == 3
    store.close()


def test_a_crash_after_the_manifest_line_only_deletes_the_hot_day(tmp_path: Path) -> None:
    store = _store(tmp_path)
    archive = EventArchive(tmp_path / "archive")
    archive.add("20240801", store.events.iter_day("20240801"))  # archived, then the crash: hot file still there
    segments = store.archive_events_before(T0 + timedelta(days=1), archive)
    assert segments == []
    assert [s.day for s in archive.segments()] == ["20240801"]
    assert not store.events.path_of("20240801").exists()
    assert verify(archive.dir) == (1, [])
    store.close()


def test_verify_names_an_altered_a_removed_and_an_unlisted_segment(tmp_path: Path) -> None:
    store = _store(tmp_path)
    archive = EventArchive(tmp_path / "archive")
    store.archive_events_before(T0 + timedelta(days=4), archive)
    store.close()
    # one event changed inside day 2's segment
    path = archive.dir / "events-20240802.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    doc = orjson.loads(lines[0])
    doc["user.name"] = "someone-else"
    lines[0] = orjson.dumps(doc)
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    checked, problems = verify(archive.dir)
    assert checked == 4 and problems == [f"{path}: content altered (SHA-256 differs from the manifest)"]
    # day 3's line removed from the manifest: the chain breaks at day 4, and day 3's file is unlisted
    manifest = archive.dir / MANIFEST
    kept = [line for line in manifest.read_bytes().splitlines() if b'"20240803"' not in line]
    manifest.write_bytes(b"\n".join(kept) + b"\n")
    _checked, problems = verify(archive.dir)
    assert f"{archive.dir / 'events-20240804.jsonl.gz'}: chain broken (its prev is not the hash of the segment " \
           "before it)" in problems
    assert f"{archive.dir / 'events-20240803.jsonl.gz'}: segment not in the manifest" in problems


RULE = """
title: Archive test marker
id: 2b0e7c6a-1d8e-4d52-9a3c-7e4f3b2a1c01
status: test
level: high
logsource:
    product: linux
detection:
    selection:
        event.original|contains: 'line 17'
    condition: selection
"""


def test_cli_archive_run_verify_and_hunt_over_a_segment(tmp_path: Path) -> None:
    store = _store(tmp_path)  # August 2024: far outside a 1-day hot window
    store.close()
    env = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}

    def soclite(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "soclite.cli", *args], capture_output=True, text=True, env=env,
                              timeout=300)  # fmt: skip

    run = soclite("archive", "run", "--data-dir", str(tmp_path), "--hot-days", "1")
    assert run.returncode == 0, run.stderr
    assert [orjson.loads(line)["day"] for line in run.stdout.splitlines()] == [f"202408{d:02d}" for d in range(1, 6)]
    ok = soclite("archive", "verify", "--data-dir", str(tmp_path))
    assert ok.returncode == 0 and "5 segment(s), chain intact" in ok.stdout, ok.stderr
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE)
    hunt = soclite("hunt", "--rules", str(rule), str(tmp_path / "archive" / "events-20240805.jsonl.gz"))
    assert hunt.returncode == 0, hunt.stderr
    (hit,) = [orjson.loads(line) for line in hunt.stdout.splitlines()]
    assert hit["rule_id"] == "2b0e7c6a-1d8e-4d52-9a3c-7e4f3b2a1c01" and hit["event"]["event.id"] == "ev000017"
    (tmp_path / "archive" / "events-20240803.jsonl.gz").unlink()
    bad = soclite("archive", "verify", "--data-dir", str(tmp_path))
    assert bad.returncode == 1 and "events-20240803.jsonl.gz: segment missing" in bad.stderr
