"""Per-user alert notifications, as stored: each user's rules, quiet hours and rate limit, and deliveries.

A rule says which alerts (a minimum severity, units inside the user's scope, rule id/title patterns)
go to which channel (an e-mail address, or a webhook URL of a chat or SMS gateway). Every decision the
notifier (:mod:`soclite.playbooks.user_notify`) takes for an alert is one ``notification_deliveries``
row: ``sent`` (handed to the outbox), ``held`` (quiet hours, sent later in a digest), ``dropped``
(quiet hours in "drop" mode), ``limited`` (over the rate limit, sent later in a digest) and
``digested`` (went out in a digest, whose own row is ``digest``). A (rule, alert) pair is decided once.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from soclite.db import Database
from soclite.errors import NotFoundError, RequestError
from soclite.models import isoformat, new_id, utcnow

Channel = Literal["email", "webhook"]
MinSeverity = Literal["low", "medium", "high", "critical"]
QuietMode = Literal["hold", "drop"]
DeliveryStatus = Literal["sent", "held", "dropped", "limited", "digested", "digest"]
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_RULES_PER_USER = 50


class RuleIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=200)
    #: critical is Sigma's level critical; high/medium/low are the report buckets (high includes critical)
    min_severity: MinSeverity = "high"
    #: unit codes (each with its subtree); empty: every unit the user may see
    units: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)
    #: shell-style patterns (``*``, ``?``) on the rule id or title, case-insensitive; empty: every rule
    rule_patterns: list[str] = Field(default_factory=list, max_length=50)
    channel: Channel
    #: an e-mail address (email) or an http(s) URL (webhook)
    target: str = Field(min_length=3, max_length=2000)
    enabled: bool = True

    @field_validator("rule_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        out = [p.strip() for p in value if p.strip()]
        if any(len(p) > 300 for p in out):
            raise ValueError("a rule pattern is at most 300 characters")
        return out

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.channel == "email" and not _EMAIL.match(self.target):
            raise ValueError(f"{self.target!r} is not an e-mail address")
        if self.channel == "webhook" and not re.match(r"^https?://[^\s/]+", self.target):
            raise ValueError("a webhook target is an http:// or https:// URL")
        return self


class Prefs(BaseModel):
    model_config = {"extra": "forbid"}

    #: quiet hours in the site's zone ("22:00" to "06:30"; may cross midnight); both None: none
    quiet_start: str | None = None
    quiet_end: str | None = None
    #: what happens to a non-critical alert in quiet hours: held for a digest when they end, or dropped
    quiet_mode: QuietMode = "hold"
    #: most messages an hour per user (all channels); past it, alerts wait for one digest
    rate_limit_per_hour: int = Field(20, ge=1, le=1000)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet hours need both a start and an end")
        for value in (self.quiet_start, self.quiet_end):
            if value is not None and not _HHMM.match(value):
                raise ValueError(f"{value!r}: quiet hours are HH:MM (24-hour, site time)")
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValueError("quiet hours start and end at the same time")
        return self


class Rule(RuleIn):
    id: str
    user_id: str
    created_at: str


def _rule(row: Any) -> Rule:
    data = dict(row)
    data.pop("signing_secret", None)  # never leaves the repository with the rule (see signing_secret())
    data["units"] = json.loads(data["units"])
    data["rule_patterns"] = json.loads(data["rule_patterns"])
    data["enabled"] = bool(data["enabled"])
    return Rule.model_validate(data)


class NotificationRules:
    """The repository of ``notification_rules``, ``notification_prefs`` and ``notification_deliveries``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- rules ------------------------------------------------------------------------------------
    def rules(self, user_id: str | None = None, *, enabled_only: bool = False) -> list[Rule]:
        sql, args = "SELECT * FROM notification_rules", []
        where = []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if enabled_only:
            where.append("enabled = 1")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_rule(r) for r in self.db.reader().execute(sql + " ORDER BY created_at, id", args).fetchall()]

    def get(self, user_id: str, rule_id: str) -> Rule:
        row = self.db.reader().execute(
            "SELECT * FROM notification_rules WHERE id = ? AND user_id = ?", (rule_id, user_id)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"notification rule {rule_id} not found")
        return _rule(row)

    def add(self, user_id: str, body: RuleIn) -> Rule:
        if len(self.rules(user_id)) >= MAX_RULES_PER_USER:
            raise RequestError(f"at most {MAX_RULES_PER_USER} notification rules per user")
        rule = Rule(id=new_id()[:12], user_id=user_id, created_at=isoformat(utcnow()), **body.model_dump())
        # a webhook rule signs every delivery with its own secret (shown to the user once, at creation)
        secret = "whsec_" + secrets.token_urlsafe(32) if rule.channel == "webhook" else None
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO notification_rules (id, user_id, name, min_severity, units, rule_patterns, channel,"
                " target, enabled, created_at, signing_secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rule.id, user_id, rule.name, rule.min_severity, json.dumps(rule.units), json.dumps(rule.rule_patterns),
                 rule.channel, rule.target, int(rule.enabled), rule.created_at, secret),
            )  # fmt: skip
        return rule

    def signing_secret(self, rule_id: str) -> str | None:
        """The rule's webhook signing secret (None: an e-mail rule, or no such rule any more).

        Kept in the clear in control.db: an HMAC needs the secret itself at every send, and a key to
        encrypt it would sit on the same server. Only the notifier's webhook action and the create
        response read it; no listing, audit entry or outbox row carries it."""
        row = self.db.reader().execute(
            "SELECT signing_secret FROM notification_rules WHERE id = ?", (rule_id,)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def set_enabled(self, user_id: str, rule_id: str, enabled: bool) -> Rule:
        self.get(user_id, rule_id)
        with self.db.write() as conn:
            conn.execute("UPDATE notification_rules SET enabled = ? WHERE id = ?", (int(enabled), rule_id))
        return self.get(user_id, rule_id)

    def delete(self, user_id: str, rule_id: str) -> Rule:
        rule = self.get(user_id, rule_id)
        with self.db.write() as conn:
            conn.execute("DELETE FROM notification_rules WHERE id = ?", (rule_id,))
        return rule

    # --- preferences ------------------------------------------------------------------------------
    def prefs(self, user_id: str) -> Prefs:
        row = self.db.reader().execute("SELECT * FROM notification_prefs WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            return Prefs()
        data = dict(row)
        data.pop("user_id")
        return Prefs.model_validate(data)

    def set_prefs(self, user_id: str, prefs: Prefs) -> Prefs:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO notification_prefs (user_id, quiet_start, quiet_end, quiet_mode, rate_limit_per_hour) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET quiet_start = excluded.quiet_start, "
                "quiet_end = excluded.quiet_end, quiet_mode = excluded.quiet_mode, "
                "rate_limit_per_hour = excluded.rate_limit_per_hour",
                (user_id, prefs.quiet_start, prefs.quiet_end, prefs.quiet_mode, prefs.rate_limit_per_hour),
            )
        return prefs

    # --- deliveries -------------------------------------------------------------------------------
    def decide(self, rule: Rule, alert_id: str | None, status: DeliveryStatus, payload: dict[str, Any],
               at: datetime, action_id: str | None = None) -> int | None:
        """Record a decision; its row id, or None when this (rule, alert) was decided before (nothing recorded)."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO notification_deliveries (user_id, rule_id, alert_id, channel, target, status,"
                " at, payload, action_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rule.user_id, rule.id, alert_id, rule.channel, rule.target, status, isoformat(at),
                 json.dumps(payload, ensure_ascii=False), action_id),
            )  # fmt: skip
        return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid is not None else None

    def sent_as(self, delivery_id: int, action_id: str) -> None:
        """The outbox action that carries a delivery (its status is the delivery's fate)."""
        with self.db.write() as conn:
            conn.execute("UPDATE notification_deliveries SET action_id = ? WHERE id = ?", (action_id, delivery_id))

    def messages_since(self, user_id: str, since: datetime) -> int:
        """Messages sent to the user (single alerts and digests) since ``since``: the rate limit's count."""
        row = self.db.reader().execute(
            "SELECT count(*) FROM notification_deliveries WHERE user_id = ? AND status IN ('sent', 'digest') "
            "AND at >= ?", (user_id, isoformat(since)),
        ).fetchone()  # fmt: skip
        return int(row[0])

    def waiting(self) -> list[dict[str, Any]]:
        """Held and rate-limited decisions not yet sent, oldest first."""
        rows = self.db.reader().execute(
            "SELECT * FROM notification_deliveries WHERE status IN ('held', 'limited') ORDER BY id"
        ).fetchall()
        return [dict(r) | {"payload": json.loads(r["payload"])} for r in rows]

    def mark_digested(self, ids: list[int]) -> None:
        with self.db.write() as conn:
            conn.executemany("UPDATE notification_deliveries SET status = 'digested' WHERE id = ?", [(i,) for i in ids])

    def prune(self, before: datetime) -> int:
        """Forget decisions older than ``before`` whose story is over (sent, dropped, digested, digests);
        held and rate-limited ones still wait for their digest and stay. Returns how many went."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM notification_deliveries WHERE at < ? AND status IN ('sent', 'dropped', 'digested', 'digest')",
                (isoformat(before),),
            )
        return int(cursor.rowcount)

    def recent(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.reader().execute(
            "SELECT id, rule_id, alert_id, channel, target, status, at, action_id FROM notification_deliveries "
            "WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, limit),
        ).fetchall()  # fmt: skip
        return [dict(r) for r in rows]


__all__ = ["NotificationRules", "Prefs", "Rule", "RuleIn"]
