"""Per-user alert notifications against real local receivers: aiosmtpd for e-mail, an HTTP server for the
webhook (a chat/SMS gateway). Quiet hours and the rate limit run on a controlled clock; a failing channel
shows in the notification centre."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from soclite.api.notices import health_checks, notices
from soclite.config import SmtpSettings
from soclite.control.identity import UserStore
from soclite.control.notify_rules import Prefs, RuleIn
from soclite.models import Unit
from soclite.playbooks.user_notify import UserNotifier
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.playbooks.support import ScriptedHTTP, build_runtime, make_alert, make_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class World:
    def __init__(self, runtime: Runtime, inbox: Inbox, hook: ScriptedHTTP, clock: Clock) -> None:
        self.rt, self.inbox, self.hook, self.clock = runtime, inbox, hook, clock
        self.notifier = UserNotifier(runtime.notification_rules, runtime.users, runtime.store, runtime.outbox,
                                     runtime.settings, clock=clock)  # fmt: skip
        users = UserStore(runtime.control)
        self.lan = users.add("lan", "lan-password-0123", role="analyst", unit="SO")
        self.hung = users.add("hung", "hung-password-0123", role="admin")

    def deliver(self) -> None:
        Worker(self.rt).run_once()

    def hooks(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _path, _headers, body in self.hook.requests]

    def rule(self, user: Any, **fields: Any) -> Any:
        return self.rt.notification_rules.add(user.id, RuleIn(**fields))


#: 16:30 UTC is 23:30 in Asia/Ho_Chi_Minh (the site's zone)
NIGHT = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
DAY = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 10:00 site time


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    hook = ScriptedHTTP()
    runtime = build_runtime(make_settings(tmp_path, smtp=SmtpSettings(host="127.0.0.1", port=port,
                                                                      sender="soc@tinh.gov.vn")))  # fmt: skip
    for unit in (Unit(code="PROV", name="Tỉnh"), Unit(code="SO", name="Sở", parent="PROV"),
                 Unit(code="SO-A", name="Phòng A", parent="SO"), Unit(code="HA", name="Huyện A", parent="PROV")):
        runtime.store.put_unit(unit)
    try:
        yield World(runtime, inbox, hook, Clock(DAY))
    finally:
        controller.stop()
        hook.close()
        runtime.close()


def test_matching_alerts_go_by_email_and_webhook_and_nothing_else_does(world: World) -> None:
    world.rule(world.lan, name="cao qua thư", min_severity="high", channel="email", target="lan@so.gov.vn")
    world.rule(world.lan, name="powershell qua Zalo", min_severity="low", rule_patterns=["*PowerShell*"],
               channel="webhook", target=f"http://127.0.0.1:{world.hook.port}/sms")  # fmt: skip
    alert = make_alert(level="high", unit="SO-A", rule_title="Encoded PowerShell", host="ws-07")
    assert sorted(world.notifier.on_alert(alert, "created")) == ["sent", "sent"]
    # not matching: below the e-mail rule's severity and no pattern; another unit (outside lan's scope)
    assert world.notifier.on_alert(make_alert(level="medium", unit="SO", rule_title="Port scan"), "created") == []
    assert world.notifier.on_alert(make_alert(level="critical", unit="HA", rule_title="PowerShell"), "created") == []
    # a repeat of a grouped alert, and the same alert handed over again (a replayed batch), say nothing new
    assert world.notifier.on_alert(alert, "updated") == []
    assert world.notifier.on_alert(alert, "created") == ["duplicate", "duplicate"]
    world.deliver()

    [mail] = world.inbox.messages
    assert mail["To"] == "lan@so.gov.vn" and "Encoded PowerShell" in mail["Subject"]
    assert "ws-07" in mail.get_content() and "CAO" in mail.get_content()
    [body] = world.hooks()
    assert body["type"] == "soclite.alert" and body["version"] == 1 and body["user"] == "lan"
    assert body["rule"]["name"] == "powershell qua Zalo"
    assert body["alert"]["id"] == alert.id and body["alert"]["severity"] == "high" and body["alert"]["unit"] == "SO-A"
    assert body["text"].startswith("[SOC] CAO: Encoded PowerShell")
    # a disabled rule and a disabled user hear nothing
    for rule in world.rt.notification_rules.rules(world.lan.id):
        world.rt.notification_rules.set_enabled(world.lan.id, rule.id, False)
    assert world.notifier.on_alert(make_alert(level="critical", unit="SO", rule_title="PowerShell"), "created") == []


def test_quiet_hours_hold_until_morning_in_the_site_zone_but_critical_goes_at_once(world: World) -> None:
    target = f"http://127.0.0.1:{world.hook.port}/chat"
    world.rule(world.hung, name="mọi cảnh báo", min_severity="low", channel="webhook", target=target)
    world.rt.notification_rules.set_prefs(world.hung.id, Prefs(quiet_start="22:00", quiet_end="06:00"))
    world.clock.at = NIGHT  # 23:30 site time
    high = make_alert(level="high", unit="HA", rule_title="Brute force")
    critical = make_alert(level="critical", unit="HA", rule_title="Ransomware")
    assert world.notifier.on_alert(high, "created") == ["held"]
    assert world.notifier.on_alert(critical, "created") == ["sent"]
    world.clock.at = NIGHT + timedelta(hours=6)  # 05:30: still quiet
    assert world.notifier.flush() == 0
    world.deliver()
    assert [b["alert"]["rule_title"] for b in world.hooks()] == ["Ransomware"]
    world.clock.at = NIGHT + timedelta(hours=6, minutes=35)  # 06:05 site time
    assert world.notifier.flush() == 1
    assert world.notifier.flush() == 0  # sent once
    world.deliver()
    digest = world.hooks()[-1]
    assert digest["type"] == "soclite.digest" and digest["reason"] == "quiet_hours" and digest["count"] == 1
    assert [a["id"] for a in digest["alerts"]] == [high.id]

    # "drop" instead of "hold": the night's alerts are not sent at all
    world.rt.notification_rules.set_prefs(world.hung.id, Prefs(quiet_start="22:00", quiet_end="06:00",
                                                               quiet_mode="drop"))  # fmt: skip
    world.clock.at = NIGHT
    assert world.notifier.on_alert(make_alert(level="high", unit="HA"), "created") == ["dropped"]
    world.clock.at = NIGHT + timedelta(hours=8)
    assert world.notifier.flush() == 0


def test_over_the_rate_limit_alerts_wait_for_one_digest(world: World) -> None:
    world.rule(world.hung, name="sms", min_severity="low", channel="webhook",
               target=f"http://127.0.0.1:{world.hook.port}/sms")  # fmt: skip
    world.rt.notification_rules.set_prefs(world.hung.id, Prefs(rate_limit_per_hour=2))
    alerts = [make_alert(level="high", unit="SO", rule_title=f"Alert {i}") for i in range(5)]
    assert [world.notifier.on_alert(a, "created")[0] for a in alerts] == ["sent", "sent", "limited", "limited",
                                                                         "limited"]  # fmt: skip
    assert world.notifier.flush() == 0  # no room in the hour, and not waiting long enough yet
    world.clock.at = DAY + timedelta(minutes=16)
    assert world.notifier.flush() == 1
    world.deliver()
    bodies = world.hooks()  # the worker runs actions in parallel: arrival order is the network's
    assert sorted(b["type"] for b in bodies) == ["soclite.alert", "soclite.alert", "soclite.digest"]
    [digest] = [b for b in bodies if b["type"] == "soclite.digest"]
    assert digest["reason"] == "rate_limit" and [a["id"] for a in digest["alerts"]] == [a.id for a in alerts[2:]]
    # the digest counts as a message: the hour is full again
    assert world.notifier.on_alert(make_alert(level="high", unit="SO"), "created") == ["limited"]
    world.clock.at = DAY + timedelta(hours=1, minutes=17)  # the window has room again
    assert world.notifier.on_alert(make_alert(level="high", unit="SO"), "created") == ["sent"]


def test_a_failing_channel_shows_in_the_notification_centre(world: World) -> None:
    world.rt.settings.smtp.port = free_port()  # nothing listens: connection refused
    world.rule(world.lan, name="thư", min_severity="low", channel="email", target="lan@so.gov.vn")
    assert world.notifier.on_alert(make_alert(level="high", unit="SO"), "created") == ["sent"]
    world.deliver()
    [record] = world.rt.outbox.list_actions(action="notify_email")
    assert record.status.value == "failed" and "SMTP" in (record.last_error or "")
    lan = world.lan.principal()
    found = [n for n in notices(world.rt, lan, frozenset({"SO", "SO-A"})) if n.kind == "action_failed"]
    assert found and "notify_email" in found[0].detail
    [delivery] = world.rt.notification_rules.recent(world.lan.id)
    assert delivery["action_id"] == record.id  # the user's page shows that action's fate (api.notify_settings)
    check = health_checks(world.rt)["playbook_actions"]  # and /health says so
    assert check["status"] == "degraded" and "notify_email" in str(check)
    # another unit's people do not see this user's failure
    assert not [n for n in notices(world.rt, lan, frozenset({"HA"})) if n.kind == "action_failed"]


def verify_signature(secret: str, headers: dict[str, str], body: bytes, now: float, tolerance: int = 300) -> bool:
    """What a receiving gateway does (docs/notifications.md): recompute the HMAC over "<timestamp>.<body>",
    compare in constant time, refuse a timestamp too far from its own clock (a replay)."""
    stamp = headers.get("X-Soclite-Timestamp", "")
    given = headers.get("X-Soclite-Signature", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def test_webhook_deliveries_are_signed_with_the_rules_own_secret(world: World) -> None:
    mine = world.rule(world.lan, name="zalo", min_severity="low", channel="webhook",
                      target=f"http://127.0.0.1:{world.hook.port}/zalo")  # fmt: skip
    other = world.rule(world.hung, name="sms", min_severity="low", channel="webhook",
                       target=f"http://127.0.0.1:{world.hook.port}/sms")  # fmt: skip
    secrets = {r.id: world.rt.notification_rules.signing_secret(r.id) for r in (mine, other)}
    assert all(secrets.values()) and secrets[mine.id] != secrets[other.id]
    assert world.notifier.on_alert(make_alert(level="high", unit="SO", rule_title="Brute force"), "created") == [
        "sent", "sent"]  # fmt: skip
    # the secret is looked up at send time: the outbox row (listed in the queue) never carries it
    for record in world.rt.outbox.list_actions(action="notify_webhook"):
        assert not [s for s in secrets.values() if s and s in json.dumps(record.params)]
    world.deliver()
    assert len(world.hook.requests) == 2
    now = time.time()
    for path, headers, raw in world.hook.requests:
        rule = mine if path == "/zalo" else other
        body = json.loads(raw)
        assert body["rule"]["id"] == rule.id
        assert verify_signature(str(secrets[rule.id]), headers, raw, now)
        wrong = other if rule is mine else mine  # another rule's secret does not verify it
        assert not verify_signature(str(secrets[wrong.id]), headers, raw, now)
        # a changed body, or the same delivery replayed ten minutes later, is refused
        assert not verify_signature(str(secrets[rule.id]), headers, raw.replace(b"Brute", b"Bruto"), now)
        assert not verify_signature(str(secrets[rule.id]), headers, raw, now + 600)


def test_a_deleted_rules_waiting_webhook_is_not_sent_unsigned(world: World) -> None:
    rule = world.rule(world.lan, name="zalo", min_severity="low", channel="webhook",
                      target=f"http://127.0.0.1:{world.hook.port}/zalo")  # fmt: skip
    assert world.notifier.on_alert(make_alert(level="high", unit="SO"), "created") == ["sent"]
    world.rt.notification_rules.delete(world.lan.id, rule.id)
    world.deliver()
    assert world.hook.requests == []
    [record] = world.rt.outbox.list_actions(action="notify_webhook")
    assert record.status.value == "dead" and "no longer exists" in (record.last_error or "")


def test_old_finished_decisions_are_pruned_by_the_periodic_job_and_waiting_ones_kept(world: World) -> None:
    world.rt.settings.response.notification_retention_days = 30
    world.rule(world.lan, name="thư", min_severity="low", channel="email", target="lan@so.gov.vn")
    world.rt.notification_rules.set_prefs(world.lan.id, Prefs(quiet_start="22:00", quiet_end="06:00"))
    world.clock.at = DAY - timedelta(days=40)
    old = make_alert(level="high", unit="SO", rule_title="Old")
    assert world.notifier.on_alert(old, "created") == ["sent"]
    world.clock.at = NIGHT - timedelta(days=40)  # held in quiet hours 40 days ago: still waiting for its digest
    assert world.notifier.on_alert(make_alert(level="high", unit="SO", rule_title="Held"), "created") == ["held"]
    world.clock.at = DAY - timedelta(days=10)
    assert world.notifier.on_alert(make_alert(level="high", unit="SO", rule_title="Recent"), "created") == ["sent"]
    rows = lambda: sorted((r["status"], r["alert_id"]) for r in world.rt.notification_rules.recent(world.lan.id))  # noqa: E731
    assert len(rows()) == 3
    world.clock.at = NIGHT  # the job runs in the quiet hours of today: the held one stays held
    worker = Worker(world.rt, tick=world.notifier.periodic, tick_seconds=3600)
    worker.periodic()
    statuses = sorted(s for s, _ in rows())
    assert statuses == ["held", "sent"] and old.id not in [a for _, a in rows()]
    # once it went out in a digest, an old decision is finished too (the digest row itself is new)
    world.clock.at = DAY + timedelta(days=1)
    world.notifier.periodic()
    assert sorted(s for s, _ in rows()) == ["digest", "sent"]
