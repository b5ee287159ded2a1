"""Syslog framing: RFC 5424 and RFC 3164 headers (and the plain file formats rsyslog writes).

The framing layer only splits a line into header fields and the message; what the
message *means* is the parsers' job (:mod:`collectors.parsers`). Timestamps
without a zone (RFC 3164, traditional file format) are read in the configured
zone (default Asia/Ho_Chi_Minh) and RFC 3164's missing year is inferred from
the time of reception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from soclite.errors import ParseError

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3",
    "local4", "local5", "local6", "local7",
)  # fmt: skip
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
_MONTHS = {m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}
BOM = "\ufeff"

_PRI = re.compile(r"<(\d{1,3})>")
# RFC 3164 timestamp "Mmm dd hh:mm:ss" (day space-padded), optionally with a year or fractions (some relays add them).
_TS3164 = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) (?:(?P<year>\d{4}) )?"
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d{1,6}))? "
)
# RFC 3339 timestamp at the start of a line (RFC 5424, rsyslog's high-precision file format).
_TS3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?) ")
# "TAG[PID]: " / "TAG: " at the start of the message part.
_TAG = re.compile(r"(?P<tag>[^\s\[\]:]{1,64})(?:\[(?P<pid>[^\]\s]{1,32})\])?: ?")


@dataclass
class SyslogMessage:
    """One syslog line split into its header fields and its message text."""

    message: str
    timestamp: datetime | None = None
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    facility: int | None = None
    severity: int | None = None
    #: RFC 5424 structured data: SD-ID → {param: value}
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    #: "rfc5424", "rfc3164" or "text" (no header recognised)
    format: str = "text"


def parse_rfc3339(text: str, tz: ZoneInfo) -> datetime:
    """An RFC 3339 timestamp; without an offset it is read in ``tz``. Nanoseconds are cut to microseconds."""
    value = text.replace("Z", "+00:00")
    main, _, rest = value.partition(".")
    if rest:
        digits = re.match(r"\d+", rest)
        frac = digits.group(0) if digits else ""
        value = f"{main}.{frac[:6].ljust(6, '0')}{rest[len(frac):]}"
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ParseError(f"invalid RFC 3339 timestamp {text!r}") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.astimezone(UTC)


def infer_year(month: int, day: int, hms: tuple[int, int, int], micro: int, tz: ZoneInfo, received: datetime) -> datetime:
    """RFC 3164 has no year: take the receiver's year, or the previous one when that lands > 1 day in the future
    (a December line read in early January), or the next one for a January line read on 31 December."""
    local_now = received.astimezone(tz)
    for year in (local_now.year, local_now.year - 1, local_now.year + 1):
        try:
            ts = datetime(year, month, day, *hms, micro, tzinfo=tz)
        except ValueError:  # 29 February in a non-leap year
            continue
        if -timedelta(days=330) <= ts - local_now <= timedelta(days=1):
            return ts.astimezone(UTC)
    raise ParseError(f"invalid RFC 3164 date {month:02d}-{day:02d}")


def _split_pri(line: str) -> tuple[int | None, str]:
    if not line.startswith("<"):
        return None, line
    match = _PRI.match(line)
    if match is None:
        raise ParseError("malformed syslog PRI (expected <0-191>)")
    pri = int(match.group(1))
    if pri > 191 or (len(match.group(1)) > 1 and match.group(1).startswith("0")):
        raise ParseError(f"invalid syslog PRI <{match.group(1)}>")
    return pri, line[match.end():]


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _parse_sd(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """RFC 5424 STRUCTURED-DATA: "-" or one or more [SD-ID name="value" ...]; values escape \\" \\\\ \\]."""
    if text.startswith("-"):
        return {}, text[1:]
    result: dict[str, dict[str, str]] = {}
    i = 0
    n = len(text)
    while i < n and text[i] == "[":
        i += 1
        j = i
        while j < n and text[j] not in " ]":
            j += 1
        sd_id = text[i:j]
        if not sd_id:
            raise ParseError("RFC 5424: empty SD-ID")
        params: dict[str, str] = {}
        i = j
        while i < n and text[i] == " ":
            i += 1
            eq = text.find("=", i)
            if eq < 0 or eq + 1 >= n or text[eq + 1] != '"':
                raise ParseError(f"RFC 5424: malformed SD-PARAM in [{sd_id}]")
            name = text[i:eq]
            i = eq + 2
            value = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\]':
                    value.append(text[i + 1])
                    i += 2
                    continue
                value.append(text[i])
                i += 1
            if i >= n:
                raise ParseError(f"RFC 5424: unterminated SD-PARAM value in [{sd_id}]")
            i += 1
            params[name] = "".join(value)
        if i >= n or text[i] != "]":
            raise ParseError(f"RFC 5424: unterminated SD-ELEMENT [{sd_id}]")
        i += 1
        result[sd_id] = params
    if not result:
        raise ParseError("RFC 5424: STRUCTURED-DATA must be '-' or start with '['")
    return result, text[i:]


def _parse_5424(pri: int, rest: str, tz: ZoneInfo) -> SyslogMessage:
    # VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
    parts = rest.split(" ", 6)
    if len(parts) < 7:
        raise ParseError("RFC 5424: header has fewer than 7 fields")
    _version, ts_text, host, app, procid, msgid, tail = parts
    timestamp = None if ts_text == "-" else parse_rfc3339(ts_text, tz)
    sd, msg = _parse_sd(tail)
    if msg.startswith(" "):
        msg = msg[1:]
    # A MSG starting with the UTF-8 BOM is declared UTF-8; the BOM is not part of the text.
    msg = msg.removeprefix(BOM)
    return SyslogMessage(
        message=msg, timestamp=timestamp, hostname=_nil(host), app_name=_nil(app), procid=_nil(procid),
        msgid=_nil(msgid), facility=pri >> 3, severity=pri & 7, structured_data=sd, format="rfc5424",
    )  # fmt: skip


def _split_tag(msg: SyslogMessage, text: str) -> None:
    match = _TAG.match(text)
    if match is not None:
        msg.app_name = match.group("tag")
        msg.procid = match.group("pid")
        msg.message = text[match.end():]
    else:
        msg.message = text


def _parse_bsd(pri: int | None, rest: str, tz: ZoneInfo, received: datetime) -> SyslogMessage:
    msg = SyslogMessage(message=rest, format="rfc3164" if pri is not None else "text")
    if pri is not None:
        msg.facility, msg.severity = pri >> 3, pri & 7
    body = rest
    match = _TS3164.match(rest)
    if match is not None:
        hms = (int(match["h"]), int(match["m"]), int(match["s"]))
        micro = int(match["frac"].ljust(6, "0")) if match["frac"] else 0
        month, day = _MONTHS[match["mon"]], int(match["day"])
        if match["year"]:
            try:
                msg.timestamp = datetime(int(match["year"]), month, day, *hms, micro, tzinfo=tz).astimezone(UTC)
            except ValueError as exc:
                raise ParseError(f"invalid syslog date: {exc}") from exc
        else:
            msg.timestamp = infer_year(month, day, hms, micro, tz, received)
        body = rest[match.end():]
    else:
        m3339 = _TS3339.match(rest)
        if m3339 is None:
            # No timestamp: a bare message (e.g. `logger` to a local socket, or a non-syslog text line).
            if pri is not None:
                _split_tag(msg, rest)
            return msg
        msg.timestamp = parse_rfc3339(m3339.group(1), tz)
        body = rest[m3339.end():]
    # HOSTNAME is the next word unless that word is already the TAG ("sshd[1]:", "CRON:").
    word, sep, after = body.partition(" ")
    if sep and word and not word.endswith(":") and "[" not in word:
        msg.hostname = word
        body = after
    _split_tag(msg, body)
    return msg


def parse_syslog(line: str, *, tz: ZoneInfo, received: datetime) -> SyslogMessage:
    """Split one syslog line. A line without a header is returned as format "text" with the whole line as message.

    Raises ParseError for a malformed PRI or an RFC 5424 header that does not follow the grammar.
    """
    line = line.rstrip("\r\n").removeprefix(BOM)
    pri, rest = _split_pri(line)
    if pri is not None and rest.startswith("1 "):
        return _parse_5424(pri, rest, tz)
    return _parse_bsd(pri, rest, tz, received)


def facility_name(code: int) -> str:
    return FACILITIES[code] if 0 <= code < len(FACILITIES) else str(code)


def severity_name(code: int) -> str:
    return SEVERITIES[code] if 0 <= code < len(SEVERITIES) else str(code)
