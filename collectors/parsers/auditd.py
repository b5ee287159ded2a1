"""Linux auditd records, and the join of one audit event's records into a process_creation event.

auditd writes one event as several records (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE, EOE)
that share ``msg=audit(SECONDS.MILLIS:SERIAL)``. :class:`AuditdParser` turns one
record into an event carrying ``audit.id``; :func:`join_audit_events` merges a
batch's records of the same event, and an event with an EXECVE record becomes
``category: process_creation`` with Sysmon-style names (Image, CommandLine,
CurrentDirectory, ProcessId, ParentProcessId, User) beside the auditd names
(type, syscall, exe, comm, key, a0..aN) that ``service: auditd`` rules use.

Two more categories come from the same join, with the names SigmaHQ's Linux rules use:

* ``file_event`` — a syscall with a PATH record of ``nametype=CREATE`` (open with O_CREAT, creat,
  rename, link, mknod...): TargetFilename (made absolute with the CWD record), Image;
* ``network_connection`` — ``connect`` with a SOCKADDR record of an IPv4/IPv6 address:
  DestinationIp, DestinationPort, Image, Initiated ("true": auditd sees the caller's side).

They need audit rules that record those syscalls (e.g. ``-a always,exit -F arch=b64 -S connect``,
``-w /etc/cron.d -p wa``); without them auditd writes nothing to join.
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


#: syscall numbers by audit arch (linux/audit.h AUDIT_ARCH_*): the raw log has numbers, the enriched one names
_SYSCALLS: dict[str, dict[str, str]] = {
    "c000003e": {"42": "connect", "2": "open", "257": "openat", "85": "creat", "82": "rename", "264": "renameat",
                 "316": "renameat2", "86": "link", "265": "linkat", "88": "symlink", "266": "symlinkat"},  # x86_64
    "c00000b7": {"203": "connect", "56": "openat", "38": "renameat", "276": "renameat2", "37": "linkat",
                 "36": "symlinkat"},  # aarch64
}  # fmt: skip


def syscall_name(event: Event) -> str:
    """The syscall's name: the enriched format's SYSCALL, else the number looked up by arch."""
    named = event.get("SYSCALL")
    if isinstance(named, str) and named and not named.isdigit():
        return named
    number = str(event.get("syscall", ""))
    return _SYSCALLS.get(str(event.get("arch", "")).lower(), {}).get(number, number)


def sockaddr(hex_text: str) -> tuple[str, int] | None:
    """(address, port) of a SOCKADDR record's ``saddr`` (struct sockaddr, family in host order), or None."""
    import ipaddress

    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        return None
    if len(raw) < 8:
        return None
    family = int.from_bytes(raw[:2], "little")
    port = int.from_bytes(raw[2:4], "big")  # network order
    if family == 2:  # AF_INET: port, 4-byte address
        return str(ipaddress.IPv4Address(raw[4:8])), port
    if family == 10 and len(raw) >= 24:  # AF_INET6: port, flowinfo, 16-byte address
        return str(ipaddress.IPv6Address(raw[8:24])), port
    return None


def _file_or_network(merged: Event, records: list[Event]) -> None:
    """Make a joined non-EXECVE event a file_event or network_connection where its records say so."""
    name = syscall_name(merged)
    image = merged.get("exe")
    if name == "connect":
        for record in records:
            if record.get("type") == "SOCKADDR" and isinstance(record.get("saddr"), str):
                peer = sockaddr(str(record["saddr"]))
                if peer is None:
                    return  # AF_UNIX, netlink...: not a network connection
                merged.update({
                    "logsource.category": "network_connection", "event.category": "network",
                    "event.action": "connect", "DestinationIp": peer[0], "DestinationPort": peer[1],
                    "destination.ip": peer[0], "destination.port": peer[1], "Initiated": "true",
                })  # fmt: skip
                break
        else:
            return
    else:
        cwd = str(merged.get("cwd", ""))
        created = [str(r.get("name")) for r in records
                   if r.get("type") == "PATH" and str(r.get("nametype", "")).upper() == "CREATE" and r.get("name")]  # fmt: skip
        if not created:
            return
        target = created[-1]
        if not target.startswith("/") and cwd:
            target = f"{cwd.rstrip('/')}/{target}"
        merged.update({"logsource.category": "file_event", "event.category": "file", "event.action": "creation",
                       "TargetFilename": target, "file.path": target})  # fmt: skip
    merged["audit.syscall"] = name
    if image is not None:
        merged["Image"] = image
        merged["process.executable"] = image
    if "pid" in merged:
        merged["ProcessId"] = merged["pid"]
    user = merged.get("UID") or merged.get("uid")
    if user is not None:
        merged["User"] = user
        merged["user.name"] = user
    if "success" in merged:
        merged["event.outcome"] = "success" if merged["success"] == "yes" else "failure"


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
    elif "SYSCALL" in types:
        _file_or_network(merged, records)
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
