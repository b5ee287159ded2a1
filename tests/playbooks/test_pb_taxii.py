"""STIX 2.1 over TAXII 2.1 against the OASIS medallion server running as a subprocess.

medallion is killed mid-stream while alerts keep coming and started again (its data survives through
``medallion_file_backend``); every alert must then be in the push collection exactly once. Indicators the
national side adds to another collection come back as IoC lists in the correlator and produce IoC hits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import stix2
from taxii2client.v21 import Collection, as_pages

from soclite.correlator.engine import Engine
from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.runner import PlaybookRunner
from soclite.playbooks.schema import load_playbooks
from soclite.playbooks.worker import Worker
from tests.playbooks.support import build_runtime, make_alert, make_settings, wait_for

ROOT = Path(__file__).resolve().parents[2]
PUSH, PULL = "5f1e7b0c-0000-4000-8000-000000000001", "5f1e7b0c-0000-4000-8000-000000000002"
USER, PASSWORD = "tinh-mau", "s3cret-taxii"
PLAYBOOK = """\
id: national-fast
trigger: {on: [created], match: {severity: [high, medium]}}
steps:
  - name: national
    action: national_sync
    retry: {count: 2, backoff: 0.1, factor: 2, max_backoff: 0.4}
    timeout: 20
"""


def _collection(cid: str, title: str) -> dict[str, Any]:
    return {
        "id": cid,
        "title": title,
        "description": title,
        "can_read": True,
        "can_write": True,
        "media_types": ["application/stix+json;version=2.1"],
        "objects": [],
        "manifest": [],
    }


class Medallion:
    def __init__(self, folder: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.data = folder / "medallion-data.json"
        root = f"http://127.0.0.1:{self.port}/api1/"
        self.data.write_text(
            json.dumps(
                {
                    "/discovery": {
                        "title": "national",
                        "description": "test",
                        "default": root,
                        "api_roots": [root],
                    },
                    "api1": {
                        "information": {
                            "title": "api1",
                            "description": "national api root",
                            "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 50_000_000,
                        },
                        "status": [],
                        "collections": [
                            _collection(PUSH, "alerts from provinces"),
                            _collection(PULL, "indicators"),
                        ],
                    },
                }
            )
        )
        self.config = folder / "medallion.json"
        self.config.write_text(
            json.dumps(
                {
                    "users": {USER: PASSWORD},
                    "taxii": {"max_page_size": 100},
                    "backend": {
                        "module": "tests.playbooks.medallion_file_backend",
                        "module_class": "FileBackend",
                        "filename": str(self.data),
                    },
                }
            )
        )
        self.log = folder / "medallion.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_root = root

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "medallion.scripts.run",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    str(self.config),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.05)
        raise AssertionError("medallion did not start: " + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # a hard outage, not a polite shutdown
        self.proc.wait(10)

    def collection(self, cid: str) -> Collection:
        return Collection(f"{self.api_root}collections/{cid}/", user=USER, password=PASSWORD)


@pytest.fixture
def medallion(tmp_path: Path) -> Any:
    server = Medallion(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


def all_objects(collection: Collection) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in as_pages(collection.get_objects, per_request=100):
        found.extend(page.get("objects", []))
    return found


@pytest.mark.slow
def test_every_alert_exactly_once_through_an_outage_and_indicators_come_back(
    tmp_path: Path, medallion: Medallion
) -> None:
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "national.yml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "pb" / "ioc.yml").write_text(
        (ROOT / "playbooks" / "ioc-hit-national.yml").read_text(), encoding="utf-8"
    )
    settings = make_settings(
        tmp_path,
        playbooks=[tmp_path / "pb"],
        national={
            "enabled": True,
            "kind": "taxii",
            "taxii_url": medallion.api_root,
            "taxii_push_collection": PUSH,
            "taxii_pull_collection": PULL,
            "username": USER,
            "password": PASSWORD,
            "heartbeat_seconds": 3600,
            "pull_seconds": 3600,
            "pseudonymize_users": True,
            "hmac_secret": "k" * 32,
        },
    )
    runtime = build_runtime(settings)
    runtime.engine = Engine.from_settings(settings)
    playbooks, problems = load_playbooks([tmp_path / "pb"])
    assert problems == []
    runner = PlaybookRunner(runtime, playbooks)
    worker = Worker(runtime, poll_seconds=0.05)
    worker.start()
    alerts = []

    def emit(n: int) -> None:
        for i in range(n):
            alert = make_alert(
                level="high" if i % 2 else "medium",
                event={
                    "host.name": "ws-001",
                    "user.name": "tranthib",
                    "source.ip": "10.1.2.3",
                    "dns.question.name": "Bad.Example.",
                    "event.original": "raw line with tranthib",
                },
            )
            alerts.append(alert)
            runner.on_alert(alert, "created")

    try:
        emit(6)
        wait_for(lambda: runtime.outbox.connector_status("taxii").sent >= 3)
        medallion.kill()  # mid-stream
        emit(6)
        wait_for(lambda: runtime.outbox.connector_status("taxii").last_error is not None)
        assert runtime.outbox.connector_status("taxii").backlog > 0
        time.sleep(0.5)  # several failed rounds while it is down
        medallion.start()
        wait_for(lambda: runtime.outbox.connector_status("taxii").backlog == 0, timeout=60)
        # The same snapshot sent again (as after a lost acknowledgement) cannot make a second copy.
        first = runtime.outbox.list_actions(alert_id=alerts[0].id)[0]
        again = runtime.outbox.submit(
            "national_sync",
            {},
            idempotency_key=first.idempotency_key + ":resend",
            requested_by="test",
            payload=first.payload,
        )
        wait_for(lambda: runtime.outbox.get(again.id).status == ActionStatus.SUCCEEDED)
        objects = all_objects(medallion.collection(PUSH))
        sightings = Counter(o["x_soclite_alert_id"] for o in objects if o["type"] == "sighting")
        assert set(sightings) == {a.id for a in alerts}
        assert all(count == 1 for count in sightings.values()), sightings
        incidents = [o for o in objects if o["type"] == "incident"]
        assert {o["x_soclite_alert_id"] for o in incidents} == {a.id for a in alerts if a.severity == "high"}
        for obj in objects:  # every object is valid STIX 2.1
            stix2.parse(obj, allow_custom=True)
        assert any(o["type"] == "note" and "x_soclite_heartbeat" in o for o in objects)  # heartbeat at start
        ids = Counter(o["id"] for o in objects)
        assert all(n == 1 for n in ids.values())  # nothing at all duplicated (rule indicator, identity, SCOs)
        # Personal data kept to the minimum: the account is a pseudonym, the raw line is not sent.
        assert "tranthib" not in json.dumps(objects)
        assert all(
            o["x_soclite_event"]["user.name"].startswith("pseud-") for o in objects if o["type"] == "sighting"
        )
        assert runtime.outbox.list_actions(status="dead") == []

        # --- indicators from the national side come back as IoC lists and IoC hits ----------------
        national = medallion.collection(PULL)
        indicator_ip = stix2.Indicator(
            pattern="[ipv4-addr:value = '203.0.113.7']",
            pattern_type="stix",
            valid_from="2026-01-01T00:00:00Z",
        )
        indicator_dom = stix2.Indicator(
            pattern="[domain-name:value = 'c2.example.net' OR url:value = 'http://c2.example.net/x']",
            pattern_type="stix",
            valid_from="2026-01-01T00:00:00Z",
        )
        national.add_objects(
            json.dumps(
                {"objects": [json.loads(indicator_ip.serialize()), json.loads(indicator_dom.serialize())]}
            )
        )
        assert worker.pull_indicators() == 3
        assert runtime.engine.iocs.lists() == {"national:ip": 1, "national:domain": 1, "national:url": 1}
        cursor = runtime.outbox.connector_status("taxii").cursor
        assert cursor
        time.sleep(0.01)
        later = stix2.Indicator(
            pattern="[ipv4-addr:value = '198.51.100.9']",
            pattern_type="stix",
            valid_from="2026-01-01T00:00:00Z",
        )
        national.add_objects(json.dumps({"objects": [json.loads(later.serialize())]}))
        assert worker.pull_indicators() == 1  # only what was added after the cursor
        assert runtime.engine.iocs.lists()["national:ip"] == 2
        hits = runtime.engine.process(
            {
                "@timestamp": "2026-11-23T10:00:00.000Z",
                "event.id": "e1",
                "host.name": "ws-002",
                "destination.ip": "198.51.100.9",
                "soclite.unit": "so-a",
            }
        )
        ioc_alerts = [a for a in hits if a.kind == "ioc"]
        assert ioc_alerts and ioc_alerts[0].rule_id == "ioc:national:ip"
        # ... and the IoC hit itself goes back to the national system (shipped ioc-hit playbook).
        records = runner.on_alert(ioc_alerts[0], "created")
        assert "national_sync" in {r.action for r in records}
        wait_for(lambda: all(runtime.outbox.get(r.id).status == ActionStatus.SUCCEEDED for r in records))
        sightings = [o for o in all_objects(medallion.collection(PUSH)) if o["type"] == "sighting"]
        assert ioc_alerts[0].id in {o["x_soclite_alert_id"] for o in sightings}
    finally:
        worker.stop()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()
