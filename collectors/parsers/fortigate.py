"""FortiGate (FortiOS) syslog: ``key=value`` pairs → ``product: fortigate``, ``service: <type>``.

FortiOS writes every log as space-separated ``key=value`` pairs, a value bare or in double quotes
(FortiOS Log Message Reference, "Log message fields"): ``date=`` ``time=`` ``devname=`` ``devid=``
``logid=`` ``type=`` ``subtype=`` ``level=`` and the fields of the type. The default syslog format has
no tag (the message begins with ``date=``); ``set format rfc5424`` puts an RFC 5424 header first.

The Sigma service is the log ``type`` (SigmaHQ's FortiGate rules use ``service: event`` with the native
``action``/``cfgpath`` fields), so the native names are kept as they are. Traffic logs are also
``category: firewall`` with Sigma's firewall names (src_ip, dst_ip, dst_port, action) beside ECS.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta, timezone

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event

# a value: "quoted, with \" escapes" or bare up to the next space
_PAIR = re.compile(r'([A-Za-z_][\w-]*)=("(?:[^"\\]|\\.)*"|\S*)')
_TZ = re.compile(r"^([+-])(\d\d):?(\d\d)$")
_INT_FIELDS = frozenset({"srcport", "dstport", "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "duration", "policyid", "proto"})


def kv_pairs(text: str) -> dict[str, str]:
    """The ``key=value`` pairs of a FortiOS line, quotes removed and ``\\"`` unescaped."""
    out: dict[str, str] = {}
    for key, value in _PAIR.findall(text):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[key] = value
    return out


def _timestamp(fields: dict[str, str]) -> datetime | None:
    """``date`` + ``time`` in the device's zone (``tz="+0700"`` when the device sends it, else the site's)."""
    date, clock = fields.get("date"), fields.get("time")
    if not date or not clock:
        return None
    try:
        stamp = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    match = _TZ.match(fields.get("tz", ""))
    if match:
        offset = timedelta(hours=int(match[2]), minutes=int(match[3]))
        stamp = stamp.replace(tzinfo=timezone(offset if match[1] == "+" else -offset))
    return stamp  # zone-less: normalize reads it in the site's zone


class FortigateParser:
    name = "fortigate"

    def parse(self, line: LogLine) -> Event | None:
        text = line.message
        if "devid=" not in text or "logid=" not in text or "type=" not in text:
            return None
        fields = kv_pairs(text)
        log_type = fields.get("type")
        if not log_type or not fields.get("devid"):
            return None
        event: Event = {"logsource.product": "fortigate", "logsource.service": log_type}
        for key, value in fields.items():
            if key in _INT_FIELDS and value.isdigit():
                event[key] = int(value)
            else:
                event[key] = value
        stamp = _timestamp(fields)
        if stamp is not None:
            event["@timestamp"] = stamp
        if fields.get("devname"):
            event["host.name"] = fields["devname"]
        event["observer.vendor"] = "Fortinet"
        event["observer.serial_number"] = fields["devid"]
        event["event.code"] = fields.get("logid", "")
        event["event.action"] = fields.get("action") or fields.get("logdesc") or log_type
        _ecs(event, fields)
        if log_type == "traffic":
            event["logsource.category"] = "firewall"
            event["event.category"] = "network"
            for sigma, native in (("src_ip", "srcip"), ("dst_ip", "dstip"), ("src_port", "srcport"), ("dst_port", "dstport")):
                if native in event:
                    event[sigma] = event[native]
        elif log_type == "utm":
            event["event.category"] = "intrusion_detection" if fields.get("subtype") == "ips" else "network"
        elif fields.get("subtype") == "vpn":
            event["event.category"] = "authentication" if "tunnel" not in fields.get("action", "") else "network"
        elif fields.get("cfgpath"):
            event["event.category"] = "configuration"
        return event


def _ecs(event: Event, fields: dict[str, str]) -> None:
    for ecs, native in (("source.ip", "srcip"), ("destination.ip", "dstip"), ("user.name", "user"),
                        ("rule.id", "policyid"), ("rule.name", "attack")):  # fmt: skip
        if fields.get(native):
            event[ecs] = fields[native]
    for ecs, native in (("source.port", "srcport"), ("destination.port", "dstport")):
        with contextlib.suppress(ValueError):
            if native in fields:
                event[ecs] = int(fields[native])
    if "remip" in fields and "source.ip" not in event:  # VPN events: the remote peer
        event["source.ip"] = fields["remip"]
