"""Issue 13, item 2: a UDP flood cannot exhaust the server; syslog binds to loopback and has an allow-list.

Real sockets against the real listeners; the sink is a real function that blocks the way a
lagging journal does (fake only at the seam the inputs hand batches to).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from soclite.collectors.inputs import ListenerOptions, RunningInput, start_input
from soclite.collectors.sources import REPORTED_HOST, SourceMap
from soclite.config import Settings, SourceMapping
from soclite.models import Event
from soclite.runtime import Runtime
from tests.collectors.conftest import free_port

LINE = b"<38>Dec  6 22:00:00 ws-b-02 sshd[1]: Failed password for root from 203.0.113.9 port 4000 ssh2"


class SlowSink:
    """Blocks until released, like a journal that lags; records the size of every batch."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()  # a batch is in the sink (and blocked there until released)
        self.batches: list[int] = []
        self.events: list[Event] = []

    def __call__(self, events: list[Event]) -> None:
        self.entered.set()
        self.release.wait(30)
        self.batches.append(len(events))
        self.events.extend(events)


def udp_port() -> int:
    while True:
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def blast(port: int, count: int, message: bytes = LINE) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            s.sendto(message, ("127.0.0.1", port))


def eventually(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.fixture
def slow_udp() -> Iterator[tuple[RunningInput, SlowSink, int]]:
    sink = SlowSink()
    port = udp_port()
    running = start_input("syslog-udp", ListenerOptions(port=port, queue_messages=100), sink)
    yield running, sink, port
    sink.release.set()
    running.stop()


def test_the_udp_queue_is_bounded_and_its_drops_are_counted(slow_udp: tuple[RunningInput, SlowSink, int]) -> None:
    running, sink, port = slow_udp
    # first a batch the sink holds (the journal "lags" from here on), so what follows queues up behind it;
    # a first blast could otherwise fill the queue before the first flush and leave nothing pending
    blast(port, 1)
    sent = 1
    assert eventually(sink.entered.is_set), running.stats

    def overflowed() -> bool:
        # Keep sending until the input drops: on a loaded machine the kernel's socket buffer may drop
        # datagrams before the input reads them (those are not ours to count), so one burst may not do.
        nonlocal sent
        blast(port, 500)
        sent += 500
        return running.stats.dropped > 0

    # the journal "lags": past the first batch (in the sink) at most 100 datagrams are held, the rest dropped
    assert eventually(overflowed), running.stats
    assert running.degraded() and "dropped" in running.degraded()[0]
    sink.release.set()
    # longer than the sink's own 30 s block: a batch handed over before the release may still be in it
    assert eventually(lambda: len(sink.batches) >= 2, timeout=45), (sink.batches, running.stats)
    time.sleep(0.2)
    assert all(size <= 100 for size in sink.batches[1:]), sink.batches
    assert sum(sink.batches) + running.stats.dropped <= sent


def test_syslog_binds_to_loopback_by_default() -> None:
    assert Settings(environment="test").server.syslog_host == "127.0.0.1"
    assert ListenerOptions(port=0).host == "127.0.0.1"


def test_senders_outside_the_allow_list_are_refused_and_counted() -> None:
    sink = SlowSink()
    sink.release.set()
    sources = SourceMap([], "unassigned", allow=["10.99.0.0/16"])
    port = udp_port()
    udp = start_input("syslog-udp", ListenerOptions(port=port), sink, sources=sources)
    tcp = start_input("syslog-tcp", ListenerOptions(port=port), sink, sources=sources)
    try:
        blast(port, 5)
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(LINE + b"\n")
            conn.settimeout(5)
            with contextlib.suppress(ConnectionResetError):  # closed unread: a reset, or EOF
                assert conn.recv(10) == b""
        assert eventually(lambda: udp.stats.refused == 5 and tcp.stats.refused == 1), (udp.stats, tcp.stats)
        time.sleep(0.1)
        assert sink.events == [] and udp.stats.received == 0 and tcp.stats.connections == 0
    finally:
        udp.stop()
        tcp.stop()


def test_the_source_map_decides_host_and_unit_not_the_message() -> None:
    sink = SlowSink()
    sink.release.set()
    mapped = SourceMap([SourceMapping(network="127.0.0.0/8", host="fw-01", unit="unit-a")], "unassigned")
    port = udp_port()
    running = start_input("syslog-udp", ListenerOptions(port=port), sink, sources=mapped)
    try:
        blast(port, 1)
        assert eventually(lambda: len(sink.events) == 1)
    finally:
        running.stop()
    event = sink.events[0]
    assert (event["host.name"], event[REPORTED_HOST], event["soclite.unit"]) == ("fw-01", "ws-b-02", "unit-a")

    unknown = SlowSink()
    unknown.release.set()
    running = start_input("syslog-udp", ListenerOptions(port=port), unknown,
                          sources=SourceMap([], "unassigned"))  # fmt: skip
    try:
        blast(port, 1)
        assert eventually(lambda: len(unknown.events) == 1)
    finally:
        running.stop()
    # an unknown sender: the unassigned unit, never the unit of the host its message names
    assert unknown.events[0]["soclite.unit"] == "unassigned"


def test_drops_show_in_health_metrics_and_the_overview(
    slow_udp: tuple[RunningInput, SlowSink, int], tmp_path: Path
) -> None:
    import uvicorn

    from soclite.api.app import create_app
    from soclite.config import AuthSettings
    from soclite.control.identity import UserStore

    running, _sink, port = slow_udp
    runtime = Runtime.build(Settings(environment="test", data_dir=tmp_path / "data",
                                     auth=AuthSettings(secret_key="x" * 32, secure_cookies=False)))  # fmt: skip
    runtime.inputs.append(running)
    UserStore(runtime.control).add("lan", "correct horse battery 1", role="viewer", display_name="Lan")
    http_port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=http_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert eventually(lambda: server.started, 15)
        base = f"http://127.0.0.1:{http_port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            health = client.get("/health").json()
            assert health["status"] == "ok" and health["degraded"] == []
            blast(port, 3000)
            assert eventually(lambda: running.stats.dropped > 0)
            health = client.get("/health").json()
            assert health["status"] == "degraded" and "syslog-udp" in health["degraded"][0]
            assert 0 < health["inputs"]["syslog-udp"]["dropped"] <= running.stats.dropped
            viewer = runtime.identity.create_token(role="viewer")
            text = client.get("/metrics", headers={"Authorization": f"Bearer {viewer}"}).text
            found = re.search(r'soclite_input_messages_total\{input="syslog-udp",outcome="dropped"\} (\d+)', text)
            assert found and int(float(found.group(1))) > 0, text[-2000:]
            assert "soclite_degraded 1.0" in text
            page = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf
            r = client.post("/login", data={"username": "lan", "password": "correct horse battery 1",
                                            "csrf_token": csrf.group(1)}, follow_redirects=False)  # fmt: skip
            assert r.status_code == 303, r.text
            overview = client.get("/").text
            assert 'id="degraded"' in overview and "Dữ liệu đang bị mất hoặc bị từ chối" in overview
            assert "syslog-udp" in overview and "Bị bỏ" in overview
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


def test_a_tls_sender_is_mapped_by_its_client_certificate(tmp_path: Path) -> None:
    """RFC 5425 with a client certificate: the subject CN, not the message, picks host and unit."""
    import ssl

    from tests.collectors.test_inputs import _self_signed

    cert, key = _self_signed(tmp_path)  # CN=localhost; also the client's certificate and the client CA
    sink = SlowSink()
    sink.release.set()
    sources = SourceMap([SourceMapping(tls_subject="localhost", host="fw-tls", unit="unit-t")], "unassigned")
    options = ListenerOptions(port=0, tls_cert=cert, tls_key=key, tls_client_ca=cert)
    running = start_input("syslog-tls", options, sink, sources=sources)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.load_cert_chain(str(cert), str(key))
        with socket.create_connection(running.address) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(f"{len(LINE)} ".encode() + LINE)
        assert eventually(lambda: len(sink.events) == 1)
    finally:
        running.stop()
    event = sink.events[0]
    assert (event["host.name"], event[REPORTED_HOST], event["soclite.unit"]) == ("fw-tls", "ws-b-02", "unit-t")


def test_tcp_stops_reading_every_connection_while_its_queue_is_full() -> None:
    """Back-pressure: past queue_bytes held, no connection is read until a batch is stored."""
    entered = threading.Semaphore(0)
    release = threading.Event()
    inside = [0, 0]  # now, most at once

    def sink(events: list[Event]) -> None:
        inside[0] += 1
        inside[1] = max(inside[1], inside[0])
        entered.release()
        release.wait(30)
        inside[0] -= 1

    port = udp_port()
    running = start_input("syslog-tcp", ListenerOptions(port=port, queue_bytes=64 * 1024), sink)
    payload = (LINE + b"\n") * 3000  # ~300 KB per connection
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    senders = [threading.Thread(target=c.sendall, args=(payload,), daemon=True) for c in conns]
    try:
        for sender in senders:
            sender.start()
        assert entered.acquire(timeout=10)
        time.sleep(1.0)  # the second connection had every chance to be read and handed over
        assert inside[1] == 1, inside
    finally:
        release.set()
        for sender in senders:
            sender.join(10)
        for conn in conns:
            conn.close()
        running.stop()
