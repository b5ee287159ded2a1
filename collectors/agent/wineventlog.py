"""Read Windows event-log channels with the built-in ``wevtutil`` (no pywin32), bookmarked per channel.

Why ``wevtutil``: it ships with every Windows since Vista, so the agent needs no
compiled dependency on 2,500 workstations. Each poll runs, per channel::

    wevtutil qe <channel> /q:<xpath> /f:xml /c:<batch> /rd:false /e:Events

with ``<xpath>`` = ``*[System[EventRecordID>N]]`` (``N`` = the channel's bookmark;
a configured filter ``*[P]`` becomes ``*[System[EventRecordID>N] and (P)]``),
``/rd:false`` = oldest first, ``/c:`` = at most one batch, ``/e:Events`` = wrap the
events in one ``<Events>`` root so the output is a single XML document.

The bookmark (last EventRecordID shipped) lives in the spool's ``offsets`` table
under ``wineventlog:<channel>``, written in the same transaction as the batch it
covers, exactly like the file tail offsets: after a crash either the batch is in
the spool (and is resent until the server acknowledges it) or the bookmark did not
move (and the same records are read again into a batch with the same id).

A cleared log restarts its record ids at 1: when a query returns nothing,
``wevtutil gli <channel>`` (oldestRecordNumber + numberOfLogRecords) tells whether
the newest record id went below the bookmark; then reading restarts at the oldest
record, the offset's ``generation`` is bumped (batch ids stay unique) and the clear
is counted. Records overwritten before they were read (a full circular log) are
counted as ``missed``. Access denied (Security needs admin or Event Log Readers)
and missing channels (Sysmon not installed) are kept as the channel's state and
reported in the heartbeat; they never stop the agent.

The platform-independent parts (command lines, XML → ingest records, bookmarks)
are tested on Linux with a fake ``wevtutil``; the real program has not been run
by the tests.
"""

from __future__ import annotations

import locale
import logging
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from soclite.collectors.agent.config import WindowsEventLogInput
from soclite.collectors.agent.spool import Offset, Spool
from soclite.errors import ParseError

log = logging.getLogger(__name__)

SOURCE_PREFIX = "wineventlog:"
#: Win32 error codes wevtutil exits with (its exit status is the GetLastError() value).
ERROR_ACCESS_DENIED = 5
ERROR_EVT_INVALID_QUERY = 15001
ERROR_EVT_CHANNEL_NOT_FOUND = 15007
#: System fields the evtx parser (and so collectors.windows) gives as integers.
_INT_SYSTEM = {"EventID", "Version", "Level", "Task", "Opcode", "EventRecordID"}
_INT_ATTRS = {"ProcessID", "ThreadID"}


def unavailable_reason(platform: str) -> str | None:
    """Why this platform has no event log to read (None on Windows)."""
    if platform == "win32":
        return None
    return f"Windows event logs can only be read on Windows (this agent runs on {platform})"


# --- command lines ---------------------------------------------------------------------------------
def xpath_after(query: str, bookmark: int) -> str:
    """The configured filter restricted to records after the bookmark."""
    after = f"System[EventRecordID>{int(bookmark)}]"
    text = query.strip()
    if text == "*":
        return f"*[{after}]"
    if not (text.startswith("*[") and text.endswith("]")):
        raise ValueError(f"unsupported Event Log query {query!r}: expected '*' or '*[...]'")
    return f"*[{after} and ({text[2:-1]})]"


def qe_args(channel: str, query: str, bookmark: int, batch: int, exe: str = "wevtutil") -> list[str]:
    """argv of one oldest-first batch after the bookmark."""
    return [exe, "qe", channel, f"/q:{xpath_after(query, bookmark)}", "/f:xml", f"/c:{int(batch)}",
            "/rd:false", "/e:Events"]  # fmt: skip


def gli_args(channel: str, exe: str = "wevtutil") -> list[str]:
    """argv of the channel's status (record count, oldest record number)."""
    return [exe, "gli", channel]


def command_line(args: Sequence[str]) -> str:
    """The command line Windows' CreateProcess receives (what an operator can paste into cmd.exe)."""
    return subprocess.list2cmdline(list(args))


def parse_gli(text: str) -> tuple[int, int]:
    """``wevtutil gli`` output → (oldestRecordNumber, numberOfLogRecords)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    try:
        return int(values["oldestRecordNumber"]), int(values["numberOfLogRecords"])
    except (KeyError, ValueError) as exc:
        raise ParseError(f"unexpected 'wevtutil gli' output: {text[:200]!r}") from exc


# --- XML → ingest records ----------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attrs(elem: ET.Element, ints: Collection[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in elem.attrib.items():
        name = _local(key)
        out[name] = int(value) if name in ints and value.isdigit() else value
    return out


def _generic(elem: ET.Element) -> Any:
    """Any element → the evtx crate's JSON convention (``#attributes``, ``#text``, repeated → list)."""
    attrs = _attrs(elem)
    children = list(elem)
    text = (elem.text or "").strip() or None
    if not children:
        if not attrs:
            return text
        return {"#attributes": attrs, "#text": text} if text is not None else {"#attributes": attrs}
    out: dict[str, Any] = {"#attributes": attrs} if attrs else {}
    for child in children:
        name = _local(child.tag)
        value = _generic(child)
        if name in out:
            existing = out[name]
            out[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[name] = value
    return out


def _system(elem: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in elem:
        name = _local(child.tag)
        attrs = _attrs(child, _INT_ATTRS)
        text = child.text.strip() if child.text and child.text.strip() else None
        if name in _INT_SYSTEM and text is not None and text.isdigit():
            value: Any = int(text)
        else:
            value = text
        if attrs:  # Provider, TimeCreated, Execution, Security, Correlation, EventID Qualifiers
            out[name] = (
                {"#attributes": attrs, "#text": value} if value is not None else {"#attributes": attrs}
            )
        else:
            out[name] = value
    return out


def _event_data(elem: ET.Element) -> Any:
    """``<Data Name="X">v</Data>`` → ``{"X": v}`` (as the evtx crate does); unnamed Data → ``Data``."""
    named: dict[str, Any] = {}
    plain: list[Any] = []
    for child in elem:
        name = _local(child.tag)
        text = child.text or ""  # kept verbatim (a script or a task's XML keeps its layout)
        if name == "Data" and "Name" in child.attrib:
            named[child.attrib["Name"]] = text
        elif name == "Data":
            plain.append(text)
        else:
            named[name] = _generic(child)  # <Binary>, vendor elements
    if plain:
        named["Data"] = {"#text": plain[0] if len(plain) == 1 else plain}
    return named or None


def event_record(elem: ET.Element) -> dict[str, Any]:
    """One ``<Event>`` element → ``{"Event": {"System": ..., "EventData"|"UserData": ...}}``.

    That is the shape :func:`collectors.windows.from_json_record` (and so the server's
    ``/api/v1/ingest``) accepts for EVTX-derived records, so an agent-read event and
    the same event imported from an .evtx file flatten to the same fields.
    """
    body: dict[str, Any] = {}
    for child in elem:
        name = _local(child.tag)
        if name == "System":
            body["System"] = _system(child)
        elif name == "EventData":
            body["EventData"] = _event_data(child)
        else:  # UserData, RenderingInfo, ProcessingErrorData
            body[name] = _generic(child)
    if "System" not in body:
        raise ParseError("an <Event> without <System>")
    return {"Event": body}


def parse_events(xml: str | bytes) -> list[dict[str, Any]]:
    """``wevtutil qe ... /f:xml /e:Events`` output → ingest records, oldest first."""
    text = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else xml
    text = text.lstrip("\ufeff").strip()
    if not text:
        return []
    try:
        # Local, trusted producer; ElementTree resolves no external entities and expat
        # (>= 2.4.1, bundled with Python 3.11) bounds entity expansion.
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ParseError(f"malformed wevtutil XML: {exc}") from exc
    if _local(root.tag) == "Event":
        return [event_record(root)]
    if _local(root.tag) != "Events":
        raise ParseError(f"unexpected root element <{_local(root.tag)}> (expected <Events>)")
    return [event_record(child) for child in root if _local(child.tag) == "Event"]


def record_id(record: dict[str, Any]) -> int:
    value = record["Event"]["System"].get("EventRecordID")
    if not isinstance(value, int):
        raise ParseError(f"event without a numeric EventRecordID: {value!r}")
    return value


# --- one channel ------------------------------------------------------------------------------------
@dataclass
class Batch:
    """Records of one channel after ``start`` (exclusive) up to ``end``: what one spooled batch holds."""

    source: str
    generation: int
    start: int
    end: int
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def offset(self) -> Offset:
        return Offset(position=self.end, generation=self.generation)


Runner = Callable[[list[str]], "subprocess.CompletedProcess[bytes]"]


def run_process(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    # CREATE_NO_WINDOW: a service must not flash a console window per query (0 elsewhere)
    flags = int(getattr(subprocess, "CREATE_NO_WINDOW", 0))
    return subprocess.run(args, capture_output=True, timeout=120, check=False, creationflags=flags)


def decode_output(raw: bytes) -> str:
    """wevtutil's bytes → text: UTF-16 with a BOM, UTF-8, else the system code page.

    Which encoding wevtutil uses on a pipe has not been verified on a Windows host:
    every plausible one is accepted rather than mangling Vietnamese user names.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(locale.getpreferredencoding(False), "replace")


@dataclass
class ChannelStatus:
    state: str = "starting"  # ok | access_denied | not_found | invalid_query | error | starting
    detail: str = ""
    bookmark: int = 0
    cleared: int = 0
    missed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "bookmark": self.bookmark,
                "cleared": self.cleared, "missed": self.missed}  # fmt: skip


class ChannelReader:
    """Reads one channel in batches after its durable bookmark; :meth:`commit` once spooled."""

    def __init__(
        self,
        spec: WindowsEventLogInput,
        stored: Offset | None,
        *,
        exe: str = "wevtutil",
        run: Runner = run_process,
    ) -> None:
        self.channel = spec.channel
        self.query = spec.query
        self.start_at = spec.start_at
        self.source = SOURCE_PREFIX + spec.channel
        self.exe = exe
        self.run = run
        self.initialised = stored is not None
        self.bookmark = stored.position if stored else 0
        self.generation = stored.generation if stored else 0
        self.status = ChannelStatus(bookmark=self.bookmark)

    def _call(self, args: list[str]) -> str | None:
        """Run wevtutil; on failure record the channel's state and return None."""
        try:
            proc = self.run(args)
        except (OSError, subprocess.SubprocessError) as exc:
            self._fail("error", f"cannot run {args[0]}: {exc}")
            return None
        if proc.returncode != 0:
            message = decode_output(proc.stderr or proc.stdout or b"").strip()[:300]
            lowered = message.lower()
            if proc.returncode == ERROR_ACCESS_DENIED or "access is denied" in lowered:
                self._fail("access_denied", message or "access is denied")
            elif proc.returncode == ERROR_EVT_CHANNEL_NOT_FOUND or "could not be found" in lowered:
                self._fail("not_found", message or "channel not found")
            elif proc.returncode == ERROR_EVT_INVALID_QUERY:
                self._fail("invalid_query", message or "invalid query")
            else:
                self._fail("error", f"exit {proc.returncode}: {message}")
            return None
        return decode_output(proc.stdout)

    def _fail(self, state: str, detail: str) -> None:
        if (self.status.state, self.status.detail) != (state, detail):
            log.warning("event log %s: %s (%s)", self.channel, state, detail)
        self.status.state, self.status.detail = state, detail

    def _log_info(self) -> tuple[int, int] | None:
        out = self._call(gli_args(self.channel, self.exe))
        if out is None:
            return None
        try:
            return parse_gli(out)
        except ParseError as exc:
            self._fail("error", str(exc))
            return None

    def _initialise(self, spool: Spool) -> bool:
        """First run on this channel: start at the oldest record or after the newest one."""
        if self.start_at == "end":
            info = self._log_info()
            if info is None:
                return False
            oldest, count = info
            self.bookmark = oldest + count - 1 if count else 0
        spool.set_offset(self.source, Offset(position=self.bookmark, generation=self.generation))
        self.initialised = True
        self.status.bookmark = self.bookmark
        return True

    def _check_cleared(self, spool: Spool) -> None:
        """No new records: was the log cleared (newest record id below the bookmark)?"""
        info = self._log_info()
        if info is None:
            return
        oldest, count = info
        newest = oldest + count - 1 if count else 0
        if newest < self.bookmark:
            log.warning("event log %s was cleared (newest record %d < bookmark %d): reading it again from "
                        "its oldest record", self.channel, newest, self.bookmark)  # fmt: skip
            self.bookmark = 0
            self.generation += 1
            self.status.cleared += 1
            spool.set_offset(self.source, Offset(position=0, generation=self.generation))
            self.status.bookmark = 0

    def read(self, spool: Spool, limit: int) -> Batch | None:
        """The next batch after the bookmark (None: nothing new, or the channel failed)."""
        if not self.initialised and not self._initialise(spool):
            return None
        out = self._call(qe_args(self.channel, self.query, self.bookmark, limit, self.exe))
        if out is None:
            return None
        try:
            records = parse_events(out)
            ids = [record_id(r) for r in records]
        except ParseError as exc:
            self._fail("error", str(exc))
            return None
        self.status.state, self.status.detail = "ok", ""
        fresh = [(rid, r) for rid, r in zip(ids, records, strict=True) if rid > self.bookmark]
        if not fresh:
            self._check_cleared(spool)
            return None
        first = fresh[0][0]
        if self.query == "*" and self.bookmark and first > self.bookmark + 1:
            # a full circular log overwrote records before they were read
            self.status.missed += first - self.bookmark - 1
            log.warning("event log %s: %d records overwritten before they were read",
                        self.channel, first - self.bookmark - 1)  # fmt: skip
        return Batch(self.source, self.generation, self.bookmark, fresh[-1][0], [r for _, r in fresh])

    def commit(self, batch: Batch) -> None:
        """The batch and its offset are in the spool: move the in-memory bookmark."""
        self.bookmark = batch.end
        self.status.bookmark = batch.end


class WinEventLogCollector:
    """All configured channels, or none with the reason (not Windows, no wevtutil)."""

    def __init__(
        self,
        specs: Sequence[WindowsEventLogInput],
        spool: Spool,
        platform: str,
        *,
        exe: str | None = None,
        run: Runner = run_process,
    ) -> None:
        self.spool = spool
        self.readers: list[ChannelReader] = []
        self.disabled: str | None = None
        if not specs:
            return
        self.disabled = unavailable_reason(platform)
        program = exe or shutil.which("wevtutil")
        if self.disabled is None and program is None:
            self.disabled = "wevtutil was not found on PATH"
        if self.disabled is not None:
            log.warning("windows_event_logs configured but disabled: %s", self.disabled)
            return
        assert program is not None
        self.readers = [
            ChannelReader(spec, spool.offset(SOURCE_PREFIX + spec.channel), exe=program, run=run)
            for spec in specs
        ]

    def collect(self, limit: int, put: Callable[[Batch], None]) -> int:
        """Read each channel (a full batch is read again at once); ``put`` spools one batch durably."""
        total = 0
        for reader in self.readers:
            while True:
                batch = reader.read(self.spool, limit)
                if batch is None:
                    break
                put(batch)  # raises → the bookmark stays; the same records are read again next poll
                reader.commit(batch)
                total += len(batch.records)
                if len(batch.records) < limit:
                    break
        return total

    def status(self) -> dict[str, Any]:
        if self.disabled is not None:
            return {"enabled": False, "reason": self.disabled}
        return {"enabled": True, "channels": {r.channel: r.status.as_dict() for r in self.readers}}
