"""The cold archive of events: one compressed segment per UTC day, hash-chained in a manifest.

Beyond the hot window (``store.hot_days``) a day's events leave the store for
``archive/events-YYYYMMDD.jsonl.gz``: one normalized event per line, oldest first, gzip (stdlib;
``soclite hunt`` reads ``.jsonl.gz`` as it is, so a segment is re-scanned with Sigma rules
without loading it anywhere). ``archive/manifest.jsonl`` has one line per segment::

    {"day": "20240801", "file": "events-20240801.jsonl.gz", "events": N, "bytes": B,
     "sha256": <of the file>, "prev": <hash of the previous line>, "hash": <sha256 of prev|day|file|events|sha256>}

so a segment altered, removed, or slipped in between breaks the chain from there on, which
:func:`verify` reports segment by segment (``soclite archive verify``). Retention (:meth:`EventArchive.retire`)
deletes a whole segment once none of its events must be kept any longer, and records it in
``archive/retired.jsonl`` (day, file, its SHA-256 and chain hash, when): the manifest stays as it was,
so the chain still verifies, and a segment missing without such a record is still reported. A segment
holding any event a long-retention host still needs is kept whole: cutting others' events out of a
sealed segment would change the hash the chain vouches for. A segment is written and
its manifest line appended before the day's hot file is deleted: a crash in between leaves the day
in both places, and archiving it again only deletes the hot file (its manifest line is there).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from soclite.errors import StoreError
from soclite.models import UNIT, Event
from soclite.store import _common as c
from soclite.store.base import RetentionPlan

MANIFEST = "manifest.jsonl"
RETIRED = "retired.jsonl"
GENESIS = "0" * 64


@dataclass(frozen=True)
class Segment:
    day: str
    file: str
    events: int
    bytes: int
    sha256: str
    prev: str
    hash: str


def _link(prev: str, day: str, file: str, events: int, sha256: str) -> str:
    return hashlib.sha256(f"{prev}|{day}|{file}|{events}|{sha256}".encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


class EventArchive:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def segments(self) -> list[Segment]:
        path = self.dir / MANIFEST
        if not path.exists():
            return []
        out = []
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(Segment(**orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError) as exc:
                raise StoreError(f"{path}:{n}: not a manifest line: {exc}") from exc
        return out

    def has(self, day: str) -> bool:
        return any(s.day == day for s in self.segments())

    def add(self, day: str, events: Iterable[Event]) -> Segment:
        """Write one day's segment (oldest event first) and chain it into the manifest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"events-{day}.jsonl.gz"
        path = self.dir / name
        tmp = path.with_name(name + ".tmp")
        count = 0
        # mtime=0: the same events give the same bytes, so a re-archived day hashes the same
        with tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            for event in events:
                gz.write(orjson.dumps(event, default=str) + b"\n")
                count += 1
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        existing = self.segments()
        prev = existing[-1].hash if existing else GENESIS
        sha = _file_sha256(path)
        segment = Segment(day=day, file=name, events=count, bytes=path.stat().st_size, sha256=sha, prev=prev,
                          hash=_link(prev, day, name, count, sha))  # fmt: skip
        with (self.dir / MANIFEST).open("ab") as manifest:
            manifest.write(orjson.dumps(segment.__dict__) + b"\n")
            manifest.flush()
            os.fsync(manifest.fileno())
        return segment

    def iter_day(self, day: str) -> Iterator[Event]:
        """One segment's events, oldest first, streamed (a re-scan never holds a whole day)."""
        path = self.dir / f"events-{day}.jsonl.gz"
        try:
            with gzip.open(path, "rb") as handle:
                for n, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            yield orjson.loads(line)
                        except orjson.JSONDecodeError as exc:
                            raise StoreError(f"{path}:{n}: not an event: {exc}") from exc
        except (OSError, EOFError) as exc:
            raise StoreError(f"{path}: cannot read the segment: {exc}") from exc

    def retired(self) -> dict[str, dict[str, Any]]:
        """Segments deleted by retention, by file name."""
        path = self.dir / RETIRED
        if not path.exists():
            return {}
        out = {}
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                try:
                    record = orjson.loads(line)
                    out[str(record["file"])] = record
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise StoreError(f"{path}:{n}: not a retirement line: {exc}") from exc
        return out

    def retire(self, plan: RetentionPlan, now: datetime) -> tuple[list[str], list[str]]:
        """Delete the segments wholly older than ``plan.before`` none of whose events ``plan`` keeps;
        (days retired, days kept for a long-retention host or unit)."""
        retired, kept = [], []
        done = self.retired()
        for seg in self.segments():
            day_end = datetime.strptime(seg.day, "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
            if day_end > plan.before or seg.file in done or not (self.dir / seg.file).exists():
                continue
            if any(plan.protects(_host(e), _unit(e), _time(e)) for e in self.iter_day(seg.day)):
                kept.append(seg.day)
                continue
            record = {"day": seg.day, "file": seg.file, "sha256": seg.sha256, "hash": seg.hash,
                      "retired_at": now.astimezone(UTC).isoformat()}
            with (self.dir / RETIRED).open("ab") as log_file:  # the record first: a crash leaves a file to retry
                log_file.write(orjson.dumps(record) + b"\n")
                log_file.flush()
                os.fsync(log_file.fileno())
            (self.dir / seg.file).unlink()
            retired.append(seg.day)
        return retired, kept

    def read(self, day: str) -> list[Event]:
        with gzip.open(self.dir / f"events-{day}.jsonl.gz", "rb") as handle:
            return [orjson.loads(line) for line in handle if line.strip()]


def _host(event: Event) -> str | None:
    return c.event_host(event)


def _unit(event: Event) -> str | None:
    unit = event.get(UNIT)
    return unit if isinstance(unit, str) else None


def _time(event: Event) -> datetime:
    try:
        return c.event_time(event)
    except (StoreError, ValueError, TypeError):  # no usable time: keep the segment rather than guess
        return datetime.max.replace(tzinfo=UTC)


def verify(directory: Path) -> tuple[int, list[str]]:
    """(segments checked, problems): each segment's file hash and the chain of the manifest."""
    archive = EventArchive(directory)
    problems: list[str] = []
    try:
        segments = archive.segments()
    except StoreError as exc:
        return 0, [str(exc)]
    try:
        retired = archive.retired()
    except StoreError as exc:
        return len(segments), [str(exc)]
    prev = GENESIS
    listed = set()
    for seg in segments:
        listed.add(seg.file)
        where = f"{directory / seg.file}"
        if seg.prev != prev:
            problems.append(f"{where}: chain broken (its prev is not the hash of the segment before it)")
        if seg.hash != _link(seg.prev, seg.day, seg.file, seg.events, seg.sha256):
            problems.append(f"{where}: manifest line altered (its hash does not match its fields)")
        path = directory / seg.file
        if not path.exists():
            if seg.file not in retired or retired[seg.file].get("sha256") != seg.sha256:
                problems.append(f"{where}: segment missing")
        elif _file_sha256(path) != seg.sha256:
            problems.append(f"{where}: content altered (SHA-256 differs from the manifest)")
        prev = seg.hash
    for path in sorted(directory.glob("events-*.jsonl.gz")) if directory.exists() else []:
        if path.name not in listed:
            problems.append(f"{path}: segment not in the manifest")
    return len(segments), problems


def describe(segment: Segment) -> dict[str, Any]:
    return dict(segment.__dict__)


__all__ = ["EventArchive", "Segment", "describe", "verify"]
