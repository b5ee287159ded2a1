"""The national connector plugin interface and what every adapter shares.

The national protocol is issued to a province at onboarding, so an adapter is one small module:
``send(items)`` (deliver alerts; raise RetryableError when the peer is unavailable, PermanentError when it
refuses an object), ``pull_indicators()`` (IoCs coming back) and ``heartbeat(stats)``. Ordering, retries and
state (last success, backlog, last error) are handled once, here and in the outbox, not in each adapter.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from soclite.models import isoformat, utcnow
from soclite.playbooks.actions.base import PermanentError, RetryableError
from soclite.playbooks.services import need

if TYPE_CHECKING:
    from soclite.playbooks.services import ResponseServices

IocKind = Literal["ip", "domain", "url", "hash"]

#: event keys that carry a person's account name (ECS and Windows native names)
USER_FIELDS = frozenset(
    {
        "user.name",
        "source.user.name",
        "destination.user.name",
        "TargetUserName",
        "SubjectUserName",
        "User",
        "UserName",
        "AccountName",
        "SamAccountName",
        "user",
    }
)


@dataclass
class NationalItem:
    """One alert to deliver; ``key`` is the outbox idempotency key (stable across resends)."""

    action_id: str
    key: str
    alert: dict[str, Any]


@dataclass
class NationalReport:
    """A periodic report sent upward: its metadata, the file's SHA-256 and the file itself."""

    key: str  # outbox idempotency key (stable across resends)
    report_id: str
    doc_number: str
    period: str
    lang: str
    created_at: str
    summary: str
    filename: str
    content_type: str
    sha256: str
    content: bytes
    #: the archived query parameters (period bounds, units, store), so the receiver can see the scope
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PulledIndicator:
    source_id: str
    kind: IocKind
    value: str
    #: False when the peer revoked it or it expired
    active: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class ConnectorOptions(BaseModel):
    """Options every adapter reads from ``settings.national`` (extra keys belong to other adapters)."""

    model_config = ConfigDict(extra="ignore")


def pseudonym(name: str, key: bytes) -> str:
    """A stable pseudonym: the same account maps to the same token, without revealing the name."""
    digest = hmac.new(key, name.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()
    return f"pseud-{digest[:20]}"


def minimize(alert: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """Keep personal data to the minimum: pseudonymize account names and drop the raw record, which
    would carry them in clear text. ``key`` None = pseudonymization off (alert returned unchanged)."""
    if key is None:
        return alert
    out = dict(alert)
    event = dict(out.get("event") or {})
    for name in list(event):
        if name in USER_FIELDS and isinstance(event[name], str) and event[name]:
            event[name] = pseudonym(event[name], key)
    event.pop("event.original", None)
    out["event"] = event
    return out


class Connector:
    """Base of the adapters. ``deliver`` wraps ``send`` with state keeping (used by national_sync)."""

    name: ClassVar[str]
    options: ClassVar[type[ConnectorOptions]]

    def __init__(self, runtime: ResponseServices) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.opts = self.options.model_validate(runtime.settings.national.model_dump())

    # --- the plugin interface ---------------------------------------------------------------------
    def send(self, items: list[NationalItem]) -> str:
        raise NotImplementedError

    def send_report(self, report: NationalReport) -> str:
        """Deliver a periodic report (metadata, SHA-256 and the file); adapters that cannot, refuse it."""
        raise PermanentError(f"the {self.name} connector cannot carry reports")

    def pull_indicators(self, cursor: str | None) -> tuple[list[PulledIndicator], str | None]:
        """Indicators added since ``cursor``; returns them and the new cursor."""
        return [], cursor

    def heartbeat(self, stats: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------
    def pseudonym_key(self) -> bytes | None:
        national = self.settings.national
        if not national.pseudonymize_users:
            return None
        secret = national.hmac_secret or self.settings.auth.secret_key
        return secret.get_secret_value().encode("utf-8")

    def prepare(self, item: NationalItem) -> dict[str, Any]:
        return minimize(item.alert, self.pseudonym_key())

    def deliver(self, item: NationalItem) -> str:
        return self._tracked(lambda: self.send([item]))

    def deliver_report(self, report: NationalReport) -> str:
        """``send_report`` with the same state keeping as alerts (a report counts as one message sent)."""
        return self._tracked(lambda: self.send_report(report))

    def _tracked(self, send: Callable[[], str]) -> str:
        outbox = need(self.runtime.outbox, "the outbox")
        try:
            result = send()
        except RetryableError as exc:
            outbox.connector_update(self.name, last_error=str(exc)[:500], last_error_at=isoformat(utcnow()))
            raise
        except PermanentError as exc:
            outbox.connector_update(
                self.name,
                last_error=f"refused: {exc}"[:500],
                last_error_at=isoformat(utcnow()),
                reachable=True,
            )
            raise
        outbox.connector_update(self.name, last_success=isoformat(utcnow()), sent_increment=1)
        return result

    def stats(self) -> dict[str, Any]:
        state = need(self.runtime.outbox, "the outbox").connector_status(self.name)
        return {
            "province": self.settings.province,
            "sent": state.sent,
            "backlog": state.backlog,
            "dead": state.dead,
            "last_success": state.last_success,
            "at": isoformat(utcnow()),
        }
