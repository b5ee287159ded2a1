"""Per-user alert notifications: each new alert → the rules of the people on duty → e-mail or a webhook.

For a new alert (not a repeat of a grouped one), every enabled rule of every active user is checked:
the alert's unit is inside the user's scope (and inside the rule's units, when it names some), its
severity reaches the rule's minimum, its rule id or title matches one of the rule's patterns (when it
has some). A matching rule is then decided once per (rule, alert), in this order:

1. **quiet hours** (the user's, in the site's zone): a critical alert (Sigma level critical) always
   goes; any other is *held* and sent in one digest when the quiet hours end (``quiet_mode: hold``,
   the default), or *dropped* (``quiet_mode: drop``: the user reads the console in the morning);
2. **rate limit** (messages per hour per user, digests included): past it the alert is *limited* and
   goes out in one digest as soon as the hour has room again, or after :data:`DIGEST_AFTER` at most;
3. otherwise it is *sent*: one outbox action (``notify_email`` through the SMTP settings, or
   ``notify_webhook``), so a failed delivery is retried with backoff and, failing for good, shows in
   the notification centre and /health like every failed action of the alert's unit.

The webhook body is documented in ``docs/notifications.md`` (``soclite.alert`` / ``soclite.digest``,
version 1). :meth:`UserNotifier.flush` sends the digests; the playbook worker calls it periodically.
Times come from ``clock`` (UTC), so tests control quiet hours and the rate window.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from soclite import sitetime
from soclite.config import Settings
from soclite.control.identity import User, UserStore
from soclite.control.notify_rules import NotificationRules, Prefs, Rule
from soclite.errors import PlaybookError
from soclite.models import Alert, Level, isoformat, utcnow
from soclite.playbooks.outbox import Outbox
from soclite.store.base import Store, unit_subtree

log = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
#: a rate-limited alert waits at most this long for its digest
DIGEST_AFTER = timedelta(minutes=15)
RATE_WINDOW = timedelta(hours=1)
_RANK = {Level.INFORMATIONAL: 1, Level.LOW: 1, Level.MEDIUM: 2, Level.HIGH: 3, Level.CRITICAL: 4}
_MIN_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
_SEVERITY_VI = {"high": "CAO", "medium": "TRUNG BÌNH", "low": "THẤP"}


def in_quiet_hours(prefs: Prefs, local: datetime) -> bool:
    """Whether the site-local time ``local`` falls in the quiet hours (the window may cross midnight)."""
    if prefs.quiet_start is None or prefs.quiet_end is None:
        return False
    start, end = time.fromisoformat(prefs.quiet_start), time.fromisoformat(prefs.quiet_end)
    now = local.time().replace(tzinfo=None)
    return start <= now < end if start < end else (now >= start or now < end)


def alert_payload(alert: Alert, console_url: str | None) -> dict[str, Any]:
    """The alert as the webhook body carries it (docs/notifications.md)."""
    return {
        "id": alert.id, "rule_id": alert.rule_id, "rule_title": alert.rule_title, "level": alert.level.value,
        "severity": alert.severity.value, "host": alert.host, "unit": alert.unit,
        "first_seen": isoformat(alert.first_seen), "last_seen": isoformat(alert.last_seen), "count": alert.count,
        "url": f"{console_url.rstrip('/')}/alerts/{alert.id}" if console_url else None,
    }  # fmt: skip


def short_text(alert: dict[str, Any]) -> str:
    """One SMS-sized line (Vietnamese first, as the people on duty read it)."""
    severity = _SEVERITY_VI.get(str(alert["severity"]), str(alert["severity"]))
    return f"[SOC] {severity}: {alert['rule_title']} - {alert.get('host') or '?'} ({alert.get('unit') or '-'})"[:300]


class UserNotifier:
    def __init__(self, rules: NotificationRules, users: UserStore, store: Store, outbox: Outbox, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:  # fmt: skip
        self.rules = rules
        self.users = users
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.tz = sitetime.zone(settings.timezone)

    # --- matching ---------------------------------------------------------------------------------
    def _scope(self, user: User) -> frozenset[str] | None:
        return None if user.unit is None else unit_subtree(self.store.list_units(), user.unit)

    def matches(self, rule: Rule, user: User, alert: Alert) -> bool:
        scope = self._scope(user)
        if scope is not None and alert.unit not in scope:
            return False  # never a word about another unit's alert, whatever the rule says
        if rule.units:
            units = self.store.list_units()
            wanted = frozenset().union(*(unit_subtree(units, code) for code in rule.units))
            if alert.unit not in wanted:
                return False
        if _RANK.get(alert.level, 1) < _MIN_RANK[rule.min_severity]:
            return False
        if rule.rule_patterns:
            names = (alert.rule_id.lower(), alert.rule_title.lower())
            return any(fnmatch.fnmatchcase(n, p.lower()) for p in rule.rule_patterns for n in names)
        return True

    # --- deciding ---------------------------------------------------------------------------------
    def on_alert(self, alert: Alert, change: str) -> list[str]:
        """Decide every matching rule for a new alert; returns the decisions (for logs and tests)."""
        if change != "created":
            return []
        decided: list[str] = []
        users: dict[str, User | None] = {}
        for rule in self.rules.rules(enabled_only=True):
            if rule.user_id not in users:
                users[rule.user_id] = self.users.get(rule.user_id)
            user = users[rule.user_id]
            if user is None or user.disabled or not self.matches(rule, user, alert):
                continue
            try:
                decided.append(self._decide(rule, user, alert))
            except Exception:  # one user's bad rule must not stop the others' (nor the pipeline)
                log.exception("notification rule %s of %s failed for alert %s", rule.id, user.username, alert.id)
        return decided

    def _decide(self, rule: Rule, user: User, alert: Alert) -> str:
        now = self.clock()
        prefs = self.rules.prefs(user.id)
        data = alert_payload(alert, self.settings.server.public_url)
        if alert.level is not Level.CRITICAL and in_quiet_hours(prefs, sitetime.local(now, self.tz)):
            if prefs.quiet_mode == "hold":
                self.rules.decide(rule, alert.id, "held", data, now)
                return "held"
            self.rules.decide(rule, alert.id, "dropped", data, now)
            return "dropped"
        if self.rules.messages_since(user.id, now - RATE_WINDOW) >= prefs.rate_limit_per_hour:
            self.rules.decide(rule, alert.id, "limited", data, now)
            return "limited"
        body = {"type": "soclite.alert", "version": PAYLOAD_VERSION, "user": user.username,
                "rule": {"id": rule.id, "name": rule.name}, "text": short_text(data), "alert": data}  # fmt: skip
        # decided first: a (rule, alert) seen again (a replayed batch) sends nothing twice
        delivery = self.rules.decide(rule, alert.id, "sent", data, now)
        if delivery is None:
            return "duplicate"
        self._send(rule, user, body, f"notify:{rule.id}:{alert.id}", alert.unit, [data], delivery)
        return "sent"

    def _send(self, rule: Rule, user: User, body: dict[str, Any], key: str, unit: str | None,
              alerts: list[dict[str, Any]], delivery: int | None) -> None:  # fmt: skip
        params: dict[str, Any]
        if rule.channel == "email":
            action = "notify_email"
            if body["type"] == "soclite.digest":
                subject = f"[soclite] {len(alerts)} cảnh báo / alerts ({body['reason']})"
            else:
                subject = f"[soclite] {alerts[0]['severity']} {alerts[0]['rule_title']} — {alerts[0].get('host')}"
            lines = [short_text(a) + (f"\n  {a['url']}" if a.get("url") else "") for a in alerts]
            params = {"to": [rule.target], "subject": subject[:250],
                      "body": f"{body['text']}\n\n" + "\n".join(lines) + f"\n\n(quy tắc thông báo / rule: {rule.name})\n"}  # fmt: skip
        else:
            action = "notify_webhook"
            # signed at send time with the rule's secret, looked up by id: the secret is never in the outbox row
            params = {"url": rule.target, "body": body, "include_alert": False, "sign_with_rule": rule.id}
        try:
            record = self.outbox.submit(action, params, idempotency_key=key, requested_by=f"notify:{user.username}",
                                        payload={"unit": unit, "user": user.username, "notification_rule": rule.id})  # fmt: skip
        except PlaybookError as exc:  # a target the action refuses: say so in the log; the row has no action
            log.error("notification rule %s of %s: %s", rule.id, user.username, exc)
            return
        if delivery is not None:
            self.rules.sent_as(delivery, record.id)

    # --- the periodic job -----------------------------------------------------------------------------
    def periodic(self) -> int:
        """The playbook worker's tick: send the digests that are due, then prune old decisions."""
        sent = self.flush()
        self.prune()
        return sent

    def prune(self) -> int:
        """Forget finished decisions older than ``response.notification_retention_days``."""
        days = self.settings.response.notification_retention_days
        gone = self.rules.prune(self.clock() - timedelta(days=days))
        if gone:
            log.info("pruned %d notification decision(s) older than %d days", gone, days)
        return gone

    # --- digests ------------------------------------------------------------------------------------
    def flush(self) -> int:
        """Send the digests that are due: held alerts once quiet hours are over, limited ones once the hour
        has room (or after DIGEST_AFTER). One digest per rule. Returns how many were sent."""
        now = self.clock()
        local = sitetime.local(now, self.tz)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in self.rules.waiting():
            groups.setdefault((row["rule_id"], row["status"]), []).append(row)
        sent = 0
        for (rule_id, status), rows in groups.items():
            user = self.users.get(rows[0]["user_id"])
            try:
                rule = self.rules.get(rows[0]["user_id"], rule_id)
            except Exception:
                rule = None
            if user is None or user.disabled or rule is None or not rule.enabled:
                self.rules.mark_digested([r["id"] for r in rows])  # nobody to tell any more
                continue
            prefs = self.rules.prefs(user.id)
            if status == "held" and in_quiet_hours(prefs, local):
                continue
            if status == "limited":
                room = self.rules.messages_since(user.id, now - RATE_WINDOW) < prefs.rate_limit_per_hour
                oldest = min(datetime.fromisoformat(r["at"].replace("Z", "+00:00")) for r in rows)
                if not room and now - oldest < DIGEST_AFTER:
                    continue
            reason = "quiet_hours" if status == "held" else "rate_limit"
            alerts = [r["payload"] for r in rows]
            body = {"type": "soclite.digest", "version": PAYLOAD_VERSION, "user": user.username,
                    "rule": {"id": rule.id, "name": rule.name}, "reason": reason, "count": len(alerts),
                    "text": f"[SOC] {len(alerts)} cảnh báo ({'sau giờ yên lặng' if status == 'held' else 'vượt giới hạn'})",
                    "alerts": alerts}  # fmt: skip
            ids = [r["id"] for r in rows]
            self.rules.mark_digested(ids)
            delivery = self.rules.decide(rule, None, "digest", {"alerts": [a["id"] for a in alerts], "reason": reason},
                                         now)  # fmt: skip
            units = {a.get("unit") for a in alerts}
            self._send(rule, user, body, f"notify-digest:{rule.id}:{ids[0]}:{ids[-1]}",
                       units.pop() if len(units) == 1 else user.unit, alerts, delivery)  # fmt: skip
            sent += 1
        return sent


__all__ = ["DIGEST_AFTER", "PAYLOAD_VERSION", "UserNotifier", "alert_payload", "in_quiet_hours", "short_text"]
