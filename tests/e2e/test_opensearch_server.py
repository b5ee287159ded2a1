"""The whole `soclite server` on the OpenSearch store, with real processes.

osmem-server (the in-memory OpenSearch-compatible server; or a real cluster when OPENSEARCH_URL is set) holds
the store; `soclite server` runs with ``store: {kind: opensearch}`` and its pipeline child process, and
`soclite token create` / `soclite report` run as separate processes on the same configuration. Everything is
driven through the HTTP API: an agent key posts an sshd brute force followed by a successful login from the same
address, a ClamAV detection and some benign lines; the alerts, events, triage, summary, host inventory and the
monthly report must agree, and the events must sit in the daily indices the store promises.
"""

from __future__ import annotations

import os
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import yaml

from soclite.reports.periods import parse_period
from tests.e2e.support import Api, Process, cli, free_port, start_server, wait_for
from tests.e2e.test_scenario import html_figures, report_figures
from tests.opensearch_node import OPENSEARCH_URL, require_real_node_in_ci

pytestmark = pytest.mark.e2e

TZ = "Asia/Ho_Chi_Minh"
UNIT = "so-os"
ATTACKER = "198.51.100.77"
FAILURES = 12
# rule title -> (Sigma level, severity bucket), as written in rules/linux/ssh_bruteforce.yml and
# rules/antivirus/malware_detected.yml
BRUTE_FORCE = "SSH Brute Force"
SUCCESS_AFTER = "SSH Login Succeeded After Brute Force"
CLAMAV = "ClamAV Malware Detection"
EXPECTED = {BRUTE_FORCE: ("high", "high"), SUCCESS_AFTER: ("critical", "high"), CLAMAV: ("high", "high")}
BENIGN = [
    ("CRON[2201]", "(root) CMD (cd / && run-parts --report /etc/cron.hourly)"),
    ("systemd[1]", "Started Daily apt download activities."),
    ("systemd[1]", "Finished Rotate log files."),
]


@pytest.fixture
def opensearch(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(cluster URL, index prefix of this test): a fresh osmem clone, or OPENSEARCH_URL cleaned up afterwards."""
    require_real_node_in_ci()
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    if not OPENSEARCH_URL:
        yield request.getfixturevalue("osmem_clone").url, prefix
        return
    yield OPENSEARCH_URL, prefix
    auth = None
    if os.environ.get("OPENSEARCH_USERNAME"):
        auth = (os.environ["OPENSEARCH_USERNAME"], os.environ.get("OPENSEARCH_PASSWORD", ""))
    with httpx.Client(base_url=OPENSEARCH_URL, auth=auth, verify=tls_verify(), timeout=30) as client:
        client.delete(f"/{prefix}-*", params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        templates = client.get(f"/_index_template/{prefix}*")
        for item in templates.json().get("index_templates", []) if templates.status_code == 200 else []:
            client.delete(f"/_index_template/{item['name']}")


def tls_verify() -> bool | ssl.SSLContext:
    """How httpx checks the cluster's certificate: OPENSEARCH_CA_CERTS, or on/off (OPENSEARCH_VERIFY_CERTS)."""
    if os.environ.get("OPENSEARCH_CA_CERTS"):
        return ssl.create_default_context(cafile=os.environ["OPENSEARCH_CA_CERTS"])
    return os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0"


def syslog_record(host: str, program: str, message: str) -> dict[str, Any]:
    """What the agent posts for one line of a log file (RFC 3339 stamp with the local offset, as rsyslog writes)."""
    stamp = datetime.now(ZoneInfo(TZ)).isoformat(timespec="microseconds")
    return {"message": f"{stamp} {host} {program}: {message}", "host.name": host}


def cluster(url: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
    """A request straight to the cluster, bypassing soclite: what is really stored where."""
    auth = None
    if OPENSEARCH_URL and os.environ.get("OPENSEARCH_USERNAME"):
        auth = (os.environ["OPENSEARCH_USERNAME"], os.environ.get("OPENSEARCH_PASSWORD", ""))
    resp = httpx.request(
        method, f"{url}{path}", json=body, params=params, auth=auth, verify=tls_verify(), timeout=15
    )
    resp.raise_for_status()
    return resp.json()


class Soc:
    """`soclite server` on the store at ``url``/``prefix``, an admin API client and an agent key."""

    def __init__(self, url: str, prefix: str, tmp_path: Path) -> None:
        self.url, self.prefix, self.tmp_path = url, prefix, tmp_path
        self.data_dir = tmp_path / "data"
        self.base = f"http://127.0.0.1:{free_port()}"
        store: dict[str, Any] = {
            "kind": "opensearch", "opensearch_url": [url], "index_prefix": prefix,
            # osmem is plain http on loopback (no TLS, nothing to verify: verification stays on by default);
            # a real cluster says how through the environment, as the store tests do.
            "verify_certs": os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0",
        }  # fmt: skip
        if OPENSEARCH_URL and os.environ.get("OPENSEARCH_CA_CERTS"):
            store["ca_certs"] = os.environ["OPENSEARCH_CA_CERTS"]
        if OPENSEARCH_URL and os.environ.get("OPENSEARCH_USERNAME"):
            store["opensearch_username"] = os.environ["OPENSEARCH_USERNAME"]
            store["opensearch_password"] = os.environ.get("OPENSEARCH_PASSWORD", "")
        self.config = tmp_path / "soclite.yml"
        self.config.write_text(yaml.safe_dump({
            "environment": "test", "timezone": TZ, "store": store,
            "server": {"http_host": "127.0.0.1", "http_port": int(self.base.rsplit(":", 1)[1]), "syslog_port": 0},
            "auth": {"secret_key": secrets.token_urlsafe(48)},
        }))  # fmt: skip
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                    "SOCLITE_CONFIG": str(self.config)}  # fmt: skip
        if os.environ.get("PYTHONPATH"):  # a checkout run against the installed virtualenv
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self.server: Process | None = None
        self.api: Api | None = None
        self.agent = ""

    def start(self) -> Api:
        self.server = start_server(
            self.config, self.data_dir, self.base, self.tmp_path / "server.log", self.env
        )
        if self.api is None:
            self.api = Api(
                self.base, self.cli("token", "create", "--data-dir", str(self.data_dir), "--role", "admin")
            )
            assert (
                self.api.post("/api/v1/units", {"code": UNIT, "name": "Sở thử nghiệm OpenSearch"})["code"]
                == UNIT
            )
            self.agent = self.cli(
                "token", "create", "--data-dir", str(self.data_dir), "--role", "agent", "--unit", UNIT
            )
            assert self.agent.startswith("sl_")
        return self.api

    def restart(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.start()

    def alive(self) -> None:
        assert self.server is not None and self.server.alive(), "soclite server exited: " + self.server.tail()

    def cli(self, *args: str) -> str:
        return cli(*args, env=self.env)

    def ingest(self, batch: str, records: list[dict[str, Any]]) -> None:
        """POST /api/v1/ingest with the agent key; every record must be accepted."""
        body = b"\n".join(orjson.dumps(r) for r in records)
        headers = {"Authorization": f"Bearer {self.agent}", "X-Batch-Id": batch}
        resp = httpx.post(f"{self.base}/api/v1/ingest", content=body, headers=headers, timeout=15)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"accepted": len(records), "duplicate": False, "rejected": 0}, resp.json()

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def soc(opensearch: tuple[str, str], tmp_path: Path) -> Iterator[Soc]:
    soc = Soc(*opensearch, tmp_path)
    try:
        yield soc
    finally:
        soc.stop()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def test_whole_server_on_the_opensearch_store(soc: Soc) -> None:
    url, prefix, data_dir, tmp_path = soc.url, soc.prefix, soc.data_dir, soc.tmp_path
    host = f"os-web-{uuid.uuid4().hex[:6]}"
    api = soc.start()
    ingest = soc.ingest
    failed = [
        syslog_record(host, f"sshd[{4000 + i}]", f"Failed password for root from {ATTACKER} port {50000 + i} ssh2")
        for i in range(FAILURES)
    ]  # fmt: skip
    ingest("os-1", failed)
    accepted = f"Accepted password for root from {ATTACKER} port 50100 ssh2"
    ingest("os-2", [syslog_record(host, "sshd[4100]", accepted)])
    clam = "/home/nguyenvana/Downloads/hoadon.pdf.exe: Win.Trojan.Agent-1234567 FOUND"
    ingest("os-3", [syslog_record(host, "clamd[812]", clam), *(syslog_record(host, p, m) for p, m in BENIGN)])
    total_events = FAILURES + 1 + 1 + len(BENIGN)

    # --- alerts: the project's rules, with their levels ------------------------------------------
    def our_alerts() -> dict[str, dict[str, Any]] | None:
        soc.alive()
        items = api.get("/api/v1/alerts", host=host.lower(), limit=100)["items"]
        by_title = {a["rule_title"]: a for a in items}
        return by_title if set(EXPECTED) <= set(by_title) else None

    alerts = wait_for(our_alerts, 40, f"the alerts {sorted(EXPECTED)} in GET /api/v1/alerts", interval=0.3)
    assert set(alerts) == set(EXPECTED), f"unexpected alerts: {sorted(set(alerts) - set(EXPECTED))}"
    for title, (level, severity) in EXPECTED.items():
        alert = alerts[title]
        assert (alert["level"], alert["severity"]) == (level, severity), alert
        assert alert["unit"] == UNIT and alert["host"] == host.lower() and alert["status"] == "new", alert
    assert alerts[BRUTE_FORCE]["count"] >= 1
    detail = api.get(f"/api/v1/alerts/{alerts[CLAMAV]['id']}")
    assert detail["id"] == alerts[CLAMAV]["id"]

    # --- events: host filter and full text; every one in today's daily index ----------------------
    def host_events() -> dict[str, Any] | None:
        page = api.get("/api/v1/events", host=host, limit=100)
        return page if page["total"] == total_events else None

    page = wait_for(host_events, 20, f"{total_events} events of {host} in GET /api/v1/events")
    assert len(page["items"]) == total_events and all(e["host.name"] == host for e in page["items"])
    assert all(e["soclite.unit"] == UNIT for e in page["items"]), page["items"][0]
    found = api.get("/api/v1/events", host=host, q="hoadon.pdf.exe")
    assert found["total"] == 1 and "Win.Trojan.Agent-1234567" in found["items"][0]["event.original"], found
    attempts = api.get("/api/v1/events", host=host, q=ATTACKER, limit=100)
    assert attempts["total"] == FAILURES + 1, attempts["total"]
    assert api.get("/api/v1/events", host="no-such-host")["total"] == 0

    indices = {i["index"]: i for i in cluster(url, "GET", "/_cat/indices", format="json")}
    per_day: dict[str, int] = {}  # the UTC day of each event's @timestamp (a run may straddle midnight UTC)
    for event in page["items"]:
        day = f"{prefix}-events-{datetime.fromisoformat(event['@timestamp']).astimezone(UTC):%Y.%m.%d}"
        per_day[day] = per_day.get(day, 0) + 1
    ours = sorted(name for name in indices if name.startswith(f"{prefix}-events-"))
    assert ours == sorted(per_day), f"events are not in their daily indices {sorted(per_day)}: {ours}"
    body = {"query": {"term": {"host.name": host}}, "size": 0, "track_total_hits": True}
    for day, count in per_day.items():
        cluster(url, "POST", f"/{day}/_refresh")  # the store does not refresh events (throughput)
        assert cluster(url, "POST", f"/{day}/_search", body)["hits"]["total"]["value"] == count, day
    for name in ("alerts", "hosts", "units", "audit"):
        assert f"{prefix}-{name}" in indices, sorted(indices)

    # --- triage: acknowledged, then resolved with a reason ------------------------------------------
    target = alerts[BRUTE_FORCE]["id"]
    resp = api.client.patch(f"/api/v1/alerts/{target}", json={"status": "resolved"})
    assert resp.status_code == 422 and "close_reason" in resp.text, resp.text  # no reason, no closing
    resp = api.client.patch(f"/api/v1/alerts/{target}", json={"status": "acknowledged"})
    assert resp.status_code == 200 and resp.json()["status"] == "acknowledged", resp.text
    reason = "Chặn IP tại tường lửa, đổi mật khẩu root"
    resp = api.client.patch(f"/api/v1/alerts/{target}", json={"status": "resolved", "close_reason": reason})
    assert resp.status_code == 200, resp.text
    closed = api.get(f"/api/v1/alerts/{target}")
    assert (closed["status"], closed["close_reason"]) == ("resolved", reason), closed
    resolved = api.get("/api/v1/alerts", host=host.lower(), status="resolved")
    assert [a["id"] for a in resolved["items"]] == [target], resolved
    # Three processes appended to the one hash chain (token create twice, the server's API): unbroken.
    audit = api.get("/api/v1/audit", limit=1000)
    assert [e["seq"] for e in audit["items"]] == list(range(audit["total"], 0, -1)), audit["items"]
    changes = [e for e in audit["items"] if target in e["target"]]
    assert len(changes) == 2, changes  # acknowledged, resolved (the refused PATCH left nothing)
    assert "OK" in soc.cli("audit", "verify", "--data-dir", str(data_dir))

    # --- the summary counts what the list shows -----------------------------------------------------
    listed = api.get("/api/v1/alerts", limit=1000)
    assert listed["next"] is None and len(listed["items"]) == listed["total"]
    summary = api.get("/api/v1/stats/summary")
    assert summary["alerts"]["total"] == listed["total"] >= len(EXPECTED), summary
    for severity, count in summary["alerts"]["by_severity"].items():
        assert count == sum(1 for a in listed["items"] if a["severity"] == severity), (severity, summary)
    for status, count in summary["alerts"]["by_status"].items():
        assert count == sum(1 for a in listed["items"] if a["status"] == status), (status, summary)
    assert summary["alerts"]["by_status"]["resolved"] >= 1

    # --- the host inventory, filled from the events by the pipeline child ---------------------------
    hosts = api.get("/api/v1/hosts")
    inventory = {h["id"]: h for h in hosts["items"]}
    assert host.lower() in inventory, hosts
    assert inventory[host.lower()]["unit"] == UNIT and inventory[host.lower()]["type"] == "server"
    assert api.get(f"/api/v1/hosts/{host}")["id"] == host.lower()
    assert summary["hosts"]["servers"] == api.get("/api/v1/hosts", type="server")["total"] >= 1

    # --- the monthly report counts what the API counts ---------------------------------------------
    period = parse_period(datetime.now(ZoneInfo(TZ)).strftime("%Y-%m"), TZ)
    window = {"from": period.start.isoformat(), "to": period.end.isoformat(), "limit": 1}
    expected = {"total": api.get("/api/v1/alerts", **window)["total"]}
    for severity in ("high", "medium", "low"):
        expected[severity] = api.get("/api/v1/alerts", severity=severity, **window)["total"]
    assert expected["total"] >= len(EXPECTED) and expected["high"] >= len(EXPECTED), expected
    out = tmp_path / "report"
    soc.cli("report", "--data-dir", str(data_dir), "--period", period.code, "--lang", "vi", "--format",
            "csv,html", "--out", str(out))  # fmt: skip
    csv_path = out / f"report_{period.code}_vi.csv"
    figures = report_figures(csv_path.read_bytes())
    assert {k: figures[k] for k in expected} == expected, figures
    assert figures["malware"] >= 1, figures
    shown = html_figures((out / f"report_{period.code}_vi.html").read_text(encoding="utf-8"))
    assert shown["total"] == expected["total"] and shown["high"] == expected["high"], shown
    annex = csv_path.read_text(encoding="utf-8-sig")
    assert all(alerts[t]["id"] in annex for t in EXPECTED), "an alert is missing from the report's annex"

    # --- a restart: everything is in the cluster; repeats find their open alert there -------------
    soc.restart()
    assert api.get(f"/api/v1/alerts/{target}")["status"] == "resolved"
    ingest("os-4", [syslog_record(host, "clamd[812]", clam)])  # the same detection again: a repeat
    ingest("os-5", failed[:10])  # a new brute force: its old alert is closed, so a new one

    def after_restart() -> dict[str, list[dict[str, Any]]] | None:
        soc.alive()
        by_title: dict[str, list[dict[str, Any]]] = {}
        for alert in api.get("/api/v1/alerts", host=host.lower(), limit=100)["items"]:
            by_title.setdefault(alert["rule_title"], []).append(alert)
        repeated = [a["count"] for a in by_title.get(CLAMAV, [])] == [alerts[CLAMAV]["count"] + 1]
        return by_title if repeated and len(by_title.get(BRUTE_FORCE, [])) == 2 else None

    later = wait_for(after_restart, 30, "the repeat and the new brute force after a restart", interval=0.3)
    assert later[CLAMAV][0]["id"] == alerts[CLAMAV]["id"], later[CLAMAV]
    assert sorted(a["status"] for a in later[BRUTE_FORCE]) == ["new", "resolved"], later[BRUTE_FORCE]
    everything = total_events + 11
    wait_for(lambda: api.get("/api/v1/events", host=host, limit=1)["total"] == everything, 20,
             f"all {everything} events of {host}, none twice")  # fmt: skip


def test_triage_during_a_flood_of_repeats_loses_nothing(soc: Soc) -> None:
    """An analyst changes an alert's status while the pipeline child keeps adding repeats to it.

    Two processes write the same alert document: a status change must not revert a count increment, nor an
    increment a status change (alert count == matched events; the last status set is the one stored).
    """
    api = soc.start()
    host = f"os-race-{uuid.uuid4().hex[:6]}"
    line = "/srv/share/setup.exe: Win.Trojan.Race-77 FOUND"
    soc.ingest("race-0", [syslog_record(host, "clamd[812]", line)])

    def the_alert() -> dict[str, Any] | None:
        soc.alive()
        items = api.get("/api/v1/alerts", host=host, limit=10)["items"]
        return items[0] if items else None

    alert_id = wait_for(the_alert, 20, "the ClamAV alert", interval=0.2)["id"]
    sent = [1]
    stop = threading.Event()

    def flood() -> None:
        batch = 0
        while not stop.is_set():
            batch += 1
            soc.ingest(f"race-{batch}", [syslog_record(host, "clamd[812]", line) for _ in range(10)])
            sent[0] += 10
            time.sleep(0.01)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    reverted = []
    try:
        for status in ["acknowledged", "in_progress"] * 20:
            resp = api.client.patch(f"/api/v1/alerts/{alert_id}", json={"status": status})
            assert resp.status_code == 200, resp.text
            time.sleep(0.1)
            now = api.get(f"/api/v1/alerts/{alert_id}")["status"]
            if now != status:
                reverted.append((status, now))
    finally:
        stop.set()
        flooder.join(15)

    def settled() -> int | None:
        soc.alive()
        total = int(api.get("/api/v1/events", host=host, limit=1)["total"])
        return total if total == sent[0] else None

    wait_for(settled, 30, f"all {sent[0]} events stored")
    time.sleep(1.5)  # the batch that stored the last events also wrote the alert; let one more poll pass
    final = api.get(f"/api/v1/alerts/{alert_id}")
    lost = sent[0] - int(final["count"])
    assert (reverted, lost) == ([], 0), (
        f"repeats reverted the analyst's status change {len(reverted)} time(s) {reverted}; "
        f"{lost} of {sent[0]} repeat(s) lost to concurrent status changes"
    )
    assert final["status"] == "in_progress", final
    assert api.get("/api/v1/alerts", host=host, limit=1)["total"] == 1
