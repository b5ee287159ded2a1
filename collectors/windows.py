"""Windows events (EVTX, NXLog JSON, Winlogbeat JSON) → the flat soclite Event.

SigmaHQ rules name Windows fields as the XML does (``EventID``, ``Channel``,
``Image``, ``CommandLine`` ...), so the flat event keeps those names: the
``System`` block's fields and the ``EventData``/``UserData`` fields all end up
at the top level. EVTX files are read with the ``evtx`` package (Rust parser,
JSON records).

Name collisions: a data field named like a System field wins the plain name and
the System value moves to ``System_<name>`` (:data:`soclite.models.SYSTEM_PREFIX`).
That is how SigmaHQ rules read such events: event 104 ("log cleared", System
channel) carries the cleared log's name in ``UserData/LogFileCleared/Channel``,
and the ``service: system`` rules "Important Windows Eventlog Cleared"
(100ef69e) and "Eventlog Cleared" (a62b37e0) test ``Channel`` against the
*cleared* log's name (the latter drops Security/System/... as covered by the
former, which would make it unable to fire if ``Channel`` were "System").
Routing, ``host.name``, ``@timestamp`` and record ids read the System values
(:func:`soclite.models.system_field`). The rule is the same for EVTX, wevtutil
XML (same ``{"Event": ...}`` shape), Winlogbeat and NXLog.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from soclite.errors import ParseError
from soclite.models import (
    HOST_NAME,
    SYSTEM_PREFIX,
    TIMESTAMP,
    Event,
    isoformat,
    parse_timestamp,
)


def _int(value: Any) -> Any:
    """EventID as an int when it is one ("4688" → 4688); anything else unchanged."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _text(value: Any) -> Any:
    """XML-ish JSON values: ``{"#text": x, "#attributes": ...}`` → x."""
    if isinstance(value, dict):
        if "#text" in value:
            return _text(value["#text"])
        if set(value) == {"#attributes"}:
            return None
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return "\n".join(str(v) for v in value) if len(value) != 1 else value[0]
    return value


def _flatten_data(data: Any, out: Event, prefix: str = "") -> None:
    """EventData/UserData: named fields to top level; unnamed ``Data`` lists to ``Data``/``Data_<n>``."""
    if data is None:
        return
    if not isinstance(data, dict):
        out[prefix or "Data"] = _text(data)
        return
    for key, value in data.items():
        if key == "#attributes":
            continue
        if key == "Data" and isinstance(value, (list, dict)):
            items = value if isinstance(value, list) else [value]
            plain = []
            for item in items:
                if isinstance(item, dict) and "#attributes" in item and "Name" in item["#attributes"]:
                    out[_name(item["#attributes"]["Name"])] = _text(item.get("#text"))
                else:
                    plain.append(_text(item))
            if plain:
                out["Data"] = plain[0] if len(plain) == 1 else "\n".join(str(p) for p in plain)
            continue
        if isinstance(value, dict) and "#text" not in value:
            _flatten_data(value, out)  # UserData/<Element>/<fields>
            continue
        out[_name(key)] = _text(value)


def _name(key: str) -> str:
    """Defender and others name fields with spaces ("Threat Name"); Sigma rules use them without."""
    return key.replace(" ", "") if " " in key else key


def flatten_xml_json(record: dict[str, Any]) -> Event:
    """An ``{"Event": {"System": ..., "EventData": ...}}`` record (evtx crate or XML→JSON) → flat Event."""
    ev_body = record.get("Event", record)
    system = ev_body.get("System") or {}
    out: Event = {}
    for key, value in system.items():
        if key == "Provider":
            attrs = value.get("#attributes", {}) if isinstance(value, dict) else {}
            out["Provider_Name"] = attrs.get("Name")
            if attrs.get("Guid"):
                out["Provider_Guid"] = attrs["Guid"]
        elif key == "TimeCreated":
            attrs = value.get("#attributes", {}) if isinstance(value, dict) else {}
            if attrs.get("SystemTime"):
                out["TimeCreated"] = attrs["SystemTime"]
        elif key in ("Execution", "Security", "Correlation") and isinstance(value, dict):
            for attr, attr_value in (value.get("#attributes") or {}).items():
                out[f"{key}_{attr}"] = attr_value
        else:
            out[key] = _text(value)
    if "EventID" in out:
        out["EventID"] = _int(out["EventID"])
    data: Event = {}
    for section in ("EventData", "UserData"):
        if section in ev_body:
            _flatten_data(ev_body[section], data)
    overlay(out, data)
    _finish(out)
    return out


_SYSTEM_COMPUTER = SYSTEM_PREFIX + "Computer"
_SYSTEM_TIME_CREATED = SYSTEM_PREFIX + "TimeCreated"


def overlay(system: Event, data: Event) -> Event:
    """Put the data fields over the System fields in ``system``: on a name collision the data value takes
    the plain name (what SigmaHQ rules test) and a different System value is kept as ``System_<name>``
    (what routing reads). An empty (None) data field hides nothing."""
    for key, value in data.items():
        if key in system:
            if value is None:
                continue
            old = system[key]
            if old is not None and old != value:
                system[SYSTEM_PREFIX + key] = old
        system[key] = value
    return system


def _finish(out: Event, default_tz: str = "UTC") -> bool:
    """Add host.name and @timestamp when missing; returns whether host.name is the Computer value
    itself (str() of a str is that very str), not a new string."""
    copied = False
    computer = out.get(_SYSTEM_COMPUTER)  # the System value (see overlay); keys prebuilt, this runs per event
    if computer is None:
        computer = out.get("Computer")
    if computer and HOST_NAME not in out:
        host = out[HOST_NAME] = str(computer)
        copied = host is computer
    if TIMESTAMP not in out:
        stamp = event_timestamp(out, default_tz)
        if stamp is not None:
            out[TIMESTAMP] = stamp
    return copied


def _parse_local(raw: Any) -> datetime | None:
    """An ISO-ish time ("2026-11-23 10:00:00", "...T...+07:00", "...Z"); naive stays naive; junk → None."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def event_timestamp(out: Event, default_tz: str = "UTC") -> str | None:
    """The event's time as stored ISO UTC, from the most trustworthy field present.

    ``TimeCreated`` (EVTX SystemTime) and Sysmon's ``UtcTime`` are UTC even without
    a zone. NXLog's ``EventTime`` is the Windows host's *local* time without a zone:
    it is read with the zone of a zoned ``EventReceivedTime`` when the record has one
    (same NXLog host, same clock), else in ``default_tz`` (the site's zone). A zoned
    ``EventTime`` (NXLog configured for ISO 8601) is taken as it is. Only when no
    event time exists does the reception time stand in.
    """
    site = _zone(default_tz)
    received = _parse_local(out.get("EventReceivedTime"))
    nxlog_zone = received.tzinfo if received is not None and received.tzinfo is not None else None
    candidates = (
        (_parse_local(out.get(_SYSTEM_TIME_CREATED) or out.get("TimeCreated")), UTC),
        (_parse_local(out.get("UtcTime")), UTC),
        (_parse_local(out.get("EventTime")), nxlog_zone or site),
        (received, site),
    )
    for ts, zone in candidates:
        if ts is None:
            continue
        try:
            return isoformat(ts if ts.tzinfo else ts.replace(tzinfo=zone))
        except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range: try the next field
            continue
    return None


def _zone(name: str) -> tzinfo:
    """``default_tz`` by IANA name; an unknown name is a ParseError naming it (not a silent UTC)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParseError(f"unknown time zone {name!r}") from exc


def iter_evtx(path: str | Path) -> Iterator[Event]:
    """Every record of an EVTX file as a flat Event (records the parser cannot read raise ParseError)."""
    from evtx import PyEvtxParser

    try:
        parser = PyEvtxParser(str(path))
    except (OSError, RuntimeError) as exc:
        raise ParseError(f"not a readable EVTX file: {exc}", source=str(path)) from exc
    for record in parser.records_json():
        assert record is not None
        data = orjson.loads(record["data"])
        event = flatten_xml_json(data)
        event.setdefault("EventRecordID", record.get("event_record_id"))
        stamp = record.get("timestamp")
        if TIMESTAMP not in event and stamp:
            with contextlib.suppress(ValueError):
                event[TIMESTAMP] = isoformat(parse_timestamp(str(stamp).replace(" UTC", "Z")))
        yield event


#: NXLog im_msvistalog names that differ from the EVTX/XML names.
NXLOG_RENAMES = {"Hostname": "Computer", "SourceName": "Provider_Name", "RecordNumber": "EventRecordID"}
_RENAMES = tuple(NXLOG_RENAMES.items())


def from_json_record(record: dict[str, Any], *, copy: bool = True, default_tz: str = "UTC") -> Event:
    """NXLog flat JSON or Winlogbeat JSON (``winlog.*``) → the flat Event shape of :func:`iter_evtx`.

    ``copy=False`` reuses an NXLog record as the event (for a record just parsed and not kept). It is
    then mapped in place: the record's keys keep values its JSON text holds (EventID as the int it
    spells, event 104's ``Channel`` as the log its ``Message`` names) and the keys added go after them,
    which lets the engine search that text for keywords (Engine.match's ``raw`` and ``raw_keys``).
    ``default_tz`` is the zone of Windows hosts' local times (NXLog ``EventTime`` has none):
    callers pass the site's zone (settings.timezone); "UTC" keeps older callers' behaviour.
    A record's own ``@timestamp`` (Logstash/Winlogbeat, zoned) always wins."""
    rebuilt = _rebuilt(record, default_tz)
    if rebuilt is not None:
        return rebuilt
    out: Event = dict(record) if copy else record
    _map_nxlog(out, default_tz)
    return out


def map_in_place(record: dict[str, Any], default_tz: str = "UTC") -> tuple[Event, int | None]:
    """``from_json_record(record, copy=False)`` and, when the record itself became the event (NXLog),
    how many of the event's first keys hold values that the record's JSON text holds (Engine.match's
    ``raw_keys``): its own keys, then the copies the mapping appends (Computer from Hostname and the
    like, host.name from Computer) up to the first value it derives (event 104's System channel, a
    timestamp). None for an event built anew (Winlogbeat, XML as JSON): its text is not the record's."""
    if "Event" in record or "winlog" in record:
        rebuilt = _rebuilt(record, default_tz)
        if rebuilt is not None:
            return rebuilt, None
    return record, _map_nxlog(record, default_tz)


def _rebuilt(record: dict[str, Any], default_tz: str) -> Event | None:
    """The event of a record whose shape is not the flat one (XML as JSON, Winlogbeat), else None."""
    if "Event" in record and isinstance(record["Event"], dict) and "System" in record["Event"]:
        return flatten_xml_json(record)
    winlog = record.get("winlog")
    if isinstance(winlog, dict):
        return _from_winlogbeat(record, winlog, default_tz)
    return None


def _map_nxlog(out: Event, default_tz: str) -> int:
    """Map a flat (NXLog) record in place; returns how many of its first keys hold values of its own
    text (see map_in_place). Runs once per event of a hunt: kept to plain dict operations."""
    for src, dst in _RENAMES:
        if src in out and dst not in out:
            out[dst] = out[src]  # the same object: its JSON is in the record's text
    eid = out.get("EventID")
    if eid is not None and not isinstance(eid, int):
        eid = out["EventID"] = _int(eid)  # the int the text spells
    backed = len(out)
    if eid == 104 and out.get("Provider_Name") == EVENTLOG_PROVIDER:
        _nxlog_log_cleared(out)
    derived = len(out) != backed  # (event 104's System channel)
    if _finish(out, default_tz) and not derived:  # host.name, a copy of Computer, holds the record's text
        backed += 1
    return backed


#: The provider of event 104 ("The <name> log file was cleared."), which its manifest logs to System.
EVENTLOG_PROVIDER = "Microsoft-Windows-Eventlog"
_CLEARED = re.compile(r"^The (.+) log file was cleared\.")


def _nxlog_log_cleared(out: Event) -> None:
    """NXLog flattens System and UserData into one JSON object, so event 104's two ``Channel`` values
    cannot both survive: either the UserData one replaced the System one (the record then claims a
    channel that 104 is never logged to) or it was dropped, its name left only in the rendered
    ``Message`` ("The Security log file was cleared.", English only). Restore both names."""
    channel = out.get("Channel")
    if not isinstance(channel, str) or SYSTEM_PREFIX + "Channel" in out:
        return
    if channel.lower() != "system":  # the cleared log's name took the key: the System one is known
        out[SYSTEM_PREFIX + "Channel"] = "System"
        return
    match = _CLEARED.match(str(out.get("Message") or ""))
    if match and match.group(1).lower() != "system":
        out[SYSTEM_PREFIX + "Channel"] = channel
        out["Channel"] = match.group(1)


def _from_winlogbeat(record: dict[str, Any], winlog: dict[str, Any], default_tz: str) -> Event:
    out: Event = {
        "EventID": _int(winlog.get("event_id")),
        "Channel": winlog.get("channel"),
        "Computer": winlog.get("computer_name"),
        "Provider_Name": winlog.get("provider_name"),
        "EventRecordID": winlog.get("record_id"),
    }
    if isinstance(winlog.get("task"), str):
        out["Task"] = winlog["task"]
    data: Event = {}
    for section in ("event_data", "user_data"):
        fields = winlog.get(section)
        if isinstance(fields, dict):
            data.update(fields)
    overlay(out, data)
    if isinstance(record.get("@timestamp"), str):
        out[TIMESTAMP] = record["@timestamp"]
    if isinstance(record.get("message"), str):
        out["Message"] = record["message"]
    _finish(out, default_tz)
    return out


def parse_json_line(
    line: bytes | str, *, source: str = "", lineno: int | None = None, default_tz: str = "UTC"
) -> Event:
    """One JSON line → Event; malformed JSON or a non-object raises ParseError naming the line."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"malformed JSON: {exc}", source=source, line=lineno) from exc
    if not isinstance(data, dict):
        raise ParseError("a JSON event must be an object", source=source, line=lineno)
    return from_json_record(data, default_tz=default_tz)
