"""The pipeline in its own process, with real processes: `soclite server` and its pipeline worker child.

One server for the module (starting it loads the rules twice: server and child). Events go in through
POST /api/v1/ingest with an agent key; what comes out is read through the API. Each test uses its own
host names so they do not see each other's events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from soclite.playbooks.outbox import Outbox
from tests.collectors.conftest import free_port

pytestmark = pytest.mark.e2e

MARK_RULE = "5f2a9c1e-0b7d-4c1a-9e3f-6a8b7c6d5e01"
OTHER_RULE = "5f2a9c1e-0b7d-4c1a-9e3f-6a8b7c6d5e02"
RULES = f"""
title: Pipeline-process test marker
id: {MARK_RULE}
status: test
level: medium
logsource:
    product: linux
detection:
    selection:
        process.command_line|contains: pp-marker
    condition: selection
---
title: Pipeline-process test other marker
id: {OTHER_RULE}
status: test
level: medium
logsource:
    product: linux
detection:
    selection:
        process.command_line|contains: pp-other
    condition: selection
"""


class Server:
    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"
        self.config = root / "soclite.yml"
        (root / "rules").mkdir()
        (root / "rules" / "test.yml").write_text(RULES)
        (root / "playbooks").mkdir()  # no playbooks: these alerts trigger nothing outside
        self.config.write_text(orjson.dumps({
            "environment": "development", "correlator": {"rules": [str(root / "rules")]},
            "playbooks": [str(root / "playbooks")],
        }).decode())  # fmt: skip
        self.http_port = free_port()
        self.env = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=30)
        self.admin = ""
        self.agent = ""

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "soclite.cli", *args], capture_output=True, text=True,
                              check=True, env=self.env).stdout.strip()  # fmt: skip

    def start(self) -> None:
        self.data_dir.mkdir()
        code = ("import sys; from soclite.config import load_cli_settings; from soclite.store import open_store; "
                "from soclite.models import Unit; s = open_store(load_cli_settings(None, data_dir=sys.argv[1])); "
                "s.put_unit(Unit(code='so-pp', name='so-pp')); s.close()")  # fmt: skip
        subprocess.run([sys.executable, "-c", code, str(self.data_dir)], check=True, env=self.env)
        self.admin = self.cli("token", "create", "--data-dir", str(self.data_dir), "--role", "admin")
        self.agent = self.cli("token", "create", "--data-dir", str(self.data_dir), "--role", "agent", "--unit", "so-pp")
        self.launch()

    def launch(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "soclite.cli", "server", "--config", str(self.config), "--data-dir",
             str(self.data_dir), "--http-port", str(self.http_port), "--syslog-port", "0"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip
        wait_for(lambda: self.health() is not None, 60, "server up")
        wait_for(lambda: self.worker_pid() is not None, 30, "pipeline worker started")
        wait_for(lambda: self.storage_pid() is not None, 30, "storage worker started")

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")[-4000:]

    def health(self) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        try:
            r = self.client.get("/health", timeout=2)
        except httpx.HTTPError:
            return None
        return dict(r.json()) if r.status_code == 200 else None

    def worker_pid(self, module: bytes = b"soclite.pipeline_worker") -> int | None:
        """The server's pipeline worker child, found through /proc (any thread may have spawned it)."""
        assert self.proc is not None
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if module in cmdline:
                    return int(pid)
        return None

    def storage_pid(self) -> int | None:
        return self.worker_pid(b"soclite.storage_worker")

    def ingest(self, events: list[dict[str, Any]], batch_id: str) -> None:
        r = self.client.post("/api/v1/ingest", content=b"\n".join(orjson.dumps(e) for e in events),
                             headers={"Authorization": f"Bearer {self.agent}", "X-Batch-Id": batch_id})  # fmt: skip
        assert r.status_code == 200, r.text

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.admin}"})
        assert r.status_code == 200, r.text
        return r.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        r = self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {self.admin}"})
        assert r.status_code in (200, 201), r.text
        return r.json()

    def events_of(self, host: str) -> int:
        return int(self.get("/api/v1/events", host=host, limit=1)["total"])

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        """Every alert matching ``params`` (all pages)."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get("/api/v1/alerts", limit=500, **params, **({"cursor": cursor} if cursor else {}))
            items.extend(page["items"])
            cursor = page.get("next")
            if not cursor:
                return items

    def stop(self) -> None:
        self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.1)


def event(host: str, n: int, command: str, **extra: Any) -> dict[str, Any]:
    return {"@timestamp": "2026-11-23T10:00:00Z", "event.id": f"{host}-{n:06d}", "host.name": host,
            "logsource.product": "linux", "process.command_line": command, **extra}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("pp"))
    srv.start()
    yield srv
    srv.stop()


class Applied:
    """Waits for the pipeline child to log that it applied a change (it polls control.db every second).

    Counted from before the change: the child logs each line once per change it picks up, so one more
    line than before means this change is in its engine (a sleep was not enough on a loaded CI machine).
    """

    def __init__(self, server: Server, line: str) -> None:
        self.server, self.line = server, line
        self.before = self._count()

    def _count(self) -> int:
        return (self.server.data_dir / "server.log").read_text(errors="replace").count(self.line)

    def wait(self, timeout: float = 30) -> None:
        wait_for(lambda: self._count() > self.before, timeout, f"the pipeline child to log {self.line!r}")


def test_sigkill_of_the_worker_restarts_it_and_loses_or_doubles_nothing(server: Server) -> None:
    # Every 10th event matches, each on its own host, so every match is its own alert (count 1): a match
    # processed twice (replayed after the kill) would show as a count of 2.
    total, batch, command = 10_000, 200, "/bin/pp-marker --kill"
    events = [event("pp-kill" if i % 10 else f"pp-kill-{i:05d}", i, command if i % 10 == 0 else "ls")
              for i in range(total)]  # fmt: skip
    first_pid = server.worker_pid()
    assert first_pid is not None
    sent = threading.Event()

    def stream() -> None:
        for b in range(0, total, batch):
            server.ingest(events[b : b + batch], f"kill-{b}")
            time.sleep(0.01)
        sent.set()

    sender = threading.Thread(target=stream)
    sender.start()
    wait_for(lambda: server.events_of("pp-kill") > 2000, 30, "the pipeline is consuming")
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: server.worker_pid() not in (None, first_pid), 20, "a new pipeline worker")
    sender.join(60)
    assert sent.is_set()
    warnings = server.health()
    assert warnings is not None and any("restarted 1 time" in w for w in warnings["warnings"]), warnings

    def matched() -> int:
        return int(server.get("/api/v1/events", field=f"process.command_line={command}", limit=1)["total"])

    wait_for(lambda: server.events_of("pp-kill") + matched() >= total, 60, "every event in the store")
    assert (server.events_of("pp-kill"), matched()) == (total - total // 10, total // 10)

    def kill_alerts_now() -> list[dict]:
        return [a for a in server.alerts(rule_id=MARK_RULE) if str(a["host"]).startswith("pp-kill-")]

    # A batch's events are stored before its alerts: wait for the last batch's alerts too.
    wait_for(lambda: len(kill_alerts_now()) >= total // 10, 60, "every alert in the store")
    kill_alerts = kill_alerts_now()
    assert len(kill_alerts) == total // 10
    assert {a["count"] for a in kill_alerts} == {1}
    assert all(a["unit"] == "so-pp" for a in kill_alerts)
    # Both journal consumers are through (kill -9 of the child mid-batch lost nothing for either).
    wait_for(lambda: (server.health() or {}).get("journal_lag") == {"detection": 0, "storage": 0}, 60, "no lag")


def test_alerts_come_while_the_storage_worker_is_stopped_and_storage_then_catches_up(server: Server) -> None:
    """SIGSTOP freezes the storage child (even inside a write transaction, holding its day file's lock)."""
    total, command = 3000, "/bin/pp-marker --stall"
    events = [event("pp-stall" if i % 100 else f"pp-stall-{i:05d}", i, command if i % 100 == 0 else "ls")
              for i in range(total)]  # fmt: skip
    storage = server.storage_pid()
    assert storage is not None
    os.kill(storage, signal.SIGSTOP)
    try:
        for b in range(0, total, 500):
            server.ingest(events[b : b + 500], f"stall-{b}")

        def stall_alerts() -> list[dict]:
            return [a for a in server.alerts(rule_id=MARK_RULE) if str(a["host"]).startswith("pp-stall-")]

        wait_for(lambda: len(stall_alerts()) == total // 100, 60, "every alert while storage is stopped")
        alert = stall_alerts()[0]
        detail = server.get(f"/api/v1/alerts/{alert['id']}")
        assert detail["events"] and detail["events"][0]["process.command_line"] == command, detail.keys()
        health = server.health()
        assert health is not None and health["journal_lag"]["storage"] >= total - 10, health
        assert health["journal_lag"]["detection"] == 0
        assert server.events_of("pp-stall") == 0
    finally:
        os.kill(storage, signal.SIGCONT)
    wait_for(lambda: (server.health() or {}).get("journal_lag", {}).get("storage") == 0, 60, "storage caught up")
    assert server.events_of("pp-stall") == total - total // 100
    matched = int(server.get("/api/v1/events", field=f"process.command_line={command}", limit=1)["total"])
    assert matched == total // 100


def test_sigkill_of_the_storage_worker_restarts_it_and_loses_or_doubles_nothing(server: Server) -> None:
    total, batch = 20_000, 500
    events = [event("pp-skill", i, "ls") for i in range(total)]
    first = server.storage_pid()
    assert first is not None
    for b in range(0, total, batch):
        server.ingest(events[b : b + batch], f"skill-{b}")
    wait_for(lambda: server.events_of("pp-skill") > 0, 30, "storage is writing")
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: server.storage_pid() not in (None, first), 30, "a new storage worker")
    wait_for(lambda: (server.health() or {}).get("journal_lag", {}).get("storage") == 0, 90, "storage caught up")
    assert server.events_of("pp-skill") == total
    health = server.health()
    assert health is not None and any("event storage: worker process restarted 1 time" in w
                                      for w in health["warnings"]), health  # fmt: skip


def test_an_exception_made_through_the_api_reaches_the_worker(server: Server) -> None:
    applied = Applied(server, "exceptions applied to the pipeline engine")
    exc = server.send("POST", "/api/v1/exceptions", {
        "rule_id": MARK_RULE, "match": {"host.name": "pp-exc-quiet"}, "owner": "soc", "reason": "known backup job",
    })  # fmt: skip
    applied.wait()
    server.ingest([event("pp-exc-quiet", i, "pp-marker backup") for i in range(5)]
                  + [event("pp-exc-loud", i, "pp-marker backup") for i in range(5)], "exc-1")  # fmt: skip
    wait_for(lambda: server.events_of("pp-exc-quiet") == 5 and server.events_of("pp-exc-loud") == 5, 20, "events")
    # detection has its own consumer: the loud host's events come after the quiet one's in the same batch
    wait_for(lambda: [a["count"] for a in server.alerts(host="pp-exc-loud")] == [5], 20, "the loud host's alert")
    assert server.alerts(host="pp-exc-quiet") == []
    loud = server.alerts(host="pp-exc-loud")
    assert [a["count"] for a in loud] == [5]

    # The child writes its counts every few seconds; the API's lists show them.
    def suppressed() -> int:
        items = server.get("/api/v1/exceptions")["items"]
        return int(next(i for i in items if i["id"] == exc["id"])["suppressed"])

    wait_for(lambda: suppressed() == 5, 15, "the exception's suppressed count")
    hits = {r["id"]: r["hits"] for r in server.get("/api/v1/rules")["items"]}
    assert hits[MARK_RULE] >= 5


def test_a_rule_disabled_through_the_api_stops_alerting_in_the_worker(server: Server) -> None:
    applied = Applied(server, "rule enable/disable states applied")
    server.send("PATCH", f"/api/v1/rules/{OTHER_RULE}", {"enabled": False})
    applied.wait()
    server.ingest([event("pp-rule", 0, "pp-other"), event("pp-rule", 1, "pp-marker")], "rule-1")
    wait_for(lambda: server.events_of("pp-rule") == 2, 20, "events")
    # events and alerts are written by different journal consumers: wait for detection too
    wait_for(lambda: server.alerts(host="pp-rule"), 20, "the marker's alert")
    assert [a["rule_id"] for a in server.alerts(host="pp-rule")] == [MARK_RULE]

    applied = Applied(server, "rule enable/disable states applied")
    server.send("PATCH", f"/api/v1/rules/{OTHER_RULE}", {"enabled": True})
    applied.wait()
    server.ingest([event("pp-rule", 2, "pp-other")], "rule-2")
    wait_for(lambda: server.events_of("pp-rule") == 3, 20, "events")
    wait_for(lambda: len(server.alerts(host="pp-rule")) == 2, 20, "the re-enabled rule's alert")
    assert sorted(a["rule_id"] for a in server.alerts(host="pp-rule")) == sorted([MARK_RULE, OTHER_RULE])


def test_an_ioc_list_added_by_the_servers_playbook_worker_reaches_the_worker(server: Server) -> None:
    # Submitted to the outbox as a playbook would: the server's action worker runs add_ioc, which keeps the
    # list in control.db and sets it in the server's engine; the pipeline child must pick it up from there.
    applied = Applied(server, "IoC list playbook:pp-test applied")
    outbox = Outbox(server.data_dir / "control.db")
    try:
        record = outbox.submit("add_ioc", {"list_name": "pp-test", "kind": "ip", "values": ["198.51.100.77"]},
                               idempotency_key="pp-ioc-1", requested_by="test")  # fmt: skip
        wait_for(lambda: outbox.get(record.id).status.value == "succeeded", 20, "add_ioc ran in the server")
    finally:
        outbox.close()
    applied.wait()
    server.ingest([event("pp-ioc", 0, "curl", **{"source.ip": "198.51.100.77"}),
                   event("pp-ioc", 1, "curl", **{"source.ip": "198.51.100.78"})], "ioc-1")  # fmt: skip
    wait_for(lambda: server.events_of("pp-ioc") == 2, 20, "events")
    # events and alerts are written by different journal consumers: wait for detection too
    wait_for(lambda: server.alerts(host="pp-ioc"), 20, "the IoC alert")
    alerts = server.alerts(host="pp-ioc")
    assert [a["rule_id"] for a in alerts] == ["ioc:playbook:pp-test"]
    assert alerts[0]["count"] == 1


def test_stopping_the_server_stops_the_worker_which_saves_its_state(server: Server) -> None:
    assert server.proc is not None
    state = server.data_dir / "correlator" / "correlation-state.json"
    state.unlink(missing_ok=True)
    pid = server.worker_pid()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0
    assert not Path(f"/proc/{pid}").exists()
    assert state.exists()  # written by the worker on its way out (the server's own engine keeps no state)
    assert "killing it" not in server.log()


def test_a_worker_orphaned_by_a_killed_server_stops_by_itself(server: Server) -> None:
    server.launch()
    pid = server.worker_pid()
    assert server.proc is not None and pid is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    # Its stdin pipe closed with the server: it finishes its batch and exits (a new server's worker would
    # otherwise wait for it on data_dir/pipeline.lock).
    def gone() -> bool:
        try:  # gone, or a zombie nobody reaped yet (its parent was killed)
            return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            return True

    wait_for(gone, 20, "the orphaned worker exits")
    assert "the server is gone; pipeline worker stopping" in server.log()
