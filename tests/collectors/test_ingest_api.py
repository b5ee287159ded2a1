"""POST /api/v1/ingest and GET /api/v1/deadletters against the real app served by uvicorn."""

from __future__ import annotations

import gzip

import httpx
import orjson

from soclite.runtime import Runtime


def ndjson(*records: object) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records) + b"\n"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_agent_batch_is_stamped_deduplicated_and_dead_lettered(client: httpx.Client, runtime: Runtime) -> None:
    token = runtime.identity.create_token(role="agent", unit="so-tttt", name="ws-001")
    agent_id = token.split("_")[1]
    body = ndjson(
        {"message": "<38>Nov 23 17:40:01 ws-001 sshd[1]: Failed password for root from 203.0.113.9 port 4000 ssh2",
         "soclite.unit": "forged"},
        {"@timestamp": "2026-11-23T10:00:00Z", "logsource.product": "linux", "event.id": "fixed-id-0001"},
        {"no": "kind"},
    ) + b"{not json\n"  # fmt: skip
    headers = {**auth(token), "X-Batch-Id": "b-0001", "Content-Encoding": "gzip"}
    r = client.post("/api/v1/ingest", content=gzip.compress(body), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicate": False, "rejected": 2}
    r2 = client.post("/api/v1/ingest", content=gzip.compress(body), headers=headers)
    assert r2.json() == {"accepted": 0, "duplicate": True}
    events = [e for _, e in runtime.journal.read("t", 100)]
    assert len(events) == 2
    assert all(e["soclite.unit"] == "so-tttt" and e["soclite.agent_id"] == agent_id for e in events)
    assert events[0]["event.outcome"] == "failure" and events[0]["host.name"] == "ws-001"
    assert events[1]["event.id"] == "fixed-id-0001"

    admin = runtime.identity.create_token(role="admin")
    letters = client.get("/api/v1/deadletters", headers=auth(admin)).json()
    assert letters["total"] == 2
    reasons = sorted(item["reason"] for item in letters["items"])
    assert "invalid JSON" in reasons[0] and "unrecognised record" in reasons[1]
    assert any(item["raw"] == "{not json" for item in letters["items"])


def test_unknown_revoked_or_wrong_role_stores_nothing(client: httpx.Client, runtime: Runtime) -> None:
    body = ndjson({"message": "hello"})
    assert client.post("/api/v1/ingest", content=body).status_code == 401
    assert client.post("/api/v1/ingest", content=body, headers=auth("sl_nope_nope")).status_code == 401
    token = runtime.identity.create_token(role="agent", unit="u")
    runtime.identity.revoke_token(token.split("_")[1])
    assert client.post("/api/v1/ingest", content=body, headers=auth(token)).status_code == 401
    viewer = runtime.identity.create_token(role="viewer")
    assert client.post("/api/v1/ingest", content=body, headers=auth(viewer)).status_code == 403
    assert client.get("/api/v1/deadletters", headers=auth(viewer)).status_code == 403
    assert runtime.journal.count() == 0


def test_bad_encoding_and_full_journal(client: httpx.Client, runtime: Runtime) -> None:
    admin = runtime.identity.create_token(role="admin")
    r = client.post("/api/v1/ingest", content=b"not gzip", headers={**auth(admin), "Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert client.post("/api/v1/ingest", content=b"{}", headers={**auth(admin), "X-Batch-Id": "bad id!"}).status_code == 400
    runtime.journal.max_bytes = runtime.journal.used_bytes() + 10  # under one compressed event
    r = client.post("/api/v1/ingest", content=ndjson({"message": "x" * 500}), headers={**auth(admin), "X-Batch-Id": "full-1"})
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert runtime.journal.count() == 0
    runtime.journal.max_bytes = 64 * 1024 * 1024
    # the refused batch id was not recorded: the retry is accepted
    r = client.post("/api/v1/ingest", content=ndjson({"message": "x" * 500}), headers={**auth(admin), "X-Batch-Id": "full-1"})
    assert r.json() == {"accepted": 1, "duplicate": False, "rejected": 0}


def test_health_warns_near_the_journal_bound(client: httpx.Client, runtime: Runtime) -> None:
    assert not [w for w in client.get("/health").json()["warnings"] if "journal" in w]
    runtime.journal.max_bytes = int(runtime.journal.used_bytes() / 0.9)  # 90 % used, warn_ratio 0.8
    warnings = client.get("/health").json()["warnings"]
    assert any("ingest journal at 90%" in w for w in warnings), warnings


def test_dead_letters_are_scoped_to_the_senders_unit(client: httpx.Client, runtime: Runtime) -> None:
    from soclite.models import Unit
    from soclite.store.deadletter import DeadLetters

    for unit in (Unit(code="prov", name="Tỉnh"), Unit(code="so-tc", name="Sở TC", parent="prov"),
                 Unit(code="ttdl", name="TTDL", parent="prov")):
        runtime.store.put_unit(unit)
    for unit in ("so-tc", "ttdl"):
        agent = runtime.identity.create_token(role="agent", unit=unit, name=f"ws-{unit}")
        r = client.post("/api/v1/ingest", content=f"{{bad {unit}\n".encode(), headers=auth(agent))
        assert r.json()["rejected"] == 1
    DeadLetters(runtime.journal.db).add("syslog:udp", "unparseable", b"junk")  # no unit: province only
    so_tc = runtime.identity.create_token(role="analyst", unit="so-tc", name="ana-tc")
    page = client.get("/api/v1/deadletters", headers=auth(so_tc)).json()
    assert page["total"] == 1 and [i["unit"] for i in page["items"]] == ["so-tc"]
    assert page["items"][0]["raw"] == "{bad so-tc"
    province = runtime.identity.create_token(role="admin")
    page = client.get("/api/v1/deadletters", headers=auth(province)).json()
    assert page["total"] == 3 and sorted(str(i["unit"]) for i in page["items"]) == ["None", "so-tc", "ttdl"]


def test_journal_lag_per_consumer_in_health_and_metrics(client: httpx.Client, runtime: Runtime) -> None:
    admin = runtime.identity.create_token(role="admin")
    runtime.journal.register("detection", "storage")
    r = client.post("/api/v1/ingest", content=ndjson(*({"message": f"m{i}"} for i in range(3))),
                    headers={**auth(admin), "X-Batch-Id": "lag-1"})  # fmt: skip
    assert r.json()["accepted"] == 3
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["journal_lag"] == {"detection": 3, "storage": 3}
    metrics = client.get("/metrics", headers=auth(admin)).text
    assert 'soclite_journal_lag{consumer="detection"} 3.0' in metrics
    assert 'soclite_journal_lag{consumer="storage"} 3.0' in metrics
    runtime.settings.journal.lag_degraded = 2
    last = runtime.journal.read("detection", 10)[-1][0]
    runtime.journal.commit("detection", last)
    health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["journal consumer 'storage' is 3 events behind (more than 2)"]
    assert health["reasons"][0] in health["warnings"]
    assert 'soclite_journal_lag{consumer="detection"} 0.0' in client.get("/metrics", headers=auth(admin)).text
    runtime.journal.commit("storage", last)
    assert client.get("/health").json()["status"] == "ok"
