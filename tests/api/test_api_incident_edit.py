"""Changing an incident after creation (issue 17): PATCH /api/v1/incidents/{id}, audited ``incident.edit``,
unit-scoped; a personal-data breach flagged later has its own 72-hour clock from when it was found. The
progress-update notice: sendable many times, each send its own receipt and update record. Notices print the
severity and the deadline states in Vietnamese, read back from the text, the PDF (pdftotext) and the DOCX
(python-docx)."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soclite.control.systems import SystemCreate
from soclite.runtime import Runtime

Client = Any


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _due(incident: dict[str, Any], name: str) -> datetime:
    [deadline] = [d for d in incident["deadlines"] if d["name"] == name]
    return datetime.fromisoformat(deadline["due_at"].replace("Z", "+00:00"))


def test_patch_changes_fields_audited_and_unit_scoped(runtime: Runtime, client: Client,
                                                      tokens: dict[str, str]) -> None:
    analyst = auth(tokens["analyst_ha"])
    system = runtime.systems.create(SystemCreate(name="Cổng dịch vụ công", owner="UBND tỉnh", operator="Sở",
                                                 level=3, unit="HA"), actor="t", unit=None, scope=None)
    other = runtime.systems.create(SystemCreate(name="Hệ thống Sở", owner="UBND tỉnh", operator="Sở", level=2,
                                                unit="SO"), actor="t", unit=None, scope=None)
    incident = client.post("/api/v1/incidents", json={"title": "Mã độc", "unit": "HA"}, headers=analyst).json()
    url = f"/api/v1/incidents/{incident['id']}"

    r = client.patch(url, json={"severity": "high", "title": "Mã độc tống tiền", "national_security": True,
                                "systems": [system["id"]], "description": "Mã hoá tệp"}, headers=analyst)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["severity"], body["title"], body["national_security"], body["systems"], body["description"]) == (
        "high", "Mã độc tống tiền", True, [system["id"]], "Mã hoá tệp")
    # national security: the initial notice is due at detection, no longer 24 h later
    assert _due(body, "initial_notice") == datetime.fromisoformat(body["detected_at"].replace("Z", "+00:00"))
    assert "Mức độ: Cao; có liên quan đến an ninh quốc gia" in client.get(f"{url}/notice", headers=analyst).text

    # refused, nothing changed: a viewer, another unit, another unit's system, unknown fields, bad values
    assert client.patch(url, json={"severity": "low"}, headers=auth(tokens["viewer"])).status_code == 403
    assert client.patch(url, json={"severity": "low"}, headers=auth(tokens["viewer_so"])).status_code == 403
    so = runtime.identity.create_token(role="analyst", unit="SO", name="ana-so")
    assert client.patch(url, json={"severity": "low"}, headers=auth(so)).status_code == 404
    assert client.patch(url, json={"systems": [other["id"]]}, headers=analyst).status_code == 404
    assert client.patch(url, json={"unit": "SO"}, headers=analyst).status_code == 422
    assert client.patch(url, json={"severity": "huge"}, headers=analyst).status_code == 422
    assert client.patch(url, json={"title": None}, headers=analyst).status_code == 400
    after = client.get(url, headers=analyst).json()
    assert (after["severity"], after["systems"], after["unit"], after["title"]) == (
        "high", [system["id"]], "HA", "Mã độc tống tiền")

    audit = client.get("/api/v1/audit?limit=500", headers=auth(tokens["admin"])).json()["items"]
    edits = [e for e in audit if e["action"] == "incident.edit" and e["target"] == f"incident:{incident['id']}"]
    assert len(edits) == 1 and edits[0]["before"]["severity"] == "serious" and edits[0]["after"]["severity"] == "high"


def test_personal_data_flag_set_later_starts_its_own_clock(runtime: Runtime, client: Client,
                                                           tokens: dict[str, str]) -> None:
    analyst = auth(tokens["analyst"])
    detected = datetime.now(UTC) - timedelta(hours=30)
    incident = client.post("/api/v1/incidents", json={"title": "Xâm nhập CSDL", "detected_at": detected.isoformat()},
                           headers=analyst).json()
    url = f"/api/v1/incidents/{incident['id']}"
    assert "personal_data" not in {d["name"] for d in incident["deadlines"]}
    # a discovery time needs the flag
    found = datetime.now(UTC) - timedelta(hours=2)
    assert client.patch(url, json={"personal_data_at": found.isoformat()}, headers=analyst).status_code == 400
    before = datetime.now(UTC)
    body = client.patch(url, json={"personal_data": True}, headers=analyst).json()
    # from the time the flag was set, not from detection (which would be 30 h gone already)
    assert before + timedelta(hours=72) - timedelta(seconds=1) <= _due(body, "personal_data") \
        <= datetime.now(UTC) + timedelta(hours=72)
    # a discovery time given: the clock counts from it
    body = client.patch(url, json={"personal_data_at": found.isoformat()}, headers=analyst).json()
    assert abs(_due(body, "personal_data") - (found + timedelta(hours=72))) < timedelta(seconds=1)
    assert client.patch(url, json={"personal_data_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()},
                        headers=analyst).status_code == 400
    # the detection clock itself is unchanged
    assert abs(_due(body, "report_72h") - (detected + timedelta(hours=72))) < timedelta(seconds=1)
    # once its notice is recorded the flag cannot be cleared; before, it can (and its clock goes)
    other = client.post("/api/v1/incidents", json={"title": "Khác"}, headers=analyst).json()
    ourl = f"/api/v1/incidents/{other['id']}"
    client.patch(ourl, json={"personal_data": True}, headers=analyst)
    cleared = client.patch(ourl, json={"personal_data": False}, headers=analyst).json()
    assert cleared["personal_data"] is False and cleared["personal_data_at"] is None
    client.post(f"{url}/milestones", json={"milestone": "personal_data"}, headers=analyst)
    r = client.patch(url, json={"personal_data": False}, headers=analyst)
    assert r.status_code == 400 and "already recorded" in r.text
    assert client.get(url, headers=analyst).json()["personal_data"] is True


def test_update_notice_sent_many_times_each_its_own_record(runtime: Runtime, client: Client,
                                                           tokens: dict[str, str]) -> None:
    analyst = auth(tokens["analyst"])
    incident = client.post("/api/v1/incidents", json={"title": "Tấn công DDoS cổng thông tin"},
                           headers=analyst).json()
    url = f"/api/v1/incidents/{incident['id']}"
    text = client.get(f"{url}/notice?kind=update", headers=analyst).text
    assert "BÁO CÁO CẬP NHẬT TÌNH HÌNH" in text and "Kế hoạch xử lý tiếp theo" in text
    assert "Sự cố: Tấn công DDoS cổng thông tin" in text
    for note in ("Lần 1: đã chặn dải IP tấn công", "Lần 2: dịch vụ đã trở lại"):
        r = client.post(f"{url}/send", json={"kind": "update", "to": ["a05@bocongan.gov.vn"], "text": text + note},
                        headers=analyst)
        assert r.status_code == 200, r.text
    body = client.get(url, headers=analyst).json()
    receipts = [s for s in body["sends"] if s["kind"] == "update"]
    assert len(receipts) == 2 and len({s["sha256"] for s in receipts}) == 2
    assert all(runtime.outbox.get_by_key(s["idempotency_key"]) is not None for s in receipts)
    assert len(body["updates"]) == 2 and all(s["sha256"] in u["note"] for s, u in zip(receipts, body["updates"],
                                                                                        strict=True))
    # no deadline was marked by it
    assert all(d["done_at"] is None for d in body["deadlines"])
    # the next update notice lists the updates so far
    assert client.get(f"{url}/notice?kind=update", headers=analyst).text.count("Báo cáo cập nhật tình hình đã gửi") == 2


@pytest.mark.parametrize("kind", ["initial_notice", "update"])
def test_notices_print_severity_and_states_in_vietnamese(runtime: Runtime, client: Client, tokens: dict[str, str],
                                                         tmp_path: Path, kind: str) -> None:
    import docx

    analyst = auth(tokens["analyst"])
    detected = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 08:30 ICT
    incident = client.post("/api/v1/incidents", json={"title": "Lộ dữ liệu", "detected_at": detected.isoformat(),
                                                      "personal_data": True}, headers=analyst).json()
    url = f"/api/v1/incidents/{incident['id']}"
    client.post(f"{url}/milestones", json={"milestone": "initial_notice",
                                          "at": (detected + timedelta(hours=5)).isoformat()}, headers=analyst)
    expected_states = [
        "Thông báo ban đầu (24 giờ): Đã gửi đúng hạn lúc 13:30 ngày 02/03/2026",
        "Báo cáo nguyên nhân, phạm vi, biện pháp khắc phục (72 giờ): Quá hạn, hạn 08:30 ngày 05/03/2026",
        "Thông báo vi phạm dữ liệu cá nhân (72 giờ): Quá hạn, hạn 08:30 ngày 05/03/2026",
        "Báo cáo kết thúc: Không có hạn",
    ]
    english = ("serious", "overdue", "pending", "done_late", "initial_notice", "report_72h", "final_report")

    text = client.get(f"{url}/notice?kind={kind}", headers=analyst).text
    assert "3. Mức độ: Nghiêm trọng; có lộ, lọt dữ liệu cá nhân" in text
    assert all(f"   - {line}" in text for line in expected_states), text
    assert not [w for w in english if w in text]

    word = client.get(f"{url}/notice?kind={kind}&format=docx", headers=analyst)
    document = docx.Document(io.BytesIO(word.content))
    fields = {r.cells[0].text: r.cells[1].text for r in document.tables[1].rows}
    assert fields["Mức độ"] == "Nghiêm trọng; có lộ, lọt dữ liệu cá nhân"
    paragraphs = [p.text for p in document.paragraphs]
    assert all(f"- {line}" in paragraphs for line in expected_states), paragraphs
    everything = " ".join(paragraphs + [c.text for t in document.tables for r in t.rows for c in r.cells])
    assert not [w for w in english if w in everything]
    if kind == "update":
        assert "BÁO CÁO CẬP NHẬT TÌNH HÌNH" in paragraphs and fields["Kế hoạch xử lý tiếp theo"] == "(bổ sung)"

    pdf = client.get(f"{url}/notice?kind={kind}&format=pdf", headers=analyst)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf.content)
    read = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "Mức độ Nghiêm trọng; có lộ, lọt dữ liệu cá nhân" in read, read
    assert all(line in read for line in expected_states), read
    assert not [w for w in english if w in read]
