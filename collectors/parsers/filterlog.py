"""pfSense / OPNsense packet filter log (``filterlog``) → ``category: firewall``.

One CSV line per logged packet (pfSense docs, "Filter Log Format"; OPNsense writes the same):
rule number, sub-rule, anchor, tracker, interface, reason, action, direction, IP version, then for
IPv4: TOS, ECN, TTL, id, offset, flags, protocol id, protocol, length, source, destination; for IPv6:
class, flow label, hop limit, protocol, protocol id, length, source, destination; then for TCP and UDP
the source port, destination port and data length (TCP adds flags, sequence, ack, window, urgent, options).
"""

from __future__ import annotations

from soclite.collectors.parsers.base import LogLine
from soclite.errors import ParseError
from soclite.models import Event

_ACTIONS = frozenset({"pass", "block", "reject", "match", "scrub", "nat", "rdr", "binat"})


class FilterlogParser:
    name = "filterlog"

    def parse(self, line: LogLine) -> Event | None:
        if line.program != "filterlog":
            return None
        parts = line.message.strip().split(",")
        if len(parts) < 9 or parts[6] not in _ACTIONS or parts[8] not in ("4", "6"):
            raise ParseError(f"not a filterlog line: {line.message[:120]!r}")
        rule, _sub, _anchor, tracker, iface, reason, action, direction, version = parts[:9]
        rest = parts[9:]
        try:
            if version == "4":
                proto, src, dst = rest[7].lower(), rest[9], rest[10]
                ports = rest[11:]
            else:
                proto, src, dst = rest[3].lower(), rest[6], rest[7]
                ports = rest[8:]
        except IndexError as exc:
            raise ParseError(f"filterlog line too short for IPv{version}: {line.message[:120]!r}") from exc
        verdict = "allow" if action == "pass" else "deny" if action in ("block", "reject") else action
        event: Event = {
            "logsource.product": "pfsense", "logsource.category": "firewall", "event.category": "network",
            # ``action`` keeps pf's word (pass/block/reject); ``blocked`` is Sigma's vendor-neutral flag.
            "event.action": verdict, "action": action, "blocked": "true" if verdict == "deny" else "false",
            "filterlog.reason": reason,
            "rule.id": rule, "filterlog.tracker": tracker, "observer.ingress.interface.name": iface,
            "network.direction": "inbound" if direction == "in" else "outbound", "network.transport": proto,
            "network.type": f"ipv{version}", "src_ip": src, "dst_ip": dst, "source.ip": src, "destination.ip": dst,
        }  # fmt: skip
        if proto in ("tcp", "udp") and len(ports) >= 2 and ports[0].isdigit() and ports[1].isdigit():
            sport, dport = int(ports[0]), int(ports[1])
            event.update({"src_port": sport, "dst_port": dport, "source.port": sport, "destination.port": dport})
            if proto == "tcp" and len(ports) >= 4:
                event["tcp.flags"] = ports[3]
        return event
