"""The agent process: enroll once, then collect, ship, heartbeat and obey commands until stopped.

Three threads, each with one job so a slow server never stalls reading logs:

* the collector (the caller's thread): reads files and the journal, spools batches;
* the sender: ships the oldest spooled batch, retrying with exponential backoff;
* the control loop: heartbeats with the inventory and polls the command channel.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from soclite.collectors.agent import AGENT_VERSION, inventory
from soclite.collectors.agent import journald as journald_mod
from soclite.collectors.agent.client import PinMismatch, ServerClient
from soclite.collectors.agent.config import AgentConfig
from soclite.collectors.agent.identity import AgentIdentity
from soclite.collectors.agent.isolation import IsolationError, IsolationPolicy, Isolator, resolve_manager
from soclite.collectors.agent.scan import run_scan
from soclite.collectors.agent.spool import Offset, Spool
from soclite.collectors.agent.tail import Chunk, FileTailer
from soclite.collectors.agent.wineventlog import Batch as WinBatch
from soclite.collectors.agent.wineventlog import WinEventLogCollector
from soclite.errors import AuthError, ConnectorError

log = logging.getLogger(__name__)

INGEST = "/api/v1/ingest"


def batch_id_for(
    agent_id: str, source: str, inode: int, generation: int, start: int | str, end: int | str
) -> str:
    """Deterministic: the same lines of the same file version always get the same id (resends dedup)."""
    key = f"{agent_id}\x1f{source}\x1f{inode}\x1f{generation}\x1f{start}\x1f{end}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class Agent:
    def __init__(
        self,
        server_url: str,
        state_dir: Path,
        config: AgentConfig,
        *,
        enroll_token: str | None = None,
        platform: str = sys.platform,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.state_dir = state_dir
        self.config = config
        self.enroll_token = enroll_token
        self.platform = platform
        state_dir.mkdir(parents=True, exist_ok=True)
        state_dir.chmod(0o700)
        self.hostname = inventory.hostname()
        self.identity = AgentIdentity.load(state_dir)
        self.spool = Spool(state_dir / "spool.db", config.spool_max_bytes)
        self.isolator = Isolator(state_dir, platform)
        self.tailers = [
            FileTailer(
                f.path,
                self.spool.offset(f"file:{f.path}"),
                start_at=f.start_at,
                max_line_bytes=config.max_line_bytes,
            )
            for f in config.files
        ]
        self._parsers = {f"file:{f.path}": f.parser for f in config.files}
        self._first_pending: dict[str, float] = {}
        self._journal: journald_mod.JournalFollower | None = None
        self._journal_pending: list[tuple[str, str]] = []
        self._journal_first = 0.0
        #: Windows event logs (no readers, with the reason, when not on Windows)
        self.wineventlog = WinEventLogCollector(config.windows_event_logs, self.spool, platform)
        self._wineventlog_next = 0.0
        self.stop_event = threading.Event()
        self._wake_sender = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_error: str | None = None
        #: scan commands running or finished whose result the server has not acknowledged: a command is
        #: handed out again until its result arrives, and a scan must not start twice for that
        self._scans: dict[str, str | None] = {}
        self._scans_lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------------------
    def client(self) -> ServerClient:
        return ServerClient(
            self.server_url,
            ca_file=self.config.ca_file,
            pin_sha256=self.config.ca_pin_sha256,
            timeout=self.config.request_timeout,
            api_key=self.identity.api_key if self.identity else None,
        )

    # --- enrollment ----------------------------------------------------------------------------
    def enroll(self) -> AgentIdentity:
        """Exchange the one-time enrollment token for a per-agent key, stored 0600 in the state dir."""
        if self.identity is not None:
            return self.identity
        if not self.enroll_token:
            raise AuthError(f"not enrolled yet ({self.state_dir} has no key) and no --enroll-token given")
        ips, macs = inventory.addresses()
        payload = {
            "enroll_token": self.enroll_token,
            "hostname": self.hostname,
            "os": inventory.os_description(),
            "host_type": self.config.host_type,
            "agent_version": AGENT_VERSION,
            "ips": ips,
            "macs": macs,
        }
        client = self.client()
        try:
            resp = client.post_json("/api/v1/agents/enroll", payload)
        finally:
            client.close()
        if resp.status in (401, 403):
            raise AuthError(f"enrollment refused by the server: {resp.body.decode('utf-8', 'replace')[:200]}")
        if resp.status != 200:
            raise ConnectorError(
                f"enrollment failed: HTTP {resp.status} {resp.body.decode('utf-8', 'replace')[:200]}"
            )
        data = resp.json()
        identity = AgentIdentity(
            data["agent_id"], data["api_key"], data.get("unit"), self.hostname, self.server_url
        )
        identity.save(self.state_dir)
        self.identity = identity
        log.info("enrolled as agent %s (unit %s)", identity.agent_id, identity.unit)
        return identity

    # --- collecting ----------------------------------------------------------------------------
    def _record(self, line: str, source: str, path: str | None) -> dict[str, Any]:
        record: dict[str, Any] = {"message": line, "host.name": self.hostname}
        if path is not None:
            record["log.file.path"] = path
        parser = self._parsers.get(source)
        if parser:
            record["log.parser"] = parser
        return record

    def _body(self, records: list[dict[str, Any]]) -> bytes:
        ndjson = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        return gzip.compress(ndjson.encode("utf-8"), compresslevel=6)

    def _spool_chunk(self, tailer: FileTailer, chunk: Chunk) -> None:
        assert self.identity is not None
        records = [self._record(line, chunk.source, chunk.path) for line in chunk.lines]
        bid = batch_id_for(
            self.identity.agent_id, chunk.source, chunk.inode, chunk.generation, chunk.start, chunk.end
        )
        evicted = self.spool.put(bid, chunk.source, len(records), self._body(records), chunk.offset)
        if evicted:
            log.warning("spool full: evicted %d oldest lines (reported in the next heartbeat)", evicted)
        tailer.commit(chunk)
        self._wake_sender.set()

    def collect_once(self, *, force: bool = False) -> int:
        """One poll of every source; spool what is due. Returns lines spooled."""
        now = time.monotonic()
        spooled = 0
        for tailer in self.tailers:
            tailer.read(self.config.batch_size)
            if not tailer.pending:
                self._first_pending.pop(tailer.source, None)
                continue
            first = self._first_pending.setdefault(tailer.source, now)
            due = (
                force
                or len(tailer.pending) >= self.config.batch_size
                or now - first >= self.config.flush_interval
                or tailer.must_flush
            )
            if not due:
                continue
            chunk = tailer.take()
            if chunk is None:
                continue
            try:
                self._spool_chunk(tailer, chunk)
            except Exception:
                log.exception("cannot spool %s; will read those lines again", tailer.source)
                tailer.rewind()
                continue
            spooled += len(chunk.lines)
            self._first_pending.pop(tailer.source, None)
            # the rest of a big backlog (or the next inode after a rotation) goes out without waiting
            tailer.read(self.config.batch_size)
        spooled += self._collect_journal(now, force)
        spooled += self._collect_wineventlog(now, force)
        return spooled

    def _collect_wineventlog(self, now: float, force: bool) -> int:
        """Query each channel every ``windows_poll_interval``; each batch is spooled with its bookmark."""
        if not self.wineventlog.readers or (now < self._wineventlog_next and not force):
            return 0
        self._wineventlog_next = now + self.config.windows_poll_interval
        identity = self.identity
        assert identity is not None

        def put(batch: WinBatch) -> None:
            bid = batch_id_for(identity.agent_id, batch.source, 0, batch.generation, batch.start, batch.end)
            self.spool.put(bid, batch.source, len(batch.records), self._body(batch.records), batch.offset)
            self._wake_sender.set()

        try:
            return self.wineventlog.collect(self.config.batch_size, put)
        except Exception:
            log.exception("cannot spool Windows events; their bookmark stays, they will be read again")
            return 0

    def _collect_journal(self, now: float, force: bool) -> int:
        if self._journal is None:
            return 0
        room = self.config.batch_size - len(self._journal_pending)
        fresh = self._journal.drain(room)
        if fresh and not self._journal_pending:
            self._journal_first = now
        self._journal_pending.extend(fresh)
        if not self._journal_pending:
            return 0
        if not (force or len(self._journal_pending) >= self.config.batch_size
                or now - self._journal_first >= self.config.flush_interval):  # fmt: skip
            return 0
        assert self.identity is not None
        items = self._journal_pending
        records = [
            self._record(line, journald_mod.SOURCE, None) | {"log.source": "journald"} for _, line in items
        ]
        bid = batch_id_for(self.identity.agent_id, journald_mod.SOURCE, 0, 0, items[0][0], items[-1][0])
        try:
            self.spool.put(
                bid, journald_mod.SOURCE, len(records), self._body(records), Offset(cursor=items[-1][0])
            )
        except Exception:
            log.exception("cannot spool journal entries; keeping them in memory")
            return 0
        self._journal_pending = []
        self._wake_sender.set()
        return len(records)

    # --- shipping ----------------------------------------------------------------------------------
    def send_once(self, client: ServerClient) -> bool:
        """Ship the oldest spooled batch; True when it left the spool (acknowledged or set aside)."""
        batch = self.spool.oldest()
        if batch is None:
            return False
        headers = {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "X-Batch-Id": batch.batch_id,
        }
        resp = client.request("POST", INGEST, batch.body, headers)
        if resp.status == 200:
            self.spool.ack(batch.seq)
            return True
        text = resp.body.decode("utf-8", "replace")[:300]
        if resp.status in (400, 413, 415, 422):
            log.error(
                "server refused batch %s (HTTP %d): %s; set aside in the spool",
                batch.batch_id,
                resp.status,
                text,
            )
            self.spool.reject(batch, f"HTTP {resp.status}: {text}")
            return True
        raise ConnectorError(f"ingest answered HTTP {resp.status}: {text}")

    def _sender_loop(self) -> None:
        client = self.client()
        delay = self.config.backoff_initial
        try:
            while not self.stop_event.is_set():
                try:
                    sent = self.send_once(client)
                except ConnectorError as exc:
                    self.last_error = str(exc)
                    level = logging.ERROR if isinstance(exc, PinMismatch) else logging.WARNING
                    log.log(level, "send failed (retry in %.1fs): %s", delay, exc)
                    # full jitter keeps 2,500 agents from hammering a server that just came back in step
                    self.stop_event.wait(random.uniform(delay / 2, delay))
                    delay = min(delay * 2, self.config.backoff_max)
                    continue
                delay = self.config.backoff_initial
                if not sent:
                    self._wake_sender.wait(1.0)
                    self._wake_sender.clear()
        finally:
            client.close()

    # --- control: heartbeat and commands ----------------------------------------------------------
    def heartbeat_once(self, client: ServerClient) -> dict[str, Any]:
        dropped = self.spool.dropped()
        if self.isolator.record.state == "isolated":
            try:  # rules flushed behind our back (an operator, a firewall reload): put them back
                self.isolator.ensure()
            except IsolationError as exc:
                log.error("isolation lost and could not be re-applied: %s", exc)
        payload = inventory.collect(
            version=AGENT_VERSION,
            host_type=self.config.host_type,
            dropped=dropped,
            isolation=self.isolator.status()
            if self.isolator.record.state == "isolated"
            else {"state": "none"},
        )
        payload["spool"] = dict(zip(("batches", "bytes"), self.spool.pending(), strict=True))
        if self.wineventlog.readers or self.wineventlog.disabled:
            payload["windows_event_logs"] = self.wineventlog.status()
        resp = client.post_json("/api/v1/agents/heartbeat", payload)
        if resp.status != 200:
            raise ConnectorError(f"heartbeat answered HTTP {resp.status}")
        if dropped:
            self.spool.dropped_reported(dropped)
        data: dict[str, Any] = resp.json() or {}
        return data

    def isolation_policy(self) -> IsolationPolicy:
        opts = self.config.isolation
        parts = urlsplit(self.server_url)
        port = opts.manager_port or parts.port or (443 if parts.scheme == "https" else 80)
        addresses = opts.manager_addresses or resolve_manager(parts.hostname or "", port)
        return IsolationPolicy(
            manager_addresses=list(addresses), manager_port=port, dns_resolver=opts.dns_resolver
        )

    def execute(self, command: dict[str, Any]) -> tuple[bool, str]:
        kind = command.get("kind")
        try:
            if kind == "isolate":
                return True, self.isolator.isolate(self.isolation_policy(), command.get("id"))
            if kind == "release":
                return True, self.isolator.release(command.get("id"))
            return False, f"unknown command kind {kind!r}"
        except IsolationError as exc:
            return False, str(exc)

    # --- the on-demand malware scan (runs beside the control loop: heartbeats go on meanwhile) ---------
    def _start_scan(self, command: dict[str, Any]) -> None:
        command_id = str(command["id"])
        with self._scans_lock:
            if command_id in self._scans:
                return  # running, or finished with its result not yet accepted (posted again below)
            self._scans[command_id] = None
        params = command.get("params") or {}
        paths = [str(p) for p in params.get("paths", [])]
        thread = threading.Thread(target=self._scan, args=(command_id, paths), name=f"agent-scan-{command_id[:8]}",
                                  daemon=True)  # fmt: skip
        thread.start()

    def _scan(self, command_id: str, paths: list[str]) -> None:
        identity = self.identity
        assert identity is not None
        count = 0

        def spool_finding(line: str) -> None:  # one batch per finding: it is an alert, it must not wait
            nonlocal count
            count += 1
            record = self._record(line, "scan", None) | {"log.parser": "clamav", "log.source": "clamav-scan"}
            bid = batch_id_for(identity.agent_id, f"scan:{command_id}", 0, 0, count, count)
            self.spool.put(bid, f"scan:{command_id}", 1, self._body([record]), Offset(position=count))
            self._wake_sender.set()

        try:
            result = run_scan(paths, self.config.scan, spool_finding, self.stop_event)
            ok, detail = result.ok, result.detail()
        except Exception as exc:  # a finding that could not be spooled, a broken engine: say so
            log.exception("scan %s failed", command_id)
            ok, detail = False, json.dumps({"scan": "error", "paths": paths, "findings": count, "error": str(exc)})
        log.info("scan %s: %s", command_id, detail)
        with self._scans_lock:
            self._scans[command_id] = json.dumps({"ok": ok, "detail": detail})
        self._post_scan_results()

    def _post_scan_results(self, client: ServerClient | None = None) -> None:
        with self._scans_lock:
            finished = {k: v for k, v in self._scans.items() if v is not None}
        if not finished:
            return
        own = client is None
        client = client or self.client()
        try:
            for command_id, body in finished.items():
                try:
                    result = client.post_json(f"/api/v1/agents/commands/{command_id}/result", json.loads(body))
                except ConnectorError as exc:
                    log.warning("scan %s: result not delivered yet: %s", command_id, exc)
                    return
                if result.status in (200, 404, 409):
                    with self._scans_lock:
                        self._scans.pop(command_id, None)
        finally:
            if own:
                client.close()

    def poll_commands_once(self, client: ServerClient) -> int:
        resp = client.request("GET", "/api/v1/agents/commands")
        if resp.status != 200:
            raise ConnectorError(f"command poll answered HTTP {resp.status}")
        commands = (resp.json() or {}).get("items", [])
        for command in commands:
            if command.get("kind") == "scan":
                self._start_scan(command)
                continue
            ok, detail = self.execute(command)
            log.info("command %s (%s): %s", command.get("id"), command.get("kind"), "done" if ok else detail)
            result = client.post_json(
                f"/api/v1/agents/commands/{command['id']}/result", {"ok": ok, "detail": detail}
            )
            if result.status not in (200, 404, 409):
                raise ConnectorError(f"command result answered HTTP {result.status}")
        self._post_scan_results(client)
        return len(commands)

    def _control_loop(self) -> None:
        client = self.client()
        next_heartbeat = next_poll = 0.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                try:
                    if now >= next_heartbeat:
                        data = self.heartbeat_once(client)
                        next_heartbeat = now + self.config.heartbeat_interval
                        if data.get("commands_pending"):
                            next_poll = now
                    if now >= next_poll:
                        self.poll_commands_once(client)
                        next_poll = now + self.config.command_poll_interval
                except ConnectorError as exc:
                    log.warning("control channel: %s", exc)
                    next_heartbeat = max(next_heartbeat, now + self.config.backoff_initial * 4)
                    next_poll = max(next_poll, now + self.config.backoff_initial * 4)
                self.stop_event.wait(max(0.05, min(next_heartbeat, next_poll) - time.monotonic()))
        finally:
            client.close()

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Enroll if needed, re-apply a persisted isolation, and start the sender and control threads."""
        delay = self.config.backoff_initial
        while True:
            try:
                self.enroll()
                break
            except ConnectorError as exc:  # server not reachable yet: keep trying (a refused token is final)
                log.warning("enrollment failed (retry in %.1fs): %s", delay, exc)
                if self.stop_event.wait(delay):
                    raise
                delay = min(delay * 2, self.config.backoff_max)
        try:
            self.isolator.ensure()
        except IsolationError as exc:
            log.error("could not re-apply isolation at start: %s", exc)
        if self.config.journald:
            if journald_mod.available():
                offset = self.spool.offset(journald_mod.SOURCE)
                self._journal = journald_mod.JournalFollower(offset.cursor if offset else None)
            else:
                log.warning("journald enabled but journalctl is not available; skipping it")
        for target, name in ((self._sender_loop, "sender"), (self._control_loop, "control")):
            thread = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self) -> None:
        """Collect until :meth:`stop` (or SIGTERM via the CLI)."""
        try:
            self.start()
            while not self.stop_event.is_set():
                self.collect_once()
                self.stop_event.wait(self.config.poll_interval)
            self.collect_once(force=True)
        finally:
            self.close()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake_sender.set()

    def close(self) -> None:
        self.stop()
        for thread in self._threads:
            thread.join(timeout=self.config.request_timeout + 5)
        if self._journal is not None:
            self._journal.close()
        for tailer in self.tailers:
            tailer.close()
        self.spool.close()
