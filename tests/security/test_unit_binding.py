"""Issue 13, item 1: nobody acts outside their unit.

The attack: an agent of unit A posts a ClamAV line naming a host of unit B. Before the fix the
event's host came from the body and its unit from the key, so the alert was unit A's but named B's
host, the malware playbook queued the isolation of B's host, A's admin approved it, B's agent
received the command, and the same ingest flipped B's host online. Real app (uvicorn), real
enrollment, real Sigma engine, pipeline, playbook runner and worker.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn

from soclite.collectors.sources import REPORTED_HOST
from soclite.config import Settings
from soclite.correlator.engine import Engine
from soclite.models import Unit, utcnow
from soclite.pipeline import Pipeline
from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.runner import PlaybookRunner
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from soclite.store import AlertQuery, EventQuery
from soclite.store.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
LINE = "<38>Dec  6 22:00:00 ws-b-02 clamd[1]: /tmp/q.exe: Win.Trojan.X FOUND"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        environment="test", data_dir=tmp_path / "data", playbooks=[ROOT / "playbooks"],
        correlator={"rules": [ROOT / "rules" / "antivirus"], "ioc_files": []},
    )  # fmt: skip
    rt = Runtime.build(settings)
    rt.journal = Journal.from_settings(settings)
    rt.engine = Engine.from_settings(settings)
    rt.playbooks = PlaybookRunner.from_runtime(rt)
    for unit in (Unit(code="unit-a", name="A"), Unit(code="unit-b", name="B")):
        rt.store.put_unit(unit)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[httpx.Client]:
    from soclite.api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        yield c
    server.should_exit = True
    thread.join(10)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enroll(client: httpx.Client, runtime: Runtime, unit: str, hostname: str) -> str:
    token = runtime.agents.create_enroll_token(unit=unit)
    r = client.post("/api/v1/agents/enroll", json={"enroll_token": token, "hostname": hostname})
    assert r.status_code == 200, r.text
    return str(r.json()["api_key"])


def test_an_agent_of_unit_a_cannot_get_unit_b_host_isolated(client: httpx.Client, runtime: Runtime) -> None:
    key_a = enroll(client, runtime, "unit-a", "ws-a-01")
    key_b = enroll(client, runtime, "unit-b", "ws-b-02")
    admin_a = runtime.identity.create_token(role="admin", unit="unit-a", name="admin-a")
    an_hour_ago = utcnow() - timedelta(hours=1)
    runtime.store.update_host("ws-b-02", {"last_seen": an_hour_ago})

    r = client.post("/api/v1/ingest", content=orjson.dumps({"message": LINE}) + b"\n",
                    headers={**auth(key_a), "X-Batch-Id": "attack-1"})  # fmt: skip
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    pipeline = Pipeline(runtime)
    assert pipeline.run_once() == 1
    # bulk event storage is the journal's other consumer: run it so the event is stored too
    assert pipeline.storage is not None and pipeline.storage.run_once() == 1

    # The event is the sending agent's host; the name in the body is kept as evidence only.
    event = runtime.store.query_events(EventQuery()).items[0]
    assert (event["host.name"], event[REPORTED_HOST], event["soclite.unit"]) == ("ws-a-01", "ws-b-02", "unit-a")
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert alerts and all(a.host == "ws-a-01" and a.unit == "unit-a" for a in alerts)
    # B's host was not made "online" by A's event.
    assert runtime.store.get_host("ws-b-02").last_seen == an_hour_ago

    # A's admin approves every isolation it is shown; none of them reaches B's host.
    actions = client.get("/api/v1/actions", headers=auth(admin_a)).json()["items"]
    targets = {a["params"]["host_id"] for a in actions if a["action"] == "isolate_host"}
    assert "ws-b-02" not in targets
    for action in actions:
        if action["status"] == "awaiting_approval":
            assert client.post(f"/api/v1/actions/{action['id']}/approve", headers=auth(admin_a)).status_code == 200
    Worker(runtime).run_once()
    polled = client.get("/api/v1/agents/commands", params={"wait": 0}, headers=auth(key_b))
    assert polled.status_code == 200, polled.text
    assert polled.json()["items"] == []
    assert runtime.commands.list_for_host("ws-b-02") == []


def test_an_alert_of_one_unit_naming_another_units_host_is_refused_at_every_step(
    client: httpx.Client, runtime: Runtime
) -> None:
    """Defence in depth: an alert whose unit differs from its host's (e.g. stored before the fix)."""
    from tests.playbooks.support import make_alert

    enroll(client, runtime, "unit-b", "ws-b-02")
    admin_a = runtime.identity.create_token(role="admin", unit="unit-a", name="admin-a")
    admin_b = runtime.identity.create_token(role="admin", unit="unit-b", name="admin-b")
    alert = make_alert(unit="unit-a", host="ws-b-02")
    record = runtime.outbox.submit(
        "isolate_host", {"host_id": "ws-b-02"}, idempotency_key="x1", alert_id=alert.id,
        requested_by="playbook:malware", requires_approval=True, payload=alert.model_dump(mode="json"),
    )  # fmt: skip
    # The action is the target host's unit's: A's admin does not see it ...
    assert client.post(f"/api/v1/actions/{record.id}/approve", headers=auth(admin_a)).status_code == 404
    # ... and B's admin may not approve an action raised by another unit's alert.
    refused = client.post(f"/api/v1/actions/{record.id}/approve", headers=auth(admin_b))
    assert refused.status_code == 403 and "unit" in refused.json()["detail"]
    # Even approved by other means, the action itself refuses to run.
    runtime.outbox.approve(record.id, "root")
    Worker(runtime).run_once()
    assert runtime.outbox.get(record.id).status == ActionStatus.DEAD
    assert runtime.commands.list_for_host("ws-b-02") == []
