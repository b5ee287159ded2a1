"""Screenshots of issue 17's pages and documents, for docs/screenshots/ (run: `make screenshots`).

A demo server (the real app under uvicorn, loopback, a throw-away data directory) is seeded with a province:
units, hosts, two months of alerts with a surge, an inventory of information systems, a case and an incident
detected 21 hours ago. Debian's chromium driven by Playwright takes the incident page (its countdown) and the
overview (statistical trend detection); the monthly report, the annual report (Form 08) and the incident notice
are generated as PDF by the same code the API uses and page 1 of each is rendered with poppler's pdftoppm.

Usage: python scripts/screenshots_compliance.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.control.incidents import IncidentCreate
from soclite.control.systems import InfoSystems, SystemCreate
from soclite.models import Alert, AlertStatus, Host, HostType, Level, Unit, fingerprint, severity_of
from soclite.reports import notice_document
from soclite.reports.archive import ReportArchive
from soclite.reports.periods import last_completed, period_containing, timezone_of
from soclite.reports.service import ReportRequest, generate
from soclite.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo-password-2026"
UNITS = [("TINH", "UBND tỉnh", None), ("STC", "Sở Tài chính", "TINH"), ("SYT", "Sở Y tế", "TINH"),
         ("HA", "UBND huyện A", "TINH")]
RULES = [("win-mimikatz", "Mimikatz credential dumping", Level.CRITICAL),
         ("win-encoded-ps", "Encoded PowerShell command", Level.HIGH),
         ("win-schtask", "Suspicious scheduled task", Level.MEDIUM),
         ("net-bad-ip", "Outbound connection to known bad IP", Level.LOW)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(runtime: Runtime, now: datetime) -> dict[str, str]:
    rng = random.Random(17)
    store = runtime.store
    for code, name, parent in UNITS:
        store.put_unit(Unit(code=code, name=name, parent=parent))
    hosts = []
    for i in range(24):
        unit = UNITS[1 + i % 3][0]
        host = Host(id=f"{unit.lower()}-{'srv' if i % 4 == 0 else 'ws'}{i:02d}", name=f"{unit}-{i:02d}",
                    type=HostType.SERVER if i % 4 == 0 else HostType.WORKSTATION, unit=unit, last_seen=now,
                    agent_id=f"ag{i}" if i % 3 else None)
        store.put_host(host)
        hosts.append(host)
    alerts: list[Alert] = []
    start = (now - timedelta(days=63)).replace(minute=0, second=0, microsecond=0)
    hour = start
    while hour < now - timedelta(hours=1):
        local = hour.astimezone(timezone_of("Asia/Ho_Chi_Minh"))
        mean = 0.2 if local.weekday() >= 5 else 1.6 if 8 <= local.hour < 17 else 0.4
        surge = hour == (now - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
        for _ in range(int(rng.expovariate(1 / mean)) if mean else 0) if not surge else range(25):
            host = hosts[3] if surge else rng.choice(hosts)
            rule, title, level = RULES[1] if surge else rng.choice(RULES)
            ts = hour + timedelta(seconds=rng.randint(0, 3599))
            status = rng.choice([AlertStatus.NEW, AlertStatus.RESOLVED, AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE])
            alerts.append(Alert(fingerprint=fingerprint(rule, host.id, {"n": len(alerts)}), rule_id=rule,
                                rule_title=title, level=level, severity=severity_of(level), host=host.id,
                                unit=host.unit, first_seen=ts, last_seen=ts, status=status,
                                acknowledged_at=ts + timedelta(minutes=20) if status != AlertStatus.NEW else None,
                                closed_at=ts + timedelta(hours=3) if status != AlertStatus.NEW else None))
        hour += timedelta(hours=1)
    for i in range(0, len(alerts), 2000):
        store.put_alerts(alerts[i : i + 2000])
    systems = InfoSystems(runtime.control, store)
    for body in (
        SystemCreate(name="Cổng dịch vụ công tỉnh", owner="UBND tỉnh", operator="Trung tâm Chuyển đổi số", level=3,
                     approval_status="approved", approval_decision="123/QĐ-UBND ngày 01/02/2026",
                     security_regulation="Quy chế 45/QC-UBND", deployment_state="operating", review_done=True,
                     units=["STC"]),
        SystemCreate(name="Hệ thống quản lý văn bản và điều hành", owner="Văn phòng UBND tỉnh",
                     operator="Trung tâm Chuyển đổi số", level=2, approval_status="submitted",
                     expected_approval_date="03/2027", deployment_state="operating", units=["HA"]),
        SystemCreate(name="Hệ thống thông tin y tế", owner="Sở Y tế", operator="Sở Y tế", level=4,
                     approval_status="not_submitted", deployment_state="deploying", expected_completion="06/2027",
                     units=["SYT"]),
    ):
        systems.create(body, actor="demo", unit="TINH", scope=None)
    detected = now - timedelta(hours=21, minutes=10)
    # the case: the last alerts before detection on one host
    before = [a for a in alerts if detected - timedelta(days=4) <= a.last_seen < detected]
    victim = before[-1].host
    case_alerts = [a.id for a in before if a.host == victim][-3:]
    from soclite.api import cases as case_api
    from soclite.control.identity import Principal, Role

    admin = Principal(id="demo", name="admin", role=Role.ADMIN, unit=None)
    unit = next(h.unit for h in hosts if h.id == victim)
    case = case_api.create(runtime, admin, case_api.CaseCreate(
        title="Mã độc trên máy trạm", unit=unit, alert_ids=case_alerts,
        description="PowerShell mã hoá lệnh tải mã độc"), None)
    incident = runtime.incidents.create(
        IncidentCreate(title="Mã độc tống tiền trên máy trạm", detected_at=detected,
                       case_id=case["id"], personal_data=True, severity="serious",
                       description="Mã độc mã hoá tệp trên máy trạm; nghi lộ dữ liệu bệnh nhân."),
        actor="demo", created_by="demo", unit=None, scope=None, case=case)
    return {"incident": incident["id"]}


def pdf_page1(pdf: Path, png: Path) -> None:
    prefix = png.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(prefix)],
                   check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="soclite-shots-") as tmp:
        data = Path(tmp)
        settings = Settings(environment="test", data_dir=data, province="Tỉnh Mẫu",
                            auth=AuthSettings(secret_key="screenshots-secret-0123456789", secure_cookies=False),
                            reports={"issuing_parent": "Sở Khoa học và Công nghệ {province}",
                                     "copies_to": ["most"], "archive_copy": "Lưu: VT, TTGS",
                                     "signer": {"authority": "KT. Giám đốc", "title": "Phó Giám đốc",
                                                "name": "Nguyễn Văn An"}})
        runtime = Runtime.build(settings)
        ids = seed(runtime, now)
        UserStore(runtime.control).add("admin", PASSWORD, role="admin", display_name="Quản trị viên")

        # --- the documents: the same generate() as the API and the scheduler ---------------------------
        archive = ReportArchive(data, runtime.control)
        month = last_completed("month", now, settings.timezone)
        year = period_containing("year", now.astimezone(timezone_of(settings.timezone)).date(), settings.timezone)
        for name, request in (("monthly-report", ReportRequest(period=month.code, formats=("pdf",))),
                              ("annual-form08", ReportRequest(period=year.code, formats=("pdf",)))):
            _report, _ctx, outputs = generate(runtime.store, settings, archive, request, runtime=runtime, now=now)
            pdf = data / f"{name}.pdf"
            pdf.write_bytes(outputs["pdf"])
            pdf_page1(pdf, out / f"{name}-page1.png")
        incident = runtime.incidents.get(ids["incident"], None)
        case = runtime.cases.get(incident["case_id"], None)
        from soclite.store.base import AlertQuery

        alerts = runtime.store.query_alerts(AlertQuery(ids=case["alert_ids"], limit=50)).items
        hosts = [runtime.store.get_host(h) for h in dict.fromkeys(a.host for a in alerts)]
        doc = notice_document.build_notice("initial_notice", incident, settings=settings, alerts=alerts, hosts=hosts,
                                           case=case, now=now,
                                           unit_names={u.code: u.name for u in runtime.store.list_units()})
        pdf = data / "incident-notice.pdf"
        pdf.write_bytes(notice_document.render_notice_pdf(doc))
        pdf_page1(pdf, out / "incident-notice-page1.png")
        archive.close()

        # --- the pages, in a real browser against the demo server --------------------------------------
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.05)
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                base = f"http://127.0.0.1:{port}"
                page.goto(f"{base}/login")
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/")
                page.goto(f"{base}/incidents/{ids['incident']}")
                page.wait_for_selector("#deadlines .countdown")
                page.screenshot(path=str(out / "incident-countdown.png"), full_page=True)
                page.goto(f"{base}/")
                page.wait_for_selector("#trends svg")
                page.locator("#trends").screenshot(path=str(out / "overview-trends.png"))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            runtime.close()
    for png in sorted(out.glob("*.png")):
        print(png)
    return 0


if __name__ == "__main__":
    if not shutil.which("pdftoppm"):
        sys.exit("pdftoppm (poppler-utils) is needed")
    sys.exit(main())
