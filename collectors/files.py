"""File import: EVTX, JSON/JSONL (optionally .gz), pcap/pcapng and syslog text → normalized batches.

:func:`read_file` yields chunks of (events, dead letters); the caller appends each chunk to the
journal with the chunk's batch id, ``import:<sha256 of the file>:<chunk>``, so importing the
same file twice stores it once. A malformed line or record becomes a dead letter with the file,
the line number and the reason; an unreadable file is one dead letter.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson

from soclite.collectors.normalize import finish, normalize_batch
from soclite.errors import ParseError
from soclite.models import Event
from soclite.store.journal import DeadLetter

CHUNK = 1000
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PCAP_SUFFIXES = (".pcap", ".pcapng", ".cap")


@dataclass
class Chunk:
    batch_id: str
    events: list[Event]
    dead: list[DeadLetter]
    #: bytes of the file consumed so far (for a progress bar), when known
    position: int = 0


def file_kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".evtx"):
        return "evtx"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(PCAP_SUFFIXES):
        return "pcap"
    return "text"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:24]


#: plain files are read in 1 MiB blocks: Python's default 8 KiB buffer costs a read call per three
#: or four Windows event lines (about 8 % of a hunt's CPU on the OTRF file)
READ_BUFFER = 1 << 20


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb", buffering=READ_BUFFER)


def _json_records(path: Path, source: str) -> Iterator[tuple[Any, DeadLetter | None]]:
    with _open(path) as handle:
        first = handle.read(1)
        while first in (b" ", b"\n", b"\r", b"\t", b"\xef", b"\xbb", b"\xbf"):
            first = handle.read(1)
        rest = handle.read() if first == b"[" else None
        if rest is not None:  # one JSON array of records
            try:
                records = orjson.loads(first + rest)
            except orjson.JSONDecodeError as exc:
                yield None, (source, f"invalid JSON array: {exc}", (first + rest)[:65536])
                return
            for record in records:
                yield record, None
            return
        for number, line in enumerate(_lines(first, handle), start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line), None
            except orjson.JSONDecodeError as exc:
                yield None, (source, f"line {number}: invalid JSON: {exc}", line)


def _guarded(items: Iterator[tuple[Any, DeadLetter | None]], path: Path,
             source: str) -> Iterator[tuple[Any, DeadLetter | None]]:
    """Keep what was read of a truncated or corrupt file and end it with one dead letter saying why.

    A .gz cut short raises EOFError at the point of damage (which click would report as a bare
    "Aborted!"), a corrupt one gzip.BadGzipFile / zlib.error: the records before it are good.
    """
    read = 0
    try:
        for item in items:
            read += 1
            yield item
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        what = "compressed file ended before its end marker (truncated)" if isinstance(exc, EOFError) else str(exc)
        tail = path.read_bytes()[-65536:] if path.stat().st_size else b""
        yield None, (source, f"{path.name}: {what}; {read} record(s) before the damage were kept", tail)


def _lines(first: bytes, handle: IO[bytes]) -> Iterator[bytes]:
    pending = first
    for line in handle:
        yield (pending + line).rstrip(b"\r\n")
        pending = b""
    if pending:
        yield pending


def _text_records(path: Path, source: str) -> Iterator[tuple[Any, DeadLetter | None]]:
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield None, (source, f"line {number}: not UTF-8: {exc}", line)
                continue
            yield {"message": text, "log.file.path": str(path)}, None


def _evtx_records(path: Path, source: str) -> Iterator[tuple[Any, DeadLetter | None]]:
    windows = importlib.import_module("soclite.collectors.windows")
    try:
        for event in windows.iter_evtx(path):
            yield event, None
    except (ParseError, OSError, RuntimeError, ValueError) as exc:
        # The evtx reader stops at a damaged chunk: what was read is kept, the rest is one dead letter.
        yield None, (source, f"EVTX read error: {exc}", b"")


def read_file(path: Path, *, received: datetime, default_tz: str, max_bytes: int, unit: str | None = None) -> Iterator[Chunk]:
    """Normalized chunks of one file (see the module docstring)."""
    source = f"file:{path}"
    digest = _digest(path)
    kind = file_kind(path)
    if kind == "pcap":
        from soclite.collectors.sensor import pcap_events

        def pcap() -> Iterator[tuple[Any, DeadLetter | None]]:
            try:
                for event in pcap_events(path):
                    yield ("event", event), None
            except ParseError as exc:
                yield None, (source, str(exc), path.read_bytes()[:65536] if path.stat().st_size else b"")

        items: Iterable[tuple[Any, DeadLetter | None]] = pcap()
    elif kind == "evtx":
        items = _evtx_records(path, source)
    elif kind == "json":
        items = _guarded(_json_records(path, source), path, source)
    else:
        items = _guarded(_text_records(path, source), path, source)
    index = 0
    records: list[Any] = []
    dead: list[DeadLetter] = []

    def flush() -> Chunk:
        nonlocal records, dead, index
        events: list[Event] = []
        ready = [r[1] for r in records if isinstance(r, tuple)]
        raw = [r for r in records if not isinstance(r, tuple)]
        for event in ready:
            events.append(finish(event, received=received, input="file", unit=unit, agent_id=None))
        for item in normalize_batch(raw, received=received, input="file", unit=unit, agent_id=None,
                                    default_tz=default_tz, max_bytes=max_bytes):  # fmt: skip
            if isinstance(item, ParseError):
                dead.append((source, str(item), orjson.dumps(getattr(item, "record", None), default=str)))
            else:
                events.append(item)
        for event in events:
            event.setdefault("log.file.path", str(path))
        chunk = Chunk(f"import:{digest}:{index}", events, dead)
        index += 1
        records, dead = [], []
        return chunk

    for record, letter in items:
        if letter is not None:
            dead.append(letter)
        else:
            records.append(record)
        if len(records) + len(dead) >= CHUNK:
            yield flush()
    if records or dead:
        yield flush()
