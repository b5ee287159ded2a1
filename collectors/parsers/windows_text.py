"""Windows DNS Server debug log and DHCP Server audit log: the two text logs those roles write.

* DNS Server "debug logging" (``%SystemRoot%\\System32\\dns\\dns.log``, packet lines): one line per
  packet — date, time, thread, ``PACKET``, packet id, UDP/TCP, Snd/Rcv, remote address, transaction id,
  ``R`` for a response, opcode, ``[flags rcode]``, question type and name in wire notation
  ``(7)example(3)com(0)`` → ``product: windows, category: dns`` with Sigma's ``query``/``record_type``.
* DHCP Server audit log (``%SystemRoot%\\System32\\dhcp\\DhcpSrvLog-<Day>.log``): CSV ``ID, Date,
  Time, Description, IP Address, Host Name, MAC Address, User Name, TransactionID, QResult, ...`` →
  ``product: windows, service: dhcp`` with ECS names (the audit ID is ``dhcp.id``, not an ``EventID``:
  it is not the event log's numbering).

Both write local time without a zone: normalize reads it in the site's zone.
"""

from __future__ import annotations

import re
from datetime import datetime

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event

_DNS = re.compile(
    r"^(?P<date>\d{1,2}/\d{1,2}/\d{4}) (?P<time>\d{1,2}:\d\d:\d\d)(?: (?P<ampm>AM|PM))? (?P<thread>[0-9A-F]+) PACKET\s+"
    r"(?P<packet>[0-9A-Fa-f]+) (?P<proto>UDP|TCP) (?P<dir>Snd|Rcv) (?P<ip>[0-9A-Fa-f:.]+)\s+(?P<xid>[0-9a-fA-F]{4}) "
    r"(?P<response>[R ]) (?P<opcode>[QNU?]) \[(?P<flags>[0-9a-fA-F]{4}) [A-Z ]*?\s*(?P<rcode>[A-Z]+)\]\s+"
    r"(?P<qtype>\S+)\s+(?P<qname>\S+)"
)
_LABEL = re.compile(r"\(\d+\)")
_DHCP = re.compile(r"^(?P<id>\d{2,5}),(?P<date>\d\d/\d\d/\d\d),(?P<time>\d\d:\d\d:\d\d),(?P<rest>.*)$")
_DHCP_ACTIONS = {
    "10": "lease_assigned", "11": "lease_renewed", "12": "lease_released", "13": "address_in_use",
    "14": "pool_exhausted", "15": "lease_denied", "16": "lease_deleted", "17": "lease_expired",
    "20": "bootp_assigned", "24": "cleanup_started", "30": "dns_update_request", "31": "dns_update_failed",
    "32": "dns_update_successful", "36": "packet_dropped",
}  # fmt: skip


def wire_name(name: str) -> str:
    """``(3)www(7)example(3)com(0)`` → ``www.example.com``."""
    return ".".join(part for part in _LABEL.split(name) if part)


def _local(date: str, clock: str, ampm: str | None, fmt: str) -> datetime | None:
    try:
        if ampm:
            return datetime.strptime(f"{date} {clock} {ampm}", f"{fmt} %I:%M:%S %p")
        return datetime.strptime(f"{date} {clock}", f"{fmt} %H:%M:%S")
    except ValueError:
        return None


class WindowsDnsDebugParser:
    name = "windows_dns_debug"

    def parse(self, line: LogLine) -> Event | None:
        if " PACKET " not in line.message:
            return None
        match = _DNS.match(line.message.strip())
        if match is None:
            return None
        name, qtype = wire_name(match["qname"]), match["qtype"]
        response = match["response"] == "R"
        event: Event = {
            "logsource.product": "windows", "logsource.category": "dns", "event.category": "network",
            "event.action": "dns_answer" if response else "dns_query", "query": name, "dns.question.name": name,
            "record_type": qtype, "dns.question.type": qtype, "dns.id": match["xid"], "network.transport": match["proto"].lower(),
            "dns.response_code": match["rcode"], "dns.opcode": match["opcode"], "network.direction": "inbound" if match["dir"] == "Rcv" else "outbound",
        }  # fmt: skip
        # Rcv: the remote address sent this packet (a client's query); Snd: it is where the packet went.
        event["source.ip" if match["dir"] == "Rcv" else "destination.ip"] = match["ip"]
        stamp = _local(match["date"], match["time"], match["ampm"], "%m/%d/%Y")
        if stamp is not None:
            event["@timestamp"] = stamp
        return event


class WindowsDhcpAuditParser:
    name = "windows_dhcp_audit"

    def parse(self, line: LogLine) -> Event | None:
        if line.path is not None and "dhcpsrvlog" not in line.path.lower() and "dhcpv6srvlog" not in line.path.lower():
            return None
        match = _DHCP.match(line.message.strip())
        if match is None:
            return None
        rest = match["rest"].split(",")
        if len(rest) < 4:
            return None
        description, ip, host, mac = (field.strip() for field in rest[:4])
        event: Event = {
            "logsource.product": "windows", "logsource.service": "dhcp", "event.category": "network",
            "event.action": _DHCP_ACTIONS.get(match["id"], description.lower().replace(" ", "_") or "dhcp"),
            "dhcp.id": int(match["id"]), "dhcp.description": description,
        }  # fmt: skip
        if ip:
            event["client.ip"] = ip
        if host:
            event["client.domain"] = host
        if mac:
            event["client.mac"] = "-".join(mac[i : i + 2] for i in range(0, len(mac), 2)).upper() if len(mac) == 12 else mac
        if len(rest) > 4 and rest[4].strip():
            event["user.name"] = rest[4].strip()
        stamp = _local(match["date"], match["time"], None, "%m/%d/%y")
        if stamp is not None:
            event["@timestamp"] = stamp
        return event
