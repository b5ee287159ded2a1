"""The user's alert notification page without a browser: add a rule, quiet hours, turn off, delete."""

from __future__ import annotations

import re
from typing import Any

from soclite.runtime import Runtime
from tests.ui.test_ui_pages import app_client, login  # noqa: F401 - the fixture


def csrf_of(client: Any, path: str = "/account/notifications") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_a_viewer_on_duty_sets_quiet_hours_and_a_webhook_rule(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    login(client, "viewer")
    page = client.get("/account/notifications")
    assert page.status_code == 200 and "Thông báo cảnh báo" in page.text and "Sở" in page.text
    csrf = csrf_of(client)
    r = client.post("/account/notifications/settings", data={"csrf_token": csrf, "quiet_start": "22:00",
                    "quiet_end": "06:30", "quiet_mode": "hold", "rate_limit_per_hour": "10"}, follow_redirects=False)
    assert r.status_code == 303
    r = client.post("/account/notifications/rule", follow_redirects=False, data={
        "csrf_token": csrf, "name": "SMS trực ban", "min_severity": "critical", "units": "SO",
        "patterns": "*ransom*\n*mimikatz*", "channel": "webhook", "target": "https://sms.tinh.gov.vn/hook"})
    # a webhook rule's answer is the page itself, with the signing secret shown this once (no redirect to lose it)
    assert r.status_code == 200
    user = rt.users.get_by_name("viewer")
    assert user is not None
    [rule] = rt.notification_rules.rules(user.id)
    secret = rt.notification_rules.signing_secret(rule.id)
    assert secret and secret in r.text and "chỉ hiện một lần" in r.text
    assert secret not in client.get("/account/notifications").text
    assert rule.units == ["SO"] and rule.rule_patterns == ["*ransom*", "*mimikatz*"] and rule.channel == "webhook"
    prefs = rt.notification_rules.prefs(user.id)
    assert (prefs.quiet_start, prefs.quiet_end, prefs.rate_limit_per_hour) == ("22:00", "06:30", 10)
    page = client.get("/account/notifications").text
    assert "SMS trực ban" in page and "https://sms.tinh.gov.vn/hook" in page
    # bad input: a clear error, nothing stored
    r = client.post("/account/notifications/rule", data={"csrf_token": csrf, "name": "x", "channel": "email",
                                                         "target": "khong-phai-thu"})  # fmt: skip
    assert r.status_code == 422 and "e-mail" in r.text
    r = client.post("/account/notifications/settings", data={"csrf_token": csrf, "quiet_start": "22:00"})
    assert r.status_code == 422
    assert len(rt.notification_rules.rules(user.id)) == 1
    # without the CSRF token nothing changes
    assert client.post("/account/notifications/delete", data={"rule_id": rule.id}).status_code == 403
    client.post("/account/notifications/disable", data={"csrf_token": csrf, "rule_id": rule.id})
    assert rt.notification_rules.get(user.id, rule.id).enabled is False
    client.post("/account/notifications/delete", data={"csrf_token": csrf, "rule_id": rule.id})
    assert rt.notification_rules.rules(user.id) == []


def test_a_failed_delivery_shows_on_the_users_own_page(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    import socket

    from soclite.models import Alert, Level, fingerprint, utcnow
    from soclite.playbooks.user_notify import UserNotifier
    from soclite.playbooks.worker import Worker

    client, rt, _alert = app_client
    with socket.socket() as sock:  # a port nothing listens on: the SMTP server is down
        sock.bind(("127.0.0.1", 0))
        rt.settings.smtp.host, rt.settings.smtp.port = "127.0.0.1", int(sock.getsockname()[1])
    login(client, "analyst")
    client.post("/account/notifications/rule", data={"csrf_token": csrf_of(client), "name": "thư", "min_severity": "low",
                                                     "channel": "email", "target": "analyst@so.gov.vn"})  # fmt: skip
    now = utcnow()
    alert = Alert(fingerprint=fingerprint("r2", "ws1"), rule_id="r2", rule_title="Brute force", level=Level.HIGH,
                  severity="high", host="ws1", unit="SO", first_seen=now, last_seen=now)  # fmt: skip
    notifier = UserNotifier(rt.notification_rules, rt.users, rt.store, rt.outbox, rt.settings)
    assert notifier.on_alert(alert, "created") == ["sent"]
    Worker(rt).run_once()
    page = client.get("/account/notifications").text
    assert "Đã gửi" in page and 'class="error delivery-error"' in page and "SMTP 127.0.0.1" in page
