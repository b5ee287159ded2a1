"""DNS query logs: BIND's query log and dnsmasq's log-queries → ``category: dns`` (query, answer, record_type)."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event

# 23-Nov-2026 17:00:00.123 queries: info: client @0x7f3c 192.168.1.5#53627 (example.com): query: example.com IN A +E(0)K (192.168.1.1)
_BIND = re.compile(
    r"client (?:@\S+ )?(?P<ip>[0-9A-Fa-f:.]+)#(?P<port>\d+)(?: \([^)]*\))?: (?:view \S+: )?query: "
    r"(?P<name>\S+) (?P<cls>\S+) (?P<type>\S+) (?P<flags>\S+)(?: \((?P<server>[^)]*)\))?"
)
_BIND_TIME = re.compile(r"^(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d(?:\.\d{1,6})?) ")
_DNSMASQ_Q = re.compile(r"^query\[(?P<type>[A-Za-z0-9]+)\] (?P<name>\S+) from (?P<ip>[0-9A-Fa-f:.]+)")
_DNSMASQ_A = re.compile(r"^(?P<kind>reply|cached|config|/etc/hosts is) (?P<name>\S+) is (?P<answer>\S+)")


def _dns(name: str, record_type: str | None) -> Event:
    event: Event = {
        "logsource.category": "dns",
        "event.category": "network",
        "query": name.rstrip("."),
        "dns.question.name": name.rstrip("."),
    }
    if record_type:
        event["record_type"] = record_type
        event["dns.question.type"] = record_type
    return event


class DnsParser:
    name = "dns"

    def parse(self, line: LogLine) -> Event | None:
        text = line.message
        if line.program == "dnsmasq" or (line.path and "dnsmasq" in line.path):
            match = _DNSMASQ_Q.match(text)
            if match is not None:
                event = _dns(match["name"], match["type"])
                event["source.ip"] = match["ip"]
                event["logsource.product"] = "dnsmasq"
                event["event.action"] = "query"
                return event
            answer = _DNSMASQ_A.match(text)
            if answer is not None:
                event = _dns(answer["name"], None)
                event["answer"] = answer["answer"]
                event["dns.answers.data"] = answer["answer"]
                event["logsource.product"] = "dnsmasq"
                event["event.action"] = "answer"
                return event
            return None
        if "query: " not in text:
            return None
        match = _BIND.search(text)
        if match is None:
            return None
        event = _dns(match["name"], match["type"])
        event["source.ip"] = match["ip"]
        event["source.port"] = int(match["port"])
        event["logsource.product"] = "bind"
        event["event.action"] = "query"
        event["dns.flags"] = match["flags"]
        stamp = _BIND_TIME.match(text)
        if stamp is not None:
            fmt = "%d-%b-%Y %H:%M:%S.%f" if "." in stamp.group(1) else "%d-%b-%Y %H:%M:%S"
            # BIND writes local time without a zone: normalize reads it in the configured zone.
            with contextlib.suppress(ValueError):
                event["@timestamp"] = datetime.strptime(stamp.group(1), fmt)
        if match["server"]:
            event["destination.ip"] = match["server"]
        return event
