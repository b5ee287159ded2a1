"""Syslog listeners with real peers: util-linux `logger` over UDP and TCP, a Python TLS client (RFC 5425)."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soclite.collectors.inputs import (
    INPUTS,
    ListenerOptions,
    RunningInput,
    journal_sink,
    start_input,
    start_inputs,
)
from soclite.config import Settings
from soclite.errors import ConfigError
from soclite.store.deadletter import DeadLetters
from soclite.store.journal import Journal
from tests.collectors.conftest import free_port

pytestmark = pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger (bsdutils) not installed")


def wait_for(journal: Journal, n: int, timeout: float = 10) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        events = [e for _, e in journal.read("test", 10000)]
        if len(events) >= n or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


@pytest.fixture
def listening(journal: Journal, tmp_path: Path) -> Iterator[tuple[int, list[RunningInput]]]:
    port = free_port()
    while True:  # the UDP port must be free too
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
            break
        except OSError:
            port = free_port()
    settings = Settings(environment="test", data_dir=tmp_path)
    settings.server.syslog_host = "127.0.0.1"
    settings.server.syslog_port = port
    sink, dead = journal_sink(journal)
    inputs = start_inputs(settings, sink, dead)
    yield port, inputs
    for running in inputs:
        running.stop()


def logger(port: int, *args: str) -> None:
    subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(port), *args], check=True, timeout=10)


def test_logger_udp_and_tcp_in_every_framing(listening: tuple[int, list[RunningInput]], journal: Journal) -> None:
    port, inputs = listening
    assert sorted(i.name for i in inputs) == ["syslog-tcp", "syslog-udp"]
    sent = [
        ("--udp", "--rfc5424", "Failed password for root from 203.0.113.1 port 1001 ssh2"),
        ("--udp", "--rfc3164", "Failed password for root from 203.0.113.2 port 1002 ssh2"),
        ("--tcp", "--rfc5424", "Failed password for root from 203.0.113.3 port 1003 ssh2"),
        ("--tcp", "--rfc3164", "Failed password for root from 203.0.113.4 port 1004 ssh2"),
        ("--tcp", "--octet-count", "Failed password for root from 203.0.113.5 port 1005 ssh2"),
    ]
    for transport, fmt, text in sent:
        logger(port, transport, fmt, "-t", "sshd", "-p", "auth.info", text)
    events = wait_for(journal, len(sent))
    by_ip = {e["source.ip"]: e for e in events}
    assert sorted(by_ip) == [f"203.0.113.{i}" for i in range(1, 6)]
    for event in by_ip.values():
        assert event["logsource.service"] == "sshd" and event["event.outcome"] == "failure", event
        assert event["user.name"] == "root" and event["log.syslog.facility.name"] == "auth"
        assert event["host.name"] and event["log.source.address"] == "127.0.0.1"
    assert by_ip["203.0.113.1"]["soclite.input"] == "syslog-udp"
    assert by_ip["203.0.113.3"]["log.syslog.format"] == "rfc5424"
    assert by_ip["203.0.113.4"]["log.syslog.format"] == "rfc3164"
    assert by_ip["203.0.113.5"]["soclite.input"] == "syslog-tcp"


def test_many_lines_over_one_tcp_connection_and_bad_frames(
    listening: tuple[int, list[RunningInput]], journal: Journal, tmp_path: Path
) -> None:
    port, _ = listening
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"message number {i}\n" for i in range(500)))
    logger(port, "--tcp", "--rfc5424", "-t", "app", "-f", str(lines))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"<999>bad pri\n<13>Nov 23 17:00:00 h app: fine\n")
    events = wait_for(journal, 501)
    texts = {e["message"] for e in events}
    assert {f"message number {i}" for i in range(500)} <= texts and "fine" in texts
    deadline = time.monotonic() + 5
    letters = DeadLetters(journal.db)
    while letters.count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    items, _ = letters.list()
    assert items[0].raw == b"<999>bad pri" and "PRI" in items[0].reason


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_tls_octet_counting_with_verified_client(journal: Journal, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    sink, dead = journal_sink(journal)
    running = start_input("syslog-tls", ListenerOptions(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key), sink, dead)
    try:
        context = ssl.create_default_context(cafile=str(cert))  # verification on, pinned to the test CA
        messages = [f"<86>1 2026-11-23T17:00:0{i}+07:00 srv{i} sudo - - - alice : TTY=pts/0 ; PWD=/ ; USER=root ; "
                    f"COMMAND=/bin/id {i}".encode() for i in range(3)]  # fmt: skip
        with socket.create_connection(running.address) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"".join(f"{len(m)} ".encode() + m for m in messages))
        events = wait_for(journal, 3)
        assert sorted(e["process.command_line"] for e in events) == ["/bin/id 0", "/bin/id 1", "/bin/id 2"]
        assert all(e["logsource.service"] == "auth" and e["soclite.input"] == "syslog-tls" for e in events)
        assert events[0]["@timestamp"] == "2026-11-23T10:00:00.000Z"
    finally:
        running.stop()


def test_registry_and_config_errors(journal: Journal) -> None:
    assert list(INPUTS) == ["syslog-udp", "syslog-tcp", "syslog-tls"]
    sink, _ = journal_sink(journal)
    with pytest.raises(ConfigError, match="unknown input type 'syslog-relp'"):
        start_input("syslog-relp", ListenerOptions(port=0), sink)
    with pytest.raises(ConfigError, match="tls_cert"):
        start_input("syslog-tls", ListenerOptions(host="127.0.0.1", port=0), sink)


@pytest.mark.skipif(shutil.which("rsyslogd") is None or not Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists(),
                    reason="rsyslog with rsyslog-gnutls not installed")  # fmt: skip
def test_rsyslog_forwards_over_tls(journal: Journal, tmp_path: Path) -> None:
    """A real relay: logger → rsyslog (UDP in) → RFC 5425 TLS, octet-counted, certificate verified → our listener."""
    cert, key = _self_signed(tmp_path)
    sink, dead = journal_sink(journal)
    running = start_input("syslog-tls", ListenerOptions(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key), sink, dead)
    udp_in = free_port(socket.SOCK_DGRAM)
    work = tmp_path / "rsyslog-work"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}" defaultNetstreamDriverCAFile="{cert}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_in}")
action(type="omfwd" target="127.0.0.1" port="{running.address[1]}" protocol="tcp" TCP_Framing="octet-counted"
       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
       template="RSYSLOG_SyslogProtocol23Format")
""")
    rsyslogd = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        time.sleep(1.0)  # rsyslogd binds its UDP input
        assert rsyslogd.poll() is None, rsyslogd.stdout.read() if rsyslogd.stdout else ""
        for i in range(5):
            logger(udp_in, "--udp", "--rfc3164", "-t", "sshd", f"Accepted password for relay{i} from 198.51.100.{i} port 2{i} ssh2")
        events = wait_for(journal, 5, timeout=20)
        assert sorted(e["user.name"] for e in events) == [f"relay{i}" for i in range(5)]
        assert all(e["soclite.input"] == "syslog-tls" and e["log.syslog.format"] == "rfc5424" for e in events)
        assert all(e["event.outcome"] == "success" and e["logsource.service"] == "sshd" for e in events)
    finally:
        rsyslogd.terminate()
        rsyslogd.wait(10)
        running.stop()


def test_tcp_holds_messages_while_the_journal_is_full(journal: Journal) -> None:
    """A full journal refuses the batch; the TCP input keeps it and retries — nothing is dropped."""
    sink, dead = journal_sink(journal)
    running = start_input("syslog-tcp", ListenerOptions(host="127.0.0.1", port=0), sink, dead)
    try:
        limit = journal.max_bytes
        journal.max_bytes = journal.used_bytes() + 10  # full
        with socket.create_connection(running.address) as sock:
            sock.sendall(b"".join(f"<13>Nov 23 17:00:00 h app: held {i}\n".encode() for i in range(20)))
        time.sleep(0.5)
        assert journal.count() == 0 and running.stats.dropped == 0
        journal.max_bytes = limit  # consumers caught up
        events = wait_for(journal, 20, timeout=10)
        assert sorted(e["message"] for e in events) == sorted(f"held {i}" for i in range(20))
    finally:
        running.stop()
