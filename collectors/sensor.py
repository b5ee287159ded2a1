"""The network sensor: packets (live with scapy, or a pcap file) → DNS, flow, HTTP, TLS and x509 events.

Each event is shaped as the Zeek log of its kind (``product: zeek`` with the Zeek service, so
SigmaHQ's Zeek rules route to it) and keeps the generic Sigma category too (so ``category: dns``,
``firewall`` and ``proxy`` rules still see it); field names are Zeek's, Sigma's generic ones and ECS:

* ``service: dns, category: dns`` — Zeek dns.log (query, qtype_name, rcode_name, answers, Z, AA,
  TC, RD, RA, rejected, trans_id, id.orig_h ...) and query, answer, record_type, dns.*;
* ``service: conn, category: firewall`` (one event per TCP/UDP flow) — Zeek conn.log (id.*, proto,
  duration, orig_ip_bytes, resp_ip_bytes, orig_pkts, resp_pkts) and src_ip, dst_port, source.* ...;
* ``service: http, category: proxy`` (clear-text HTTP requests) — Zeek http.log (host, uri, method,
  user_agent, referrer) and c-uri, cs-host, c-useragent, cs-method, url.original;
* ``service: ssl, category: proxy`` (TLS ClientHello) — server_name, tls.client.server_name, cs-host;
* ``service: x509`` (each certificate a server sends in clear, TLS 1.2 and older) — Zeek x509.log
  (certificate.serial in upper-case hex, certificate.subject, certificate.issuer, validity, san.dns);
* ``service: rdp`` (an RDP client's X.224 Connection Request) — Zeek rdp.log's cookie, id.*;
* ``service: smb_files`` (SMB2 CREATE requests, named pipes included) — Zeek smb_files.log's path
  (the share, from the TREE_CONNECT request and its response's TreeId) and name.

* ``service: kerberos`` (KDC replies and errors, UDP/TCP 88) and ``service: dce_rpc`` (DCE/RPC
  requests over TCP): see :mod:`collectors.sensor_rpc`.

Not produced: DCE/RPC inside SMB named pipes; nothing is reassembled across TCP segments (a
certificate, SMB or RPC message split over segments is missed).

Flows are keyed by the 5-tuple in the direction of the first packet seen and emitted when idle
for ``idle_seconds``, after ``active_seconds``, or at the end of a pcap. Live capture needs
CAP_NET_RAW; its events are posted in batches to ``/api/v1/ingest`` (retried with the same
batch id, so a lost answer never duplicates).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soclite.collectors.sensor_rpc import dcerpc_events, kerberos_event
from soclite.errors import AuthError, ParseError
from soclite.models import Event, isoformat

log = logging.getLogger(__name__)

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")
_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_DNS_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS", 255: "ANY"}


def _ts(seconds: float) -> str:
    return isoformat(datetime.fromtimestamp(seconds, UTC))


@dataclass
class Flow:
    transport: str
    src: str
    sport: int
    dst: str
    dport: int
    first: float
    last: float
    packets_out: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    bytes_in: int = 0

    def event(self) -> Event:
        packets, size = self.packets_out + self.packets_in, self.bytes_out + self.bytes_in
        return {
            "logsource.category": "firewall", "logsource.product": "zeek", "logsource.service": "conn",
            "event.category": "network", "event.action": "flow", "@timestamp": _ts(self.first),
            "id.orig_h": self.src, "id.orig_p": self.sport, "id.resp_h": self.dst, "id.resp_p": self.dport,
            "proto": self.transport, "duration": round(self.last - self.first, 6),
            "orig_pkts": self.packets_out, "orig_ip_bytes": self.bytes_out,
            "resp_pkts": self.packets_in, "resp_ip_bytes": self.bytes_in,
            "event.start": _ts(self.first), "event.end": _ts(self.last),
            "event.duration": int((self.last - self.first) * 1e9), "network.transport": self.transport,
            "src_ip": self.src, "src_port": self.sport, "dst_ip": self.dst, "dst_port": self.dport,
            "source.ip": self.src, "source.port": self.sport, "destination.ip": self.dst, "destination.port": self.dport,
            "source.packets": self.packets_out, "source.bytes": self.bytes_out,
            "destination.packets": self.packets_in, "destination.bytes": self.bytes_in,
            "network.packets": packets, "network.bytes": size,
        }  # fmt: skip


@dataclass
class FlowTable:
    idle_seconds: float = 60.0
    active_seconds: float = 300.0
    flows: dict[tuple[str, str, int, str, int], Flow] = field(default_factory=dict)
    #: SMB2 share paths by (client, server, TreeId) and pending TREE_CONNECTs by (client, server, MessageId)
    smb_trees: dict[tuple[str, str, int], str] = field(default_factory=dict)
    smb_pending: dict[tuple[str, str, int], str] = field(default_factory=dict)
    #: Kerberos request kinds by (client, server, client port); DCE/RPC interfaces by (connection, context id)
    krb_requests: dict[Any, str] = field(default_factory=dict)
    rpc_contexts: dict[Any, str] = field(default_factory=dict)

    def remember(self, table: dict[Any, str], key: Any, value: str) -> None:
        table[key] = value
        if len(table) > MAX_SMB_STATE:  # bounded: the oldest entry goes
            del table[next(iter(table))]

    def add(self, transport: str, src: str, sport: int, dst: str, dport: int, size: int, ts: float) -> None:
        key = (transport, src, sport, dst, dport)
        flow = self.flows.get(key)
        if flow is not None:
            flow.packets_out += 1
            flow.bytes_out += size
            flow.last = max(flow.last, ts)
            return
        reverse = self.flows.get((transport, dst, dport, src, sport))
        if reverse is not None:
            reverse.packets_in += 1
            reverse.bytes_in += size
            reverse.last = max(reverse.last, ts)
            return
        self.flows[key] = Flow(transport, src, sport, dst, dport, ts, ts, 1, size)

    def expire(self, now: float) -> list[Event]:
        done = [k for k, f in self.flows.items() if now - f.last >= self.idle_seconds or now - f.first >= self.active_seconds]
        return [self.flows.pop(k).event() for k in done]

    def flush(self) -> list[Event]:
        events = [f.event() for f in self.flows.values()]
        self.flows.clear()
        return events


def tls_sni(payload: bytes) -> str | None:
    """The server_name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), or None."""
    try:
        if len(payload) < 43 or payload[0] != 0x16 or payload[5] != 0x01:
            return None
        i = 5 + 4 + 2 + 32  # record header, handshake header, client_version, random
        i += 1 + payload[i]  # session id
        i += 2 + int.from_bytes(payload[i : i + 2], "big")  # cipher suites
        i += 1 + payload[i]  # compression methods
        end = i + 2 + int.from_bytes(payload[i : i + 2], "big")
        i += 2
        while i + 4 <= min(end, len(payload)):
            ext_type = int.from_bytes(payload[i : i + 2], "big")
            ext_len = int.from_bytes(payload[i + 2 : i + 4], "big")
            if ext_type == 0:  # server_name: list length, name type (0 = host_name), name length, name
                j = i + 4 + 2
                if payload[j] == 0:
                    length = int.from_bytes(payload[j + 1 : j + 3], "big")
                    return payload[j + 3 : j + 3 + length].decode("ascii")
                return None
            i += 4 + ext_len
    except (IndexError, UnicodeDecodeError):
        return None
    return None


def tls_certificates(payload: bytes) -> list[bytes]:
    """The DER certificates of a TLS Certificate handshake message (RFC 5246 §7.4.2) in ``payload``.

    Only what one segment holds: records are walked while complete, and a Certificate message cut by
    the segment's end yields the certificates that are whole. TLS 1.3 encrypts them: nothing then.
    """
    out: list[bytes] = []
    i = 0
    while i + 5 <= len(payload) and payload[i] == 0x16 and payload[i + 1] == 0x03:
        length = int.from_bytes(payload[i + 3 : i + 5], "big")
        record = payload[i + 5 : i + 5 + length]
        j = 0
        while j + 4 <= len(record):
            msg_type, msg_len = record[j], int.from_bytes(record[j + 1 : j + 4], "big")
            if msg_type == 11:  # Certificate: 3-byte list length, then 3-byte length + DER per certificate
                k, end = j + 7, min(j + 7 + int.from_bytes(record[j + 4 : j + 7], "big"), len(record))
                while k + 3 <= end:
                    size = int.from_bytes(record[k : k + 3], "big")
                    if k + 3 + size > end:
                        break
                    out.append(record[k + 3 : k + 3 + size])
                    k += 3 + size
            j += 4 + msg_len
        i += 5 + length
    return out


MAX_SMB_STATE = 10_000
_SMB2 = b"\xfeSMB"


def smb2_events(payload: bytes, client: str, server: str, to_server: bool, flows: FlowTable) -> list[Event]:
    """Zeek smb_files-shaped events of SMB2 CREATE requests (MS-SMB2 2.2.13) in one TCP segment.

    The share path comes from TREE_CONNECT (2.2.9: PathOffset/PathLength, UTF-16LE) and the TreeId its
    response (2.2.10) assigns; state is per (client, server) and bounded (MAX_SMB_STATE).
    """
    out: list[Event] = []
    i = 0
    while i + 4 + 64 <= len(payload) and payload[i] == 0:  # NetBIOS session message: 0, 24-bit length
        length = int.from_bytes(payload[i + 1 : i + 4], "big")
        msg = payload[i + 4 : i + 4 + length]
        i += 4 + length
        while len(msg) >= 64 and msg[:4] == _SMB2:
            command = int.from_bytes(msg[12:14], "little")
            response = bool(int.from_bytes(msg[16:20], "little") & 1)
            next_command = int.from_bytes(msg[20:24], "little")
            message_id = int.from_bytes(msg[24:32], "little")
            tree_id = int.from_bytes(msg[36:40], "little")
            if command == 3 and not response and to_server and len(msg) >= 72:  # TREE_CONNECT request
                offset, size = int.from_bytes(msg[68:70], "little"), int.from_bytes(msg[70:72], "little")
                flows.remember(flows.smb_pending, (client, server, message_id), msg[offset : offset + size].decode("utf-16-le", "replace"))
            elif command == 3 and response and not to_server:
                path = flows.smb_pending.pop((client, server, message_id), None)
                if path is not None and int.from_bytes(msg[8:12], "little") == 0:  # STATUS_SUCCESS
                    flows.remember(flows.smb_trees, (client, server, tree_id), path)
            elif command == 5 and not response and to_server and len(msg) >= 64 + 56:  # CREATE request
                offset, size = int.from_bytes(msg[108:110], "little"), int.from_bytes(msg[110:112], "little")
                name = msg[offset : offset + size].decode("utf-16-le", "replace") if size else ""
                path = flows.smb_trees.get((client, server, tree_id), "")
                out.append({"logsource.product": "zeek", "logsource.service": "smb_files", "event.category": "file",
                            "event.action": "SMB::FILE_OPEN", "action": "SMB::FILE_OPEN", "path": path, "name": name,
                            "file.path": f"{path}\\{name}" if path else name, "file.name": name.rsplit("\\", 1)[-1],
                            "network.protocol": "smb"})  # fmt: skip
            if not next_command:
                break
            msg = msg[next_command:]
    return out


_RDP_PROTOCOLS = {0: "RDP", 1: "SSL", 2: "HYBRID", 8: "RDSTLS", 16: "HYBRID_EX"}


def rdp_connection_request(payload: bytes) -> Event | None:
    """A Zeek rdp.log-shaped event of an RDP client's X.224 Connection Request (MS-RDPBCGR 2.2.1.1)."""
    # TPKT (RFC 1006): version 3, reserved, 16-bit length; X.224 CR TPDU: length indicator, code 0xE0
    if len(payload) < 11 or int.from_bytes(payload[2:4], "big") != len(payload) or payload[5] & 0xF0 != 0xE0:
        return None
    body = payload[11:]
    event: Event = {"logsource.product": "zeek", "logsource.service": "rdp", "event.category": "network",
                    "event.action": "rdp_connection_request", "network.protocol": "rdp"}  # fmt: skip
    if body.startswith(b"Cookie: mstshash="):
        end = body.find(b"\r\n")
        if end < 0:
            return None
        event["cookie"] = body[len(b"Cookie: mstshash=") : end].decode("latin-1")
        body = body[end + 2 :]
    if len(body) >= 8 and body[0] == 0x01:  # RDP_NEG_REQ: requestedProtocols, a little-endian bit mask
        requested = int.from_bytes(body[4:8], "little")
        event["rdp.requested_protocols"] = [name for bit, name in _RDP_PROTOCOLS.items() if bit and requested & bit] or ["RDP"]
    return event


def x509_event(der: bytes) -> Event:
    """A Zeek x509.log-shaped event of one DER certificate (an unparsable one keeps its hash only)."""
    import hashlib

    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    event: Event = {"logsource.product": "zeek", "logsource.service": "x509", "event.category": "network",
                    "event.action": "tls_certificate", "network.protocol": "tls",
                    "fingerprint": hashlib.sha256(der).hexdigest(), "tls.server.hash.sha256": hashlib.sha256(der).hexdigest().upper()}  # fmt: skip
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return event
    serial = format(cert.serial_number, "X")
    event.update({
        "certificate.version": cert.version.value + 1, "certificate.serial": serial,
        "certificate.subject": cert.subject.rfc4514_string(), "certificate.issuer": cert.issuer.rfc4514_string(),
        "certificate.not_valid_before": isoformat(cert.not_valid_before_utc),
        "certificate.not_valid_after": isoformat(cert.not_valid_after_utc),
        "certificate.sig_alg": getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string), "tls.server.x509.serial_number": serial,
        "tls.server.x509.subject.distinguished_name": cert.subject.rfc4514_string(),
        "tls.server.x509.issuer.distinguished_name": cert.issuer.rfc4514_string(),
    })  # fmt: skip
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = san.get_values_for_type(x509.DNSName)  # type: ignore[attr-defined]
        if names:
            event["san.dns"] = names
    except (x509.ExtensionNotFound, ValueError):
        pass
    return event


def _http_request(payload: bytes) -> Event | None:
    if not payload.startswith(_HTTP_METHODS):
        return None
    head = payload.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    method, target, _version = parts
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    host = headers.get("host", "")
    url = target if target.startswith(("http://", "https://")) else f"http://{host}{target}"
    stem, _, query = target.partition("?")
    event: Event = {
        "logsource.category": "proxy", "logsource.product": "zeek", "logsource.service": "http",
        "event.category": "network", "event.action": "http_request", "method": method, "host": host,
        "uri": target, "user_agent": headers.get("user-agent", ""), "version": _version.removeprefix("HTTP/"), "cs-method": method, "http.request.method": method, "c-uri": url,
        "url.original": url, "c-uri-stem": stem, "c-uri-query": query, "cs-host": host, "url.domain": host,
        "c-useragent": headers.get("user-agent", ""), "user_agent.original": headers.get("user-agent", ""),
    }  # fmt: skip
    if "referer" in headers:
        event["cs-referrer"] = headers["referer"]
        event["referrer"] = headers["referer"]
    return event


def _dns_events(dns: Any, src: str, dst: str, transport: str, ts: float, ports: tuple[int, int]) -> list[Event]:
    if dns.qd is None or dns.qdcount == 0:
        return []
    question = dns.qd[0] if hasattr(dns.qd, "__getitem__") else dns.qd
    name = question.qname.decode("utf-8", "replace").rstrip(".") if isinstance(question.qname, bytes) else str(question.qname).rstrip(".")
    record_type = _DNS_TYPES.get(int(question.qtype), str(question.qtype))
    event: Event = {
        "logsource.category": "dns", "logsource.product": "zeek", "logsource.service": "dns",
        "event.category": "network", "@timestamp": _ts(ts), "qtype_name": record_type, "qtype": int(question.qtype),
        "qclass": int(question.qclass), "trans_id": int(dns.id), "proto": transport, "Z": int(dns.z),
        "AA": bool(dns.aa), "TC": bool(dns.tc), "RD": bool(dns.rd), "RA": bool(dns.ra), "query": name, "dns.question.name": name, "record_type": record_type,
        "dns.question.type": record_type, "source.ip": src, "destination.ip": dst, "network.transport": transport,
        "network.protocol": "dns", "source.port": ports[0], "destination.port": ports[1],
        # Zeek's originator is the client: the answer's destination
        "id.orig_h": src if dns.qr == 0 else dst, "id.orig_p": ports[0] if dns.qr == 0 else ports[1],
        "id.resp_h": dst if dns.qr == 0 else src, "id.resp_p": ports[1] if dns.qr == 0 else ports[0],
    }  # fmt: skip
    if dns.qr == 0:
        event["event.action"] = "dns_query"
        event["dns.type"] = "query"
        return [event]
    answers: list[str] = []
    for i in range(int(dns.ancount or 0)):
        try:
            rr = dns.an[i]
        except (IndexError, TypeError):
            break
        data = rr.rdata
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        elif isinstance(data, list):
            data = " ".join(d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data)
        answers.append(str(data).rstrip("."))
    rcode = int(dns.rcode)
    event.update({"event.action": "dns_answer", "dns.type": "answer", "dns.response_code": rcode,
                  "answer": ";".join(answers), "dns.answers.data": answers, "answers": answers,
                  "rcode": rcode, "rcode_name": _RCODES.get(rcode, str(rcode)),
                  "rejected": "true" if rcode == 5 else "false"})  # fmt: skip
    return [event]


def _addresses(ts: float, src: str, sport: int, dst: str, dport: int, transport: str) -> Event:
    return {"@timestamp": _ts(ts), "source.ip": src, "source.port": sport, "destination.ip": dst,
            "destination.port": dport, "network.transport": transport, "id.orig_h": src, "id.orig_p": sport,
            "id.resp_h": dst, "id.resp_p": dport}  # fmt: skip


def packet_events(packet: Any, flows: FlowTable) -> list[Event]:
    """Events produced by one packet (DNS, HTTP request, SNI); every TCP/UDP packet also feeds the flow table."""
    from scapy.layers.dns import DNS
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    ip = packet.getlayer(IP) or packet.getlayer(IPv6)
    if ip is None:
        return []
    ts = float(packet.time)
    events: list[Event] = []
    for proto, name in ((TCP, "tcp"), (UDP, "udp")):
        layer = packet.getlayer(proto)
        if layer is None:
            continue
        flows.add(name, str(ip.src), int(layer.sport), str(ip.dst), int(layer.dport), len(ip), ts)
        payload = bytes(layer.payload)
        dns = packet.getlayer(DNS)
        sport, dport = int(layer.sport), int(layer.dport)
        if dns is not None and 53 in (sport, dport, 5353):
            events += _dns_events(dns, str(ip.src), str(ip.dst), name, ts, (sport, dport))
        elif payload and 88 in (sport, dport):
            exchange = (str(ip.src), str(ip.dst), sport) if dport == 88 else (str(ip.dst), str(ip.src), dport)
            krb = kerberos_event(payload, name == "tcp", flows.krb_requests, exchange, flows.remember)
            if krb is not None:
                krb.update(_addresses(ts, str(ip.src), sport, str(ip.dst), dport, name))
                if dport != 88:  # a reply: Zeek's originator is the client
                    krb.update({"id.orig_h": str(ip.dst), "id.orig_p": dport, "id.resp_h": str(ip.src), "id.resp_p": sport})
                events.append(krb)
        elif name == "tcp" and payload:
            http = _http_request(payload)
            sni = None if http else tls_sni(payload)
            found: list[Event] = []
            if http is not None:
                found.append(http)
            elif sni:
                found.append({"logsource.category": "proxy", "logsource.product": "zeek", "logsource.service": "ssl",
                              "event.category": "network", "event.action": "tls_client_hello", "server_name": sni,
                              "tls.client.server_name": sni, "cs-host": sni, "destination.domain": sni,
                              "network.protocol": "tls"})  # fmt: skip
            elif payload[:1] == b"\x16":
                found += [x509_event(der) for der in tls_certificates(payload)]
            elif payload[:2] == b"\x03\x00" and (rdp := rdp_connection_request(payload)) is not None:
                found.append(rdp)
            elif payload[:2] == b"\x05\x00" and payload[2] in (0, 11, 14):  # DCE/RPC over TCP, client to server
                connection = (str(ip.src), sport, str(ip.dst), dport)
                found += dcerpc_events(payload, flows.rpc_contexts, connection, flows.remember)
            elif payload[4:8] == _SMB2 and 445 in (int(layer.sport), int(layer.dport)):
                to_server = int(layer.dport) == 445
                client, server = (str(ip.src), str(ip.dst)) if to_server else (str(ip.dst), str(ip.src))
                found += smb2_events(payload, client, server, to_server, flows)
            for event in found:
                event.update(_addresses(ts, str(ip.src), sport, str(ip.dst), dport, "tcp"))
                if event.get("logsource.service") == "x509":  # the server sent it: Zeek's originator is the client
                    event.update({"id.orig_h": str(ip.dst), "id.orig_p": int(layer.dport),
                                  "id.resp_h": str(ip.src), "id.resp_p": int(layer.sport)})  # fmt: skip
            events += found
        break
    return events


def pcap_events(path: str | Path, *, hostname: str | None = None) -> Iterator[Event]:
    """Every event of a pcap/pcapng file, flows last-seen-ordered at the end. Raises ParseError if unreadable."""
    # The link-layer types (Ethernet, raw IPv4/IPv6, Linux cooked) register when their layers are imported.
    import scapy.layers.dns
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2
    from scapy.error import Scapy_Exception
    from scapy.utils import PcapReader

    host = hostname or socket.gethostname()
    flows = FlowTable()
    try:
        reader = PcapReader(str(path))
    except (Scapy_Exception, OSError, EOFError, ValueError) as exc:
        raise ParseError(f"not a readable pcap file: {exc}", source=str(path)) from exc
    network = (scapy.layers.inet.IP, scapy.layers.inet6.IPv6, scapy.layers.l2.ARP)
    packets = decoded = 0
    with reader:
        last = 0.0
        while True:
            try:
                packet = reader.read_packet()
            except EOFError:
                break
            except (Scapy_Exception, ValueError, OSError) as exc:  # a truncated capture: keep what was read
                raise ParseError(f"pcap damaged after {last}: {exc}", source=str(path)) from exc
            packets += 1
            decoded += int(any(packet.haslayer(layer) for layer in network))
            last = float(packet.time)
            for event in packet_events(packet, flows) + flows.expire(last):
                event.setdefault("host.name", host)
                yield event
    if packets and not decoded:
        # A valid header over garbage: scapy reads every record as raw bytes and nothing comes out.
        # Silently importing "0 events" would hide it; the caller dead-letters the file with this reason.
        raise ParseError(
            f"none of the {packets} packet(s) decodes as IP, IPv6 or ARP (link type {getattr(reader, 'linktype', '?')}): "
            "not network traffic, or a damaged capture",
            source=str(path),
        )
    for event in flows.flush():
        event.setdefault("host.name", host)
        yield event


class LiveSensor:
    """Capture on an interface and post the events to the server in batches."""

    def __init__(self, iface: str, server: str, token: str, *, bpf: str | None = None, ca: Path | None = None,
                 batch_seconds: float = 2.0, max_batch: int = 2000) -> None:  # fmt: skip
        self.iface, self.server, self.token, self.bpf = iface, server.rstrip("/"), token, bpf
        self.ca, self.batch_seconds, self.max_batch = ca, batch_seconds, max_batch
        self.flows = FlowTable()
        self.pending: list[Event] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.hostname = socket.gethostname()
        self.sent = 0

    def _on_packet(self, packet: Any) -> None:
        try:
            events = packet_events(packet, self.flows)
        except Exception:  # scapy dissectors raise many things on hostile packets: never stop the capture
            log.debug("undecodable packet skipped", exc_info=True)
            return
        with self.lock:
            self.pending.extend(events)

    def _post(self, events: list[Event]) -> None:
        import httpx
        import orjson

        for event in events:
            event.setdefault("host.name", self.hostname)
        body = b"\n".join(orjson.dumps(e) for e in events)
        batch_id = uuid.uuid4().hex
        delay = 1.0
        verify: Any = str(self.ca) if self.ca else True
        while True:
            try:
                response = httpx.post(f"{self.server}/api/v1/ingest", content=body, timeout=30, verify=verify,
                                      headers={"Authorization": f"Bearer {self.token}", "X-Batch-Id": batch_id})  # fmt: skip
                if response.status_code == 200:
                    self.sent += len(events)
                    return
                if response.status_code in (401, 403):
                    raise AuthError(f"the server refused the sensor's token: {response.status_code}")
                log.warning("ingest answered %s, retrying in %.0fs", response.status_code, delay)
            except httpx.HTTPError as exc:
                log.warning("ingest failed (%s), retrying in %.0fs", exc, delay)
            if self.stopping.wait(delay) and delay > 8:
                return
            delay = min(delay * 2, 60)

    def run(self, duration: float | None = None) -> None:
        from scapy.sendrecv import AsyncSniffer

        sniffer = AsyncSniffer(iface=self.iface, filter=self.bpf, prn=self._on_packet, store=False)
        sniffer.start()
        started = time.monotonic()
        try:
            while not self.stopping.is_set():
                self.stopping.wait(self.batch_seconds)
                with self.lock:
                    batch = self.pending + self.flows.expire(time.time())
                    self.pending = []
                for i in range(0, len(batch), self.max_batch):
                    self._post(batch[i : i + self.max_batch])
                if duration is not None and time.monotonic() - started >= duration:
                    break
        finally:
            sniffer.stop()
            with self.lock:
                rest = self.pending + self.flows.flush()
                self.pending = []
            if rest:
                self._post(rest)
