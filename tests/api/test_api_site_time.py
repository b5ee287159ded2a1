"""One notion of time in the API: dates are whole days in the site's zone (Asia/Ho_Chi_Minh, UTC+07:00).

The case from the field: an alert at 00:30 local time on 7 December 2026 is stored as 17:30 UTC on
6 December. It is shown as 07/12/2026, so ``from=to=2026-12-07`` must find it and ``2026-12-06``
must not; its histogram bar is the 7th.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from soclite.models import Alert, Level, fingerprint, severity_of
from soclite.runtime import Runtime

from .conftest import auth

LOCAL_0030 = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)  # 00:30 on 07/12/2026 in UTC+07:00
LOCAL_2330_PREV = datetime(2026, 12, 6, 16, 30, tzinfo=UTC)  # 23:30 on 06/12/2026 in UTC+07:00


@pytest.fixture
def boundary(runtime: Runtime) -> dict[str, str]:
    ids = {}
    for name, at in (("after_midnight", LOCAL_0030), ("before_midnight", LOCAL_2330_PREV)):
        alert = Alert(fingerprint=fingerprint("r", name), rule_id="r", rule_title=name, level=Level.HIGH,
                      severity=severity_of(Level.HIGH), host=name, first_seen=at, last_seen=at,
                      event_ids=[f"ev-{name}"])
        runtime.store.put_alert(alert)
        runtime.store.write_events([{"@timestamp": at.isoformat(), "event.id": f"ev-{name}", "host.name": name,
                                     "event.original": f"line {name}"}])
        ids[name] = alert.id
    return ids


def _ids(client: object, url: str, token: str) -> set[str]:
    r = client.get(url, headers=auth(token))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return {item.get("id") or item.get("host.name") for item in r.json()["items"]}


@pytest.mark.parametrize("day", ["2026-12-07", "07/12/2026"])
def test_a_date_filter_is_the_whole_local_day(boundary: dict[str, str], client: object, tokens: dict[str, str],
                                              day: str) -> None:
    assert _ids(client, f"/api/v1/alerts?from={day}&to={day}", tokens["admin"]) == {boundary["after_midnight"]}
    assert _ids(client, f"/api/v1/events?from={day}&to={day}", tokens["admin"]) == {"after_midnight"}


def test_the_previous_local_day_does_not_hold_the_0030_alert(boundary: dict[str, str], client: object,
                                                             tokens: dict[str, str]) -> None:
    prev = "/api/v1/alerts?from=2026-12-06&to=2026-12-06"
    assert _ids(client, prev, tokens["admin"]) == {boundary["before_midnight"]}
    summary = client.get("/api/v1/stats/summary?from=2026-12-07&to=2026-12-07",  # type: ignore[attr-defined]
                         headers=auth(tokens["admin"])).json()
    assert summary["alerts"]["total"] == 1


def test_datetimes_with_an_offset_keep_their_meaning_naive_ones_are_local(
    boundary: dict[str, str], client: object, tokens: dict[str, str]
) -> None:
    # 17:00Z-18:00Z holds 17:30Z, whatever the site's zone
    assert _ids(client, "/api/v1/alerts?from=2026-12-06T17:00:00Z&to=2026-12-06T18:00:00Z",
                tokens["admin"]) == {boundary["after_midnight"]}
    assert _ids(client, "/api/v1/alerts?from=2026-12-07T00:00:00%2B07:00&to=2026-12-07T01:00:00%2B07:00",
                tokens["admin"]) == {boundary["after_midnight"]}
    # a naive datetime is what a person reads on the wall clock: 00:00-01:00 local
    assert _ids(client, "/api/v1/alerts?from=2026-12-07T00:00:00&to=2026-12-07T01:00:00",
                tokens["admin"]) == {boundary["after_midnight"]}


def test_histogram_days_are_local_and_say_their_offset(boundary: dict[str, str], client: object,
                                                       tokens: dict[str, str]) -> None:
    body = client.get("/api/v1/stats/histogram?from=2026-12-06&to=2026-12-07&interval=day",  # type: ignore[attr-defined]
                      headers=auth(tokens["admin"])).json()
    assert body["timezone"] == "Asia/Ho_Chi_Minh"
    assert [(b["start"], sum(b["counts"].values())) for b in body["buckets"]] == [
        ("2026-12-06T00:00:00+07:00", 1),
        ("2026-12-07T00:00:00+07:00", 1),
    ]


@pytest.mark.parametrize("value", ["yesterday", "31/02/2026", "2026-13-01", "7.12.2026"])
def test_unreadable_dates_are_a_clear_422(client: object, tokens: dict[str, str], value: str) -> None:
    r = client.get(f"/api/v1/alerts?from={value}", headers=auth(tokens["admin"]))  # type: ignore[attr-defined]
    assert r.status_code == 422
    assert value in r.json()["detail"] and ("datetime" in r.json()["detail"] or "date" in r.json()["detail"])

