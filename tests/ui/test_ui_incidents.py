"""The incident page: each legal deadline with its countdown from detection, the overdue and due-soon ones
marked, the notice downloadable; another unit's incident is not found. Working it: the notice sent from its
form (CSRF, role, unit scope, bad recipients refused with nothing sent), a stage marked done without sending,
an incident opened from a case."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from soclite import sitetime
from soclite.api import cases
from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import Principal, Role, UserStore
from soclite.control.incidents import IncidentCreate
from soclite.control.systems import SystemCreate
from soclite.models import Unit, isoformat
from soclite.runtime import Runtime
from tests.ui.forms import csrf_of
from tests.ui.test_ui_pages import PASSWORD, login


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Any, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="incident-secret-0123456789", secure_cookies=False),
                                compliance={"incident_notify": ["a05@bocongan.gov.vn", "so-khcn@tinh.gov.vn"]}))
    rt.store.put_unit(Unit(code="SO", name="Sở"))
    rt.store.put_unit(Unit(code="HU", name="Huyện"))
    users = UserStore(rt.control)
    users.add("admin", PASSWORD, role="admin")
    users.add("huyen", PASSWORD, role="viewer", unit="HU")
    users.add("ana", PASSWORD, role="analyst", unit="SO")
    users.add("ana-hu", PASSWORD, role="analyst", unit="HU")
    users.add("xem", PASSWORD, role="viewer", unit="SO")
    with TestClient(create_app(rt)) as c:
        yield c, rt
    rt.close()


def test_incident_page_counts_down_each_deadline(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    detected = datetime.now(UTC) - timedelta(hours=21, minutes=30)
    incident = rt.incidents.create(
        IncidentCreate(title="Lộ lọt dữ liệu cổng dịch vụ công", detected_at=detected, personal_data=True,
                       unit="SO"), actor="t", created_by="t", unit=None, scope=None)
    login(c, "admin")
    listing = c.get("/incidents").text
    assert "Lộ lọt dữ liệu cổng dịch vụ công" in listing and "clock-due_soon" in listing
    page = c.get(f"/incidents/{incident['id']}").text
    rows = {name: body for name, body in re.findall(r'id="deadline-(\w+)">(.*?)</tr>', page, re.S)}
    assert set(rows) == {"initial_notice", "report_72h", "personal_data", "final_report"}
    # 24 h from detection, 21 h 30 min gone: about 2 h 30 min left, due soon (the warning window is 4 h)
    left = re.search(r'class="countdown"[^>]*>còn (\d+) giờ (\d+) phút<', rows["initial_notice"])
    assert left and 2 * 60 + 25 <= int(left.group(1)) * 60 + int(left.group(2)) <= 2 * 60 + 30, rows
    assert "Sắp đến hạn" in rows["initial_notice"] and "Chưa đến hạn" in rows["report_72h"]
    assert "Không có hạn" in rows["final_report"]
    assert f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice&amp;format=pdf" in page
    pdf = c.get(f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice&format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_overdue_at_once_where_national_security_is_at_stake(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    incident = rt.incidents.create(
        IncidentCreate(title="Tấn công hệ thống quan trọng", detected_at=datetime.now(UTC) - timedelta(minutes=90),
                       national_security=True, unit="SO"), actor="t", created_by="t", unit=None, scope=None)
    login(c, "admin")
    page = c.get(f"/incidents/{incident['id']}").text
    row = re.search(r'id="deadline-initial_notice">(.*?)</tr>', page, re.S)
    assert row and "Quá hạn" in row.group(1) and re.search(r">quá hạn 1 giờ 3\d phút<", row.group(1))
    login(c, "huyen")
    assert c.get(f"/incidents/{incident['id']}").status_code == 404
    assert "Tấn công hệ thống quan trọng" not in c.get("/incidents").text


def test_notice_sent_from_its_form_with_receipts_and_the_stage_done(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    incident = rt.incidents.create(IncidentCreate(title="Mã độc tống tiền tại Sở Y tế", unit="SO"),
                                   actor="t", created_by="t", unit=None, scope=None)
    url = f"/incidents/{incident['id']}"
    login(c, "ana")
    page = c.get(url).text
    # each stage has its form: the template's text pre-filled, the recipients from compliance.incident_notify
    form = re.search(r'id="send-initial_notice"(.*?)</form>', page, re.S)
    assert form and "a05@bocongan.gov.vn, so-khcn@tinh.gov.vn" in form.group(1)
    template = c.get(f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice").text
    assert template.strip() and template.strip().splitlines()[0] in form.group(1)
    assert 'id="send-report_72h"' in page and 'id="send-final_report"' in page
    assert 'id="send-personal_data"' not in page  # not a personal-data breach: no such stage
    assert f"/api/v1/incidents/{incident['id']}/notice?kind=report_72h&amp;format=docx" in page

    text = template + "\nĐã cô lập máy chủ lúc 09:15.\n"
    form_data = {"kind": "initial_notice", "to": "a05@bocongan.gov.vn, lanh-dao@tinh.gov.vn", "text": text,
                 "mark_done": "1"}
    # without the session's CSRF token: refused, nothing queued nor recorded
    assert c.post(f"{url}/send", data=form_data | {"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    # a bad address among good ones: refused in Vietnamese, nothing sent to anyone
    csrf = csrf_of(c, url)
    r = c.post(f"{url}/send", data=form_data | {"csrf_token": csrf, "to": "a05@bocongan.gov.vn; khong-phai-email"},
               follow_redirects=False)
    assert r.status_code == 422 and "Địa chỉ e-mail không hợp lệ: khong-phai-email, chưa gửi gì." in r.text
    r = c.post(f"{url}/send", data=form_data | {"csrf_token": csrf, "to": " , "}, follow_redirects=False)
    assert r.status_code == 422 and "Cần ít nhất một người nhận." in r.text
    assert rt.incidents.sends(incident["id"]) == [] and rt.outbox.list_actions() == []
    assert rt.incidents.get(incident["id"], None)["initial_notice_at"] is None

    r = c.post(f"{url}/send", data=form_data | {"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{url}#stage-initial_notice"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert sorted((s["recipient"], s["sha256"], s["sent_by"]) for s in rt.incidents.sends(incident["id"])) == [
        ("a05@bocongan.gov.vn", digest, "ana"), ("lanh-dao@tinh.gov.vn", digest, "ana")]
    assert len(rt.outbox.list_actions()) == 2
    page = c.get(url).text
    receipts = re.search(r'id="receipts-initial_notice">(.*?)</table>', page, re.S)
    assert receipts and receipts.group(1).count(digest) == 2 and "Đang chờ gửi" in receipts.group(1)
    row = re.search(r'id="deadline-initial_notice">(.*?)</tr>', page, re.S)
    assert row and "Đã gửi đúng hạn" in row.group(1) and 'class="countdown"' not in row.group(1)
    stage = re.search(r'id="stage-initial_notice">(.*?)</section>', page, re.S)
    assert stage and "Đã hoàn thành" in stage.group(1) and 'id="done-initial_notice"' not in stage.group(1)
    # audited by the API's own function: the send (with the hash) and the stage done, as ana
    token = rt.identity.create_token(role="admin", name="root")
    entries = [e for e in c.get("/api/v1/audit?limit=200", headers={"Authorization": f"Bearer {token}"}).json()["items"]
               if e["target"] == f"incident:{incident['id']}"]
    sent = [e for e in entries if e["action"] == "incident.send"]
    assert len(sent) == 1 and sent[0]["after"]["sha256"] == digest and "ana" in sent[0]["actor"]
    assert [e["action"] for e in entries].count("incident.initial_notice") == 1


def test_stage_done_without_sending_keeps_its_note_and_is_audited(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    incident = rt.incidents.create(IncidentCreate(title="Lộ dữ liệu", unit="SO", personal_data=True),
                                   actor="t", created_by="t", unit=None, scope=None)
    url = f"/incidents/{incident['id']}"
    login(c, "ana")
    page = c.get(url).text
    assert 'id="send-personal_data"' in page and 'id="deadline-personal_data"' in page
    csrf = csrf_of(c, url)
    r = c.post(f"{url}/record", data={"csrf_token": csrf, "milestone": "report_72h",
                                      "note": "Gửi qua hệ thống văn bản điều hành, số 12/BC-STTTT"},
               follow_redirects=False)
    assert r.status_code == 303
    after = rt.incidents.get(incident["id"], None)
    assert after["report_72h_at"] is not None
    assert [u["note"] for u in after["updates"]] == [
        "Báo cáo nguyên nhân, phạm vi, biện pháp khắc phục (72 giờ): "
        "Gửi qua hệ thống văn bản điều hành, số 12/BC-STTTT"]
    assert rt.incidents.sends(incident["id"]) == []  # nothing sent
    # twice: refused, the first time kept
    again = c.post(f"{url}/record", data={"csrf_token": csrf, "milestone": "report_72h"}, follow_redirects=False)
    assert again.status_code == 422 and rt.incidents.get(incident["id"], None)["report_72h_at"] == after["report_72h_at"]
    # an update needs its note
    assert c.post(f"{url}/record", data={"csrf_token": csrf, "milestone": "update"},
                  follow_redirects=False).status_code == 422
    assert c.post(f"{url}/record", data={"csrf_token": csrf, "milestone": "update", "note": "Đã khôi phục dịch vụ"},
                  follow_redirects=False).status_code == 303
    assert "Đã khôi phục dịch vụ" in c.get(url).text
    token = rt.identity.create_token(role="admin", name="root")
    entries = c.get("/api/v1/audit?limit=200", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    actions = [e["action"] for e in entries if e["target"] == f"incident:{incident['id']}"]
    assert actions.count("incident.report_72h") == 1 and actions.count("incident.update") == 2


def test_forms_refused_to_viewers_and_other_units(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    incident = rt.incidents.create(IncidentCreate(title="Tấn công Sở", unit="SO"),
                                   actor="t", created_by="t", unit=None, scope=None)
    url = f"/incidents/{incident['id']}"
    data = {"kind": "initial_notice", "to": "a05@bocongan.gov.vn", "mark_done": "1"}
    login(c, "xem")  # a viewer of the unit: sees the page, no forms, may not send
    page = c.get(url).text
    assert 'id="send-initial_notice"' not in page and 'id="receipts-initial_notice"' in page
    assert c.post(f"{url}/send", data=data | {"csrf_token": csrf_of(c, url)}, follow_redirects=False).status_code == 403
    login(c, "ana-hu")  # an analyst of another unit: the incident does not exist for them
    csrf = csrf_of(c, "/incidents")
    assert c.post(f"{url}/send", data=data | {"csrf_token": csrf}, follow_redirects=False).status_code == 404
    assert c.post(f"{url}/record", data={"csrf_token": csrf, "milestone": "initial_notice"},
                  follow_redirects=False).status_code == 404
    assert rt.incidents.sends(incident["id"]) == [] and rt.incidents.get(incident["id"], None)["initial_notice_at"] is None


def test_incident_opened_from_a_case_with_severity_and_systems(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    root = Principal(id="root", name="root", role=Role.ADMIN, unit=None)
    case = cases.create(rt, root, cases.CaseCreate(title="Máy chủ cổng dịch vụ công bị xâm nhập", unit="SO"), None)
    system = rt.systems.create(SystemCreate(name="Cổng dịch vụ công", owner="UBND tỉnh", operator="Sở KH&CN",
                                            level=3, unit="SO"), actor="t", unit=None, scope=None)
    other = rt.systems.create(SystemCreate(name="Hệ thống huyện", owner="UBND huyện", operator="Huyện",
                                           level=2, unit="HU"), actor="t", unit=None, scope=None)
    login(c, "ana")
    page = c.get(f"/cases/{case['id']}").text
    assert 'id="new-incident-form"' in page and 'name="case_id" value="' + case["id"] in page
    assert "Cổng dịch vụ công" in page and "Hệ thống huyện" not in page
    csrf = csrf_of(c, f"/cases/{case['id']}")
    form = {"title": "Xâm nhập cổng dịch vụ công", "severity": "high", "case_id": case["id"],
            "personal_data": "1", "systems": [system["id"]]}
    assert c.post("/incidents", data=form | {"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    # another unit's system: not found, nothing created
    assert c.post("/incidents", data=form | {"csrf_token": csrf, "systems": [other["id"]]},
                  follow_redirects=False).status_code == 404
    assert rt.incidents.list_incidents(None) == []
    r = c.post("/incidents", data=form | {"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    [incident] = rt.incidents.list_incidents(None)
    assert r.headers["location"] == f"/incidents/{incident['id']}"
    assert (incident["case_id"], incident["unit"], incident["severity"], incident["systems"],
            incident["personal_data"]) == (case["id"], "SO", "high", [system["id"]], True)
    token = rt.identity.create_token(role="admin", name="root")
    entries = c.get("/api/v1/audit?limit=200", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert [e["action"] for e in entries if e["target"] == f"incident:{incident['id']}"] == ["incident.create"]
    page = c.get(r.headers["location"]).text
    assert "Cao" in page and 'id="deadline-personal_data"' in page and 'id="send-personal_data"' in page
    # an analyst of another unit cannot open one from this case
    login(c, "ana-hu")
    assert c.post("/incidents", data=form | {"csrf_token": csrf_of(c, "/incidents"), "systems": []},
                  follow_redirects=False).status_code == 404
    assert len(rt.incidents.list_incidents(None)) == 1


def test_incident_changed_from_its_form(client: tuple[Any, Runtime]) -> None:
    """The edit form: severity, systems, flags; a personal-data breach found at a typed local time starts its
    own 72-hour clock; bad input refused with nothing changed; viewers and other units refused; audited."""
    c, rt = client
    system = rt.systems.create(SystemCreate(name="Cổng dịch vụ công", owner="UBND tỉnh", operator="Sở KH&CN",
                                            level=3, unit="SO"), actor="t", unit=None, scope=None)
    detected = datetime.now(UTC) - timedelta(days=2)
    incident = rt.incidents.create(IncidentCreate(title="Xâm nhập", unit="SO", detected_at=detected),
                                   actor="t", created_by="t", unit=None, scope=None)
    url = f"/incidents/{incident['id']}"
    login(c, "ana")
    page = c.get(url).text
    assert 'id="edit-form"' in page and '<option value="serious" selected>' in page
    assert 'id="ei-personal-at" maxlength="40" value=""' in page
    csrf = csrf_of(c, url)
    form = {"csrf_token": csrf, "title": "Xâm nhập cổng dịch vụ công", "severity": "medium", "systems_shown": "1",
            "systems": [system["id"]], "personal_data": "1", "personal_data_at": "32/13/2026 08:00",
            "description": "Đã xác định máy chủ bị chiếm quyền"}
    r = c.post(f"{url}/edit", data=form, follow_redirects=False)
    assert r.status_code == 422 and "32/13/2026 08:00" in r.text
    assert rt.incidents.get(incident["id"], None)["severity"] == "serious"  # nothing changed
    found = (datetime.now(UTC) - timedelta(hours=3)).astimezone(sitetime.zone("Asia/Ho_Chi_Minh"))
    r = c.post(f"{url}/edit", data=form | {"personal_data_at": found.strftime("%d/%m/%Y %H:%M")},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == url
    after = rt.incidents.get(incident["id"], None)
    assert (after["title"], after["severity"], after["systems"], after["personal_data"], after["description"]) == (
        "Xâm nhập cổng dịch vụ công", "medium", [system["id"]], True, "Đã xác định máy chủ bị chiếm quyền")
    assert after["personal_data_at"] == isoformat(found.replace(second=0, microsecond=0).astimezone(UTC))
    page = c.get(url).text
    assert "Trung bình" in page and 'id="deadline-personal_data"' in page
    row = re.search(r'id="deadline-personal_data">(.*?)</tr>', page, re.S)
    assert row and (found + timedelta(hours=72)).strftime("%H:%M %d/%m/%Y") in row.group(1)
    # the start as shown, saved again unchanged, keeps the stored value
    assert f'value="{found.strftime("%d/%m/%Y %H:%M")}"' in page
    c.post(f"{url}/edit", data=form | {"csrf_token": csrf_of(c, url), "personal_data_at": found.strftime(
        "%d/%m/%Y %H:%M"), "severity": "high"}, follow_redirects=False)
    assert rt.incidents.get(incident["id"], None)["personal_data_at"] == after["personal_data_at"]

    login(c, "xem")  # a viewer: no form, refused
    assert 'id="edit-form"' not in c.get(url).text
    assert c.post(f"{url}/edit", data=form | {"csrf_token": csrf_of(c, url)},
                  follow_redirects=False).status_code == 403
    login(c, "ana-hu")  # another unit: not found
    assert c.post(f"{url}/edit", data=form | {"csrf_token": csrf_of(c, "/incidents")},
                  follow_redirects=False).status_code == 404
    assert rt.incidents.get(incident["id"], None)["severity"] == "high"
    token = rt.identity.create_token(role="admin", name="root")
    entries = c.get("/api/v1/audit?limit=200", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert [e["action"] for e in entries if e["target"] == f"incident:{incident['id']}"].count("incident.edit") == 2


def test_update_stage_sends_many_updates(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    incident = rt.incidents.create(IncidentCreate(title="DDoS cổng thông tin", unit="SO"),
                                   actor="t", created_by="t", unit=None, scope=None)
    url = f"/incidents/{incident['id']}"
    login(c, "ana")
    page = c.get(url).text
    assert 'id="send-update"' in page and 'id="done-update"' not in page
    assert "Báo cáo cập nhật tình hình" in page and "BÁO CÁO CẬP NHẬT TÌNH HÌNH" in page
    for text in ("Cập nhật lần 1", "Cập nhật lần 2"):
        r = c.post(f"{url}/send", data={"csrf_token": csrf_of(c, url), "kind": "update", "text": text,
                                        "to": "a05@bocongan.gov.vn"}, follow_redirects=False)
        assert r.status_code == 303
    sends = rt.incidents.sends(incident["id"])
    assert sorted(s["sha256"] for s in sends) == sorted(hashlib.sha256(t.encode()).hexdigest()
                                                        for t in ("Cập nhật lần 1", "Cập nhật lần 2"))
    assert {s["kind"] for s in sends} == {"update"}
    assert len(rt.incidents.get(incident["id"], None)["updates"]) == 2
    receipts = re.search(r'id="receipts-update">(.*?)</table>', c.get(url).text, re.S)
    assert receipts and receipts.group(1).count('class="receipt"') == 2


def test_detection_time_typed_in_the_site_zone(client: tuple[Any, Runtime]) -> None:
    c, rt = client
    login(c, "ana")
    page = c.get("/incidents").text
    default = re.search(r'name="detected_at" id="ni-detected" maxlength="40" value="([^"]*)"', page)
    now_local = datetime.now(UTC).astimezone(sitetime.zone("Asia/Ho_Chi_Minh"))
    assert default and abs(datetime.strptime(default.group(1), "%d/%m/%Y %H:%M").replace(
        tzinfo=now_local.tzinfo) - now_local) < timedelta(minutes=2)
    csrf = csrf_of(c, "/incidents")
    form = {"csrf_token": csrf, "title": "Phát hiện lúc sáng", "severity": "high"}
    for bad in ("07/12/2026", "31/02/2026 08:00", "hôm qua"):
        r = c.post("/incidents", data=form | {"detected_at": bad}, follow_redirects=False)
        assert r.status_code == 422, bad
    assert rt.incidents.list_incidents(None) == []
    typed = (now_local - timedelta(hours=5)).strftime("%d/%m/%Y %H:%M")
    assert c.post("/incidents", data=form | {"detected_at": typed}, follow_redirects=False).status_code == 303
    [incident] = rt.incidents.list_incidents(None)
    expected = datetime.strptime(typed, "%d/%m/%Y %H:%M").replace(tzinfo=now_local.tzinfo).astimezone(UTC)
    assert incident["detected_at"] == isoformat(expected)
    assert f'id="detected">{expected.astimezone(now_local.tzinfo).strftime("%H:%M %d/%m/%Y")}<' in c.get(
        f"/incidents/{incident['id']}").text
