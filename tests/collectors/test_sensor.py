"""The network sensor on pcaps built with scapy: DNS, flows, HTTP, TLS SNI; and live capture on loopback."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from soclite.collectors.sensor import LiveSensor, pcap_events, tls_sni
from soclite.errors import ParseError
from soclite.runtime import Runtime


def client_hello(sni: str) -> bytes:
    name = sni.encode()
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    ext = struct.pack("!HH", 0, len(server_name)) + server_name
    body = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!H", 2) + b"\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(ext)) + ext
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


HTTP_REQUEST = b"GET /shell.php?cmd=id HTTP/1.1\r\nHost: web.example\r\nUser-Agent: curl/8.5.0\r\n\r\n"


def build_pcap(path: Path) -> None:
    t0 = 1732358400.0
    packets = []

    def at(pkt, t):  # type: ignore[no-untyped-def]
        pkt.time = t0 + t
        return pkt

    packets.append(at(IP(src="10.0.0.5", dst="10.0.0.1") / UDP(sport=40000, dport=53)
                      / DNS(id=7, rd=1, qd=DNSQR(qname="evil.example.", qtype="A")), 0.0))
    packets.append(at(IP(src="10.0.0.1", dst="10.0.0.5") / UDP(sport=53, dport=40000)
                      / DNS(id=7, qr=1, qd=DNSQR(qname="evil.example.", qtype="A"),
                            an=DNSRR(rrname="evil.example.", type="A", rdata="203.0.113.66")), 0.01))
    http = HTTP_REQUEST
    packets.append(at(IP(src="10.0.0.5", dst="198.51.100.80") / TCP(sport=50000, dport=80, flags="S"), 1.0))
    packets.append(at(IP(src="198.51.100.80", dst="10.0.0.5") / TCP(sport=80, dport=50000, flags="SA"), 1.1))
    packets.append(at(IP(src="10.0.0.5", dst="198.51.100.80") / TCP(sport=50000, dport=80, flags="PA") / Raw(http), 1.2))
    packets.append(at(IP(src="198.51.100.80", dst="10.0.0.5") / TCP(sport=80, dport=50000, flags="PA") / Raw(b"HTTP/1.1 200 OK\r\n\r\nuid=0"), 1.5))
    packets.append(at(IP(src="10.0.0.5", dst="198.51.100.44") / TCP(sport=50001, dport=443, flags="PA")
                      / Raw(client_hello("c2.bad.example")), 2.0))  # fmt: skip
    wrpcap(str(path), packets)


def test_pcap_events(tmp_path: Path) -> None:
    pcap = tmp_path / "capture.pcap"
    build_pcap(pcap)
    events = list(pcap_events(pcap, hostname="sensor1"))
    dns = [e for e in events if e["logsource.category"] == "dns"]
    assert [(e["event.action"], e["query"], e["record_type"]) for e in dns] == [
        ("dns_query", "evil.example", "A"), ("dns_answer", "evil.example", "A")]  # fmt: skip
    assert dns[1]["answer"] == "203.0.113.66" and dns[0]["dns.question.name"] == "evil.example"
    proxy = [e for e in events if e["logsource.category"] == "proxy"]
    http, tls = proxy
    assert http["c-uri"] == "http://web.example/shell.php?cmd=id" and http["cs-host"] == "web.example"
    assert http["c-useragent"] == "curl/8.5.0" and http["cs-method"] == "GET"
    assert http["destination.ip"] == "198.51.100.80" and http["destination.port"] == 80
    assert tls["tls.client.server_name"] == "c2.bad.example" and tls["cs-host"] == "c2.bad.example"
    flows = {(e["dst_ip"], e["dst_port"]): e for e in events if e["logsource.category"] == "firewall"}
    assert set(flows) == {("10.0.0.1", 53), ("198.51.100.80", 80), ("198.51.100.44", 443)}
    web = flows[("198.51.100.80", 80)]
    assert (web["src_ip"], web["src_port"], web["network.transport"]) == ("10.0.0.5", 50000, "tcp")
    assert (web["source.packets"], web["destination.packets"], web["network.packets"]) == (2, 2, 4)
    # IP lengths: four 40-byte IP+TCP headers plus the two payloads
    assert web["network.bytes"] == 4 * 40 + len(HTTP_REQUEST) + len(b"HTTP/1.1 200 OK\r\n\r\nuid=0")
    assert web["event.duration"] == 500_000_000 and web["@timestamp"] == "2024-11-23T10:40:01.000Z"
    assert all(e["host.name"] == "sensor1" for e in events)


def test_tls_sni_rejects_garbage() -> None:
    assert tls_sni(client_hello("a.example")) == "a.example"
    assert tls_sni(b"\x16\x03\x01\x00\x05\x01") is None
    assert tls_sni(os.urandom(100).replace(b"\x16", b"\x17")) is None


def test_damaged_pcap_raises_parse_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    with pytest.raises(ParseError):
        list(pcap_events(bad))


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs CAP_NET_RAW")
def test_live_capture_on_loopback_posts_to_ingest(client: httpx.Client, runtime: Runtime) -> None:
    token = runtime.identity.create_token(role="agent", unit="sensor-unit", name="sensor")
    # No BPF filter: compiling one needs libpcap, which the sensor does not require.
    sensor = LiveSensor("lo", str(client.base_url), token, batch_seconds=0.3)
    thread = threading.Thread(target=sensor.run, kwargs={"duration": 12.0})
    thread.start()
    # Keep sending for the whole capture: how long the sniffer takes to attach depends on the machine's
    # load (under a loaded CI machine it once attached after the 5 s of sending this test used to do).
    query = bytes(DNS(id=1, rd=1, qd=DNSQR(qname="live.example.", qtype="AAAA")))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while thread.is_alive():
            s.sendto(query, ("127.0.0.1", 53535))
            time.sleep(0.2)
    thread.join(30)
    events = [e for _, e in runtime.journal.read("t", 1000)]
    flows = [e for e in events if e["logsource.category"] == "firewall" and e["dst_port"] == 53535]
    assert flows and flows[0]["dst_port"] == 53535 and flows[0]["soclite.unit"] == "sensor-unit"
    assert sum(f["source.packets"] for f in flows) >= 3


def test_sensor_cli_posts_a_pcap_to_ingest(client: httpx.Client, runtime: Runtime, tmp_path: Path) -> None:
    import subprocess
    import sys

    pcap = tmp_path / "capture.pcap"
    build_pcap(pcap)
    token = runtime.identity.create_token(role="agent", unit="dmz", name="sensor-dmz")
    result = subprocess.run([sys.executable, "-m", "soclite.cli", "sensor", "--pcap", str(pcap), "--server",
                             str(client.base_url), "--token", token], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sent 7 events" in result.stderr
    events = [e for _, e in runtime.journal.read("t", 100)]
    assert sorted({e["logsource.category"] for e in events}) == ["dns", "firewall", "proxy"]
    assert all(e["soclite.unit"] == "dmz" and e["soclite.input"] == "http" for e in events)
    bad = subprocess.run([sys.executable, "-m", "soclite.cli", "sensor", "--pcap", str(pcap), "--server",
                          str(client.base_url), "--token", "sl_x_y"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and "refused the sensor's token" in bad.stderr
