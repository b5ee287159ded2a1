"""A user's own alert notification rules over the API: validation, unit scope, ownership, audit."""

from __future__ import annotations

import json
from typing import Any

from soclite.control.identity import UserStore
from soclite.runtime import Runtime
from tests.api.conftest import auth

Client = Any
URL = "/api/v1/me/notifications"


def test_rules_and_settings_belong_to_the_caller_and_stay_in_scope(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    users = UserStore(runtime.control)
    users.add("ana", "ana-password-0123", role="analyst")
    users.add("ana-ha", "ana-ha-password-0123", role="analyst", unit="HA")
    h, ha = auth(tokens["analyst"]), auth(tokens["analyst_ha"])
    r = client.post(f"{URL}/rules", headers=h, json={"name": "cao", "min_severity": "high", "channel": "email",
                                                     "target": "ana@so.gov.vn", "units": ["SO"]})  # fmt: skip
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    bad = {"name": "x", "channel": "email", "target": "not-an-address"}
    assert client.post(f"{URL}/rules", headers=h, json=bad).status_code == 422
    bad = {"name": "x", "channel": "webhook", "target": "ftp://gw"}
    assert client.post(f"{URL}/rules", headers=h, json=bad).status_code == 422
    # a district analyst cannot name the department's unit (nor learn whether it exists)
    r = client.post(f"{URL}/rules", headers=ha, json={"name": "x", "channel": "email", "target": "a@b.vn",
                                                      "units": ["SO"]})  # fmt: skip
    assert r.status_code == 404
    assert client.put(f"{URL}/settings", headers=h, json={"quiet_start": "25:00", "quiet_end": "06:00"}).status_code == 422
    assert client.put(f"{URL}/settings", headers=h, json={"quiet_start": "22:00"}).status_code == 422
    r = client.put(f"{URL}/settings", headers=h, json={"quiet_start": "22:00", "quiet_end": "06:00",
                                                        "quiet_mode": "drop", "rate_limit_per_hour": 5})  # fmt: skip
    assert r.status_code == 200
    mine = client.get(URL, headers=h).json()
    assert [x["id"] for x in mine["rules"]] == [rule_id] and mine["settings"]["quiet_mode"] == "drop"
    assert client.get(URL, headers=ha).json()["rules"] == []  # another user's rules are not theirs
    assert client.patch(f"{URL}/rules/{rule_id}", headers=ha, json={"enabled": False}).status_code == 404
    assert client.delete(f"{URL}/rules/{rule_id}", headers=ha).status_code == 404
    assert client.patch(f"{URL}/rules/{rule_id}", headers=h, json={"enabled": False}).json()["enabled"] is False
    assert client.delete(f"{URL}/rules/{rule_id}", headers=h).status_code == 200
    # a token not named after a user account has no notifications
    assert client.get(URL, headers=auth(tokens["viewer"])).status_code == 403
    actions = [e.action for e in runtime.store.iter_audit()]
    for action in ("notification_rule.create", "notification_rule.update", "notification_rule.delete",
                   "notification_settings.update"):
        assert action in actions


def test_a_webhook_rules_signing_secret_is_shown_once_and_never_again(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    UserStore(runtime.control).add("ana", "ana-password-0123", role="analyst")
    h = auth(tokens["analyst"])
    r = client.post(f"{URL}/rules", headers=h, json={"name": "zalo", "channel": "webhook",
                                                     "target": "https://gw.so.gov.vn/hook"})  # fmt: skip
    assert r.status_code == 201, r.text
    secret = r.json()["signing_secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    mail = client.post(f"{URL}/rules", headers=h, json={"name": "thư", "channel": "email", "target": "a@so.gov.vn"})
    assert mail.json()["signing_secret"] is None  # an e-mail is not signed
    # neither the listing, the toggle, the deletion nor the audit trail carry it
    assert secret not in client.get(URL, headers=h).text
    assert secret not in client.patch(f"{URL}/rules/{r.json()['id']}", headers=h, json={"enabled": False}).text
    assert secret not in client.delete(f"{URL}/rules/{r.json()['id']}", headers=h).text
    assert not [e for e in runtime.store.iter_audit() if secret in json.dumps([e.before, e.after], default=str)]
