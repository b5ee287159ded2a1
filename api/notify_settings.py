"""A user's own alert notifications, as the API and the web UI call them (``/api/v1/me/notifications``
and the page ``/account/notifications``): rules, quiet hours, rate limit and the recent deliveries.

Rules belong to a user account: a web session's user, or the user a personal token is named after.
A rule may only name units inside the caller's scope (the notifier checks the scope again for each
alert, so a user moved to another unit stops hearing about the old one). Every change is audited.
"""

from __future__ import annotations

from typing import Any

from soclite.api import audit
from soclite.api.deps import scope_of
from soclite.control.identity import Principal, User
from soclite.control.notify_rules import Prefs, Rule, RuleIn
from soclite.errors import AuthError, NotFoundError
from soclite.runtime import Runtime


def owner(runtime: Runtime, principal: Principal) -> User:
    """The user account whose notifications the caller manages."""
    user = runtime.users.get(principal.id) if principal.kind == "session" else runtime.users.get_by_name(principal.name)
    if user is None or user.disabled:
        raise AuthError("notifications belong to a user account: log in, or use a personal token named after the user")
    return user


def overview(runtime: Runtime, principal: Principal) -> dict[str, Any]:
    user = owner(runtime, principal)
    repo = runtime.notification_rules
    recent = repo.recent(user.id)
    for row in recent:  # the fate of each message is its outbox action's: a failure shows here too
        row["delivery"] = None
        if row.get("action_id"):
            try:
                action = runtime.outbox.get(row["action_id"])
            except NotFoundError:  # pruned from the outbox
                continue
            row["delivery"] = {"status": action.status.value, "error": action.last_error}
    return {"user": user.username, "settings": repo.prefs(user.id).model_dump(),
            "rules": [r.model_dump() for r in repo.rules(user.id)], "recent": recent,
            "timezone": runtime.settings.timezone}  # fmt: skip


def add_rule(runtime: Runtime, principal: Principal, body: RuleIn) -> Rule:
    user = owner(runtime, principal)
    scope = scope_of(runtime, principal)
    outside = [u for u in body.units if scope is not None and u not in scope]
    known = {u.code for u in runtime.store.list_units()}
    unknown = [u for u in body.units if u not in known]
    if outside or unknown:
        raise NotFoundError(f"unit {(outside or unknown)[0]} not found")
    rule = runtime.notification_rules.add(user.id, body)
    audit.record(runtime, principal, "notification_rule.create", f"user:{user.username}", None, rule.model_dump(),
                 user.unit)  # fmt: skip
    return rule


def set_enabled(runtime: Runtime, principal: Principal, rule_id: str, enabled: bool) -> Rule:
    user = owner(runtime, principal)
    before = runtime.notification_rules.get(user.id, rule_id)
    rule = runtime.notification_rules.set_enabled(user.id, rule_id, enabled)
    audit.record(runtime, principal, "notification_rule.update", f"user:{user.username}",
                 {"id": rule_id, "enabled": before.enabled}, {"id": rule_id, "enabled": enabled}, user.unit)  # fmt: skip
    return rule


def delete_rule(runtime: Runtime, principal: Principal, rule_id: str) -> Rule:
    user = owner(runtime, principal)
    rule = runtime.notification_rules.delete(user.id, rule_id)
    audit.record(runtime, principal, "notification_rule.delete", f"user:{user.username}", rule.model_dump(), None,
                 user.unit)  # fmt: skip
    return rule


def set_prefs(runtime: Runtime, principal: Principal, prefs: Prefs) -> Prefs:
    user = owner(runtime, principal)
    before = runtime.notification_rules.prefs(user.id)
    after = runtime.notification_rules.set_prefs(user.id, prefs)
    audit.record(runtime, principal, "notification_settings.update", f"user:{user.username}", before.model_dump(),
                 after.model_dump(), user.unit)  # fmt: skip
    return after
