"""The network and infrastructure log sources: parsers on sample lines written from the vendors'
published formats, and for each source a SigmaHQ rule of it that fires on a positive sample and not
on a negative one (the rules are read from ../shared/sigma, never copied here)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soclite.collectors.normalize import normalize, normalize_batch
from soclite.correlator.engine import Engine
from soclite.correlator.loader import load_paths
from tests.correlator.regression import SIGMA

RECEIVED = datetime(2026, 11, 23, 10, 45, tzinfo=UTC)


def norm(message: str, **extra: Any) -> dict[str, Any]:
    return normalize({"message": message, **extra}, received=RECEIVED, input="test", unit="sotttt",
                     agent_id=None, default_tz="Asia/Ho_Chi_Minh")  # fmt: skip


def batch(lines: list[str]) -> list[dict[str, Any]]:
    out = normalize_batch([{"message": line} for line in lines], received=RECEIVED, input="test", unit=None,
                          agent_id=None, default_tz="Asia/Ho_Chi_Minh")  # fmt: skip
    assert all(isinstance(e, dict) for e in out), out
    return out  # type: ignore[return-value]


def subset(event: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {k: event.get(k) for k in expected} == expected


_engines: dict[str, Engine] = {}


def fired(rule: str, event: dict[str, Any]) -> bool:
    """Does the SigmaHQ rule at ``rule`` (relative to ../shared/sigma) fire on the event?"""
    path = SIGMA / rule
    if not path.exists():
        pytest.skip(f"{path} is not available")
    if rule not in _engines:
        ruleset = load_paths([path])
        assert not ruleset.failures and len(ruleset.rules) == 1, ruleset.failures
        _engines[rule] = Engine(ruleset)
    return bool(_engines[rule].match(dict(event)))


# ---------------------------------------------------------------- FortiGate
FGT_HEAD = ('<189>date=2026-11-23 time=17:40:01 devname="FGT-SO-TTTT" devid="FG100FTK22001234" '
            'eventtime=1795430401123456789 tz="+0700" ')  # fmt: skip
FGT_USER_ADD = (FGT_HEAD + 'logid="0100044547" type="event" subtype="system" level="information" vd="root" '
                'logdesc="Object attribute configured" user="admin" ui="GUI(10.10.1.5)" action="Add" cfgtid=1048579 '
                'cfgpath="user.local" cfgobj="vpn-guest" cfgattr="type[password]status[enable]" '
                'msg="Add user.local vpn-guest"')  # fmt: skip
FGT_TRAFFIC = (FGT_HEAD + 'logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
               'srcip=10.10.5.20 srcport=51544 srcintf="lan" dstip=203.0.113.77 dstport=3306 dstintf="wan1" '
               'proto=6 action="accept" policyid=12 service="MySQL" duration=4 sentbyte=1830 rcvdbyte=5120')  # fmt: skip
FGT_IPS = (FGT_HEAD + 'logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" vd="root" '
           'severity="critical" srcip=198.51.100.23 srcport=40112 dstip=10.10.2.8 dstport=443 proto=6 '
           'action="dropped" attack="Fortinet.FortiOS.SSL-VPN.Heap.Buffer.Overflow" attackid=52650 '
           'msg="web_misc: Fortinet.FortiOS.SSL-VPN.Heap.Buffer.Overflow, \\"quoted\\" part"')  # fmt: skip
FGT_VPN = (FGT_HEAD + 'logid="0101039947" type="event" subtype="vpn" level="information" vd="root" '
           'logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-tunnel" remip=203.0.113.50 '
           'user="nguyenvana" group="vpn-users" reason="N/A" msg="SSL tunnel established"')  # fmt: skip
FGT_5424 = ('<189>1 2026-11-23T17:40:01+07:00 FGT-SO-TTTT - - - - logver=704032551 devid="FG100FTK22001234" '
            'logid="0100044547" type="event" subtype="system" user="admin" action="Edit" cfgpath="user.group" '
            'cfgobj="vpn-users"')  # fmt: skip


def test_fortigate_fields() -> None:
    subset(norm(FGT_USER_ADD), {
        "logsource.product": "fortigate", "logsource.service": "event", "action": "Add", "cfgpath": "user.local",
        "cfgobj": "vpn-guest", "user.name": "admin", "host.name": "FGT-SO-TTTT", "event.code": "0100044547",
        "@timestamp": "2026-11-23T10:40:01.000Z", "event.category": "configuration",
    })  # fmt: skip
    subset(norm(FGT_TRAFFIC), {
        "logsource.service": "traffic", "logsource.category": "firewall", "src_ip": "10.10.5.20", "dst_port": 3306,
        "destination.port": 3306, "sentbyte": 1830, "action": "accept", "rule.id": "12",
    })  # fmt: skip
    ips = norm(FGT_IPS)
    subset(ips, {"logsource.service": "utm", "event.category": "intrusion_detection", "attackid": "52650",
                 "rule.name": "Fortinet.FortiOS.SSL-VPN.Heap.Buffer.Overflow"})  # fmt: skip
    assert ips["msg"] == 'web_misc: Fortinet.FortiOS.SSL-VPN.Heap.Buffer.Overflow, "quoted" part'
    subset(norm(FGT_VPN), {"logsource.service": "event", "subtype": "vpn", "action": "tunnel-up",
                           "source.ip": "203.0.113.50", "user.name": "nguyenvana"})  # fmt: skip
    subset(norm(FGT_5424), {"logsource.product": "fortigate", "cfgpath": "user.group", "action": "Edit",
                            "host.name": "FGT-SO-TTTT"})  # fmt: skip


def test_fortigate_sigmahq_rules_fire() -> None:
    rule = "rules/network/fortinet/fortigate/fortinet_fortigate_new_local_user_created.yml"
    assert fired(rule, norm(FGT_USER_ADD))
    assert not fired(rule, norm(FGT_USER_ADD.replace('action="Add"', 'action="Edit"')))
    group = "rules/network/fortinet/fortigate/fortinet_fortigate_user_group_modified.yml"
    assert fired(group, norm(FGT_5424))
    # traffic is also a generic firewall log: SigmaHQ's clear-text protocol rule sees it
    cleartext = "rules/network/firewall/net_firewall_cleartext_protocols.yml"
    assert fired(cleartext, norm(FGT_TRAFFIC))
    assert not fired(cleartext, norm(FGT_TRAFFIC.replace("dstport=3306", "dstport=443")))


# ---------------------------------------------------------------- Cisco
IOS_CMD = "<189>4512: core-sw01: Nov 23 17:40:01.123 ICT: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:clear logging"
IOS_WEBUI = ("<189>1093: Nov 23 17:40:02.456 ICT: %SYS-5-CONFIG_P: Configured programmatically by process "
             "SEP_webui_wsma_http from console as cisco_tac_admin on vty0")  # fmt: skip
IOS_BGP = "<187>2201: Nov 23 17:40:03 ICT: %IP-TCP-3-BADAUTH: Invalid MD5 digest from 192.0.2.2:179 to 192.0.2.1:11003"
ASA_CMD = "<173>Nov 23 17:40:04 asa-dmz : %ASA-5-111008: User 'fwadmin' executed the 'clear logging buffer' command."
ASA_DENY = ('<172>Nov 23 17:40:05 asa-dmz : %ASA-4-106023: Deny tcp src outside:198.51.100.23/40112 '
            'dst dmz:10.10.2.8/3389 by access-group "outside_in" [0x0, 0x0]')  # fmt: skip
TACACS = "Nov 23 17:40:06\t10.10.0.1\tnetadmin\ttty2\t10.10.1.5\tstop\ttask_id=58\ttimezone=ICT\tservice=shell\tpriv-lvl=15\tcmd=clear archive <cr>"


def test_cisco_fields() -> None:
    subset(norm(IOS_CMD), {"logsource.product": "cisco", "logsource.service": "aaa", "user.name": "netadmin",
                           "process.command_line": "clear logging", "cisco.facility": "PARSER"})  # fmt: skip
    subset(norm(IOS_WEBUI), {"logsource.service": "syslog", "event.code": "SYS-5-CONFIG_P", "cisco.severity": 5})
    subset(norm(IOS_BGP), {"logsource.service": "bgp", "cisco.facility": "IP-TCP", "cisco.mnemonic": "BADAUTH"})
    subset(norm(ASA_CMD), {"logsource.service": "aaa", "user.name": "fwadmin", "command": "clear logging buffer",
                           "host.name": "asa-dmz", "event.code": "111008"})  # fmt: skip
    subset(norm(ASA_DENY), {"logsource.service": "syslog", "logsource.category": "firewall", "action": "deny",
                            "blocked": "true", "src_ip": "198.51.100.23", "dst_ip": "10.10.2.8", "dst_port": 3389,
                            "network.transport": "tcp"})  # fmt: skip
    subset(norm(TACACS), {"logsource.product": "cisco", "logsource.service": "aaa", "user.name": "netadmin",
                          "command": "clear archive", "source.ip": "10.10.1.5", "observer.ip": "10.10.0.1"})  # fmt: skip


def test_cisco_sigmahq_rules_fire() -> None:
    clear = "rules/network/cisco/aaa/cisco_cli_clear_logs.yml"
    assert fired(clear, norm(IOS_CMD))
    assert fired(clear, norm(ASA_CMD))
    assert fired(clear, norm(TACACS))
    assert not fired(clear, norm(IOS_CMD.replace("clear logging", "show logging")))
    webui = "rules-emerging-threats/2023/Exploits/CVE-2023-20198/cisco_syslog_cve_2023_20198_ios_xe_web_ui.yml"
    assert fired(webui, norm(IOS_WEBUI))
    assert not fired(webui, norm(IOS_WEBUI.replace("cisco_tac_admin", "netadmin")))
    bgp = "rules/network/cisco/bgp/cisco_bgp_md5_auth_failed.yml"
    assert fired(bgp, norm(IOS_BGP))
    assert not fired(bgp, norm(IOS_BGP.replace(":179", ":22")))


def test_cisco_parser_leaves_other_lines_alone() -> None:
    event = norm("<13>Nov 23 17:40:07 web01 app[1]: discount 100%OFF-5-DAYS: today only")
    assert event.get("logsource.product") != "cisco"


# ---------------------------------------------------------------- pfSense / OPNsense filterlog
PF_PASS = ("<134>Nov 23 17:40:01 filterlog[41522]: 7,,,1000000105,igb1,match,pass,out,4,0x0,,63,4321,0,DF,6,tcp,60,"
           "10.10.5.20,203.0.113.77,51544,3306,0,S,2211043312,,64240,,mss;sackOK;TS;nop;wscale")  # fmt: skip
PF_V6 = ("<134>Nov 23 17:40:02 filterlog[41522]: 5,,,1000000103,igb0,match,block,in,6,0x00,0x00000,64,udp,17,72,"
         "2001:db8::66,2001:db8:10::5,53000,161,72")  # fmt: skip


def test_filterlog_fields() -> None:
    subset(norm(PF_PASS), {"logsource.product": "pfsense", "logsource.category": "firewall", "action": "pass",
                           "blocked": "false", "src_ip": "10.10.5.20", "dst_ip": "203.0.113.77", "src_port": 51544,
                           "dst_port": 3306, "network.transport": "tcp", "tcp.flags": "S",
                           "observer.ingress.interface.name": "igb1", "network.direction": "outbound"})  # fmt: skip
    subset(norm(PF_V6), {"action": "block", "blocked": "true", "src_ip": "2001:db8::66", "dst_ip": "2001:db8:10::5",
                         "dst_port": 161, "network.transport": "udp", "network.type": "ipv6"})  # fmt: skip


def test_filterlog_malformed_line_is_a_clear_error() -> None:
    from soclite.errors import ParseError

    with pytest.raises(ParseError, match="filterlog"):
        norm("<134>Nov 23 17:40:02 filterlog[41522]: 5,,,1000000103,igb0,match,block,in,4,0x0")


def test_filterlog_sigmahq_rule_fires() -> None:
    cleartext = "rules/network/firewall/net_firewall_cleartext_protocols.yml"
    assert fired(cleartext, norm(PF_PASS))
    assert not fired(cleartext, norm(PF_PASS.replace(",match,pass,", ",match,block,")))


# ---------------------------------------------------------------- Windows DNS Server / DHCP Server text logs
DNS_DEBUG = ("11/23/2026 5:40:01 PM 0A1C PACKET  000002A1B3C4D5E6 UDP Rcv 10.10.5.20      3f2a   Q [0001   D   NOERROR] "
             "A      (3)aaa(5)stage(8)14919005(3)www(7)example(3)com(0)")  # fmt: skip
DNS_DEBUG_REPLY = ("11/23/2026 17:40:01 0A1C PACKET  000002A1B3C4D5E6 UDP Snd 10.10.5.20      3f2a R Q [8081   DR  NOERROR] "
                   "A      (3)www(7)example(3)com(0)")  # fmt: skip
DHCP = "10,11/23/26,17:40:01,Assign,10.10.5.50,PC-KT01.so.local,001A2B3C4D5E,,2845213,0,,,,0x4D53465420352E30,MSFT 5.0,,,,0"


def test_windows_dns_debug_and_dhcp_audit_fields() -> None:
    subset(norm(DNS_DEBUG, **{"log.file.path": r"C:\Windows\System32\dns\dns.log"}), {
        "logsource.product": "windows", "logsource.category": "dns", "query": "aaa.stage.14919005.www.example.com",
        "record_type": "A", "source.ip": "10.10.5.20", "event.action": "dns_query", "dns.id": "3f2a",
        "@timestamp": "2026-11-23T10:40:01.000Z",
    })  # fmt: skip
    subset(norm(DNS_DEBUG_REPLY), {"event.action": "dns_answer", "destination.ip": "10.10.5.20", "query": "www.example.com"})
    subset(norm(DHCP, **{"log.file.path": r"C:\Windows\System32\dhcp\DhcpSrvLog-Mon.log"}), {
        "logsource.product": "windows", "logsource.service": "dhcp", "event.action": "lease_assigned", "dhcp.id": 10,
        "client.ip": "10.10.5.50", "client.domain": "PC-KT01.so.local", "client.mac": "00-1A-2B-3C-4D-5E",
        "@timestamp": "2026-11-23T10:40:01.000Z",
    })  # fmt: skip
    # a CSV line from another file is not a DHCP audit record
    assert norm(DHCP, **{"log.file.path": "/var/log/app/export.csv"}).get("logsource.service") != "dhcp"


def test_windows_dns_debug_sigmahq_rule_fires() -> None:
    rule = "rules/network/dns/net_dns_mal_cobaltstrike.yml"
    assert fired(rule, norm(DNS_DEBUG))
    assert not fired(rule, norm(DNS_DEBUG_REPLY))


# ---------------------------------------------------------------- auditd file_event / network_connection
SUDOERS = [
    'type=SYSCALL msg=audit(1795430401.123:4821): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c '
    'a1=7ffd2c1e0a10 a2=241 a3=1b6 items=2 ppid=2210 pid=2290 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 '
    'sgid=0 fsgid=0 tty=pts0 ses=3 comm="tee" exe="/usr/bin/tee" subj=unconfined key="sudoers"',
    'type=CWD msg=audit(1795430401.123:4821): cwd="/etc"',
    'type=PATH msg=audit(1795430401.123:4821): item=0 name="/etc/sudoers.d/" inode=393230 dev=fd:00 mode=040750 '
    'ouid=0 ogid=0 rdev=00:00 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0',
    'type=PATH msg=audit(1795430401.123:4821): item=1 name="sudoers.d/99-backdoor" inode=393311 dev=fd:00 mode=0100644 '
    'ouid=0 ogid=0 rdev=00:00 nametype=CREATE cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0',
    "type=PROCTITLE msg=audit(1795430401.123:4821): proctitle=746565002F6574632F7375646F6572732E642F39392D6261636B646F6F72",
]  # fmt: skip
CONNECT = [
    'type=SYSCALL msg=audit(1795430402.500:4822): arch=c000003e syscall=42 success=no exit=-115 a0=3 a1=7ffc1e2f8a30 '
    'a2=10 a3=0 items=0 ppid=1 pid=3012 auid=4294967295 uid=33 gid=33 euid=33 suid=33 fsuid=33 egid=33 sgid=33 '
    'fsgid=33 tty=(none) ses=4294967295 comm="python3" exe="/usr/bin/python3.11" subj=unconfined key="egress"',
    "type=SOCKADDR msg=audit(1795430402.500:4822): saddr=0200115CCB00714D0000000000000000",
    "type=PROCTITLE msg=audit(1795430402.500:4822): proctitle=707974686F6E33002D6300696D706F727420736F636B6574",
]  # fmt: skip


def test_auditd_file_event() -> None:
    [event] = batch(SUDOERS)
    subset(event, {"logsource.product": "linux", "logsource.service": "auditd", "logsource.category": "file_event",
                   "TargetFilename": "/etc/sudoers.d/99-backdoor", "Image": "/usr/bin/tee", "audit.syscall": "openat",
                   "event.outcome": "success"})  # fmt: skip
    # a read (nametype=NORMAL) creates nothing: not a file_event
    [read] = batch([line.replace("nametype=CREATE", "nametype=NORMAL") for line in SUDOERS])
    assert read.get("logsource.category") is None


def test_auditd_network_connection() -> None:
    [event] = batch(CONNECT)
    subset(event, {"logsource.category": "network_connection", "DestinationIp": "203.0.113.77",
                   "DestinationPort": 4444, "Initiated": "true", "Image": "/usr/bin/python3.11",
                   "audit.syscall": "connect", "event.outcome": "failure"})  # fmt: skip
    v6 = [CONNECT[0], "type=SOCKADDR msg=audit(1795430402.500:4822): saddr=0A0001BB00000000200108B8000000000000000000000001000000",
          CONNECT[2]]  # fmt: skip
    subset(batch(v6)[0], {"DestinationIp": "2001:8b8::1", "DestinationPort": 443})
    unix = [CONNECT[0], "type=SOCKADDR msg=audit(1795430402.500:4822): saddr=01002F72756E2F6E7363642F736F636B657400", CONNECT[2]]
    assert batch(unix)[0].get("logsource.category") is None


def test_auditd_sigmahq_rules_fire() -> None:
    sudoers = "rules/linux/file_event/file_event_lnx_persistence_sudoers_files.yml"
    assert fired(sudoers, batch(SUDOERS)[0])
    assert not fired(sudoers, batch([line.replace("sudoers.d/99-backdoor", "hosts.new") for line in SUDOERS])[0])
    callback = "rules/linux/network_connection/net_connection_lnx_susp_malware_callback_port.yml"
    assert fired(callback, batch(CONNECT)[0])
    assert not fired(callback, batch([CONNECT[0], CONNECT[1].replace("115C", "01BB"), CONNECT[2]])[0])


# ---------------------------------------------------------------- the sensor's Zeek-shaped logs
def certificate(serial: int) -> bytes:
    """A self-signed certificate (DER) with the given serial number."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Major Cobalt Strike")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("c2.example")]), critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def server_certificate_flight(der: bytes) -> bytes:
    """A TLS 1.2 server flight in one record: ServerHello, Certificate, ServerHelloDone."""
    import struct

    hello_body = b"\x03\x03" + bytes(32) + b"\x00" + b"\xc0\x2f" + b"\x00"
    hello = b"\x02" + len(hello_body).to_bytes(3, "big") + hello_body
    certs = len(der).to_bytes(3, "big") + der
    cert_msg = b"\x0b" + (len(certs) + 3).to_bytes(3, "big") + len(certs).to_bytes(3, "big") + certs
    done = b"\x0e\x00\x00\x00"
    body = hello + cert_msg + done
    return b"\x16\x03\x03" + struct.pack("!H", len(body)) + body


def rdp_request(cookie: str) -> bytes:
    """TPKT + X.224 Connection Request with a mstshash cookie and an RDP_NEG_REQ for TLS and CredSSP."""
    body = f"Cookie: mstshash={cookie}\r\n".encode() + bytes([1, 0, 8, 0]) + (3).to_bytes(4, "little")
    x224 = bytes([6 + len(body), 0xE0, 0, 0, 0, 0, 0]) + body
    return bytes([3, 0]) + (4 + len(x224)).to_bytes(2, "big") + x224


def smb2(command: int, body: bytes, *, message_id: int, tree_id: int = 0, response: bool = False) -> bytes:
    """One SMB2 message (MS-SMB2 2.2.1.2 sync header) in a NetBIOS session message."""
    header = (b"\xfeSMB" + (64).to_bytes(2, "little") + bytes(2) + bytes(4) + command.to_bytes(2, "little")
              + bytes(2) + (1 if response else 0).to_bytes(4, "little") + bytes(4)
              + message_id.to_bytes(8, "little") + bytes(4) + tree_id.to_bytes(4, "little") + bytes(8) + bytes(16))  # fmt: skip
    message = header + body
    return b"\x00" + len(message).to_bytes(3, "big") + message


def tree_connect(path: str) -> bytes:
    raw = path.encode("utf-16-le")
    return (9).to_bytes(2, "little") + bytes(2) + (72).to_bytes(2, "little") + len(raw).to_bytes(2, "little") + raw


def create(name: str) -> bytes:
    raw = name.encode("utf-16-le")
    fixed = (57).to_bytes(2, "little") + bytes(42) + (120).to_bytes(2, "little") + len(raw).to_bytes(2, "little") + bytes(8)
    return fixed + raw


def smb_session(pipe: str) -> list[Any]:
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw

    client, server = ("10.10.5.20", 50010), ("10.10.2.8", 445)

    def c2s(data: bytes) -> Any:
        return IP(src=client[0], dst=server[0]) / TCP(sport=client[1], dport=server[1], flags="PA") / Raw(data)

    def s2c(data: bytes) -> Any:
        return IP(src=server[0], dst=client[0]) / TCP(sport=server[1], dport=client[1], flags="PA") / Raw(data)

    return [
        c2s(smb2(3, tree_connect("\\\\10.10.2.8\\IPC$"), message_id=3)),
        s2c(smb2(3, (16).to_bytes(2, "little") + bytes(14), message_id=3, tree_id=5, response=True)),
        c2s(smb2(5, create(pipe), message_id=4, tree_id=5)),
    ]


def zeek_events(tmp_path: Path, *, query: str, host: str, uri: str, serial: int, pipe: str = "csexecsvc-ws1-4242-stdin",
                rdp_client: str = "198.51.100.23") -> list[dict[str, Any]]:  # fmt: skip
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    from soclite.collectors.sensor import pcap_events

    t0 = 1795430400.0
    packets = [
        IP(src="10.10.5.20", dst="10.10.0.53") / UDP(sport=40000, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname=query + ".", qtype="A")),
        IP(src="10.10.5.20", dst="203.0.113.80") / TCP(sport=50000, dport=80, flags="PA")
        / Raw(f"GET {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Microsoft-WebDAV-MiniRedir/10.0\r\n\r\n".encode()),
        IP(src="203.0.113.44", dst="10.10.5.20") / TCP(sport=443, dport=50001, flags="PA")
        / Raw(server_certificate_flight(certificate(serial))),
        IP(src=rdp_client, dst="10.10.2.8") / TCP(sport=50002, dport=3389, flags="PA") / Raw(rdp_request("hacker")),
        *smb_session(pipe),
    ]  # fmt: skip
    for i, packet in enumerate(packets):
        packet.time = t0 + i
    path = tmp_path / "zeek.pcap"
    wrpcap(str(path), packets)
    return list(pcap_events(path, hostname="sensor1"))


def test_sensor_events_are_zeek_shaped(tmp_path: Path) -> None:
    events = zeek_events(tmp_path, query="pool.supportxmr.com", host="cdn.update.xyz", uri="/a/setup.exe", serial=0x8BB00EE)
    by_service = {e["logsource.service"]: e for e in events if e.get("logsource.product") == "zeek"}
    assert set(by_service) == {"dns", "http", "x509", "conn", "rdp", "smb_files"}
    subset(by_service["smb_files"], {"path": "\\\\10.10.2.8\\IPC$", "name": "csexecsvc-ws1-4242-stdin",
                                     "id.orig_h": "10.10.5.20", "id.resp_p": 445})  # fmt: skip
    subset(by_service["rdp"], {"cookie": "hacker", "rdp.requested_protocols": ["SSL", "HYBRID"],
                               "id.orig_h": "198.51.100.23", "id.resp_p": 3389})  # fmt: skip
    subset(by_service["dns"], {"logsource.category": "dns", "query": "pool.supportxmr.com", "qtype_name": "A",
                               "id.orig_h": "10.10.5.20", "id.resp_p": 53, "trans_id": 7, "Z": 0, "RD": True, "proto": "udp"})  # fmt: skip
    subset(by_service["http"], {"logsource.category": "proxy", "host": "cdn.update.xyz", "uri": "/a/setup.exe",
                                "method": "GET", "id.orig_h": "10.10.5.20", "id.resp_p": 80,
                                "c-uri": "http://cdn.update.xyz/a/setup.exe"})  # fmt: skip
    x509 = by_service["x509"]
    subset(x509, {"certificate.serial": "8BB00EE", "certificate.subject": "CN=Major Cobalt Strike",
                  "certificate.issuer": "CN=Major Cobalt Strike", "san.dns": ["c2.example"],
                  "certificate.not_valid_after": "2027-01-01T00:00:00.000Z",
                  "id.orig_h": "10.10.5.20", "id.resp_h": "203.0.113.44", "id.resp_p": 443})  # fmt: skip
    conns = [e for e in events if e.get("logsource.service") == "conn"]
    assert {(e["id.orig_h"], e["id.resp_h"], e["id.resp_p"], e["proto"]) for e in conns} == {
        ("10.10.5.20", "10.10.0.53", 53, "udp"), ("10.10.5.20", "203.0.113.80", 80, "tcp"),
        ("203.0.113.44", "10.10.5.20", 50001, "tcp"), ("198.51.100.23", "10.10.2.8", 3389, "tcp"),
        ("10.10.5.20", "10.10.2.8", 445, "tcp")}  # fmt: skip
    assert all(e["logsource.category"] == "firewall" for e in conns)


def test_tls_certificates_of_a_cut_segment(tmp_path: Path) -> None:
    from soclite.collectors.sensor import tls_certificates

    flight = server_certificate_flight(certificate(42))
    assert len(tls_certificates(flight)) == 1
    assert tls_certificates(flight[: len(flight) // 2]) == []  # cut mid-certificate: nothing half-parsed
    assert tls_certificates(b"\x16\x03\x03\x00\x02\x0b\x00") == []


def test_zeek_sigmahq_rules_fire(tmp_path: Path) -> None:
    bad = zeek_events(tmp_path, query="pool.supportxmr.com", host="cdn.update.xyz", uri="/a/setup.exe", serial=0x8BB00EE)
    good = zeek_events(tmp_path, query="www.example.com", host="cdn.example.com", uri="/a/index.html", serial=0x1234,
                       rdp_client="10.10.5.21",  # an RDP client inside the network is not a public listener
                       pipe="PSEXESVC-ws1-4242-stdin")  # the genuine PsExec service is filtered out
    for rule, service in (("rules/network/zeek/zeek_dns_mining_pools.yml", "dns"),
                          ("rules/network/zeek/zeek_http_susp_file_ext_from_susp_tld.yml", "http"),
                          ("rules/network/zeek/zeek_default_cobalt_strike_certificate.yml", "x509"),
                          ("rules/network/zeek/zeek_rdp_public_listener.yml", "rdp"),
                          ("rules/network/zeek/zeek_smb_converted_win_susp_psexec.yml", "smb_files")):  # fmt: skip
        assert any(fired(rule, e) for e in bad if e.get("logsource.service") == service), rule
        assert not any(fired(rule, e) for e in good), rule


def test_smb2_and_rdp_dissectors_never_crash_on_hostile_bytes() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from soclite.collectors.sensor import FlowTable, rdp_connection_request, smb2_events

    flows = FlowTable()
    valid = smb2(5, create("x"), message_id=1)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.integers(0, 200))
    def check(noise: bytes, cut: int) -> None:
        for payload in (noise, b"\x00" + noise, valid[:cut] + noise, b"\x03\x00" + noise):
            assert isinstance(smb2_events(payload, "a", "b", True, flows), list)
            assert rdp_connection_request(payload) is None or isinstance(rdp_connection_request(payload), dict)

    check()
    assert len(flows.smb_trees) <= 10_000 and len(flows.smb_pending) <= 10_000


# ---------------------------------------------------------------- the sensor's Zeek kerberos and dce_rpc logs
def der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def ctx(n: int, body: bytes) -> bytes:
    return der(0xA0 + n, body)


def integer(v: int) -> bytes:
    return der(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def kstr(s: str) -> bytes:
    return der(0x1B, s.encode())


def principal(kind: int, *names: str) -> bytes:
    return der(0x30, ctx(0, integer(kind)) + ctx(1, der(0x30, b"".join(kstr(n) for n in names))))


def kdc_rep(msg_type: int, client: str, realm: str, service: tuple[str, ...], etype: int) -> bytes:
    """An AS-REP (11) or TGS-REP (13) (RFC 4120 5.4.2) whose ticket is encrypted with ``etype``."""
    ticket = der(0x61, der(0x30, ctx(0, integer(5)) + ctx(1, kstr(realm)) + ctx(2, principal(2, *service))
                           + ctx(3, der(0x30, ctx(0, integer(etype)) + ctx(1, integer(2)) + ctx(2, der(0x04, bytes(48)))))))  # fmt: skip
    body = (ctx(0, integer(5)) + ctx(1, integer(msg_type)) + ctx(3, kstr(realm)) + ctx(4, principal(1, client))
            + ctx(5, ticket) + ctx(6, der(0x30, ctx(0, integer(18)) + ctx(2, der(0x04, bytes(200))))))  # fmt: skip
    return der(0x60 + msg_type, der(0x30, body))


def krb_error(code: int, realm: str, service: tuple[str, ...]) -> bytes:
    body = (ctx(0, integer(5)) + ctx(1, integer(30)) + ctx(4, der(0x18, b"20261207031500Z")) + ctx(5, integer(0))
            + ctx(6, integer(code)) + ctx(9, kstr(realm)) + ctx(10, principal(2, *service)))  # fmt: skip
    return der(0x7E, der(0x30, body))


def as_req() -> bytes:
    return der(0x6A, der(0x30, ctx(1, integer(5)) + ctx(2, integer(10)) + ctx(4, der(0x30, ctx(0, der(0x03, bytes(5)))))))


def rpc_pdu(ptype: int, body: bytes, call_id: int = 1) -> bytes:
    """A DCE/RPC connection-oriented PDU (C706 12.6.3.1), little-endian data representation."""
    length = 16 + len(body)
    return (bytes([5, 0, ptype, 3, 0x10, 0, 0, 0]) + length.to_bytes(2, "little") + bytes(2)
            + call_id.to_bytes(4, "little") + body)  # fmt: skip


def rpc_bind(interface: str, context_id: int = 0) -> bytes:
    import uuid

    ndr = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le + (2).to_bytes(4, "little")
    element = (context_id.to_bytes(2, "little") + bytes([1, 0]) + uuid.UUID(interface).bytes_le
               + (1).to_bytes(4, "little") + ndr)  # fmt: skip
    return rpc_pdu(11, (4280).to_bytes(2, "little") * 2 + bytes(4) + bytes([1, 0, 0, 0]) + element)


def rpc_request(opnum: int, context_id: int = 0) -> bytes:
    return rpc_pdu(0, (8).to_bytes(4, "little") + context_id.to_bytes(2, "little") + opnum.to_bytes(2, "little") + bytes(8), 2)


PAR = "76f03f96-cdfd-44fc-a22c-64950a001209"  # IRemoteWinspool (MS-PAR)
EFSR = "c681d488-d850-11d0-8c52-00c04fd90f7e"  # MS-EFSR


def krb_rpc_events(tmp_path: Path, *, etype: int, service: tuple[str, ...], rpc: list[tuple[str, int]]) -> list[dict[str, Any]]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    from soclite.collectors.sensor import pcap_events

    client, dc = "10.10.5.20", "10.10.2.10"
    tgs = kdc_rep(13, "nguyenvana", "SO.LOCAL", service, etype)
    packets = [
        IP(src=client, dst=dc) / UDP(sport=51000, dport=88) / Raw(as_req()),
        IP(src=dc, dst=client) / UDP(sport=88, dport=51000) / Raw(krb_error(25, "SO.LOCAL", ("krbtgt", "SO.LOCAL"))),
        IP(src=dc, dst=client) / TCP(sport=88, dport=51001, flags="PA") / Raw(len(tgs).to_bytes(4, "big") + tgs),
    ]
    for n, (interface, opnum) in enumerate(rpc):
        segment = rpc_bind(interface) + rpc_request(opnum)  # a BIND and a REQUEST in one segment
        packets.append(IP(src=client, dst=dc) / TCP(sport=52000 + n, dport=49670, flags="PA") / Raw(segment))
    for i, packet in enumerate(packets):
        packet.time = 1795430400.0 + i
    path = tmp_path / "krb-rpc.pcap"
    wrpcap(str(path), packets)
    return [e for e in pcap_events(path, hostname="sensor1") if e.get("logsource.service") in ("kerberos", "dce_rpc")]


def test_sensor_kerberos_and_dce_rpc_are_zeek_shaped(tmp_path: Path) -> None:
    events = krb_rpc_events(tmp_path, etype=23, service=("MSSQLSvc", "db1.so.local:1433"), rpc=[(PAR, 62), (EFSR, 0), (PAR, 500)])
    krb = [e for e in events if e["logsource.service"] == "kerberos"]
    assert len(krb) == 2  # the request is remembered, not logged: Zeek logs one line per exchange
    subset(krb[0], {"logsource.product": "zeek", "request_type": "AS", "success": False,
                    "error_msg": "KDC_ERR_PREAUTH_REQUIRED", "service": "krbtgt/SO.LOCAL",
                    "id.orig_h": "10.10.5.20", "id.orig_p": 51000, "id.resp_h": "10.10.2.10", "id.resp_p": 88,
                    "network.transport": "udp"})  # fmt: skip
    subset(krb[1], {"request_type": "TGS", "success": True, "cipher": "rc4-hmac", "client": "nguyenvana/SO.LOCAL",
                    "service": "MSSQLSvc/db1.so.local:1433", "user.name": "nguyenvana",
                    "id.orig_h": "10.10.5.20", "id.resp_p": 88, "network.transport": "tcp"})  # fmt: skip
    rpc = [e for e in events if e["logsource.service"] == "dce_rpc"]
    assert [(e["endpoint"], e["operation"]) for e in rpc] == [
        ("IRemoteWinspool", "RpcAsyncInstallPrinterDriverFromPackage"), ("efsrpc", "EfsRpcOpenFileRaw"),
        ("IRemoteWinspool", "unknown-500")]  # fmt: skip
    subset(rpc[0], {"logsource.product": "zeek", "id.orig_h": "10.10.5.20", "id.resp_h": "10.10.2.10",
                    "id.resp_p": 49670, "rpc.interface": PAR, "rpc.opnum": 62})  # fmt: skip


def test_zeek_kerberos_and_dce_rpc_sigmahq_rules_fire(tmp_path: Path) -> None:
    bad = krb_rpc_events(tmp_path, etype=23, service=("MSSQLSvc", "db1.so.local:1433"), rpc=[(PAR, 62), (EFSR, 0)])
    good = krb_rpc_events(tmp_path, etype=18, service=("MSSQLSvc", "db1.so.local:1433"), rpc=[(PAR, 0)])
    machine = krb_rpc_events(tmp_path, etype=23, service=("$ws1",), rpc=[])  # the rule's computer-account filter
    for rule, service in (
        ("rules/network/zeek/zeek_susp_kerberos_rc4.yml", "kerberos"),
        ("rules/network/zeek/zeek_dce_rpc_potential_petit_potam_efs_rpc_call.yml", "dce_rpc"),
        ("rules-emerging-threats/2021/Exploits/CVE-2021-1675/"
         "zeek_dce_rpc_exploit_cve_2021_1675_printnightmare_print_driver_install.yml", "dce_rpc"),
    ):  # fmt: skip
        assert any(fired(rule, e) for e in bad if e["logsource.service"] == service), rule
        assert not any(fired(rule, e) for e in good + machine), rule


def test_kerberos_and_dce_rpc_dissectors_never_crash_on_hostile_bytes() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from soclite.collectors.sensor import FlowTable
    from soclite.collectors.sensor_rpc import dcerpc_events, kerberos_event

    flows = FlowTable()
    valid_krb = kdc_rep(13, "a", "R", ("s", "h"), 23)
    valid_rpc = rpc_bind(PAR) + rpc_request(62)
    assert kerberos_event(valid_krb, False, flows.krb_requests, ("a", "b", 1), flows.remember) is not None

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.integers(0, 400))
    def check(noise: bytes, cut: int) -> None:
        for payload in (noise, valid_krb[:cut] + noise, bytes([0x6D]) + noise, b"\x7e\x82\xff\xff" + noise):
            event = kerberos_event(payload, False, flows.krb_requests, ("a", "b", 1), flows.remember)
            assert event is None or event["logsource.service"] == "kerberos"
            framed = kerberos_event(len(payload).to_bytes(4, "big") + payload, True, flows.krb_requests, ("a", "b", 2), flows.remember)
            assert framed is None or framed["logsource.service"] == "kerberos"
        for payload in (noise, valid_rpc[:cut] + noise, b"\x05\x00\x0b" + noise, b"\x05\x00\x00" + noise):
            assert isinstance(dcerpc_events(payload, flows.rpc_contexts, ("a", 1, "b", 2), flows.remember), list)

    check()
    assert len(flows.krb_requests) <= 10_000 and len(flows.rpc_contexts) <= 10_000
