"""soclite's own rules (rules/): each with a positive and a negative event, correlations with sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from correlator.engine import Engine
from correlator.loader import load_paths

RULES = Path(__file__).resolve().parents[2] / "rules"
T0 = datetime(2026, 11, 23, 3, 0, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture()
def engine() -> Engine:
    rs = load_paths([RULES])
    assert not rs.failures, rs.failures
    return Engine(rs)


def titles(engine: Engine, event: dict[str, Any]) -> list[str]:
    return [a.rule_title for a in engine.process(event)]


def test_all_own_rules_load_with_ids_levels_and_attack_tags(engine: Engine) -> None:
    assert len(engine.rules) >= 15 and len(engine.correlations) == 4
    for rule in engine.rules:
        assert rule.level in {"informational", "low", "medium", "high", "critical"}
        assert any(t.startswith("attack.") for t in rule.tags), rule.title
    assert engine.unrouted_rules() == []


def ssh(outcome: str, ip: str, second: float, host: str = "web01") -> dict[str, Any]:
    return {
        "logsource.product": "linux",
        "logsource.service": "sshd",
        "event.action": "ssh_login",
        "event.outcome": outcome,
        "source.ip": ip,
        "user.name": "root",
        "host.name": host,
        "@timestamp": ts(second),
    }


def test_ssh_bruteforce_and_success_after(engine: Engine) -> None:
    seen: list[str] = []
    for i in range(9):
        seen += titles(engine, ssh("failure", "203.0.113.9", i))
    assert seen == []  # building blocks are silent, nine failures are below the threshold
    seen += titles(engine, ssh("failure", "203.0.113.9", 10))
    assert seen == ["SSH Brute Force"]
    alerts = engine.process(ssh("success", "203.0.113.9", 60))
    assert [a.rule_title for a in alerts] == ["SSH Login Succeeded After Brute Force"]
    assert alerts[0].level == "critical" and alerts[0].kind == "correlation"
    assert alerts[0].host == "web01"


def test_ssh_failures_spread_out_or_from_many_sources_do_not_fire(engine: Engine) -> None:
    out: list[str] = []
    for i in range(12):  # one failure per minute: never 10 within 5 minutes
        out += titles(engine, ssh("failure", "203.0.113.9", i * 60))
    for i in range(12):  # ten different sources
        out += titles(engine, ssh("failure", f"198.51.100.{i}", 1000 + i))
    out += titles(engine, ssh("success", "198.51.100.1", 1100))
    assert out == []


def rdp(event_id: int, ip: str, second: float, logon_type: Any = "10") -> dict[str, Any]:
    return {
        "Channel": "Security",
        "EventID": event_id,
        "LogonType": logon_type,
        "IpAddress": ip,
        "TargetUserName": "administrator",
        "Computer": "DC01.tinh.local",
        "host.name": "dc01",
        "@timestamp": ts(second),
    }


def test_rdp_bruteforce_then_success(engine: Engine) -> None:
    out: list[str] = []
    for i in range(10):
        out += titles(engine, rdp(4625, "192.0.2.7", i))
    assert out == ["RDP Brute Force"]
    assert titles(engine, rdp(4624, "192.0.2.7", 30)) == ["RDP Logon Succeeded After Brute Force"]


def test_rdp_network_logon_failures_are_not_rdp(engine: Engine) -> None:
    out: list[str] = []
    for i in range(15):
        out += titles(engine, rdp(4625, "192.0.2.8", i, logon_type=3))
    assert out == []


def test_new_local_admin(engine: Engine) -> None:
    ev = {
        "Channel": "Security",
        "EventID": 4732,
        "TargetSid": "S-1-5-32-544",
        "TargetUserName": "Administrators",
        "MemberSid": "S-1-5-21-1-2-3-1105",
        "Computer": "pc01",
    }
    assert titles(engine, ev) == ["Member Added To Local Administrators"]
    other = dict(ev, TargetSid="S-1-5-32-555", TargetUserName="Remote Desktop Users")
    assert titles(engine, other) == []


def auth(**fields: Any) -> dict[str, Any]:
    return {"logsource.product": "linux", "logsource.service": "auth", "host.name": "db01", **fields}


def test_linux_sudo_group(engine: Engine) -> None:
    assert titles(
        engine,
        auth(**{"event.action": "user_added_to_group", "group.name": "sudo", "user.target.name": "eve"}),
    ) == ["User Added To Sudo Or Wheel Group"]
    assert titles(engine, auth(**{"event.action": "user_added_to_group", "group.name": "docker"})) == []


def test_sudo_and_su_abuse(engine: Engine) -> None:
    assert titles(
        engine, auth(**{"event.action": "sudo", "event.outcome": "failure", "user.name": "www-data"})
    ) == ["Sudo Refused Or Wrong Password"]
    assert (
        titles(
            engine,
            auth(
                **{
                    "event.action": "sudo",
                    "event.outcome": "success",
                    "user.target.name": "root",
                    "process.command_line": "/usr/bin/apt update",
                }
            ),
        )
        == []
    )
    assert titles(engine, auth(**{"event.action": "su", "event.outcome": "failure"})) == [
        "Failed Switch User To Another Account"
    ]
    assert titles(engine, auth(**{"event.action": "su", "event.outcome": "success"})) == []
    assert titles(
        engine,
        auth(
            **{
                "event.action": "sudo",
                "event.outcome": "success",
                "user.target.name": "root",
                "process.command_line": "/bin/bash",
            }
        ),
    ) == ["Interactive Root Shell Via Sudo"]
    assert titles(
        engine,
        auth(
            **{
                "event.action": "sudo",
                "event.outcome": "success",
                "user.target.name": "root",
                "process.command_line": "/usr/bin/su -",
            }
        ),
    ) == ["Interactive Root Shell Via Sudo"]


def test_clamav(engine: Engine) -> None:
    ev = {
        "logsource.product": "clamav",
        "logsource.category": "antivirus",
        "Signature": "Win.Trojan.Agent-1",
        "Filename": "/srv/upload/x.exe",
        "host.name": "mail01",
    }
    alerts = engine.process(ev)
    assert [(a.rule_title, a.severity) for a in alerts] == [("ClamAV Malware Detection", "high")]
    eicar = dict(ev, Signature="Win.Test.EICAR_HDB-1 Eicar-Test-Signature")
    assert titles(engine, eicar) == ["ClamAV EICAR Test File"]
    assert titles(engine, {"logsource.product": "clamav", "logsource.category": "antivirus"}) == []


def test_windows_defender(engine: Engine) -> None:
    ev = {
        "Channel": "Microsoft-Windows-Windows Defender/Operational",
        "EventID": 1116,
        "ThreatName": "Trojan:Win32/Emotet",
        "Path": "file:_C:\\Users\\a\\x.exe",
        "Computer": "pc02",
    }
    alerts = engine.process(ev)
    assert [(a.rule_title, a.level) for a in alerts] == [("Windows Defender Malware Detection", "high")]
    assert (
        titles(engine, {"Channel": "Microsoft-Windows-Windows Defender/Operational", "EventID": 5007}) == []
    )


def web(stem: str, query: str = "") -> dict[str, Any]:
    return {
        "logsource.category": "webserver",
        "logsource.product": "nginx",
        "cs-method": "GET",
        "cs-uri-stem": stem,
        "cs-uri-query": query,
        "sc-status": 200,
        "c-ip": "203.0.113.50",
    }


def test_web_attacks(engine: Engine) -> None:
    assert titles(engine, web("/news.php", "id=1%20UNION%20SELECT%20user,pass%20FROM%20users")) == [
        "SQL Injection Attempt In URL"
    ]
    assert titles(engine, web("/download", "file=../../../../etc/passwd")) == [
        "Path Traversal Attempt In URL"
    ]
    assert titles(engine, web("/uploads/c99.php")) == ["Web Shell Access"]
    assert titles(engine, web("/uploads/img.php", "cmd=whoami")) == ["Web Shell Access"]
    assert titles(engine, web("/news.php", "id=12&page=2")) == []
    assert titles(engine, web("/search", "q=selection+of+unions")) == []
