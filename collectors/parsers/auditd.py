"""Linux auditd records, and the join of one audit event's records into a process_creation event.

auditd writes one event as several records (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE, EOE)
that share ``msg=audit(SECONDS.MILLIS:SERIAL)``. :class:`AuditdParser` turns one
record into an event carrying ``audit.id``; :func:`join_audit_events` merges a
batch's records of the same event, and an event with an EXECVE record becomes
``category: process_creation`` with Sysmon-style names (Image, CommandLine,
CurrentDirectory, ProcessId, ParentProcessId, User) beside the auditd names
(type, syscall, exe, comm, key, a0..aN) that ``service: auditd`` rules use.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from soclite.collectors.parsers.base import LogLine
from soclite.errors import ParseError
from soclite.models import Event

_HEADER = re.compile(r"^(?:node=(?P<node>\S+) )?type=(?P<type>\w+) msg=audit\((?P<sec>\d+)\.(?P<ms>\d+):(?P<serial>\d+)\): ?")
# key=value with value bare, "quoted", or 'quoted' (the enriched format separates the
# translated names with \x1d: ... UID="root" AUID="alice").
_FIELD = re.compile(r"""([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


def _decode(value: str) -> str:
    """auditd quotes clean strings and hex-encodes the ones with spaces or control characters."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if _HEX.match(value) and len(value) >= 2:
        try:
            return bytes.fromhex(value).decode("utf-8", "replace").replace("\x00", " ").strip()
        except ValueError:
            return value
    return value


class AuditdParser:
    name = "auditd"

    def parse(self, line: LogLine) -> Event | None:
        text = line.message
        if "msg=audit(" not in text:
            return None
        start = text.find("type=")
        if start < 0:
            return None
        match = _HEADER.match(text[start:]) or _HEADER.match(text)
        if match is None:
            return None
        body = text[start:][match.end():].replace("\x1d", " ")
        event: Event = {"logsource.product": "linux", "logsource.service": "auditd", "type": match["type"]}
        ts = datetime.fromtimestamp(int(match["sec"]) + int(match["ms"]) / 1000, UTC)
        event["@timestamp"] = ts
        event["audit.id"] = f"{match['sec']}.{match['ms']}:{match['serial']}"
        if match["node"]:
            event["host.name"] = match["node"]
        fields: dict[str, str] = {}
        # USER_* records nest their fields in msg='op=... res=success': flatten them.
        for key, value in _FIELD.findall(body.replace("msg='", "").rstrip("'")):
            fields[key] = value
        for key, value in fields.items():
            event[key] = _decode(value) if match["type"] in ("EXECVE", "PROCTITLE", "PATH", "CWD") or key in (
                "exe", "comm", "cwd", "name", "key", "proctitle", "acct", "exe",
            ) else value.strip('"')  # fmt: skip
        return event


def _records_to_event(records: list[Event]) -> Event:
    """Merge one audit event's records (already parsed) into one event."""
    merged: Event = {}
    types: list[str] = []
    argv: dict[int, str] = {}
    paths: list[str] = []
    proctitle: str | None = None
    for record in records:
        rtype = str(record.get("type", ""))
        types.append(rtype)
        for key, value in record.items():
            if rtype == "EXECVE" and re.fullmatch(r"a\d+", key):
                argv[int(key[1:])] = str(value)
                merged[key] = value
            elif rtype == "PATH" and key == "name":
                paths.append(str(value))
            elif rtype == "PROCTITLE" and key == "proctitle":
                proctitle = str(value)
            elif key not in merged or rtype == "SYSCALL":
                merged[key] = value
    merged["type"] = types[0]
    merged["audit.record_types"] = types
    if paths:
        merged["name"] = paths[0]
        merged["file.path"] = paths[0]
        merged["audit.paths"] = paths
    if "EXECVE" in types:
        merged["type"] = "EXECVE"
        merged["logsource.category"] = "process_creation"
        merged["event.category"] = "process"
        merged["event.action"] = "executed"
        command_line = " ".join(argv[i] for i in sorted(argv)) if argv else (proctitle or "")
        merged["CommandLine"] = command_line
        merged["process.command_line"] = command_line
        if "exe" in merged:
            merged["Image"] = merged["exe"]
            merged["process.executable"] = merged["exe"]
        if "cwd" in merged:
            merged["CurrentDirectory"] = merged["cwd"]
        if "pid" in merged:
            merged["ProcessId"] = merged["pid"]
            merged["process.pid"] = merged["pid"]
        if "ppid" in merged:
            merged["ParentProcessId"] = merged["ppid"]
        user = merged.get("UID") or merged.get("uid")
        if user is not None:
            merged["User"] = user
            merged["user.name"] = user
        if "AUID" in merged or "auid" in merged:
            merged["LogonId"] = merged.get("auid")
    return merged


def join_audit_events(items: list[Any]) -> list[Any]:
    """Merge the auditd events of a batch that share an ``audit.id``, in place of the first one.

    ``items`` holds events (dicts) and other things (ParseErrors); order is kept. A record of
    an audit event that the previous batch already flushed stays a separate event (auditd
    writes an event's records together, so agents and syslog relays rarely split them).
    """
    groups: dict[str, list[Event]] = {}
    for item in items:
        if isinstance(item, dict) and item.get("logsource.service") == "auditd" and "audit.id" in item:
            groups.setdefault(str(item["audit.id"]), []).append(item)
    if not any(len(group) > 1 or group[0].get("type") == "EXECVE" for group in groups.values()):
        return items
    out: list[Any] = []
    done: set[str] = set()
    for item in items:
        if isinstance(item, dict) and item.get("logsource.service") == "auditd" and "audit.id" in item:
            key = str(item["audit.id"])
            if key in done:
                continue
            done.add(key)
            group = groups[key]
            if len(group) == 1 and group[0].get("type") != "EXECVE":
                out.append(group[0])
                continue
            merged = _records_to_event(group)
            merged["event.original"] = "\n".join(str(r.get("event.original", "")) for r in group)
            out.append(merged)
        else:
            out.append(item)
    return out


__all__ = ["AuditdParser", "ParseError", "join_audit_events"]
