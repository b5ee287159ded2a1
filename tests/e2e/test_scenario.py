"""The whole chain with real processes, from a line on an endpoint to the national system and the monthly report.

Topology::

    [root ns] soclite server on 10.x.7.1:<port> ──veth── 10.x.7.2 [agent ns] soclite agent
              medallion (TAXII 2.1) and aiosmtpd on 127.0.0.1, a "peer" TCP listener on 10.x.7.1:<other port>

The agent tails an auth log and a ClamAV log. A brute force against sshd (then a successful login from the same
address) and a ClamAV detection are written; the alerts must come out of the API with the levels of the
project's rules (rules/linux/ssh_bruteforce.yml, rules/antivirus/malware_detected.yml), reach the national TAXII
collection as sightings and the duty team's mailbox, and the malware playbook must ask for isolation. An admin
approves; the agent applies nftables in its namespace and the verified ruleset shows on the host — and for real
the namespace still reaches the manager but no longer the peer. Finally `soclite report` for the current month
counts exactly what the API counts.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from soclite.reports.periods import parse_period
from tests.e2e.support import (
    PULL,
    PUSH,
    SOCLITE,
    TAXII_PASSWORD,
    TAXII_USER,
    AgentNamespace,
    Api,
    Inbox,
    Process,
    TcpListener,
    cli,
    free_port,
    start_medallion,
    start_server,
    start_smtp,
    taxii_objects,
    wait_for,
    why_no_netns,
)

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

TZ = "Asia/Ho_Chi_Minh"
ATTACKER = "203.0.113.45"
UNIT = "ttcntt"
# rule title -> (Sigma level, severity bucket), as written in rules/
BRUTE_FORCE = "SSH Brute Force"
SUCCESS_AFTER = "SSH Login Succeeded After Brute Force"
CLAMAV = "ClamAV Malware Detection"
EICAR = "ClamAV EICAR Test File"
EXPECTED = {
    BRUTE_FORCE: ("high", "high"),
    SUCCESS_AFTER: ("critical", "high"),
    CLAMAV: ("high", "high"),
    EICAR: ("low", "low"),
}


@pytest.fixture
def medallion(tmp_path: Path) -> Iterator[str]:
    """The national TAXII 2.1 server; yields its API root."""
    proc, api_root = start_medallion(tmp_path)
    try:
        yield api_root
    finally:
        proc.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """The duty team's mail server; yields its inbox and port."""
    controller, inbox, port = start_smtp()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def netns() -> Iterator[AgentNamespace]:
    reason = why_no_netns()
    if reason:
        pytest.skip(reason)
    ns = AgentNamespace()
    try:
        ns.build()
        yield ns
    finally:
        ns.destroy()


def syslog_line(host: str, program: str, message: str) -> str:
    """One line as rsyslog writes it with high-precision timestamps (RFC 3339 with the local offset)."""
    stamp = datetime.now(ZoneInfo(TZ)).isoformat(timespec="microseconds")
    return f"{stamp} {host} {program}: {message}\n"


def append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)


def report_figures(csv_bytes: bytes) -> dict[str, int]:
    rows = csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig")))
    return {row[1]: int(row[3]) for row in rows if len(row) == 4 and row[0] == "summary" and row[3].isdigit()}


def html_figures(html: str) -> dict[str, int]:
    """The figures the HTML tags with data-key, read back as a Vietnamese reader sees them (69.600)."""
    return {
        key: int(value.strip().replace(".", ""))
        for key, value in re.findall(r'data-key="([^"]+)">([^<]+)<', html)
    }


def test_endpoint_to_national_system_isolation_and_report(
    netns: AgentNamespace, medallion: str, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    started = time.monotonic()
    data_dir = tmp_path / "data"
    auth_log, clam_log = tmp_path / "auth.log", tmp_path / "clamav.log"
    auth_log.touch()
    clam_log.touch()
    host = socket.gethostname().split(".")[0]  # a network namespace shares the UTS name
    host_id = host.lower()
    port = free_port(netns.host_ip)
    base = f"http://{netns.host_ip}:{port}"

    api_root, (inbox, smtp_port) = medallion, smtp
    config = tmp_path / "soclite.yml"
    config.write_text(yaml.safe_dump({
        "environment": "test",
        "timezone": TZ,
        "server": {"http_host": netns.host_ip, "http_port": port, "syslog_port": 0},
        "auth": {"secret_key": secrets.token_urlsafe(48)},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "soclite@e2e.test"},
        "national": {
            "enabled": True, "kind": "taxii", "taxii_url": api_root, "taxii_push_collection": PUSH,
            "taxii_pull_collection": PULL, "username": TAXII_USER, "password": TAXII_PASSWORD,
            "heartbeat_seconds": 3600, "pull_seconds": 3600,
        },
    }))  # fmt: skip
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "SOCLITE_CONFIG": str(config)}
    procs: list[Process] = []
    api: Api | None = None
    peer = TcpListener(netns.host_ip)  # "another host": another service on the manager side
    try:
        server = start_server(config, data_dir, base, tmp_path / "server.log", env)
        procs.append(server)
        api = Api(base, cli("token", "create", "--data-dir", str(data_dir), "--role", "admin", env=env))
        enroll = cli("agent", "enroll-token", "create", "--data-dir", str(data_dir), "--unit", UNIT, env=env)
        agent_yml = tmp_path / "agent.yml"
        agent_yml.write_text(yaml.safe_dump({
            "host_type": "workstation",
            "files": [{"path": str(auth_log)}, {"path": str(clam_log)}],
            "flush_interval": 0.2, "poll_interval": 0.1, "heartbeat_interval": 1, "command_poll_interval": 0.5,
            "backoff_initial": 0.1, "backoff_max": 1,
        }))  # fmt: skip
        agent = Process(
            ["ip", "netns", "exec", netns.name, SOCLITE, "agent", "--server", base, "--enroll-token", enroll,
             "--state-dir", str(tmp_path / "agent-state"), "--config", str(agent_yml)],
            tmp_path / "agent.log", env,
        )  # fmt: skip
        procs.append(agent)

        def enrolled() -> dict[str, Any] | None:
            assert agent.alive(), "agent exited: " + agent.tail()
            resp = api.client.get(f"/api/v1/hosts/{host_id}")
            return resp.json() if resp.status_code == 200 else None

        inventory = wait_for(enrolled, 60, "the agent's enrollment and first heartbeat")
        assert inventory["type"] == "workstation" and inventory["unit"] == UNIT, inventory
        # before anything happens the namespace reaches both the manager and the peer
        assert netns.can_connect(netns.host_ip, port) and netns.can_connect(netns.host_ip, peer.port)

        # --- the attack, as the endpoint logs it ---------------------------------------------------
        append(auth_log, [
            syslog_line(host, f"sshd[{4000 + i}]", f"Failed password for root from {ATTACKER} port {50000 + i} ssh2")
            for i in range(12)
        ])  # fmt: skip
        append(
            auth_log,
            [syslog_line(host, "sshd[4100]", f"Accepted password for root from {ATTACKER} port 50100 ssh2")],
        )
        append(clam_log, [
            syslog_line(host, "clamd[812]", "/home/nguyenvana/Downloads/hoadon.pdf.exe: Win.Trojan.Agent-1234567 FOUND"),
            syslog_line(host, "clamd[812]", "/home/nguyenvana/eicar.com: Eicar-Test-Signature FOUND"),
        ])  # fmt: skip

        def our_alerts() -> dict[str, dict[str, Any]] | None:
            assert agent.alive(), "agent exited: " + agent.tail()
            items = api.get("/api/v1/alerts", host=host_id, limit=100)["items"]
            by_title = {a["rule_title"]: a for a in items}
            return by_title if set(EXPECTED) <= set(by_title) else None

        alerts = wait_for(our_alerts, 60, f"the alerts {sorted(EXPECTED)} in GET /api/v1/alerts")
        for title, (level, severity) in EXPECTED.items():
            alert = alerts[title]
            assert (alert["level"], alert["severity"]) == (level, severity), alert
            assert alert["unit"] == UNIT and alert["host"] == host_id
        assert alerts[BRUTE_FORCE]["count"] >= 1
        # building blocks (failed / successful login) do not alert on their own
        assert not {"SSH Failed Login", "SSH Successful Login"} & set(alerts)
        high_ids = {alerts[t]["id"] for t, (_, sev) in EXPECTED.items() if sev == "high"}

        # --- the national system: one sighting per high alert in the TAXII collection ---------------
        def synced() -> list[dict[str, Any]] | None:
            objects = taxii_objects(api_root)
            seen = {o.get("x_soclite_alert_id") for o in objects if o["type"] == "sighting"}
            return objects if high_ids <= seen else None

        objects = wait_for(synced, 60, "sightings of the high alerts in medallion", interval=0.5)
        sightings = [
            o for o in objects if o["type"] == "sighting" and o.get("x_soclite_alert_id") in high_ids
        ]
        assert len(sightings) == len(high_ids), "an alert was sent twice"
        assert alerts[EICAR]["id"] not in {o.get("x_soclite_alert_id") for o in objects}, (
            "low alerts stay local"
        )

        # --- the duty team got mail for the high alerts ---------------------------------------------
        wait_for(lambda: len(inbox.messages) >= len(high_ids), 60, "mail to the duty team")
        assert all("soc-truc@localhost" in str(m["To"]) for m in inbox.messages)

        # --- the malware playbook asks for isolation; an admin approves ------------------------------
        def requested() -> dict[str, Any] | None:
            items = api.get("/api/v1/actions", action="isolate_host")["items"]
            return items[0] if items else None

        action = wait_for(requested, 30, "an isolate_host action in GET /api/v1/actions")
        assert action["status"] == "awaiting_approval", action
        assert action["alert_id"] == alerts[CLAMAV]["id"] and action["params"]["host_id"] == host_id
        assert len(api.get("/api/v1/actions", action="isolate_host")["items"]) == 1  # only the malware asks
        assert netns.can_connect(netns.host_ip, peer.port), "isolated before anyone approved"
        approved = api.post(f"/api/v1/actions/{action['id']}/approve")
        assert approved["approved_by"] and approved["status"] != "awaiting_approval", approved

        def isolated() -> dict[str, Any] | None:
            data = api.get(f"/api/v1/hosts/{host_id}")
            assert data["isolation"] != "failed", data
            return data if data["isolation"] == "isolated" else None

        host_state = wait_for(isolated, 60, "the agent's verified isolation in GET /api/v1/hosts/{id}")
        detail = host_state["isolation_detail"] or ""
        assert "table inet soclite_isolation" in detail and "policy drop" in detail
        assert f"ip daddr {netns.host_ip} tcp dport {port} accept" in detail
        kernel = netns.run("nft", "list", "table", "inet", "soclite_isolation").stdout
        assert kernel == detail, "the reported ruleset is not what the kernel of the endpoint holds"
        assert netns.can_connect(netns.host_ip, port), "isolation cut the endpoint off the manager"
        assert not netns.can_connect(netns.host_ip, peer.port), "the isolated endpoint still reaches the peer"
        # the agent keeps talking to the manager through the isolation (heartbeats move last_seen)
        seen = host_state["last_seen"]
        wait_for(lambda: api.get(f"/api/v1/hosts/{host_id}")["last_seen"] != seen, 20,
                 "a heartbeat through the isolation")  # fmt: skip

        # --- the monthly report counts what the API counts -----------------------------------------
        period = parse_period(datetime.now(ZoneInfo(TZ)).strftime("%Y-%m"), TZ)
        window = {"from": period.start.isoformat(), "to": period.end.isoformat(), "limit": 1}
        expected = {"total": api.get("/api/v1/alerts", **window)["total"]}
        for severity in ("high", "medium", "low"):
            expected[severity] = api.get("/api/v1/alerts", severity=severity, **window)["total"]
        assert (
            expected["total"] >= len(EXPECTED) and expected["high"] >= len(high_ids) and expected["low"] >= 1
        )
        out = tmp_path / "report"
        cli("report", "--data-dir", str(data_dir), "--period", period.code, "--lang", "vi", "--format", "html,csv",
            "--out", str(out), env=env)  # fmt: skip
        figures = report_figures((out / f"report_{period.code}_vi.csv").read_bytes())
        assert {k: figures[k] for k in expected} == expected, figures
        assert figures["malware"] >= 1 and figures["isolations"] >= 1, figures
        shown = html_figures((out / f"report_{period.code}_vi.html").read_text(encoding="utf-8"))
        assert shown["total"] == expected["total"] and shown["high"] == expected["high"], shown
        rows = (out / f"report_{period.code}_vi.csv").read_text(encoding="utf-8-sig")
        assert all(alerts[t]["id"] in rows for t in EXPECTED), "an alert is missing from the report's annex"
    finally:
        if api is not None:
            api.close()
        for proc in reversed(procs):
            proc.stop()
        peer.close()
    assert time.monotonic() - started < 300
