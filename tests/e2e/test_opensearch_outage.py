"""The whole `soclite server` while its OpenSearch goes away and comes back.

A node of this test's own (never the shared one of OPENSEARCH_URL): the server ingests, the node is
stopped, ingest is still acknowledged (the journal is local), detection still raises the ClamAV
alert and keeps it in the local spool, /health says why it is degraded (cluster unreachable, writes
spooled); the node starts again with its data and the alert and every event are in the cluster
exactly once, /health ok again.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import wait_for
from tests.e2e.test_opensearch_server import BENIGN, CLAMAV, Soc, cluster, syslog_record
from tests.opensearch_procs import own_node

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _store_check(soc: Soc) -> dict[str, Any]:
    soc.alive()
    check: dict[str, Any] = httpx.get(f"{soc.base}/health", timeout=15).json()["checks"]["store"]
    return check


def _one_clam_alert_and_every_event(soc: Soc, api: Any, host: str, total: int) -> None:
    """Once the cluster is back: the spooled ClamAV alert exactly once, ``total`` events, /health ok."""

    def landed() -> list[dict[str, Any]] | None:
        soc.alive()
        try:
            items = api.get("/api/v1/alerts", host=host.lower(), limit=100)["items"]
        except httpx.HTTPStatusError as exc:  # "retry": the store is not set up yet
            if exc.response.status_code != 503:
                raise
            return None
        return items if any(a["rule_title"] == CLAMAV for a in items) else None

    alerts = wait_for(landed, 120, "the spooled ClamAV alert in GET /api/v1/alerts", interval=0.5)
    assert [a["rule_title"] for a in alerts].count(CLAMAV) == 1, alerts
    wait_for(lambda: api.get("/api/v1/events", host=host)["total"] == total or None, 120,
             f"all {total} events stored")  # fmt: skip
    wait_for(lambda: _store_check(soc)["status"] == "ok" or None, 60, "/health's store check ok again")


def test_alerts_go_on_while_opensearch_is_away_and_land_once(tmp_path: Path) -> None:
    host = f"os-out-{uuid.uuid4().hex[:6]}"
    with own_node() as node:
        soc = Soc(node.url, "outage", tmp_path)
        try:
            api = soc.start()
            assert _store_check(soc)["status"] == "ok"
            soc.ingest("out-1", [syslog_record(host, p, m) for p, m in BENIGN])
            wait_for(lambda: api.get("/api/v1/events", host=host)["total"] == len(BENIGN) or None, 60,
                     "the first events stored")  # fmt: skip

            node.stop(keep_data=True)
            clam = "/home/tranthib/Downloads/congvan.doc.exe: Win.Trojan.Agent-7654321 FOUND"
            # acknowledged while the store is away: the journal is local
            soc.ingest("out-2", [syslog_record(host, "clamd[900]", clam), syslog_record(host, *BENIGN[0])])

            def spooled() -> dict[str, Any] | None:
                check = _store_check(soc)
                return check if check["cluster"]["status"] == "unreachable" and check["spooled"] > 0 else None

            check = wait_for(spooled, 90, "/health: the cluster unreachable and the ClamAV alert spooled")
            assert check["status"] == "degraded" and "spool" in check["reason"], check

            node.start()

            total = len(BENIGN) + 2
            _one_clam_alert_and_every_event(soc, api, host, total)
            assert _store_check(soc)["spooled"] == 0
            cluster(node.url, "POST", "/outage-events-*/_refresh")
            body = {"query": {"term": {"host.name": host}}, "size": 0, "track_total_hits": True}
            assert (
                cluster(node.url, "POST", "/outage-events-*/_search", body)["hits"]["total"]["value"] == total
            )
            body = {"query": {"term": {"rule_title.raw": CLAMAV}}, "size": 0, "track_total_hits": True}
            cluster(node.url, "POST", "/outage-alerts/_refresh")
            assert cluster(node.url, "POST", "/outage-alerts/_search", body)["hits"]["total"]["value"] == 1
        finally:
            soc.stop()


def test_a_server_started_while_its_cluster_is_away_ingests_detects_and_sets_up_later(tmp_path: Path) -> None:
    # A power cut: the soclite machine boots before the cluster. The server must start anyway (agents
    # and syslog keep sending), detect and spool, and set the indices up when the cluster answers:
    # the events' daily index must then get soclite's mappings, not ones the cluster guessed.
    host = f"os-late-{uuid.uuid4().hex[:6]}"
    with own_node() as node:
        soc = Soc(node.url, "late", tmp_path)
        try:
            soc.start()  # once with the cluster: the unit and the agent key exist (units live in the store)
            assert soc.server is not None
            soc.server.stop()
            assert cluster(node.url, "GET", "/_cat/indices/late-events-*", format="json") == []
            node.stop(keep_data=True)

            api = soc.start()
            soc.ingest("late-1", [syslog_record(host, "clamd[900]", "/tmp/hoadon.pdf.exe: Win.Trojan.Agent-1 FOUND"),
                                  *[syslog_record(host, p, m) for p, m in BENIGN]])  # fmt: skip

            def spooled() -> dict[str, Any] | None:
                check = _store_check(soc)
                return check if check["spooled"] > 0 else None

            check = wait_for(
                spooled, 90, "/health: the ClamAV alert spooled while the cluster was never reached"
            )
            assert check["status"] == "degraded" and "not set up yet" in check["reason"], check

            node.start()

            _one_clam_alert_and_every_event(soc, api, host, len(BENIGN) + 1)
            mapping = cluster(node.url, "GET", "/late-events-*/_mapping/field/host.name")
            types = {i: f["mappings"]["host.name"]["mapping"]["name"]["type"] for i, f in mapping.items()}
            assert types and set(types.values()) == {"keyword"}, types  # the template's, not a guessed "text"
        finally:
            soc.stop()
