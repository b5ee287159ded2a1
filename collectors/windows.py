"""Windows events (EVTX, NXLog JSON, Winlogbeat JSON) → the flat soclite Event.

SigmaHQ rules name Windows fields as the XML does (``EventID``, ``Channel``,
``Image``, ``CommandLine`` ...), so the flat event keeps those names: the
``System`` block's fields and the ``EventData``/``UserData`` fields all end up
at the top level. EVTX files are read with the ``evtx`` package (Rust parser,
JSON records).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from soclite.errors import ParseError
from soclite.models import HOST_NAME, TIMESTAMP, Event, isoformat, parse_timestamp


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
    for section in ("EventData", "UserData"):
        if section in ev_body:
            _flatten_data(ev_body[section], out)
    _finish(out)
    return out


def _finish(out: Event, default_tz: str = "UTC") -> None:
    if "Computer" in out and HOST_NAME not in out and out["Computer"]:
        out[HOST_NAME] = str(out["Computer"])
    if TIMESTAMP not in out:
        stamp = event_timestamp(out, default_tz)
        if stamp is not None:
            out[TIMESTAMP] = stamp


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
        (_parse_local(out.get("TimeCreated")), UTC),
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


def from_json_record(record: dict[str, Any], *, copy: bool = True, default_tz: str = "UTC") -> Event:
    """NXLog flat JSON or Winlogbeat JSON (``winlog.*``) → the flat Event shape of :func:`iter_evtx`.

    ``copy=False`` reuses an NXLog record as the event (for a record just parsed and not kept).
    ``default_tz`` is the zone of Windows hosts' local times (NXLog ``EventTime`` has none):
    callers pass the site's zone (settings.timezone); "UTC" keeps older callers' behaviour.
    A record's own ``@timestamp`` (Logstash/Winlogbeat, zoned) always wins."""
    if "Event" in record and isinstance(record["Event"], dict) and "System" in record["Event"]:
        return flatten_xml_json(record)
    winlog = record.get("winlog")
    if isinstance(winlog, dict):
        return _from_winlogbeat(record, winlog, default_tz)
    out: Event = dict(record) if copy else record
    for src, dst in NXLOG_RENAMES.items():
        if src in out and dst not in out:
            out[dst] = out[src]
    if "EventID" in out and not isinstance(out["EventID"], int):
        out["EventID"] = _int(out["EventID"])
    _finish(out, default_tz)
    return out


def _from_winlogbeat(record: dict[str, Any], winlog: dict[str, Any], default_tz: str) -> Event:
    out: Event = {}
    for section in ("event_data", "user_data"):
        data = winlog.get(section)
        if isinstance(data, dict):
            for key, value in data.items():
                out[key] = value
    out["EventID"] = _int(winlog.get("event_id"))
    out["Channel"] = winlog.get("channel")
    out["Computer"] = winlog.get("computer_name")
    out["Provider_Name"] = winlog.get("provider_name")
    out["EventRecordID"] = winlog.get("record_id")
    if isinstance(winlog.get("task"), str):
        out["Task"] = winlog["task"]
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
