"""The alert's story through the API (issue 15): the rule's ATT&CK tactics and techniques by name with their
pages, and the process tree around the alert's process event, both read within the caller's units."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from soclite.models import Alert, Level, fingerprint, severity_of
from soclite.runtime import Runtime

from .conftest import auth

T0 = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)


def _sysmon(guid: str, parent: str, minutes: int, image: str, cmd: str) -> dict[str, Any]:
    return {"@timestamp": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            "event.id": f"ev-{guid}", "host.name": "ha-ser", "soclite.unit": "HA", "EventID": 1,
            "ProcessGuid": "{" + guid + "}", "ParentProcessGuid": "{" + parent + "}", "Image": image,
            "CommandLine": cmd, "User": "HA\\nguyen.van.a", "ProcessId": 4242,
            "logsource.product": "windows", "logsource.service": "sysmon", "logsource.category": "process_creation"}


def _alert(runtime: Runtime, event: dict[str, Any] | None, tags: list[str]) -> str:
    alert = Alert(fingerprint=fingerprint("r-ps", "ha-ser", {"e": str(event)}), rule_id="r-ps",
                  rule_title="Encoded PowerShell", level=Level.HIGH, severity=severity_of(Level.HIGH),
                  host="ha-ser", unit="HA", first_seen=T0, last_seen=T0,
                  event_ids=[event["event.id"]] if event else [], event=event or {"host.name": "ha-ser"}, tags=tags)
    runtime.store.put_alerts([alert])
    return alert.id


def test_alert_json_names_the_rules_tactics_and_techniques(runtime: Runtime, client: TestClient,
                                                          tokens: dict[str, str]) -> None:
    alert_id = _alert(runtime, None, ["attack.execution", "attack.t1059.001", "attack.t9999", "cve.2021-44228"])
    body = client.get(f"/api/v1/alerts/{alert_id}", headers=auth(tokens["analyst"])).json()
    assert body["attack"]["tactics"] == [{"id": "TA0002", "name": "Execution", "shortname": "execution",
                                          "url": "https://attack.mitre.org/tactics/TA0002"}]
    powershell, unknown = body["attack"]["techniques"]
    assert powershell == {"id": "T1059.001", "name": "Command and Scripting Interpreter: PowerShell",
                          "url": "https://attack.mitre.org/techniques/T1059/001", "tactics": ["execution"]}
    # an id the bundled table does not know keeps its id as name and its would-be page (no made-up name)
    assert unknown["id"] == unknown["name"] == "T9999" and unknown["url"].endswith("/techniques/T9999")
    untagged = _alert(runtime, {"event.id": "x", "host.name": "ha-ser"}, [])
    assert client.get(f"/api/v1/alerts/{untagged}", headers=auth(tokens["analyst"])).json()["attack"] == {
        "tactics": [], "techniques": []}


def test_process_tree_of_an_alert_is_unit_scoped(runtime: Runtime, client: TestClient,
                                                 tokens: dict[str, str]) -> None:
    explorer = _sysmon("0001", "0000", -60, "C:\\Windows\\explorer.exe", "explorer.exe")
    cmd = _sysmon("0002", "0001", -1, "C:\\Windows\\System32\\cmd.exe", "cmd.exe /c run.bat")
    ps = _sysmon("0003", "0002", 0, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                 "powershell -enc SQBFAFgA")
    whoami = _sysmon("0004", "0003", 1, "C:\\Windows\\System32\\whoami.exe", "whoami /all")
    runtime.store.write_events([explorer, cmd, ps, whoami])
    alert_id = _alert(runtime, ps, ["attack.t1059.001"])

    r = client.get(f"/api/v1/alerts/{alert_id}/process-tree", headers=auth(tokens["analyst_ha"]))
    assert r.status_code == 200, r.text
    tree = r.json()["tree"]
    assert tree["scheme"] == "sysmon" and tree["anchor_event_id"] == "ev-0003" and tree["window_hours"] == 24
    chain, node = [], tree["root"]
    while True:  # root → … → anchor, each with one child here
        chain.append(node["image"].rsplit("\\", 1)[-1])
        if node["anchor"]:
            break
        node = node["children"][0]
    assert chain == ["explorer.exe", "cmd.exe", "powershell.exe"] and tree["depth"] == 3
    assert node["command_line"] == "powershell -enc SQBFAFgA" and node["user"] == "HA\\nguyen.van.a"
    assert node["time"] == T0.isoformat() and node["pid"] == "4242"
    assert [k["image"] for k in node["children"]] == ["C:\\Windows\\System32\\whoami.exe"]

    # the window is one of the alert page's choices (1, 6, 24, 168 hours); explorer, an hour before, is in it
    short = client.get(f"/api/v1/alerts/{alert_id}/process-tree?hours=1", headers=auth(tokens["admin"])).json()
    assert short["tree"]["root"]["image"].endswith("explorer.exe")
    assert client.get(f"/api/v1/alerts/{alert_id}/process-tree?hours=5",
                      headers=auth(tokens["admin"])).status_code == 422
    # another unit's reader does not learn the alert exists; an agent token is no reader at all
    assert client.get(f"/api/v1/alerts/{alert_id}/process-tree", headers=auth(tokens["viewer_so"])).status_code == 404
    assert client.get(f"/api/v1/alerts/{alert_id}/process-tree", headers=auth(tokens["agent"])).status_code == 403
    assert client.get(f"/api/v1/alerts/{alert_id}/process-tree").status_code == 401
    # an alert holding no process event has no tree
    plain = _alert(runtime, {"event.id": "ev-net", "host.name": "ha-ser", "soclite.unit": "HA",
                             "@timestamp": "2026-12-06T17:30:00Z"}, [])
    assert client.get(f"/api/v1/alerts/{plain}/process-tree", headers=auth(tokens["admin"])).json() == {
        "alert_id": plain, "tree": None}
