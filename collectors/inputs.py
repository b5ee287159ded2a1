"""The inputs registry: network listeners that turn syslog into events and hand them to a sink.

``INPUTS`` maps a name to an input class; :func:`start_inputs` starts the ones the settings
enable (UDP and TCP on ``server.syslog_port``, TLS on ``server.syslog_tls_port``) in one
asyncio loop on a background thread, and returns handles with ``.stop()``.

Delivery guarantees, per transport:

* TCP and TLS: a connection's data is parsed and handed to the sink (which commits to the
  journal) before more is read from that connection, so a full or failing journal pushes
  back on the sender through TCP flow control; a failed sink call is retried, never dropped.
  Syslog has no application-level acknowledgement, so what a sender wrote into a connection
  that then broke may be lost on the sender's side (RFC 5425 / RELP are the remedy there).
  The bytes a TCP/TLS input holds at once are bounded (``queue_bytes``, shared by its
  connections): past it no connection is read until a batch is stored.
* UDP: there is no acknowledgement and no back-pressure. Datagrams are batched for 20 ms and
  appended; the queue in front of the journal is bounded (``queue_messages`` and ``queue_bytes``)
  and a datagram arriving at a full queue is dropped and counted in ``dropped``, as is a batch
  the journal refuses. Use TCP/TLS or the agent for anything that must not be lost.

Every input has the allow-list of sender networks and the source map of
:mod:`soclite.collectors.sources`: a refused datagram or connection is counted in ``refused``;
an accepted sender's events get the host and unit the map gives it.

Lines that cannot be parsed go to ``dead_letter(source, reason, raw)``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from soclite.collectors import memory
from soclite.collectors.framing import FrameDecoder
from soclite.collectors.normalize import normalize_batch
from soclite.collectors.sources import SourceMap
from soclite.config import Settings
from soclite.errors import ConfigError, ParseError
from soclite.models import Event, utcnow

log = logging.getLogger(__name__)

Sink = Callable[[list[Event]], None]
DeadLetterSink = Callable[[str, str, bytes], None]


class ListenerOptions(BaseModel):
    """Options of a syslog listener (validated from settings)."""

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    max_message_bytes: int = Field(65536, ge=1024)
    timezone: str = "Asia/Ho_Chi_Minh"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: CAs of the client certificates to ask for (TLS; for tls_subject source mappings)
    tls_client_ca: Path | None = None
    #: the queue in front of the journal (see the module docstring)
    queue_messages: int = Field(20_000, ge=1)
    queue_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024)
    max_future_skew_seconds: int = 300
    max_past_skew_days: int = 365


@dataclass
class InputStats:
    received: int = 0
    events: int = 0
    rejected: int = 0
    #: UDP datagrams lost: the queue was full or the journal refused their batch
    dropped: int = 0
    #: datagrams and connections from senders outside the allow-list
    refused: int = 0
    connections: int = 0
    #: time.monotonic() of the last drop (None: never): /health is degraded while drops are recent
    last_drop_at: float | None = None

    def drop(self, count: int = 1) -> None:
        self.dropped += count
        self.last_drop_at = time.monotonic()


@dataclass
class Processor:
    """Frames → normalized events → sink; rejected frames → dead letters."""

    name: str
    options: ListenerOptions
    sink: Sink
    dead_letter: DeadLetterSink | None
    sources: SourceMap = field(default_factory=lambda: SourceMap([], "unassigned"))
    stats: InputStats = field(default_factory=InputStats)

    def process(self, frames: list[tuple[bytes, str]], tls_subject: str | None = None) -> None:
        """Blocking: normalize and append. Raises when the sink fails (the caller retries or drops)."""
        if not frames:
            return
        # A trailing LF inside an octet-counted frame (rsyslog's templates end with one) is not message text.
        records = [{"message": raw.rstrip(b"\r\n").decode("utf-8", "replace"), "host.name": peer,
                    "log.source.address": peer} for raw, peer in frames]  # fmt: skip
        results = normalize_batch(
            records, received=utcnow(), input=self.name, unit=None, agent_id=None,
            default_tz=self.options.timezone, max_bytes=self.options.max_message_bytes,
            max_future_skew_seconds=self.options.max_future_skew_seconds,
            max_past_skew_days=self.options.max_past_skew_days,
        )  # fmt: skip
        events: list[Event] = []
        for item in results:
            if isinstance(item, ParseError):
                self.stats.rejected += 1
                raw = str((getattr(item, "record", None) or {}).get("message", "")).encode("utf-8", "replace")
                self._dead(str(item), raw)
            else:
                # the sender's address, not the message, decides the host and unit
                self.sources.apply((item,), str(item.get("log.source.address") or ""), tls_subject)
                events.append(item)
        if events:
            self.sink(events)
        self.stats.received += len(frames)
        self.stats.events += len(events)

    def _dead(self, reason: str, raw: bytes) -> None:
        if self.dead_letter is None:
            log.warning("%s: rejected message (%s): %r", self.name, reason, raw[:200])
            return
        try:
            self.dead_letter(self.name, reason, raw)
        except Exception:
            log.exception("%s: could not store a dead letter (%s)", self.name, reason)


class _Loop:
    """One asyncio event loop on a daemon thread, shared by the listeners of a process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="soclite-inputs", daemon=True)
        self.thread.start()
        self.users = 0

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(30)

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@dataclass
class RunningInput:
    name: str
    address: tuple[str, int]
    stats: InputStats
    _stop: Callable[[], Coroutine[Any, Any, None]]
    _loop: _Loop
    _stopped: bool = False

    #: drops within this many seconds make /health "degraded"
    RECENT_DROP_SECONDS: ClassVar[float] = 300.0

    def degraded(self) -> list[str]:
        """Why this input is losing messages right now (recent drops), for /health and the overview."""
        last = self.stats.last_drop_at
        if last is None or time.monotonic() - last > self.RECENT_DROP_SECONDS:
            return []
        return [
            f"{self.name}: {self.stats.dropped} messages dropped since start (queue full or journal refusing); "
            "the last within 5 minutes"
        ]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._loop.run(self._stop())
        self._loop.release()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, processor: Processor) -> None:
        self.processor = processor
        self.pending: list[tuple[bytes, str]] = []
        self.pending_bytes = 0

    def take(self) -> list[tuple[bytes, str]]:
        batch, self.pending, self.pending_bytes = self.pending, [], 0
        return batch

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        processor = self.processor
        peer = str(addr[0])
        if not processor.sources.allowed(peer):
            processor.stats.refused += 1
            return
        options = processor.options
        # Bounded: while the journal lags, a flood is dropped here (and counted), not held in memory.
        if len(self.pending) >= options.queue_messages or self.pending_bytes >= options.queue_bytes:
            processor.stats.drop()
            return
        # One datagram is one message (RFC 5426); a trailing LF some senders add is not part of it.
        message = data[: options.max_message_bytes + 1].rstrip(b"\r\n")
        self.pending.append((message, peer))
        self.pending_bytes += len(message)


def _process_and_release(processor: Processor, batch: list[tuple[bytes, str]]) -> None:
    try:
        processor.process(batch)
    finally:
        if len(batch) >= 1000:  # a burst: give its memory back (see soclite.collectors.memory)
            del batch
            memory.release()


class SyslogUdp:
    """RFC 5426 syslog over UDP: no acknowledgement, batches of 20 ms (see the module docstring)."""

    name: ClassVar[str] = "syslog-udp"
    FLUSH_SECONDS: ClassVar[float] = 0.02

    async def start(self, processor: Processor) -> tuple[tuple[str, int], Callable[[], Coroutine[Any, Any, None]]]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(processor), local_addr=(processor.options.host, processor.options.port)
        )
        sock = transport.get_extra_info("socket")
        try:  # a larger receive buffer absorbs bursts while a batch is being committed
            import socket

            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        except OSError:
            pass
        stopping = asyncio.Event()

        async def flusher() -> None:
            while True:
                if protocol.pending:
                    batch = protocol.take()
                    try:
                        await loop.run_in_executor(None, _process_and_release, processor, batch)
                    except Exception as exc:
                        processor.stats.drop(len(batch))
                        log.error("syslog-udp: %d messages lost, the journal refused them: %s", len(batch), exc)
                if stopping.is_set():
                    return
                await asyncio.sleep(self.FLUSH_SECONDS)

        task = loop.create_task(flusher())

        async def stop() -> None:
            transport.close()
            stopping.set()
            await task

        address = sock.getsockname()
        return (address[0], address[1]), stop


class SyslogTcp:
    """Syslog over TCP (RFC 6587: octet counting or LF framing, detected per connection)."""

    name: ClassVar[str] = "syslog-tcp"
    RETRY_SECONDS: ClassVar[float] = 1.0
    #: one read per connection; also what a connection waiting for the queue holds
    READ_BYTES: ClassVar[int] = 64 * 1024

    def ssl_context(self, options: ListenerOptions) -> ssl.SSLContext | None:
        return None

    async def start(self, processor: Processor) -> tuple[tuple[str, int], Callable[[], Coroutine[Any, Any, None]]]:
        loop = asyncio.get_running_loop()
        handlers: set[asyncio.Task[None]] = set()
        closing = asyncio.Event()
        # Bytes read from all connections and not yet stored: past queue_bytes a connection that read a
        # chunk waits before handing it over and reads nothing more (the senders' kernels buffer, then
        # their writes block). Each connection holds at most one chunk while it waits.
        held = [0]
        freed = asyncio.Event()

        async def take(size: int) -> None:
            # check and add with no await between them: two connections cannot both pass on one budget
            while held[0] and held[0] + size > processor.options.queue_bytes:
                freed.clear()
                await freed.wait()
            held[0] += size

        async def deliver(frames: list[tuple[bytes, str]], subject: str | None) -> None:
            while True:
                try:
                    await loop.run_in_executor(None, processor.process, frames, subject)
                    return
                except Exception as exc:  # JournalError, disk errors: retried: TCP back-pressure holds the sender
                    if closing.is_set():
                        processor.stats.drop(len(frames))
                        log.error("%s: %d messages not stored at shutdown: %s", self.name, len(frames), exc)
                        return
                    log.warning("%s: sink failed, retrying in %.0fs: %s", self.name, self.RETRY_SECONDS, exc)
                    await asyncio.sleep(self.RETRY_SECONDS)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                handlers.add(task)
            peer = str((writer.get_extra_info("peername") or ("?",))[0])
            if not processor.sources.allowed(peer):
                processor.stats.refused += 1
                log.debug("%s: connection from %s refused (not in server.syslog_allow)", self.name, peer)
                writer.close()
                if task is not None:
                    handlers.discard(task)
                return
            subject = _subject_cn(writer.get_extra_info("peercert"))
            processor.stats.connections += 1
            decoder = FrameDecoder(processor.options.max_message_bytes)
            try:
                while True:
                    data = await reader.read(self.READ_BYTES)
                    if not data:
                        tail = decoder.pending()
                        if tail.strip():
                            await deliver([(tail, peer)], subject)
                        break
                    try:
                        frames = decoder.feed(data)
                    except ParseError as exc:
                        processor._dead(f"{exc} (connection from {peer} closed)", data[:4096])
                        break
                    await take(len(data))
                    try:
                        await deliver([(frame, peer) for frame in frames], subject)
                    finally:
                        held[0] -= len(data)
                        freed.set()
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                log.info("%s: connection from %s ended: %s", self.name, peer, exc)
            finally:
                writer.close()
                if task is not None:
                    handlers.discard(task)

        server = await asyncio.start_server(
            handle, processor.options.host, processor.options.port, ssl=self.ssl_context(processor.options),
            limit=processor.options.max_message_bytes * 2,
        )  # fmt: skip

        async def stop() -> None:
            closing.set()
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()

        address = server.sockets[0].getsockname()
        return (address[0], address[1]), stop


class SyslogTls(SyslogTcp):
    """RFC 5425 syslog over TLS (TLS 1.2+; octet counting, LF framing tolerated)."""

    name: ClassVar[str] = "syslog-tls"

    def ssl_context(self, options: ListenerOptions) -> ssl.SSLContext | None:
        if options.tls_cert is None or options.tls_key is None:
            raise ConfigError("syslog over TLS needs a certificate and a key", key="server.tls_cert / server.tls_key")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(options.tls_cert), str(options.tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the TLS certificate/key: {exc}", key="server.tls_cert") from exc
        if options.tls_client_ca is not None:
            # Asked for, not required: a sender without a certificate is mapped by its address.
            try:
                context.load_verify_locations(cafile=str(options.tls_client_ca))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load the client CA: {exc}", key="server.syslog_tls_client_ca") from exc
            context.verify_mode = ssl.CERT_OPTIONAL
        return context


def _subject_cn(cert: Any) -> str | None:
    """The commonName of a verified client certificate (``ssl.getpeercert()`` form), if any."""
    if not isinstance(cert, dict):
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


InputClass = type[SyslogUdp] | type[SyslogTcp]
INPUTS: dict[str, InputClass] = {}


def register(cls: InputClass) -> InputClass:
    if cls.name in INPUTS:
        raise ConfigError(f"input {cls.name!r} is already registered", key="inputs")
    INPUTS[cls.name] = cls
    return cls


for _cls in (SyslogUdp, SyslogTcp, SyslogTls):
    register(_cls)


def start_input(
    name: str, options: ListenerOptions, sink: Sink, dead_letter: DeadLetterSink | None = None, *,
    sources: SourceMap | None = None, _loop: _Loop | None = None,
) -> RunningInput:
    """Start one input by registry name (an unknown name raises ConfigError naming it)."""
    if name not in INPUTS:
        raise ConfigError(f"unknown input type {name!r} (known: {', '.join(INPUTS)})", key="type")
    loop = _loop or _Loop()
    processor = Processor(name, options, sink, dead_letter, sources or SourceMap([], "unassigned"))
    loop.users += 1
    try:
        address, stop = loop.run(INPUTS[name]().start(processor))
    except BaseException:
        loop.release()
        raise
    log.info("%s listening on %s:%d", name, address[0], address[1])
    return RunningInput(name=name, address=address, stats=processor.stats, _stop=stop, _loop=loop)


def start_inputs(settings: Settings, sink: Sink, dead_letter: DeadLetterSink | None = None) -> list[RunningInput]:
    """Start the syslog listeners the settings enable; stop them with ``[i.stop() for i in inputs]``."""
    server = settings.server
    common = {
        "host": server.syslog_host, "max_message_bytes": server.max_message_bytes, "timezone": settings.timezone,
        "queue_messages": server.syslog_queue_messages, "max_future_skew_seconds": server.max_future_skew_seconds,
        "max_past_skew_days": server.max_past_skew_days,
    }  # fmt: skip
    sources = SourceMap.from_settings(server)
    wanted: list[tuple[str, ListenerOptions]] = []
    if server.syslog_port:
        wanted.append(("syslog-udp", ListenerOptions(port=server.syslog_port, **common)))
        wanted.append(("syslog-tcp", ListenerOptions(port=server.syslog_port, **common)))
    if server.syslog_tls_port:
        wanted.append(("syslog-tls", ListenerOptions(port=server.syslog_tls_port, tls_cert=server.tls_cert,
                                                     tls_key=server.tls_key, tls_client_ca=server.syslog_tls_client_ca,
                                                     **common)))  # fmt: skip
    loop = _Loop()
    started: list[RunningInput] = []
    try:
        for name, options in wanted:
            started.append(start_input(name, options, sink, dead_letter, sources=sources, _loop=loop))
    except BaseException:
        for running in started:
            running.stop()
        raise
    if not started:
        loop.users = 1
        loop.release()
    return started


def journal_sink(journal: Any) -> tuple[Sink, DeadLetterSink]:
    """The sink and dead-letter callbacks over a soclite.store.journal.Journal."""

    def sink(events: list[Event]) -> None:
        journal.append(None, events)

    def dead_letter(source: str, reason: str, raw: bytes) -> None:
        journal.append(None, [], [(source, reason, raw)])

    return sink, dead_letter


__all__ = ["INPUTS", "ListenerOptions", "RunningInput", "journal_sink", "start_input", "start_inputs"]
