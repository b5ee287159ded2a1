"""Re-keying an agent end to end with real processes (issue 16): `soclite server`, a real `soclite agent`
enrolled with an enrolment token, an admin's re-key (a one-use re-enrolment token), the agent started again
with it on an empty state directory: the new key works, the old one is refused, the listing says so."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.test_agent_e2e import ROOT, SOCLITE, ServerProcess, cli, server  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _wait(check: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def _agent(base: str, token: str, state: Path, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [SOCLITE, "agent", "--server", base, "--enroll-token", token, "--state-dir", str(state),
             "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_rekey_issues_a_new_key_through_re_enrolment_and_retires_the_old_one(
    server: ServerProcess, tmp_path: Path  # noqa: F811
) -> None:
    env = server.env
    base = f"http://127.0.0.1:{server.port}"
    admin = {"Authorization": "Bearer " + cli("token", "create", "--data-dir", str(server.data_dir),
                                              "--role", "admin", env=env)}  # fmt: skip
    made = httpx.post(f"{base}/api/v1/agents/enroll-tokens", json={"unit": None, "uses": 1}, headers=admin)
    assert made.status_code == 201, made.text
    config = tmp_path / "agent.yml"
    config.write_text("files: []\nheartbeat_interval: 1\npoll_interval: 0.2\nbackoff_initial: 0.1\nbackoff_max: 1\n")

    def agents() -> list[dict[str, Any]]:
        return list(httpx.get(f"{base}/api/v1/agents", headers=admin).json()["items"])

    first = _agent(base, made.json()["token"], tmp_path / "state1", config, tmp_path / "agent1.log")
    try:
        old = _wait(lambda: next((a for a in agents() if a["last_heartbeat"] and a["key"] == "active"), None))
    finally:
        _stop(first)
    old_key = (tmp_path / "state1" / "agent.key").read_text().strip()
    beat = {"hostname": old["hostname"]}
    assert httpx.post(f"{base}/api/v1/agents/heartbeat", json=beat,
                      headers={"Authorization": f"Bearer {old_key}"}).status_code == 200
    rekey = httpx.post(f"{base}/api/v1/agents/{old['id']}/rekey", headers=admin)
    assert rekey.status_code == 200, rekey.text
    second = _agent(base, rekey.json()["token"], tmp_path / "state2", config, tmp_path / "agent2.log")
    try:
        new = _wait(lambda: next((a for a in agents() if a["id"] != old["id"] and a["last_heartbeat"]), None))
        assert new["hostname"] == old["hostname"] and new["key"] == "active"
        assert next(a for a in agents() if a["id"] == old["id"])["key"] == "revoked"
        assert httpx.post(f"{base}/api/v1/agents/heartbeat", json=beat,
                          headers={"Authorization": f"Bearer {old_key}"}).status_code == 401
        # the re-enrolment token was for one use only
        again = httpx.post(f"{base}/api/v1/agents/enroll", json={"enroll_token": rekey.json()["token"],
                                                                 "hostname": old["hostname"]})  # fmt: skip
        assert again.status_code == 401
    finally:
        _stop(second)
    actions = httpx.get(f"{base}/api/v1/audit", params={"limit": 200}, headers=admin).json()["items"]
    assert {"enroll_token.create", "agent.rekey", "agent.reenroll"} <= {e["action"] for e in actions}
