"""The smaller actions and the STIX mapping: add_ioc into the real correlator, create_case into the API's
case store, webhook TLS verification, deterministic STIX ids, pseudonyms."""

from __future__ import annotations

import ssl
from pathlib import Path

from soclite.correlator.engine import Engine
from soclite.errors import ConnectorError, PlaybookError
from soclite.playbooks.actions import ACTIONS, Action, register
from soclite.playbooks.connectors import CONNECTORS
from soclite.playbooks.connectors.base import minimize, pseudonym
from soclite.playbooks.connectors.stix_mapping import alert_to_stix
from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.playbooks.pki import make_pki
from tests.playbooks.support import ScriptedHTTP, make_alert


def test_registries_refuse_duplicates() -> None:
    class Again(Action):
        name = "isolate_host"

    try:
        register(Again)
    except PlaybookError as exc:
        assert "already registered" in str(exc)
    else:
        raise AssertionError("a duplicate action name must raise")
    from soclite.playbooks.connectors import register as register_connector

    try:
        register_connector(CONNECTORS["taxii"])
    except ConnectorError as exc:
        assert "already registered" in str(exc)
    else:
        raise AssertionError("a duplicate connector name must raise")
    assert set(ACTIONS) == {
        "isolate_host",
        "release_host",
        "scan_host",
        "notify_email",
        "notify_webhook",
        "create_case",
        "add_ioc",
        "national_sync",
        "national_report",
    }


def test_add_ioc_feeds_the_correlator(runtime: Runtime, tmp_path: Path) -> None:
    runtime.engine = Engine.from_settings(runtime.settings)
    alert = make_alert(event={"source.ip": "192.0.2.44"})
    for n, value in enumerate(["192.0.2.44", "192.0.2.45", "192.0.2.44"]):
        runtime.outbox.submit(
            "add_ioc",
            {"list_name": "blocked", "kind": "ip", "values": [value], "level": "medium"},
            idempotency_key=f"i{n}",
            requested_by="t",
            alert_id=alert.id,
        )
    Worker(runtime).run_once()
    assert runtime.engine.iocs.lists() == {"playbook:blocked": 2}
    hits = runtime.engine.process(
        {
            "@timestamp": "2026-11-23T10:00:00.000Z",
            "event.id": "e",
            "host.name": "h",
            "source.ip": "192.0.2.45",
        }
    )
    assert [(a.rule_id, a.level) for a in hits if a.kind == "ioc"] == [("ioc:playbook:blocked", "medium")]
    # After a restart the list comes back from the outbox db, alerting at the level it was made with.
    runtime.engine = Engine.from_settings(runtime.settings)
    Worker(runtime).restore_ioc_lists()
    assert runtime.engine.iocs.lists() == {"playbook:blocked": 2}
    again = runtime.engine.process(
        {"@timestamp": "2026-11-23T10:05:00.000Z", "event.id": "e2", "host.name": "h", "source.ip": "192.0.2.44"}
    )
    assert [(a.rule_id, a.level) for a in again if a.kind == "ioc"] == [("ioc:playbook:blocked", "medium")]


def test_create_case_opens_one_case_in_the_api_store(runtime: Runtime) -> None:
    from soclite.api import cases

    alert = runtime.store.put_alert(make_alert())
    for key in (
        "c1",
        "c2",
    ):  # a second submission (another key, same alert and title) must not open a second case
        runtime.outbox.submit(
            "create_case",
            {"title": "Mã độc trên ws-001"},
            idempotency_key=key,
            requested_by="playbook:x",
            alert_id=alert.id,
            payload=alert.model_dump(mode="json"),
        )
        Worker(runtime).run_once()
    opened = cases.cases_of_alert(runtime, alert.id, None)
    assert len(opened) == 1 and opened[0]["title"] == "Mã độc trên ws-001"
    results = [r.result for r in runtime.outbox.list_actions(action="create_case", oldest_first=True)]
    assert results[0].startswith("case ") and "already open" in results[1]


def test_webhook_verifies_tls(runtime: Runtime, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki["server_cert"]), str(pki["server_key"]))
    server = ScriptedHTTP(ssl_context=context)
    try:
        url = f"https://127.0.0.1:{server.port}/hook"
        refused = runtime.outbox.submit(
            "notify_webhook", {"url": url}, idempotency_key="t1", requested_by="t"
        )
        trusted = runtime.outbox.submit(
            "notify_webhook", {"url": url, "ca_certs": str(pki["ca"])}, idempotency_key="t2", requested_by="t"
        )
        Worker(runtime).run_once()
        assert "CERTIFICATE_VERIFY_FAILED" in (runtime.outbox.get(refused.id).last_error or "")
        assert runtime.outbox.get(trusted.id).status == ActionStatus.SUCCEEDED
        assert len(server.requests) == 1
    finally:
        server.close()


def test_stix_ids_are_deterministic_and_updates_are_versions() -> None:
    alert = make_alert(level="critical", event={"source.ip": "10.0.0.1", "file.hash.sha256": "ab" * 32})
    snapshot = alert.model_dump(mode="json")
    first, again = alert_to_stix(snapshot, "Tỉnh mẫu"), alert_to_stix(dict(snapshot), "Tỉnh mẫu")
    assert first == again
    types = sorted(o["type"] for o in first)
    assert types == ["file", "identity", "incident", "indicator", "ipv4-addr", "observed-data", "sighting"]
    updated = alert.model_copy(update={"count": 7, "updated_at": alert.updated_at.replace(minute=59)})
    later = {o["id"]: o for o in alert_to_stix(updated.model_dump(mode="json"), "Tỉnh mẫu")}
    sighting = next(o for o in first if o["type"] == "sighting")
    assert later[sighting["id"]]["count"] == 7 and later[sighting["id"]]["modified"] > sighting["modified"]
    other = alert_to_stix(make_alert().model_dump(mode="json"), "Tỉnh mẫu")
    assert next(o for o in other if o["type"] == "sighting")["id"] != sighting["id"]


def test_pseudonyms_are_stable_and_keyed() -> None:
    assert pseudonym("NguyenVanA", b"k1") == pseudonym("nguyenvana", b"k1") != pseudonym("nguyenvana", b"k2")
    alert = make_alert(event={"user.name": "a", "TargetUserName": "b", "event.original": "a b", "x": 1})
    out = minimize(alert.model_dump(mode="json"), b"key")
    assert out["event"]["x"] == 1 and "event.original" not in out["event"]
    assert out["event"]["user.name"].startswith("pseud-") and out["event"]["TargetUserName"].startswith(
        "pseud-"
    )
    assert minimize(alert.model_dump(mode="json"), None)["event"]["user.name"] == "a"
