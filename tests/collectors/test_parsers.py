"""Every parser on real sample lines, with the field values Sigma rules and the UI rely on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from soclite.collectors.normalize import normalize, normalize_batch
from soclite.collectors.parsers import PARSERS, register
from soclite.collectors.parsers.generic import GenericSyslogParser
from soclite.errors import ConfigError, ParseError

RECEIVED = datetime(2026, 11, 23, 10, 45, tzinfo=UTC)


def norm(message: str, **extra: Any) -> dict[str, Any]:
    return normalize({"message": message, **extra}, received=RECEIVED, input="test", unit="sotttt",
                     agent_id="a1", default_tz="Asia/Ho_Chi_Minh")  # fmt: skip


def subset(event: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {k: event.get(k) for k in expected} == expected


CASES: list[tuple[str, dict[str, Any]]] = [
    # --- sshd (product linux, service sshd)
    ("<38>Nov 23 17:40:01 web01 sshd[1234]: Accepted publickey for alice from 10.0.0.5 port 52144 ssh2: RSA SHA256:Yk3b",
     {"logsource.product": "linux", "logsource.service": "sshd", "event.action": "ssh_login", "event.outcome": "success",
      "user.name": "alice", "source.ip": "10.0.0.5", "source.port": 52144, "ssh.auth_method": "publickey",
      "host.name": "web01", "@timestamp": "2026-11-23T10:40:01.000Z", "log.syslog.facility.name": "auth"}),
    ("Nov 23 17:40:02 web01 sshd[1240]: Failed password for invalid user oracle from 203.0.113.9 port 40022 ssh2",
     {"logsource.service": "sshd", "event.action": "ssh_login", "event.outcome": "failure", "user.name": "oracle",
      "source.ip": "203.0.113.9"}),
    ("Nov 23 17:40:02 web01 sshd[1241]: Failed password for root from 2001:db8::7 port 40023 ssh2",
     {"event.outcome": "failure", "user.name": "root", "source.ip": "2001:db8::7"}),
    ("Nov 23 17:40:03 web01 sshd[1242]: Invalid user test from 198.51.100.4 port 51000",
     {"event.action": "ssh_invalid_user", "event.outcome": "failure", "user.name": "test", "source.ip": "198.51.100.4"}),
    ("Nov 23 17:40:04 web01 sshd[1243]: Disconnected from invalid user test 198.51.100.4 port 51000 [preauth]",
     {"event.action": "ssh_disconnect", "user.name": "test", "source.ip": "198.51.100.4", "source.port": 51000}),
    ("Nov 23 17:40:04 web01 sshd[1244]: Disconnected from 198.51.100.4 port 51001",
     {"event.action": "ssh_disconnect", "source.ip": "198.51.100.4"}),
    # --- sudo / su / shadow-utils (service auth)
    ("Nov 23 17:41:00 web01 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
     {"logsource.service": "auth", "event.action": "sudo", "event.outcome": "success", "user.name": "alice",
      "user.target.name": "root", "process.command_line": "/usr/bin/cat /etc/shadow"}),
    ("Nov 23 17:41:01 web01 sudo:      bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
     {"event.action": "sudo", "event.outcome": "failure", "user.name": "bob", "sudo.incorrect_attempts": 3}),
    ("Nov 23 17:41:02 web01 sudo:     eve : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
     {"event.outcome": "failure", "user.name": "eve"}),
    ("Nov 23 17:41:03 web01 sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1001 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob",
     {"event.action": "sudo_auth", "event.outcome": "failure", "user.name": "bob"}),
    ("Nov 23 17:41:04 web01 su[3001]: (to root) alice on pts/0",
     {"logsource.service": "auth", "event.action": "su", "event.outcome": "success", "user.name": "alice", "user.target.name": "root"}),
    ("Nov 23 17:41:05 web01 su[3002]: FAILED SU (to root) bob on pts/1",
     {"event.action": "su", "event.outcome": "failure", "user.name": "bob"}),
    ("Nov 23 17:41:06 web01 su[3003]: pam_unix(su:session): session opened for user root(uid=0) by alice(uid=1000)",
     {"event.action": "su_session_opened", "user.target.name": "root", "user.name": "alice"}),
    ("Nov 23 17:42:00 web01 useradd[4001]: new user: name=mallory, UID=1002, GID=1002, home=/home/mallory, shell=/bin/bash, from=/dev/pts/0",
     {"logsource.service": "auth", "event.action": "user_created", "user.target.name": "mallory", "user.target.id": "1002"}),
    ("Nov 23 17:42:01 web01 groupadd[4002]: group added to /etc/group: name=devs, GID=1003",
     {"event.action": "group_created", "group.name": "devs", "group.id": "1003"}),
    ("Nov 23 17:42:02 web01 usermod[4003]: add 'mallory' to group 'sudo'",
     {"event.action": "user_added_to_group", "user.target.name": "mallory", "group.name": "sudo"}),
    ("Nov 23 17:42:02 web01 gpasswd[4005]: user mallory added by root to group wheel",
     {"event.action": "user_added_to_group", "user.target.name": "mallory", "group.name": "wheel"}),
    ("Nov 23 17:42:03 web01 passwd[4004]: pam_unix(passwd:chauthtok): password changed for mallory",
     {"event.action": "password_changed", "user.target.name": "mallory"}),
    # --- web servers (category webserver)
    ('203.0.113.7 - - [23/Nov/2026:17:40:05 +0700] "GET /index.php?id=1%27%20or%201=1 HTTP/1.1" 404 153 "-" "sqlmap/1.7.2#stable"',
     {"logsource.category": "webserver", "c-ip": "203.0.113.7", "cs-method": "GET", "cs-uri-stem": "/index.php",
      "cs-uri-query": "id=1%27%20or%201=1", "sc-status": 404, "cs-user-agent": "sqlmap/1.7.2#stable",
      "cs-referer": "-", "url.original": "/index.php?id=1%27%20or%201=1", "source.ip": "203.0.113.7",
      "http.response.status_code": 404, "@timestamp": "2026-11-23T10:40:05.000Z"}),
    ('<190>Nov 23 17:40:06 web02 nginx: 10.1.1.1 - admin [23/Nov/2026:17:40:06 +0700] "POST /wp-login.php HTTP/1.1" 200 4500 "https://x.gov.vn/" "Mozilla/5.0"',
     {"logsource.category": "webserver", "logsource.product": "nginx", "cs-method": "POST", "cs-uri-stem": "/wp-login.php",
      "cs-uri-query": "", "cs-username": "admin", "cs-referer": "https://x.gov.vn/", "host.name": "web02"}),
    # --- antivirus
    ("Nov 23 17:43:00 av01 clamd[77]: /home/u/Downloads/eicar.com: Win.Test.EICAR_HDB-1 FOUND",
     {"logsource.category": "antivirus", "Signature": "Win.Test.EICAR_HDB-1", "threat.name": "Win.Test.EICAR_HDB-1",
      "Filename": "/home/u/Downloads/eicar.com", "file.path": "/home/u/Downloads/eicar.com", "observer.product": "clamd"}),
    ("/srv/share/invoice.doc: Doc.Dropper.Agent-1234567(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
     {"logsource.category": "antivirus", "Signature": "Doc.Dropper.Agent-1234567", "file.path": "/srv/share/invoice.doc",
      "file.hash.md5": "44d88612fea8a8f36de82e1278abb02f"}),
    # --- DNS
    ("23-Nov-2026 17:00:00.123 queries: info: client @0x7f3c2c0a8f70 192.168.1.5#53627 (evil.example): query: evil.example IN A +E(0)K (192.168.1.1)",
     {"logsource.category": "dns", "query": "evil.example", "dns.question.name": "evil.example", "record_type": "A",
      "source.ip": "192.168.1.5", "@timestamp": "2026-11-23T10:00:00.123Z"}),
    ("Nov 23 17:44:00 gw dnsmasq[512]: query[AAAA] c2.bad.example from 192.168.1.9",
     {"logsource.category": "dns", "query": "c2.bad.example", "record_type": "AAAA", "source.ip": "192.168.1.9"}),
    ("Nov 23 17:44:00 gw dnsmasq[512]: reply c2.bad.example is 203.0.113.66",
     {"logsource.category": "dns", "query": "c2.bad.example", "answer": "203.0.113.66"}),
    # --- generic
    ("<30>Nov 23 17:45:00 db01 systemd[1]: Started Daily apt download activities.",
     {"logsource.product": "linux", "process.name": "systemd", "message": "Started Daily apt download activities.",
      "log.syslog.severity.name": "informational", "log.syslog.facility.name": "daemon"}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0][:50] for c in CASES])
def test_sample_line(line: str, expected: dict[str, Any]) -> None:
    event = norm(line)
    subset(event, expected)
    assert event["event.original"] == line
    assert event["soclite.unit"] == "sotttt" and event["soclite.agent_id"] == "a1"
    assert len(event["event.id"]) == 32


AUDIT = [
    'type=SYSCALL msg=audit(1732358401.120:8812): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 a2=55d2 '
    'a3=0 items=2 ppid=2190 pid=2241 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 '
    'comm="wget" exe="/usr/bin/wget" subj=unconfined key="exec_log"',
    'type=EXECVE msg=audit(1732358401.120:8812): argc=3 a0="wget" a1="-O" a2=2F746D702F7820792E7368',
    'type=CWD msg=audit(1732358401.120:8812): cwd="/root"',
    'type=PATH msg=audit(1732358401.120:8812): item=0 name="/usr/bin/wget" inode=1311 dev=fd:01 mode=0100755 ouid=0 ogid=0',
    "type=PROCTITLE msg=audit(1732358401.120:8812): proctitle=77676574002D4F",
    "type=USER_LOGIN msg=audit(1732358500.001:8813): pid=3001 uid=0 auid=1000 ses=4 msg='op=login id=1000 exe=\"/usr/sbin/sshd\" hostname=? addr=10.0.0.5 terminal=ssh res=success'",
]


def test_auditd_records_join_into_process_creation() -> None:
    out = normalize_batch([{"message": line} for line in AUDIT], received=RECEIVED, input="test", unit=None,
                          agent_id=None, default_tz="Asia/Ho_Chi_Minh")  # fmt: skip
    assert len(out) == 2
    proc, login = out
    assert isinstance(proc, dict) and isinstance(login, dict)
    subset(proc, {
        "logsource.product": "linux", "logsource.category": "process_creation", "logsource.service": "auditd",
        "type": "EXECVE", "Image": "/usr/bin/wget", "CommandLine": "wget -O /tmp/x y.sh", "CurrentDirectory": "/root",
        "ProcessId": "2241", "ParentProcessId": "2190", "User": "0", "key": "exec_log", "syscall": "59",
        "a0": "wget", "a2": "/tmp/x y.sh", "name": "/usr/bin/wget", "@timestamp": "2024-11-23T10:40:01.120Z",
    })  # fmt: skip
    assert proc["audit.record_types"] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE"]
    assert proc["event.original"].count("msg=audit(1732358401.120:8812)") == 5
    subset(login, {"type": "USER_LOGIN", "logsource.service": "auditd", "addr": "10.0.0.5", "res": "success", "op": "login"})


def test_truncation_flags_oversized_messages() -> None:
    event = normalize({"message": "<13>Nov 23 17:00:00 h app: " + "x" * 5000}, received=RECEIVED, input="t",
                      unit=None, agent_id=None, default_tz="Asia/Ho_Chi_Minh", max_bytes=1024)  # fmt: skip
    assert event["soclite.truncated"] is True
    assert len(event["event.original"].encode()) == 1024


def test_client_ids_kept_and_client_metadata_dropped() -> None:
    event = normalize(
        {"@timestamp": "2026-11-23T01:02:03Z", "logsource.product": "linux", "event.id": "client-id-000001",
         "soclite.unit": "forged", "soclite.agent_id": "forged", "user.name": "x"},
        received=RECEIVED, input="http", unit="real", agent_id="agent-7", default_tz="Asia/Ho_Chi_Minh",
    )  # fmt: skip
    subset(event, {"event.id": "client-id-000001", "soclite.unit": "real", "soclite.agent_id": "agent-7",
                   "@timestamp": "2026-11-23T01:02:03.000Z", "user.name": "x"})  # fmt: skip


def test_journald_record() -> None:
    event = normalize(
        {"MESSAGE": "Failed password for root from 198.51.100.1 port 2222 ssh2", "SYSLOG_IDENTIFIER": "sshd",
         "_HOSTNAME": "srv9", "_PID": "77", "__REALTIME_TIMESTAMP": "1732358401000000"},
        received=RECEIVED, input="agent", unit=None, agent_id=None, default_tz="Asia/Ho_Chi_Minh",
    )  # fmt: skip
    subset(event, {"logsource.service": "sshd", "event.outcome": "failure", "host.name": "srv9",
                   "@timestamp": "2024-11-23T10:40:01.000Z"})  # fmt: skip


@pytest.mark.parametrize("record", [[], "x", {"message": 5}, {"message": "  "}, {"nothing": 1},
                                    {"@timestamp": "yesterday", "logsource.product": "linux"}, {"message": "a\x00b"}])
def test_bad_records_raise_parse_error(record: Any) -> None:
    with pytest.raises(ParseError):
        normalize(record, received=RECEIVED, input="t", unit=None, agent_id=None, default_tz="Asia/Ho_Chi_Minh")


def test_registry_refuses_duplicates() -> None:
    assert list(PARSERS)[-1] == "syslog"
    with pytest.raises(ConfigError):
        register(GenericSyslogParser())


def test_windows_records_from_winlogbeat_and_nxlog() -> None:
    winlogbeat = {
        "@timestamp": "2026-11-23T03:00:00.000Z", "message": "Process Create: ...",
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1, "computer_name": "PC-01",
                   "provider_name": "Microsoft-Windows-Sysmon", "record_id": 42,
                   "event_data": {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd.exe /c whoami"}},
    }  # fmt: skip
    event = normalize(winlogbeat, received=RECEIVED, input="http", unit="u", agent_id=None, default_tz="Asia/Ho_Chi_Minh")
    subset(event, {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "host.name": "PC-01",
                   "Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd.exe /c whoami",
                   "@timestamp": "2026-11-23T03:00:00.000Z", "soclite.unit": "u"})  # fmt: skip
    defender = {"EventID": "1117", "Channel": "Microsoft-Windows-Windows Defender/Operational", "Hostname": "PC-02",
                "SourceName": "Microsoft-Windows-Windows Defender", "Threat Name": "Virus:DOS/EICAR_Test_File",
                "Path": "file:_C:\\Users\\a\\eicar.com;file:_C:\\tmp\\x"}  # fmt: skip
    event = normalize(defender, received=RECEIVED, input="http", unit=None, agent_id=None, default_tz="Asia/Ho_Chi_Minh")
    subset(event, {"logsource.category": "antivirus", "logsource.product": "windows", "event.action": "remediated",
                   "Signature": "Virus:DOS/EICAR_Test_File", "Filename": "C:\\Users\\a\\eicar.com", "host.name": "PC-02"})
