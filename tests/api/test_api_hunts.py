"""Retro-hunt jobs over the API (issue 12): analysts start them, progress and hits come back within the
caller's units, viewers cannot start them, and both the start and the end are in the audit trail."""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import auth

Client = Any

RULE = r"""
title: Encoded PowerShell
id: 6e1f0a3b-8c2d-4e5f-9a7b-0c1d2e3f4a5b
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        Image|endswith: '\powershell.exe'
        CommandLine|contains: ' -enc '
    condition: sel
level: high
"""


def _finish(client: Client, token: str, hunt_id: str, **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60  # generous: the machine is shared
    while True:
        r = client.get(f"/api/v1/hunts/{hunt_id}", params=params, headers=auth(token))
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] != "running":
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _start(client: Client, token: str, **extra: Any) -> Any:
    body = {"rule": RULE, "from": "2026-01-10", "to": "2026-01-10", **extra}
    return client.post("/api/v1/hunts", json=body, headers=auth(token))


def test_a_province_wide_analyst_finds_every_unit(seeded: dict[str, list[str]], client: Client,
                                                 tokens: dict[str, str]) -> None:
    r = _start(client, tokens["analyst"])
    assert r.status_code == 202, r.text
    job = _finish(client, tokens["analyst"], r.json()["id"], limit=1000)
    assert job["status"] == "done", job
    assert job["progress"]["scanned"] == job["progress"]["total"] == 18 and job["progress"]["percent"] == 100.0
    units = sorted(h["unit"] for h in job["hits"]["items"])
    # seed(): 6 encoded PowerShell events in each of SO, HA, HA-XA on 2026-01-10
    assert units == ["HA"] * 6 + ["HA-XA"] * 6 + ["SO"] * 6
    assert job["hits"]["total"] == 18 and all(h["rule_title"] == "Encoded PowerShell" for h in job["hits"]["items"])


def test_a_unit_scoped_analyst_sees_only_its_units(seeded: dict[str, list[str]], client: Client,
                                                  tokens: dict[str, str]) -> None:
    r = _start(client, tokens["analyst_ha"])
    assert r.status_code == 202, r.text
    job = _finish(client, tokens["analyst_ha"], r.json()["id"], limit=1000)
    assert job["status"] == "done" and job["units"] == ["HA", "HA-XA"]
    assert {h["unit"] for h in job["hits"]["items"]} == {"HA", "HA-XA"} and job["hits"]["total"] == 12
    # a province-wide hunt is not the HA analyst's to read, and its SO hits never reach them
    other = _start(client, tokens["analyst"]).json()["id"]
    _finish(client, tokens["analyst"], other)
    assert client.get(f"/api/v1/hunts/{other}", headers=auth(tokens["analyst_ha"])).status_code == 404
    # asking for a unit outside one's own scope hunts nothing
    r = _start(client, tokens["analyst_ha"], unit="SO")
    assert _finish(client, tokens["analyst_ha"], r.json()["id"])["hits"]["total"] == 0


def test_viewers_cannot_hunt_and_bad_rules_are_refused(seeded: dict[str, list[str]], client: Client,
                                                       tokens: dict[str, str]) -> None:
    assert _start(client, tokens["viewer"]).status_code == 403
    assert client.post("/api/v1/hunts", json={"rule": RULE, "from": "2026-01-10", "to": "2026-01-10"}).status_code == 401
    r = client.post("/api/v1/hunts", json={"rule": "/etc/passwd", "from": "2026-01-10", "to": "2026-01-11"},
                    headers=auth(tokens["analyst"]))
    assert r.status_code == 400 and "neither a rule file" in r.json()["detail"]  # never a server path
    broken = "title: x\nlogsource: {product: windows}\ndetection:\n  condition: missing\n"
    assert _start(client, tokens["analyst"], rule=broken).status_code == 422
    assert _start(client, tokens["analyst"], **{"from": "2026-01-11", "to": "2026-01-09"}).status_code == 400


def test_a_hunt_is_audited(seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]) -> None:
    hunt_id = _start(client, tokens["analyst_ha"]).json()["id"]
    _finish(client, tokens["analyst_ha"], hunt_id)
    items = client.get("/api/v1/audit?limit=500", headers=auth(tokens["admin"])).json()["items"]
    mine = {e["action"]: e for e in items if e["target"] == f"hunt:{hunt_id}"}
    assert set(mine) == {"hunt.start", "hunt.finish"}
    assert mine["hunt.start"]["actor"].endswith(":ana-ha") and mine["hunt.start"]["after"]["units"] == ["HA", "HA-XA"]
    assert mine["hunt.finish"]["after"]["hits"] == 12 and mine["hunt.finish"]["after"]["status"] == "done"


def test_a_hunt_whose_process_is_gone_reads_as_interrupted(seeded: dict[str, list[str]], client: Client,
                                                          tokens: dict[str, str], runtime: Any) -> None:
    import subprocess
    import sys

    hunt_id = _start(client, tokens["analyst"]).json()["id"]
    _finish(client, tokens["analyst"], hunt_id)
    # a server that was stopped mid-hunt: the row says running, its process no longer exists
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with runtime.control.write() as conn:
        conn.execute("UPDATE hunts SET status = 'running', finished_at = NULL, runner_pid = ? WHERE id = ?",
                     (int(gone.stdout), hunt_id))
    job = client.get(f"/api/v1/hunts/{hunt_id}", headers=auth(tokens["analyst"])).json()
    assert job["status"] == "interrupted" and "start it again" in job["error"]


def test_the_same_hunt_over_the_api_on_a_real_opensearch_node(tmp_path: Any) -> None:
    """The API path on OpenSearch: the rule runs as a pySigma query on the node, scoped the same way."""
    import warnings

    import pytest

    from soclite.api.app import create_app
    from soclite.runtime import Runtime
    from tests.api.conftest import make_settings, seed
    from tests.opensearch_node import OPENSEARCH_URL, require_real_node_in_ci
    from tests.store.conftest import opensearch_settings

    require_real_node_in_ci()
    if not OPENSEARCH_URL:
        pytest.skip("OPENSEARCH_URL is not set")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    settings = make_settings(tmp_path).model_copy(update={"store": opensearch_settings(OPENSEARCH_URL, tmp_path).store})
    runtime = Runtime.build(settings)
    try:
        runtime.store.refresh_events = True  # type: ignore[attr-defined]
        seed(runtime)
        tokens = {"analyst": runtime.identity.create_token(role="analyst", name="ana"),
                  "analyst_ha": runtime.identity.create_token(role="analyst", unit="HA", name="ana-ha")}
        with TestClient(create_app(runtime)) as client:
            everyone = _finish(client, tokens["analyst"], _start(client, tokens["analyst"]).json()["id"], limit=1000)
            assert everyone["status"] == "done" and everyone["phase"] == "done", everyone
            assert everyone["hits"]["total"] == 18 and {h["source"] for h in everyone["hits"]["items"]} == {"opensearch"}
            ha = _finish(client, tokens["analyst_ha"], _start(client, tokens["analyst_ha"]).json()["id"], limit=1000)
            assert {h["unit"] for h in ha["hits"]["items"]} == {"HA", "HA-XA"} and ha["hits"]["total"] == 12
    finally:
        runtime.store.drop_all()  # type: ignore[attr-defined]
        runtime.close()
