"""The network sensor: packets (live with scapy, or a pcap file) → DNS, flow, HTTP and TLS-SNI events.

Field names follow what Sigma's network log sources use, beside ECS:

* ``category: dns`` — query, answer, record_type, dns.question.name, dns.answers.data;
* ``category: firewall`` (one event per TCP/UDP flow: 5-tuple, bytes, packets, duration) —
  src_ip, src_port, dst_ip, dst_port, source.*, destination.*, network.transport;
* ``category: proxy`` (clear-text HTTP requests, and TLS ClientHello SNI as the host) —
  c-uri, cs-host, c-useragent, cs-method, url.original, tls.client.server_name.

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

from soclite.errors import AuthError, ParseError
from soclite.models import Event, isoformat

log = logging.getLogger(__name__)

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")
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
            "logsource.category": "firewall", "logsource.product": "soclite-sensor",
            "event.category": "network", "event.action": "flow", "@timestamp": _ts(self.first),
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
        "logsource.category": "proxy", "logsource.product": "soclite-sensor", "event.category": "network",
        "event.action": "http_request", "cs-method": method, "http.request.method": method, "c-uri": url,
        "url.original": url, "c-uri-stem": stem, "c-uri-query": query, "cs-host": host, "url.domain": host,
        "c-useragent": headers.get("user-agent", ""), "user_agent.original": headers.get("user-agent", ""),
    }  # fmt: skip
    if "referer" in headers:
        event["cs-referrer"] = headers["referer"]
    return event


def _dns_events(dns: Any, src: str, dst: str, transport: str, ts: float) -> list[Event]:
    if dns.qd is None or dns.qdcount == 0:
        return []
    question = dns.qd[0] if hasattr(dns.qd, "__getitem__") else dns.qd
    name = question.qname.decode("utf-8", "replace").rstrip(".") if isinstance(question.qname, bytes) else str(question.qname).rstrip(".")
    record_type = _DNS_TYPES.get(int(question.qtype), str(question.qtype))
    event: Event = {
        "logsource.category": "dns", "logsource.product": "soclite-sensor", "event.category": "network",
        "@timestamp": _ts(ts), "query": name, "dns.question.name": name, "record_type": record_type,
        "dns.question.type": record_type, "source.ip": src, "destination.ip": dst, "network.transport": transport,
        "network.protocol": "dns",
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
    event.update({"event.action": "dns_answer", "dns.type": "answer", "dns.response_code": int(dns.rcode),
                  "answer": ";".join(answers), "dns.answers.data": answers})  # fmt: skip
    return [event]


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
        if dns is not None and 53 in (int(layer.sport), int(layer.dport), 5353):
            events += _dns_events(dns, str(ip.src), str(ip.dst), name, ts)
        elif name == "tcp" and payload:
            http = _http_request(payload)
            sni = None if http else tls_sni(payload)
            if http is not None:
                events.append(http)
            elif sni:
                events.append({"logsource.category": "proxy", "logsource.product": "soclite-sensor",
                               "event.category": "network", "event.action": "tls_client_hello",
                               "tls.client.server_name": sni, "cs-host": sni, "destination.domain": sni,
                               "network.protocol": "tls"})  # fmt: skip
            for event in events[-1:]:
                if event.get("logsource.category") == "proxy" and "source.ip" not in event:
                    event.update({"@timestamp": _ts(ts), "source.ip": str(ip.src), "source.port": int(layer.sport),
                                  "destination.ip": str(ip.dst), "destination.port": int(layer.dport),
                                  "network.transport": "tcp"})  # fmt: skip
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
