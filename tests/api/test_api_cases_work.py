"""Working a case: close reasons from a fixed list, comments, tasks, history, and the alert's timeline entry."""

from __future__ import annotations

import re
from typing import Any

from soclite.control.identity import UserStore
from soclite.runtime import Runtime
from tests.api.conftest import auth

Client = Any


def new_case(client: Client, h: dict[str, str], alert_ids: list[str]) -> dict[str, Any]:
    r = client.post("/api/v1/cases", headers=h, json={"title": "Ransomware ở Sở", "alert_ids": alert_ids,
                                                      "unit": "SO"})  # fmt: skip
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def test_closing_needs_a_reason_from_the_list_and_other_needs_a_note(
    seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case = new_case(client, h, seeded["SO"][:1])
    url = f"/api/v1/cases/{case['id']}"
    r = client.patch(url, headers=h, json={"status": "closed"})
    assert r.status_code == 422 and "close reason" in r.json()["detail"]
    assert client.patch(url, headers=h, json={"status": "closed", "close_reason": "because"}).status_code == 422
    r = client.patch(url, headers=h, json={"status": "closed", "close_reason": "other"})
    assert r.status_code == 422 and "note" in r.json()["detail"]
    assert client.get(url, headers=h).json()["status"] == "open"  # nothing changed by the refusals
    r = client.patch(url, headers=h, json={"status": "closed", "close_reason": "benign_true_positive"})
    assert r.status_code == 200 and r.json()["close_reason"] == "benign_true_positive"
    reopened = client.patch(url, headers=h, json={"status": "in_progress"}).json()
    assert reopened["close_reason"] is None  # the old reason no longer holds
    r = client.patch(url, headers=h, json={"status": "closed", "close_reason": "other", "close_note": "test drill"})
    assert r.json()["close_reason"] == "other" and r.json()["close_note"] == "test drill"


def test_comments_tasks_and_history_of_a_case(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case = new_case(client, h, seeded["SO"][:1])
    url = f"/api/v1/cases/{case['id']}"
    assert client.post(f"{url}/comments", headers=h, json={"body": "Đã gọi cho Sở"}).status_code == 201
    assert client.post(f"{url}/comments", headers=h, json={"body": ""}).status_code == 422
    r = client.post(f"{url}/tasks", headers=h, json={"title": "Thu thập ổ cứng", "assignee": "ana",
                                                     "due_at": "2026-02-01T17:00:00+07:00"})  # fmt: skip
    assert r.status_code == 201 and r.json()["due_at"] == "2026-02-01T10:00:00.000Z"  # stored in UTC
    task_id = r.json()["id"]
    assert client.patch(f"{url}/tasks/{task_id}", headers=h, json={"done": True}).status_code == 200
    assert client.patch(f"{url}/tasks/nope", headers=h, json={"done": True}).status_code == 404
    client.patch(url, headers=h, json={"owner": "ana"})
    detail = client.get(url, headers=h).json()
    assert [t["done"] for t in detail["tasks"]] == [True]
    kinds = [e["kind"] for e in detail["history"]]
    assert kinds == ["comment", "task_added", "task_done", "change"]
    assert detail["history"][0]["body"] == "Đã gọi cho Sở" and detail["history"][0]["actor"] == "token:ana"
    assert detail["history"][-1]["body"] == {"owner": [None, "ana"]}
    # a viewer reads but cannot write; another unit does not even see the case
    assert client.post(f"{url}/comments", headers=auth(tokens["viewer"]), json={"body": "x"}).status_code == 403
    assert client.get(url, headers=auth(tokens["analyst_ha"])).status_code == 404
    r = client.post(f"{url}/tasks", headers=auth(tokens["analyst_ha"]), json={"title": "x"})
    assert r.status_code == 404
    actions = {e.action for e in runtime.store.iter_audit()}
    assert {"case.comment", "case.task", "case.task_done"} <= actions


def test_an_alert_added_to_a_case_says_so_in_its_timeline(
    seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    first, second = seeded["SO"][:2]
    case = new_case(client, h, [first])
    client.post(f"/api/v1/cases/{case['id']}/alerts", headers=h, json={"alert_ids": [second, first]})
    for alert_id in (first, second):
        timeline = client.get(f"/api/v1/alerts/{alert_id}", headers=h).json()["timeline"]
        entries = [i for i in timeline if i["kind"] == "case"]
        assert len(entries) == 1 and entries[0]["case"] == {"id": case["id"], "title": "Ransomware ở Sở"}
    history = client.get(f"/api/v1/cases/{case['id']}", headers=h).json()["history"]
    assert [e["body"] for e in history if e["kind"] == "alerts_added"] == [[second]]  # first was already in


def test_case_work_in_the_ui(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                             tokens: dict[str, str]) -> None:
    UserStore(runtime.control).add("thao", "case-ui-password", role="analyst", unit="SO")
    case = new_case(client, auth(tokens["analyst"]), seeded["SO"][:1])
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post("/login", data={"username": "thao", "password": "case-ui-password", "csrf_token": token.group(1)})
    detail = client.get(f"/cases/{case['id']}").text
    # the case's work section is in the page body once, and the <title> is the case's title only
    assert detail.count('id="case-work"') == 1
    title = detail.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title and case["title"] in title
    found = re.search(r'name="csrf_token" value="([^"]+)"', detail)
    assert found and 'id="case-assign-me"' in detail
    csrf = found.group(1)
    base = f"/cases/{case['id']}"
    assert client.post(f"{base}/assign-me", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.post(f"{base}/comment", data={"csrf_token": csrf, "body": "Bắt đầu xử lý"})
    client.post(f"{base}/task", data={"csrf_token": csrf, "title": "Cách ly máy", "assignee": "thao",
                                      "due": "2026-02-01"})  # fmt: skip
    assert client.post(f"{base}/task", data={"csrf_token": csrf, "title": "x", "due": "01/02"}).status_code == 422
    r = client.post(f"{base}/update", data={"csrf_token": csrf, "status": "closed"})
    assert r.status_code == 422  # no reason chosen
    r = client.post(f"{base}/update", data={"csrf_token": csrf, "status": "closed", "close_reason": "duplicate"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    stored = runtime.cases.get(case["id"], None)
    assert stored["owner"] == "thao" and stored["close_reason"] == "duplicate"
    [task] = runtime.cases.tasks(case["id"], None)
    assert task["due_at"] == "2026-02-01T16:59:59.000Z"  # end of the day in Asia/Ho_Chi_Minh
    page = client.get(base).text
    assert "Bắt đầu xử lý" in page and "Cách ly máy" in page and "Trùng lặp" in page
    alert_page = client.get(f"/alerts/{seeded['SO'][0]}").text
    assert "đã đưa cảnh báo này vào vụ việc" in alert_page


def test_case_entries_never_leak_across_units(
    seeded: dict[str, list[str]], client: Client, tokens: dict[str, str]
) -> None:
    province = auth(tokens["analyst"])
    so_alert, ha_alert = seeded["SO"][0], seeded["HA"][0]
    # a province-wide case (no unit) holding an SO alert: SO's people must not learn its title from the alert
    secret = client.post("/api/v1/cases", headers=province, json={"title": "Điều tra nội bộ tỉnh",
                                                                   "alert_ids": [so_alert]}).json()  # fmt: skip
    assert secret["unit"] is None
    seen_by_so = client.get(f"/api/v1/alerts/{so_alert}", headers=auth(tokens["viewer_so"])).json()
    assert not [i for i in seen_by_so["timeline"] if i["kind"] == "case"]
    assert "Điều tra nội bộ tỉnh" not in str(seen_by_so["history"])
    assert [i["kind"] for i in client.get(f"/api/v1/alerts/{so_alert}", headers=province).json()["timeline"]
            ].count("case") == 1  # fmt: skip
    # an SO case into which the province put an HA alert: SO sees a count, not the HA alert's id
    so_case = client.post("/api/v1/cases", headers=province, json={"title": "SO", "unit": "SO",
                                                                   "alert_ids": [so_alert]}).json()  # fmt: skip
    client.post(f"/api/v1/cases/{so_case['id']}/alerts", headers=province, json={"alert_ids": [ha_alert]})
    history = client.get(f"/api/v1/cases/{so_case['id']}", headers=auth(tokens["viewer_so"])).json()["history"]
    [added] = [e for e in history if e["kind"] == "alerts_added"]
    assert added["body"] == [] and added["hidden"] == 1 and ha_alert not in str(history)
