"""Turn one ingest record into an :data:`~soclite.models.Event`.

A record is one of:

* a raw line ``{"message": "<syslog line>", "log.file.path": ..., "host.name": ...}``: the
  syslog framing is split (:mod:`collectors.syslog`), then the parser registry
  (:mod:`collectors.parsers`) recognises the message;
* a journald record (``journalctl -o json``: MESSAGE, SYSLOG_IDENTIFIER, _HOSTNAME ...);
* a Windows record (NXLog flat JSON or Winlogbeat JSON): :mod:`collectors.windows`;
* an already normalized event (has ``@timestamp`` or ``logsource.*``).

Whatever the kind, the result carries event.id, @timestamp, host.name, logsource.*,
event.original and the soclite.* metadata; anything else raises ParseError (the caller
dead-letters the record with the reason).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from soclite.collectors.parsers import LogLine, parse_line
from soclite.collectors.parsers.antivirus import defender_fields
from soclite.collectors.parsers.auditd import join_audit_events
from soclite.collectors.syslog import facility_name, parse_syslog, severity_name
from soclite.errors import ParseError
from soclite.models import (
    AGENT_ID,
    EVENT_ID,
    HOST_NAME,
    INPUT,
    META_PREFIX,
    RAW,
    RECEIVED,
    TIMESTAMP,
    TRUNCATED,
    UNIT,
    Event,
    isoformat,
    new_id,
    parse_timestamp,
    system_field,
)

DEFAULT_MAX_BYTES = 65536
#: the event time the sender gave, when it was outside the skew bounds (see bound_time)
ORIGINAL_TIMESTAMP = "soclite.original_timestamp"
TIME_CLAMPED = "soclite.time_clamped"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
_LOGSOURCE_KEYS = ("logsource.product", "logsource.category", "logsource.service")


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParseError(f"unknown time zone {name!r}") from exc


def truncate(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes (never in the middle of a character)."""
    if len(text) * 4 <= max_bytes:
        return text, False
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True


def _is_windows(record: dict[str, Any]) -> bool:
    if "winlog" in record or isinstance(record.get("Event"), dict):
        return True
    return "EventID" in record and any(k in record for k in ("Channel", "SourceName", "ProviderName", "Provider_Name"))


def _windows(record: dict[str, Any], default_tz: str) -> Event:
    from soclite.collectors import windows

    try:
        # NXLog's EventTime is the Windows host's local time without a zone: read it in the site's zone.
        event: Event = dict(windows.from_json_record(record, default_tz=default_tz))
    except ParseError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ParseError(f"malformed Windows record: {exc}") from exc
    defender_fields(event)
    for key in [k for k in event if k.startswith(META_PREFIX)]:  # a record cannot set its own metadata
        del event[key]
    return event


def _line_event(line: LogLine, tz: ZoneInfo) -> Event:
    _name, fields = parse_line(line)
    event: Event = {"message": line.message}
    if line.program:
        event["process.name"] = line.program
    event.update(fields)
    if line.hostname and HOST_NAME not in event:
        event[HOST_NAME] = line.hostname
    if line.timestamp is not None and TIMESTAMP not in event:
        event[TIMESTAMP] = line.timestamp
    stamp = event.get(TIMESTAMP)
    if isinstance(stamp, datetime) and stamp.tzinfo is None:  # a parser's zone-less local time
        event[TIMESTAMP] = stamp.replace(tzinfo=tz)
    if line.path:
        event["log.file.path"] = line.path
    return event


def _raw(record: dict[str, Any], tz: ZoneInfo, received: datetime, max_bytes: int) -> Event:
    message = record["message"]
    if not isinstance(message, str):
        raise ParseError("'message' must be a string")
    message, truncated = truncate(message, max_bytes)
    if not message.strip():
        raise ParseError("empty message")
    if "\x00" in message:
        raise ParseError("message contains NUL bytes")
    path = record.get("log.file.path")
    syslog = parse_syslog(message, tz=tz, received=received)
    # rsyslog relays keep the space after "TAG:" in MSG: parsers see the text without it.
    line = LogLine(
        message=syslog.message.lstrip(), program=syslog.app_name.lower() if syslog.app_name else None,
        hostname=syslog.hostname, timestamp=syslog.timestamp, path=str(path) if path else None,
    )  # fmt: skip
    event = _line_event(line, tz)
    if syslog.facility is not None and syslog.severity is not None:
        event["log.syslog.facility.code"] = syslog.facility
        event["log.syslog.facility.name"] = facility_name(syslog.facility)
        event["log.syslog.severity.code"] = syslog.severity
        event["log.syslog.severity.name"] = severity_name(syslog.severity)
    if syslog.procid:
        event["process.pid"] = syslog.procid
    if syslog.msgid:
        event["log.syslog.msgid"] = syslog.msgid
    for sd_id, params in syslog.structured_data.items():
        for key, value in params.items():
            event[f"syslog.sd.{sd_id}.{key}"] = value
    event["log.syslog.format"] = syslog.format
    event[RAW] = message
    if truncated:
        event[TRUNCATED] = True
    for key, value in record.items():
        if key != "message" and key not in event and not key.startswith(META_PREFIX):
            event[key] = value
    return event


def _journald(record: dict[str, Any], tz: ZoneInfo, received: datetime, max_bytes: int) -> Event:
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journald exports non-UTF-8 messages as a byte array
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in message):
            raise ParseError("journald MESSAGE byte array holds values that are not bytes")
        message = bytes(message).decode("utf-8", "replace")
    if not isinstance(message, str):
        raise ParseError("journald record without a text MESSAGE")
    message, truncated = truncate(message, max_bytes)
    ts: datetime | None = None
    if "__REALTIME_TIMESTAMP" in record:
        try:
            ts = datetime.fromtimestamp(int(record["__REALTIME_TIMESTAMP"]) / 1_000_000, UTC)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ParseError(f"bad __REALTIME_TIMESTAMP: {exc}") from exc
    program = record.get("SYSLOG_IDENTIFIER") or record.get("_COMM")
    hostname = record.get("_HOSTNAME")
    line = LogLine(message=message, program=str(program).lower() if program else None,
                   hostname=str(hostname) if hostname else None, timestamp=ts)  # fmt: skip
    event = _line_event(line, tz)
    if record.get("_PID"):
        event["process.pid"] = str(record["_PID"])
    if record.get("_SYSTEMD_UNIT"):
        event["systemd.unit"] = record["_SYSTEMD_UNIT"]
    event[RAW] = message
    if truncated:
        event[TRUNCATED] = True
    return event


def _normalized(record: dict[str, Any], max_bytes: int) -> Event:
    event: Event = {k: v for k, v in record.items() if not k.startswith(META_PREFIX)}
    original = event.get(RAW)
    if isinstance(original, str):
        event[RAW], truncated = truncate(original, max_bytes)
        if truncated:
            event[TRUNCATED] = True
    return event


def _timestamp(value: Any, received: datetime) -> str:
    if value is None:
        return isoformat(received)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return isoformat(datetime.fromtimestamp(float(value), UTC))
        except (OverflowError, OSError, ValueError) as exc:
            raise ParseError(f"@timestamp out of range: {value!r}") from exc
    if isinstance(value, str):
        try:
            return isoformat(parse_timestamp(value))
        except ValueError as exc:
            raise ParseError(f"invalid @timestamp {value!r}") from exc
    raise ParseError(f"invalid @timestamp {value!r}")


def normalize(
    record: Any,
    *,
    received: datetime,
    input: str,
    unit: str | None,
    agent_id: str | None,
    default_tz: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Event:
    """Normalize one record (see the module docstring). Raises ParseError with the reason."""
    if not isinstance(record, dict):
        raise ParseError(f"a record must be a JSON object, not {type(record).__name__}")
    tz = zone(default_tz)
    if _is_windows(record):
        event = _windows(record, default_tz)
        if RAW not in event:
            text = orjson.dumps(record, default=str).decode("utf-8")
            event[RAW], truncated = truncate(text, max_bytes)
            if truncated:
                event[TRUNCATED] = True
    elif "MESSAGE" in record and ("__REALTIME_TIMESTAMP" in record or "_HOSTNAME" in record):
        event = _journald(record, tz, received, max_bytes)
    elif "message" in record and not any(k in record for k in _LOGSOURCE_KEYS):
        event = _raw(record, tz, received, max_bytes)
    elif TIMESTAMP in record or any(k in record for k in _LOGSOURCE_KEYS):
        event = _normalized(record, max_bytes)
    else:
        raise ParseError("unrecognised record: expected 'message', a Windows record or a normalized event")
    return finish(event, received=received, input=input, unit=unit, agent_id=agent_id, client_id=record.get(EVENT_ID))


@lru_cache(maxsize=8)
def _received_iso(received: datetime) -> str:
    """A batch shares one reception time: format it once."""
    return isoformat(received)


def finish(
    event: Event, *, received: datetime, input: str, unit: str | None, agent_id: str | None, client_id: Any = None
) -> Event:
    """Set the ids, the timestamp and the soclite.* metadata.

    The record's own soclite.* keys were already dropped by the reader of each kind: only this
    function (and truncation) sets them.
    """
    event[EVENT_ID] = client_id if isinstance(client_id, str) and _CLIENT_ID.match(client_id) else new_id()
    event[TIMESTAMP] = _timestamp(event.get(TIMESTAMP), received)
    if not event.get(HOST_NAME) and system_field(event, "Computer"):
        event[HOST_NAME] = system_field(event, "Computer")
    event[RECEIVED] = _received_iso(received)
    event[INPUT] = input
    if unit is not None:
        event[UNIT] = unit
    if agent_id is not None:
        event[AGENT_ID] = agent_id
    return event


def normalize_batch(
    records: Iterable[Any],
    *,
    received: datetime,
    input: str,
    unit: str | None,
    agent_id: str | None,
    default_tz: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_future_skew_seconds: float | None = None,
    max_past_skew_days: float | None = None,
) -> list[Event | ParseError]:
    """Normalize a batch; the auditd records of one audit event are joined (see collectors.parsers.auditd).

    The result has one entry per event or per rejected record, in order: a ParseError in place of a
    record that could not be normalized. With the skew bounds (live inputs; not hunting, where old
    files are the point) an event time outside them is replaced by ``received`` (:func:`bound_time`).
    """
    out: list[Any] = []
    for record in records:
        try:
            out.append(normalize(record, received=received, input=input, unit=unit, agent_id=agent_id,
                                 default_tz=default_tz, max_bytes=max_bytes))  # fmt: skip
        except ParseError as exc:
            exc.record = record  # type: ignore[attr-defined]
            out.append(exc)
    # The merged event keeps the metadata (and event.id) of the audit event's first record.
    joined: list[Event | ParseError] = join_audit_events(out)
    if max_future_skew_seconds is not None or max_past_skew_days is not None:
        bound_time(
            (e for e in joined if not isinstance(e, ParseError)), received,
            max_future_skew_seconds, max_past_skew_days,
        )  # fmt: skip
    return joined


def bound_time(
    events: Iterable[Event], received: datetime, future_seconds: float | None, past_days: float | None
) -> int:
    """Replace event times too far from ``received`` by it; return how many were replaced.

    A sender's clock (or a forged @timestamp) decides where an alert sorts and, before this, its SLA:
    2099 pinned alerts on top of the queue, 1971 made them look handled late. The sender's value is kept
    in ``soclite.original_timestamp`` and ``soclite.time_clamped`` marks the event.
    Stored timestamps are one fixed-width ISO form (:func:`isoformat`), so bounds compare as strings.
    """
    high = isoformat(received + timedelta(seconds=future_seconds)) if future_seconds is not None else None
    low = isoformat(received - timedelta(days=past_days)) if past_days is not None else None
    now = isoformat(received)
    replaced = 0
    for event in events:
        stamp = event.get(TIMESTAMP)
        if not isinstance(stamp, str):
            continue
        if (high is not None and stamp > high) or (low is not None and stamp < low):
            event[ORIGINAL_TIMESTAMP] = stamp
            event[TIME_CLAMPED] = True
            event[TIMESTAMP] = now
            replaced += 1
    return replaced
