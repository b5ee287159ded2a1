"""Log review and alert-threshold tuning by security level (issue 17): due dates from the level's interval,
"record as done" (who, when, note) audited and unit-scoped, overdue ones shown; the reminder pass queues one
e-mail per step through the real outbox, with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from soclite.config import ComplianceSettings
from soclite.control.reviews import months_after
from soclite.reports.review_reminders import remind_reviews
from soclite.runtime import Runtime

Client = Any


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _system(client: Client, token: str, level: int, unit: str | None = None) -> dict[str, Any]:
    body = {"name": f"Hệ thống cấp {level} {unit or ''}", "owner": "UBND tỉnh", "operator": "TT CĐS", "level": level}
    r = client.post("/api/v1/systems", json=body | ({"unit": unit} if unit else {}), headers=auth(token))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _backdate(runtime: Runtime, system_id: str, created: datetime) -> None:
    """The system entered the inventory at ``created`` (the clock the first due date counts from)."""
    with runtime.control.write() as conn:
        conn.execute("UPDATE info_systems SET created_at = ? WHERE id = ?",
                     (created.isoformat().replace("+00:00", "Z"), system_id))


def test_intervals_by_level_and_record_as_done(client: Client, tokens: dict[str, str], runtime: Runtime,
                                               seeded: Any) -> None:
    l3, l4, l5, l2 = (_system(client, tokens["admin"], level) for level in (3, 4, 5, 2))
    created = datetime.now(UTC) - timedelta(days=100)
    for s in (l3, l4, l5, l2):
        _backdate(runtime, s["id"], created)
    got = {s["level"]: client.get(f"/api/v1/systems/{s['id']}/reviews", headers=auth(tokens["viewer"])).json()
           for s in (l3, l4, l5, l2)}
    assert [t["interval_months"] for t in got[3]["tasks"]] == [6, 6]
    assert {t["state"] for t in got[3]["tasks"]} == {"pending"}  # due 6 months after registration
    assert {t["state"] for t in got[4]["tasks"]} == {"overdue"}  # 3 months < 100 days
    assert {t["state"] for t in got[5]["tasks"]} == {"overdue"}
    assert {t["state"] for t in got[2]["tasks"]} == {"none"} and got[2]["tasks"][0]["due_at"] is None
    assert got[3]["tasks"][0]["due_at"][:10] == months_after(created, 6).date().isoformat()

    # the analyst records the level-4 log review as done yesterday: due again 3 months after that
    done = datetime.now(UTC) - timedelta(days=1)
    r = client.post(f"/api/v1/systems/{l4['id']}/reviews", headers=auth(tokens["analyst"]),
                    json={"kind": "log_review", "at": done.isoformat(), "note": "Đã rà soát nhật ký quý 3"})
    assert r.status_code == 201, r.text
    tasks = {t["kind"]: t for t in r.json()["tasks"]}
    assert tasks["log_review"]["state"] == "pending" and tasks["threshold_tuning"]["state"] == "overdue"
    assert tasks["log_review"]["last_done"]["done_by"] == "ana"
    assert tasks["log_review"]["last_done"]["note"] == "Đã rà soát nhật ký quý 3"
    assert tasks["log_review"]["due_at"][:10] == months_after(done, 3).date().isoformat()
    assert r.json()["history"][0]["kind"] == "log_review"
    audit = client.get("/api/v1/audit?limit=500", headers=auth(tokens["admin"])).json()["items"]
    entry = [e for e in audit if e["action"] == "system.log_review"]
    assert entry and entry[0]["target"] == f"system:{l4['id']}" and entry[0]["after"]["note"].startswith("Đã rà")


def test_bad_input_roles_and_scope(client: Client, tokens: dict[str, str], runtime: Runtime, seeded: Any) -> None:
    so = _system(client, tokens["admin"], 4, unit="SO")
    url = f"/api/v1/systems/{so['id']}/reviews"
    assert client.post(url, json={"kind": "log_review"}, headers=auth(tokens["viewer"])).status_code == 403
    assert client.post(url, json={"kind": "cleanup"}, headers=auth(tokens["analyst"])).status_code == 422
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    r = client.post(url, json={"kind": "log_review", "at": future}, headers=auth(tokens["analyst"]))
    assert r.status_code == 422 and "future" in r.text
    # another unit's analyst neither sees nor records it
    assert client.get(url, headers=auth(tokens["analyst_ha"])).status_code == 404
    assert client.post(url, json={"kind": "log_review"}, headers=auth(tokens["analyst_ha"])).status_code == 404
    assert client.get(url, headers=auth(tokens["analyst"])).json()["history"] == []  # nothing was recorded


def test_settings_refuse_a_level_3_interval_above_six_months() -> None:
    with pytest.raises(ValidationError, match="every 6 months"):
        ComplianceSettings.model_validate({"reviews": {"interval_months_by_level": {3: 12}}})
    assert ComplianceSettings.model_validate({"reviews": {"interval_months_by_level": {2: 12}}})


def test_reminders_ahead_and_when_overdue_once_each(client: Client, tokens: dict[str, str], runtime: Runtime,
                                                    seeded: Any) -> None:
    runtime.settings.compliance.reviews.notify = ["truc-ban@tinh.gov.vn"]
    system = _system(client, tokens["admin"], 4)
    created = datetime(2026, 1, 10, 3, tzinfo=UTC)
    _backdate(runtime, system["id"], created)
    due = months_after(created, 3)  # 10/04/2026
    sid = system["id"]

    def remind(now: datetime) -> list[str]:
        return remind_reviews(runtime.reviews, runtime.outbox, runtime.settings, now)

    assert remind(due - timedelta(days=20)) == []
    first = remind(due - timedelta(days=13))
    assert sorted(first) == [f"review:{sid}:log_review:2026-04-10:14", f"review:{sid}:threshold_tuning:2026-04-10:14"]
    assert remind(due - timedelta(days=12)) == []  # already queued
    assert sorted(remind(due - timedelta(days=2))) == [f"review:{sid}:log_review:2026-04-10:3",
                                                       f"review:{sid}:threshold_tuning:2026-04-10:3"]
    record = runtime.outbox.get_by_key(f"review:{sid}:log_review:2026-04-10:3")
    assert record is not None and record.params["to"] == ["truc-ban@tinh.gov.vn"]
    assert "Rà soát nhật ký" in record.params["subject"] and "10/04/2026" in record.params["body"]
    # the log review is done; only the threshold tuning is then overdue
    from soclite.control.reviews import ReviewRecord
    runtime.reviews.record(sid, ReviewRecord(kind="log_review", at=due - timedelta(days=1)), actor="test",
                           author="ana", scope=None, now=due - timedelta(days=1))
    assert remind(due + timedelta(days=1)) == [f"review:{sid}:threshold_tuning:2026-04-10:overdue"]
    assert remind(due + timedelta(days=2)) == []
