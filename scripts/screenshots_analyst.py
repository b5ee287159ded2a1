"""Screenshots of the analyst's pages for the README, made again with one command.

    .venv/bin/python scripts/screenshots_analyst.py [--out docs/screenshots] [--lang vi]

A demo server (uvicorn on loopback, a temporary data directory) is seeded with a small province's
alerts and events (a PowerShell chain under Sysmon, an SSH brute force, background events over a
week), then Debian's chromium, driven by Playwright, logs in as an analyst and captures: Discover,
an alert's detail (ATT&CK names and the process tree), the ATT&CK matrix, and the queue on a phone
(390 px). Nothing here is used by the server.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import Alert, Host, HostType, Level, Unit, fingerprint, new_id, severity_of
from soclite.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "lan", "screenshot-password-1"
ROOT = Path(__file__).resolve().parent.parent


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seed(runtime: Runtime, now: datetime) -> str:
    """The demo province; returns the id of the alert whose detail is shown."""
    store = runtime.store
    store.put_unit(Unit(code="PROV", name="Tỉnh"))
    store.put_unit(Unit(code="STC", name="Sở Tài chính", parent="PROV"))
    store.put_unit(Unit(code="SYT", name="Sở Y tế", parent="PROV"))
    for host, kind, unit in (("stc-ws014", HostType.WORKSTATION, "STC"), ("portal-01", HostType.SERVER, "PROV"),
                             ("syt-ws003", HostType.WORKSTATION, "SYT")):
        store.put_host(Host(id=host, name=host.upper(), type=kind, unit=unit, last_seen=now))
    rng = random.Random(7)
    guid = "{7b1f0c2e-%04x-4c1d-9e00-0000000000%02d}"
    chain = [("C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", 180),
             ("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
              '"WINWORD.EXE" /n "C:\\Users\\nguyen.van.a\\Downloads\\Thong_bao_thue_2026.docm"', 25),
             ("C:\\Windows\\System32\\cmd.exe", "cmd.exe /c powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0A", 24),
             ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
              "powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
              24),
             ("C:\\Windows\\System32\\whoami.exe", "whoami /all", 23),
             ("C:\\Windows\\System32\\net.exe", "net group \"Domain Admins\" /domain", 22)]
    events: list[dict[str, Any]] = []
    parent = None
    for n, (image, cmd, minutes) in enumerate(chain):
        pg = guid % (n, n)
        events.append({"@timestamp": _ts(now - timedelta(minutes=minutes)), "event.id": new_id(),
                       "host.name": "stc-ws014", "soclite.unit": "STC", "EventID": 1, "ProcessGuid": pg,
                       "ParentProcessGuid": parent, "Image": image, "CommandLine": cmd, "ProcessId": 4000 + n * 12,
                       "User": "STC\\nguyen.van.a", "logsource.product": "windows", "logsource.service": "sysmon",
                       "logsource.category": "process_creation", "event.original": f"Sysmon 1: {cmd}"})
        parent = pg if n < 4 else guid % (3, 3)
    ps = events[3]
    events.append({"@timestamp": _ts(now - timedelta(minutes=23, seconds=30)), "event.id": new_id(),
                   "host.name": "stc-ws014", "soclite.unit": "STC", "EventID": 3, "ProcessGuid": ps["ProcessGuid"],
                   "Image": ps["Image"], "DestinationIp": "203.0.113.45", "DestinationPort": 443,
                   "logsource.product": "windows", "logsource.service": "sysmon", "logsource.category": "network_connection",
                   "event.original": "Sysmon 3: powershell.exe → 203.0.113.45:443"})
    for i in range(400):  # background over a week: sshd, nginx, Windows logons
        at = now - timedelta(minutes=rng.randrange(7 * 24 * 60))
        ip = f"198.51.100.{rng.randrange(2, 250)}"
        host = rng.choice(["portal-01", "stc-ws014", "syt-ws003"])
        events.append({"@timestamp": _ts(at), "event.id": new_id(), "host.name": host,
                       "soclite.unit": {"portal-01": "PROV", "stc-ws014": "STC", "syt-ws003": "SYT"}[host],
                       "source.ip": ip, "user.name": rng.choice(["admin", "root", "nguyen.van.a", "tran.thi.b"]),
                       "event.action": rng.choice(["ssh_login_failed", "http_request", "logon"]),
                       "event.original": f"event {i} from {ip}", "logsource.product": "linux"})
    store.write_events(events)
    alerts = [Alert(fingerprint=fingerprint("enc-ps", "stc-ws014", {"g": ps["ProcessGuid"]}), rule_id="enc-ps",
                    rule_title="PowerShell mã hoá (-enc) do Word sinh ra", level=Level.HIGH,
                    severity=severity_of(Level.HIGH), host="stc-ws014", unit="STC",
                    first_seen=now - timedelta(minutes=24), last_seen=now - timedelta(minutes=24),
                    event_ids=[ps["event.id"]], event=ps,
                    tags=["attack.execution", "attack.t1059.001", "attack.defense_evasion", "attack.t1027",
                          "attack.initial_access", "attack.t1566.001"],
                    falsepositives=["Administrative scripts that use -EncodedCommand"],
                    description="Office spawning an encoded PowerShell command (a macro dropper).")]
    stories = [("ssh-brute", "SSH brute force then success", Level.HIGH, "portal-01", "PROV",
                ["attack.credential_access", "attack.t1110.001"]),
               ("recon", "Domain group discovery with net.exe", Level.MEDIUM, "stc-ws014", "STC",
                ["attack.discovery", "attack.t1069.002"]),
               ("webshell", "Web shell probing on the portal", Level.HIGH, "portal-01", "PROV",
                ["attack.persistence", "attack.t1505.003"]),
               ("clam", "ClamAV found malware", Level.CRITICAL, "syt-ws003", "SYT", ["attack.execution", "attack.t1204.002"]),
               ("task", "Scheduled task created from a temp folder", Level.MEDIUM, "syt-ws003", "SYT",
                ["attack.persistence", "attack.t1053.005"])]
    for i in range(30):
        rule, title, level, host, unit, tags = stories[i % len(stories)]
        at = now - timedelta(hours=rng.randrange(1, 24 * 10))
        alerts.append(Alert(fingerprint=fingerprint(rule, host, {"i": i}), rule_id=rule, rule_title=title, level=level,
                            severity=severity_of(level), host=host, unit=unit, first_seen=at, last_seen=at, tags=tags,
                            event={"host.name": host, "source.ip": f"198.51.100.{i + 2}"}))
    store.put_alerts(alerts)
    return alerts[0].id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", choices=["vi", "en"], default="vi")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.build(Settings(environment="test", data_dir=Path(tmp),
                                         auth=AuthSettings(secret_key="screenshots-secret-0123456789",
                                                           secure_cookies=False)))
        now = datetime.now(UTC).replace(microsecond=0)
        alert_id = seed(runtime, now)
        UserStore(runtime.control).add(USER, PASSWORD, role="analyst", display_name="Nguyễn Thị Lan")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])

                def page_at(width: int, height: int = 900, **extra: Any) -> Any:
                    locale = "vi-VN" if args.lang == "vi" else "en-GB"  # date inputs as people there read them
                    page = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                               **extra).new_page()
                    page.goto(f"{base}/lang/{args.lang}?next=/login")
                    page.fill("#username", USER)
                    page.fill("#password", PASSWORD)
                    page.click("#login-submit")
                    page.wait_for_load_state()
                    return page

                wide = page_at(1280)
                wide.goto(f"{base}/events?query=source.ip:198.51.100.*")
                wide.screenshot(path=str(args.out / "discover.png"), full_page=False)
                wide.goto(f"{base}/alerts/{alert_id}")
                wide.screenshot(path=str(args.out / "alert-detail.png"), full_page=True)
                wide.locator("#process-tree").screenshot(path=str(args.out / "process-tree.png"))
                wide.goto(f"{base}/attack")
                wide.screenshot(path=str(args.out / "attack-matrix.png"), full_page=True)
                phone = page_at(390, 844, is_mobile=True, has_touch=True, device_scale_factor=2)
                phone.goto(f"{base}/alerts")
                phone.screenshot(path=str(args.out / "queue-390.png"), full_page=False)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            runtime.close()
    for name in sorted(p.name for p in args.out.glob("*.png")):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
