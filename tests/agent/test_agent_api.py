"""Enrollment, heartbeat and the command channel on the real app (uvicorn on loopback, real SQLite
store), with the real agent code as the client where it matters."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from soclite.agent_cli import agent as agent_cli
from soclite.collectors.agent.config import AgentConfig
from soclite.collectors.agent.inventory import is_online
from soclite.collectors.agent.runner import Agent
from soclite.config import Settings
from soclite.models import IsolationState, utcnow
from soclite.runtime import Runtime

RULESET = "table inet soclite_isolation {\n\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n\t}\n}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path / "data"))
    yield rt
    rt.close()


@pytest.fixture
def base_url(runtime: Runtime) -> Iterator[str]:
    from soclite.api.app import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def enroll_token(runtime: Runtime, unit: str = "U1", uses: int = 1, hours: float = 24) -> str:
    result = CliRunner().invoke(
        agent_cli,
        ["enroll-token", "create", "--data-dir", str(runtime.settings.data_dir), "--unit", unit,
         "--uses", str(uses), "--expires-hours", str(hours)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("se_")
    return token


def enroll(http: httpx.Client, token: str, hostname: str = "WS-01") -> dict[str, str]:
    resp = http.post(
        "/api/v1/agents/enroll", json={"enroll_token": token, "hostname": hostname, "os": "Debian 12"}
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, str] = resp.json()
    return data


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_enrollment_token_is_one_time_hashed_and_bound_to_its_unit(
    runtime: Runtime, http: httpx.Client
) -> None:
    token = enroll_token(runtime, "U1")
    stored = runtime.agents.db.reader().execute("SELECT secret_hash FROM enroll_tokens").fetchone()[0]
    assert token.split("_", 2)[2] not in stored  # only a hash at rest
    data = enroll(http, token)
    assert data["unit"] == "U1" and data["api_key"].startswith("sl_") and data["host_id"] == "ws-01"
    principal = runtime.identity.authenticate_token(data["api_key"])
    assert principal.role == "agent" and principal.unit == "U1" and principal.id == data["agent_id"]
    again = http.post("/api/v1/agents/enroll", json={"enroll_token": token, "hostname": "WS-02"})
    assert again.status_code == 401 and "used" in again.text
    bogus = http.post("/api/v1/agents/enroll", json={"enroll_token": "se_nope_nope", "hostname": "WS-03"})
    assert bogus.status_code == 401


def test_expired_and_multi_use_tokens(runtime: Runtime, http: httpx.Client) -> None:
    multi = enroll_token(runtime, uses=2)
    enroll(http, multi, "a1")
    enroll(http, multi, "a2")
    assert (
        http.post("/api/v1/agents/enroll", json={"enroll_token": multi, "hostname": "a3"}).status_code == 401
    )
    short = runtime.agents.create_enroll_token(unit="U1", uses=1, expires_hours=0.01)
    with pytest.raises(Exception, match="expired"):
        runtime.agents.consume(short, now=utcnow() + timedelta(hours=1))


def test_agent_key_only_opens_agent_endpoints(runtime: Runtime, http: httpx.Client) -> None:
    key = enroll(http, enroll_token(runtime))["api_key"]
    assert http.get("/api/v1/alerts", headers=auth(key)).status_code == 403
    assert http.get("/api/v1/hosts", headers=auth(key)).status_code == 403
    admin = runtime.identity.create_token(role="admin", name="root")
    beat = {"hostname": "ws-01"}
    assert http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(admin)).status_code == 403
    assert http.post("/api/v1/agents/heartbeat", json=beat).status_code == 401
    assert http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(key)).status_code == 200
    runtime.identity.revoke_token(key.split("_", 2)[1])
    assert http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(key)).status_code == 401


def test_heartbeat_upserts_the_host_and_online_is_computed(runtime: Runtime, http: httpx.Client) -> None:
    data = enroll(http, enroll_token(runtime, "U7"), "Srv-DB")
    beat = {
        "hostname": "Srv-DB", "os": "Debian 12", "host_type": "server", "agent_version": "0.1.0",
        "ips": ["10.0.0.5"], "macs": ["02:00:00:00:00:05"], "dropped": 7, "unit": "EVIL",
    }  # fmt: skip
    # unknown fields are ignored (newer agents), and the unit always comes from the key, never the body
    resp = http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(data["api_key"]))
    assert resp.status_code == 200, resp.text
    host = runtime.store.get_host("srv-db")
    assert host.name == "Srv-DB" and host.type == "server" and host.unit == "U7"
    assert host.ips == ["10.0.0.5"] and host.agent_id == data["agent_id"] and host.agent_version == "0.1.0"
    assert host.last_seen is not None
    settings = runtime.settings
    assert is_online(host, utcnow(), settings)
    assert not is_online(
        host, utcnow() + timedelta(seconds=settings.agent.offline_after_seconds + 1), settings
    )
    assert runtime.agents.dropped_total(data["agent_id"]) == 7


def test_heartbeat_reports_unreadable_windows_channels(
    runtime: Runtime, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    data = enroll(http, enroll_token(runtime, "U7"), "ws-win-01")
    beat = {
        "hostname": "ws-win-01", "os": "Windows 10", "agent_version": "0.1.0",
        "windows_event_logs": {"enabled": True, "channels": {
            "Security": {"state": "access_denied", "detail": "run the agent as SYSTEM"},
            "System": {"state": "ok", "detail": ""},
        }},
    }  # fmt: skip
    with caplog.at_level("WARNING", logger="soclite"):
        for _ in range(3):  # the same state on every heartbeat is reported once, not each time
            resp = http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(data["api_key"]))
            assert resp.status_code == 200, resp.text
    warned = [r.getMessage() for r in caplog.records if "Windows event log" in r.getMessage()]
    assert len(warned) == 1 and "'Security' is access_denied" in warned[0]


def test_isolation_command_round_trip_updates_the_host(runtime: Runtime, http: httpx.Client) -> None:
    data = enroll(http, enroll_token(runtime), "ws-09")
    key = data["api_key"]
    queue = runtime.commands
    command = queue.enqueue("WS-09", "isolate", {"reason": "malware"}, 600, "alert-1:isolate")
    assert queue.enqueue("ws-09", "isolate", {}, 600, "alert-1:isolate").id == command.id  # idempotent
    assert runtime.store.get_host("ws-09").isolation == IsolationState.PENDING
    beat = http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-09"}, headers=auth(key)).json()
    assert beat["commands_pending"] == 1
    items = http.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]
    assert items == [{"id": command.id, "kind": "isolate", "params": {"reason": "malware"}}]
    assert queue.get(command.id).status == "delivered"
    # another agent may not answer for this host
    other = enroll(http, enroll_token(runtime), "ws-10")["api_key"]
    refused = http.post(
        f"/api/v1/agents/commands/{command.id}/result", json={"ok": True, "detail": "x"}, headers=auth(other)
    )
    assert refused.status_code == 403
    ok = http.post(
        f"/api/v1/agents/commands/{command.id}/result",
        json={"ok": True, "detail": RULESET},
        headers=auth(key),
    )
    assert ok.status_code == 200, ok.text
    host = runtime.store.get_host("ws-09")
    assert host.isolation == IsolationState.ISOLATED and host.isolation_detail == RULESET
    assert http.get("/api/v1/agents/commands", headers=auth(key)).json()["items"] == []
    # a heartbeat reporting the same ruleset keeps it; release confirmed → none
    http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-09", "isolation": {"state": "isolated", "ruleset": RULESET}},
              headers=auth(key))  # fmt: skip
    release = queue.enqueue("ws-09", "release", {}, 600, "alert-1:release")
    assert runtime.store.get_host("ws-09").isolation == IsolationState.RELEASE_PENDING
    assert [c["id"] for c in http.get("/api/v1/agents/commands", headers=auth(key)).json()["items"]] == [
        release.id
    ]
    http.post(
        f"/api/v1/agents/commands/{release.id}/result",
        json={"ok": True, "detail": "released"},
        headers=auth(key),
    )
    host = runtime.store.get_host("ws-09")
    assert host.isolation == IsolationState.NONE and host.isolation_detail is None
    actions = [e.action for e in runtime.store.iter_audit()]
    assert (
        "host.isolate.confirmed" in actions
        and "host.release.confirmed" in actions
        and "agent.enroll" in actions
    )


def test_failed_isolation_and_expired_command_are_visible(runtime: Runtime, http: httpx.Client) -> None:
    key = enroll(http, enroll_token(runtime), "ws-11")["api_key"]
    queue = runtime.commands
    cmd = queue.enqueue("ws-11", "isolate", {}, 600, "k1")
    http.get("/api/v1/agents/commands", headers=auth(key))
    http.post(f"/api/v1/agents/commands/{cmd.id}/result", json={"ok": False, "detail": "nft: Operation not permitted"},
              headers=auth(key))  # fmt: skip
    host = runtime.store.get_host("ws-11")
    assert host.isolation == IsolationState.FAILED and "not permitted" in (host.isolation_detail or "")
    late = queue.enqueue("ws-11", "isolate", {}, 10, "k2")
    expired = queue.expire(now=utcnow() + timedelta(seconds=11))
    assert [c.id for c in expired] == [late.id] and queue.get(late.id).status == "expired"
    host = runtime.store.get_host("ws-11")
    # its own state since issue 16 (was "failed"): not delivered in time is not the agent failing
    assert host.isolation == IsolationState.EXPIRED and "expired" in (host.isolation_detail or "")
    assert http.get("/api/v1/agents/commands", headers=auth(key)).json()["items"] == []


def test_real_agent_enrolls_heartbeats_and_reports_a_command(
    runtime: Runtime, base_url: str, tmp_path: Path
) -> None:
    token = enroll_token(runtime, "U3")
    config = AgentConfig(heartbeat_interval=0.2, command_poll_interval=0.2, backoff_initial=0.05)
    agent = Agent(base_url, tmp_path / "state", config, enroll_token=token, platform="sunos5")
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    host_id = agent.hostname.lower()
    deadline = time.monotonic() + 10
    while runtime.store.find_host(host_id) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cmd = runtime.commands.enqueue(host_id, "isolate", {}, 600, "k")
    while runtime.commands.get(cmd.id).status not in ("done", "failed"):
        assert time.monotonic() < deadline + 10
        time.sleep(0.05)
    agent.stop()
    thread.join(10)
    host = runtime.store.get_host(host_id)
    assert host.unit == "U3" and host.agent_id == agent.identity.agent_id  # type: ignore[union-attr]
    assert host.isolation == IsolationState.FAILED and "not implemented on sunos5" in (
        host.isolation_detail or ""
    )


def test_enroll_token_create_is_audited(runtime: Runtime) -> None:
    token = enroll_token(runtime, "U4")  # the CLI prints only the token (checked in enroll_token)
    entries = [e for e in runtime.store.iter_audit() if e.action == "enroll_token.create"]
    assert len(entries) == 1 and entries[0].actor.startswith("cli:") and entries[0].unit == "U4"
    assert entries[0].target == f"enroll-token:{token.split('_', 2)[1]}"
    assert token.split("_", 2)[2] not in entries[0].model_dump_json()


def test_an_agent_key_cannot_take_over_another_host(runtime: Runtime, http: httpx.Client) -> None:
    victim = enroll(http, enroll_token(runtime, "U1"), "srv-db")
    attacker = enroll(http, enroll_token(runtime, "U2"), "ws-evil")["api_key"]
    # Another unit's agent: neither a heartbeat nor an enrollment may rebind the host.
    beat = {"hostname": "SRV-DB", "ips": ["10.9.9.9"], "host_type": "server"}
    r = http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(attacker))
    assert r.status_code == 409 and "admin" in r.text
    r = http.post("/api/v1/agents/enroll", json={"enroll_token": enroll_token(runtime, "U2"), "hostname": "srv-db"})
    assert r.status_code == 409
    # The same unit, another agent: still refused on heartbeat.
    same_unit = enroll(http, enroll_token(runtime, "U1"), "ws-other")["api_key"]
    assert http.post("/api/v1/agents/heartbeat", json=beat, headers=auth(same_unit)).status_code == 409
    host = runtime.store.get_host("srv-db")
    assert host.unit == "U1" and host.agent_id == victim["agent_id"] and "10.9.9.9" not in host.ips
    denied = [e for e in runtime.store.iter_audit() if e.action == "agent.bind.denied"]
    assert len(denied) == 3 and all(e.target == "host:srv-db" for e in denied)
    # The owner keeps reporting.
    assert http.post("/api/v1/agents/heartbeat", json={"hostname": "srv-db"}, headers=auth(victim["api_key"])).status_code == 200


def test_reenrollment_needs_a_token_of_the_same_unit_and_revokes_the_old_key(
    runtime: Runtime, http: httpx.Client
) -> None:
    first = enroll(http, enroll_token(runtime, "U1"), "ws-20")
    second = enroll(http, enroll_token(runtime, "U1"), "ws-20")  # agent lost its state: same unit, new token
    assert second["agent_id"] != first["agent_id"]
    assert runtime.store.get_host("ws-20").agent_id == second["agent_id"]
    assert http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-20"}, headers=auth(first["api_key"])).status_code == 401
    assert http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-20"}, headers=auth(second["api_key"])).status_code == 200
    reenroll = [e for e in runtime.store.iter_audit() if e.action == "agent.reenroll"]
    assert len(reenroll) == 1 and reenroll[0].before == {"agent_id": first["agent_id"]}


def test_admin_unbind_lets_another_agent_bind(runtime: Runtime, http: httpx.Client) -> None:
    old = enroll(http, enroll_token(runtime, "U1"), "ws-30")
    new_key = enroll(http, enroll_token(runtime, "U2"), "ws-31")["api_key"]
    assert http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-30"}, headers=auth(new_key)).status_code == 409
    analyst = runtime.identity.create_token(role="analyst")
    assert http.post("/api/v1/hosts/ws-30/unbind", headers=auth(analyst)).status_code == 403
    admin = runtime.identity.create_token(role="admin", name="root")
    r = http.post("/api/v1/hosts/ws-30/unbind", headers=auth(admin))
    assert r.status_code == 200, r.text
    assert http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-30"}, headers=auth(old["api_key"])).status_code == 401
    assert http.post("/api/v1/agents/heartbeat", json={"hostname": "ws-30"}, headers=auth(new_key)).status_code == 200
    host = runtime.store.get_host("ws-30")
    assert host.unit == "U2" and host.agent_id == new_key.split("_")[1]
    assert [e.actor for e in runtime.store.iter_audit() if e.action == "host.unbind"] == ["token:root"]
