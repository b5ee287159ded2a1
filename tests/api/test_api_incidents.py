"""Incidents with their legal clock (issue 17, part 4): deadlines from detection, escalation, notices.

The clock and the escalation run on a controlled ``now``; the escalation e-mail goes through the real
playbook outbox and worker to a real SMTP server (aiosmtpd). The API is the real app over a real runtime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soclite.control.incidents import IncidentCreate, MilestoneRecord, deadlines
from soclite.playbooks.worker import Worker
from soclite.reports.incidents import escalate_due
from soclite.runtime import Runtime
from tests.playbooks.support import build_runtime, make_settings, wait_for
from tests.reports.smtp import free_port, start_smtp

Client = Any
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 ICT
WARN = timedelta(hours=4)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _states(incident: dict[str, Any], now: datetime) -> dict[str, str]:
    return {d.name: d.state for d in deadlines(incident, now, WARN)}


def test_clock_counts_from_detection(runtime: Runtime) -> None:
    inc = runtime.incidents.create(IncidentCreate(title="Mã hoá dữ liệu", detected_at=T0), actor="t",
                                   created_by="t", unit=None, scope=None, now=T0 + timedelta(minutes=10))
    assert _states(inc, T0 + timedelta(hours=1)) == {"initial_notice": "pending", "report_72h": "pending",
                                                     "final_report": "open"}
    clock = {d.name: d for d in deadlines(inc, T0 + timedelta(hours=21), WARN)}
    assert clock["initial_notice"].state == "due_soon" and clock["initial_notice"].remaining_seconds == 3 * 3600
    assert clock["initial_notice"].due_at == T0 + timedelta(hours=24)
    assert clock["report_72h"].due_at == T0 + timedelta(hours=72)
    assert _states(inc, T0 + timedelta(hours=25))["initial_notice"] == "overdue"
    inc = runtime.incidents.record(inc["id"], MilestoneRecord(milestone="initial_notice", at=T0 + timedelta(hours=20)),
                                   actor="t", author="t", scope=None)
    assert _states(inc, T0 + timedelta(hours=80)) == {"initial_notice": "done", "report_72h": "overdue",
                                                      "final_report": "open"}
    inc = runtime.incidents.record(inc["id"], MilestoneRecord(milestone="report_72h", at=T0 + timedelta(hours=75)),
                                   actor="t", author="t", scope=None)
    assert _states(inc, T0 + timedelta(hours=80))["report_72h"] == "done_late"

    # national security: the initial notice is due immediately; a personal-data breach has its own 72 h
    urgent = runtime.incidents.create(
        IncidentCreate(title="Tấn công hệ thống quan trọng", detected_at=T0, national_security=True,
                       personal_data=True), actor="t", created_by="t", unit=None, scope=None, now=T0)
    clock = {d.name: d for d in deadlines(urgent, T0 + timedelta(minutes=1), WARN)}
    assert clock["initial_notice"].due_at == T0 and clock["initial_notice"].state == "overdue"
    assert clock["personal_data"].due_at == T0 + timedelta(hours=72) and clock["personal_data"].state == "pending"


def test_escalation_mail_before_the_deadline_once(tmp_path: Path) -> None:
    port = free_port()
    controller, inbox = start_smtp(port)
    settings = make_settings(tmp_path, smtp={"host": "127.0.0.1", "port": port, "sender": "soc@tinh.gov.vn"},
                             compliance={"incident_notify": ["truc-ca@tinh.gov.vn"], "incident_warn_minutes": 240})
    runtime = build_runtime(settings)
    worker = Worker(runtime, poll_seconds=0.05)
    try:
        inc = runtime.incidents.create(IncidentCreate(title="Lộ lọt dữ liệu", detected_at=T0, personal_data=True),
                                       actor="t", created_by="t", unit=None, scope=None, now=T0)
        assert escalate_due(runtime.incidents, runtime.outbox, settings, T0 + timedelta(hours=19)) == []
        first = escalate_due(runtime.incidents, runtime.outbox, settings, T0 + timedelta(hours=20, minutes=1))
        assert first == [f"incident:{inc['id']}:initial_notice"]
        # the next pass inside the window queues nothing again
        assert escalate_due(runtime.incidents, runtime.outbox, settings, T0 + timedelta(hours=21)) == []
        # the 72-hour report and the personal-data notice enter their window together
        later = escalate_due(runtime.incidents, runtime.outbox, settings, T0 + timedelta(hours=69))
        assert sorted(later) == sorted([f"incident:{inc['id']}:report_72h", f"incident:{inc['id']}:personal_data"])
        worker.start()
        wait_for(lambda: len(inbox.messages) >= 3, timeout=30)
        subjects = sorted(str(m["Subject"]) for m in inbox.messages)
        assert all(s.startswith("[SẮP ĐẾN HẠN]") and "Lộ lọt dữ liệu" in s for s in subjects), subjects
        assert any("Thông báo ban đầu (24 giờ)" in s for s in subjects)
        assert all(m["To"] == "truc-ca@tinh.gov.vn" for m in inbox.messages)
        body = next(m for m in inbox.messages if "ban đầu" in str(m["Subject"])).get_content()
        assert "hạn 08:00 ngày 03/03/2026" in body  # T0 + 24 h in the site's zone
    finally:
        worker.stop()
        runtime.close()
        controller.stop()


def test_incidents_api_with_deadlines_and_notice(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    analyst = auth(tokens["analyst"])
    ha_ids = seeded["HA"][:2]
    case = client.post("/api/v1/cases", json={"title": "Mã độc huyện A", "unit": "HA", "alert_ids": ha_ids,
                                               "description": "PowerShell mã hoá lệnh"}, headers=analyst).json()
    detected = (datetime.now(UTC) - timedelta(hours=22)).isoformat()
    r = client.post("/api/v1/incidents", json={"title": "Mã độc huyện A", "case_id": case["id"],
                                               "detected_at": detected, "systems": ["cong-dvc"]}, headers=analyst)
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["unit"] == "HA"  # from the case
    clock = {d["name"]: d for d in incident["deadlines"]}
    assert clock["initial_notice"]["state"] == "due_soon"
    assert 7000 < clock["initial_notice"]["remaining_seconds"] <= 7200
    assert clock["report_72h"]["state"] == "pending" and clock["final_report"]["due_at"] is None

    listed = client.get("/api/v1/incidents", headers=auth(tokens["viewer"])).json()
    assert [i["id"] for i in listed["items"]] == [incident["id"]] and "deadlines" in listed["items"][0]
    # another unit does not see it; a viewer cannot record a report
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(tokens["viewer_so"])).status_code == 404
    assert client.post(f"/api/v1/incidents/{incident['id']}/milestones", json={"milestone": "initial_notice"},
                       headers=auth(tokens["viewer"])).status_code == 403

    notice = client.get(f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice", headers=analyst)
    assert notice.status_code == 200
    text = notice.text
    assert "THÔNG BÁO BAN ĐẦU (24 GIỜ)" in text and "Kính gửi: Bộ Thông tin và Truyền thông" in text
    assert "ha-ser" in text and "Cảnh báo liên quan: 2" in text and "PowerShell mã hoá lệnh" in text

    r = client.post(f"/api/v1/incidents/{incident['id']}/milestones", json={"milestone": "initial_notice"},
                    headers=analyst)
    assert r.status_code == 200 and {d["name"]: d["state"] for d in r.json()["deadlines"]}["initial_notice"] == "done"
    again = client.post(f"/api/v1/incidents/{incident['id']}/milestones", json={"milestone": "initial_notice"},
                        headers=analyst)
    assert again.status_code == 400 and "already recorded" in again.text
    upd = client.post(f"/api/v1/incidents/{incident['id']}/milestones",
                      json={"milestone": "update", "note": "Đã cô lập máy"}, headers=analyst).json()
    assert [u["note"] for u in upd["updates"]] == ["Đã cô lập máy"]
    audit = client.get("/api/v1/audit?limit=500", headers=auth(tokens["admin"])).json()["items"]
    assert {"incident.create", "incident.initial_notice", "incident.update"} <= {e["action"] for e in audit}
    # bad input: a detection time in the future, an unknown milestone
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.post("/api/v1/incidents", json={"title": "x", "detected_at": future},
                       headers=analyst).status_code == 400
    assert client.post(f"/api/v1/incidents/{incident['id']}/milestones", json={"milestone": "soon"},
                       headers=analyst).status_code == 422


def test_the_scheduler_runs_the_incident_clock(tmp_path: Path) -> None:
    """The server's scheduler escalates on its own: an overdue incident gets its e-mail queued in the outbox."""
    from soclite.reports.scheduler import ReportScheduler

    settings = make_settings(tmp_path, compliance={"incident_notify": ["truc-ca@tinh.gov.vn"]})
    runtime = build_runtime(settings)
    scheduler = ReportScheduler(runtime, incident_seconds=0.2)
    try:
        detected = datetime.now(UTC) - timedelta(hours=30)
        inc = runtime.incidents.create(IncidentCreate(title="Quá hạn", detected_at=detected), actor="t",
                                       created_by="t", unit=None, scope=None)
        scheduler.start()
        row = wait_for(lambda: runtime.outbox.get_by_key(f"incident:{inc['id']}:initial_notice"), timeout=20)
        assert row.action == "notify_email" and row.params["subject"].startswith("[ĐÃ QUÁ HẠN]")
        assert row.params["to"] == ["truc-ca@tinh.gov.vn"]
    finally:
        scheduler.shutdown()
        runtime.close()


def test_implausible_detection_times_are_refused_not_a_server_error(tmp_path: Path) -> None:
    # schemathesis found year 179 stored and then unreadable (500); such times are a 422 now
    from pydantic import ValidationError

    from soclite.control.incidents import IncidentCreate, MilestoneRecord

    for bad in ("0179-08-08T23:00:56+00:00", "2999-01-01T00:00:00+00:00"):
        with pytest.raises(ValidationError):
            IncidentCreate(title="x", detected_at=bad)
        with pytest.raises(ValidationError):
            MilestoneRecord(milestone="initial_notice", at=bad)
    assert IncidentCreate(title="x", detected_at="2026-12-07T08:00:00+07:00").detected_at is not None


def test_notice_as_pdf_and_docx_reads_back_the_case(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str], tmp_path: Path
) -> None:
    """The initial notice as the administrative document: pdftotext and python-docx read back the incident,
    the number of alerts and hosts, each host and rule, as the store holds them."""
    import io
    import shutil
    import subprocess

    import docx

    from soclite.store.base import AlertQuery

    analyst = auth(tokens["analyst"])
    ids = seeded["HA"][:3]
    case = client.post("/api/v1/cases", json={"title": "Mã độc", "unit": "HA", "alert_ids": ids,
                                               "description": "Mã độc mã hoá tệp"}, headers=analyst).json()
    detected = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 08:30 ICT
    incident = client.post("/api/v1/incidents", json={"title": "Mã độc tống tiền huyện A", "case_id": case["id"],
                                                      "detected_at": detected.isoformat(), "personal_data": True},
                           headers=analyst).json()
    alerts = runtime.store.query_alerts(AlertQuery(ids=ids, limit=10)).items
    hosts = sorted({a.host for a in alerts})
    rules = sorted({a.rule_title for a in alerts})
    base = f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice"
    assert client.get(base + "&format=xlsx", headers=analyst).status_code == 400

    word = client.get(base + "&format=docx", headers=analyst)
    assert word.status_code == 200 and word.headers["content-type"].startswith("application/vnd.openxmlformats")
    document = docx.Document(io.BytesIO(word.content))
    assert document.styles["Normal"].font.name == "Times New Roman"
    body = [p.text for p in document.paragraphs]
    assert "THÔNG BÁO BAN ĐẦU (24 GIỜ)" in body and "Sự cố: Mã độc tống tiền huyện A" in body
    assert any(p.startswith("Kính gửi: Bộ Thông tin và Truyền thông") for p in body)
    fields = {r.cells[0].text: r.cells[1].text for r in document.tables[1].rows}
    assert fields["Thời điểm phát hiện"] == "08:30 ngày 02/03/2026"
    assert fields["Số cảnh báo liên quan"] == str(len(alerts)) and fields["Số máy bị ảnh hưởng"] == str(len(hosts))
    assert "có lộ, lọt dữ liệu cá nhân" in fields["Mức độ"] and fields["Mô tả"] == "Mã độc mã hoá tệp"
    for host in hosts:
        assert any(p.startswith(f"- {runtime.store.get_host(host).name} ({host}") for p in body), host
    for rule in rules:
        assert f"- {rule}" in body
    copies = [p.text for p in document.tables[-1].rows[0].cells[0].paragraphs]
    assert copies[0] == "Nơi nhận:" and copies[-1] == "- Lưu: VT."

    pdf = client.get(base + "&format=pdf", headers=analyst)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        path = tmp_path / "notice.pdf"
        path.write_bytes(pdf.content)
        text = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                                       text=True, check=True).stdout.split())
        assert "THÔNG BÁO BAN ĐẦU (24 GIỜ)" in text and "08:30 ngày 02/03/2026" in text
        assert f"Số cảnh báo liên quan {len(alerts)}" in text and f"Số máy bị ảnh hưởng {len(hosts)}" in text
        assert all(host in text for host in hosts)
