"""The one error root of soclite.

Every error soclite raises on purpose derives from :class:`SocliteError`::

    SocliteError
    ├── ConfigError            invalid configuration (names the file and the key)
    ├── ParseError             input that cannot be parsed (goes to the dead-letter store)
    ├── RuleError              a Sigma rule or pipeline that does not load or compile
    ├── StoreError             a store operation failed; the caller may retry it
    │   ├── SchemaError        the on-disk schema is corrupt or newer than this code knows
    │   ├── NotFoundError      the object asked for does not exist
    │   └── InvalidCursor      a page cursor from another query, or tampered with: the caller's mistake
    ├── JournalError           the ingest journal refused a batch (e.g. disk bound reached)
    ├── AuthError              authentication or authorisation refused
    │   └── LoginRequired      the web UI has no valid session: go to the login page
    ├── RequestError           a request the caller must change: sent again as it is, it fails again
    │   ├── ConflictError      the change conflicts with the current state of what it changes
    │   │   └── BindingConflict  a host name bound to another agent or unit
    │   ├── TriageError        an alert change the lifecycle rules refuse (no close reason, empty comment)
    │   │   └── TransitionConflict  a status change the alert's current status does not allow
    │   ├── UiError            the web UI's error page, with the status it answers
    │   ├── InvalidSavedSearch a saved search that cannot be kept (no name, too long, too many)
    │   ├── TooLarge           an upload over its size limit (413, names the limit)
    │   ├── UnsupportedType    an upload whose content is a refused type (415, names the type found)
    │   └── InvalidTime        a date or time a person typed that cannot be read (names the forms accepted)
    ├── PlaybookError          a playbook that does not validate or an action that failed
    │   ├── TemplateError      a ``{{ field }}`` placeholder naming a field the alert does not have
    │   ├── RetryableError     (playbooks.actions.base) the peer is unavailable: try again later
    │   └── PermanentError     (playbooks.actions.base) the peer refused it: retrying cannot help
    ├── ConnectorError         the national connector or another remote peer failed
    │   └── PinMismatch        (collectors.agent.client) the server certificate is not the pinned one
    ├── IsolationError         (collectors.agent.isolation) isolation could not be applied, verified or released
    ├── ReportError            a report could not be rendered or delivered
    └── ServiceUnavailable     a part this process does not run was asked for (e.g. no engine here)

The four marked with their module live next to the code that raises them (they subclass the
classes here). The HTTP status each answers with is chosen by type, in one table:
:data:`soclite.api.app.ERROR_STATUS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soclite.models import Host


class SocliteError(Exception):
    """Root of every error soclite raises on purpose."""


class ConfigError(SocliteError):
    """Invalid configuration.

    The message names where the value came from (file or environment variable),
    the key and what was expected, so an operator can fix it without reading code.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class _LocatedError(SocliteError):
    """An error about a place in a file: the message starts with ``file:line:``."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = source or ""
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class ParseError(_LocatedError):
    """Input that cannot be turned into an event."""


class RuleError(_LocatedError):
    """A Sigma rule, filter or pipeline that does not load or compile."""


class StoreError(SocliteError):
    """A store operation failed; nothing was half-written and the caller may retry."""


class SchemaError(StoreError):
    """The stored schema is corrupt or newer than this version of soclite knows."""


class NotFoundError(StoreError):
    """The object asked for does not exist (or is outside the caller's scope)."""


class InvalidCursor(StoreError):
    """A page cursor made for another query or sort order, or tampered with: the caller's mistake (400)."""


class JournalError(SocliteError):
    """The ingest journal refused a batch."""



class AuthError(SocliteError):
    """Authentication or authorisation refused."""


class LoginRequired(AuthError):
    """No valid web session: go to the login page, keeping where the user was and what they typed."""

    def __init__(self, next_url: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.fields = fields or {}


class RequestError(SocliteError):
    """A request the caller must change: sent again as it is, it fails again (400 unless more precise).

    ``msgid`` (an English sentence with ``%(name)s`` placeholders) and ``params`` let the web UI say
    the same thing in the reader's language through its catalogs; the API keeps the plain message.
    """

    def __init__(self, message: str = "", *, msgid: str | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.msgid = msgid
        self.params = params or {}


class ConflictError(RequestError):
    """The change conflicts with the current state of what it changes (409)."""


class BindingConflict(ConflictError):
    """The host name is bound to another agent or unit: the caller may not take it over."""

    def __init__(self, host: Host, why: str) -> None:
        super().__init__(why)
        self.host = host
        self.why = why


class TriageError(RequestError):
    """An alert change the lifecycle rules refuse: a close reason missing, an empty comment (422)."""


class TransitionConflict(TriageError):
    """A status change the alert's current status does not allow (409)."""


class UiError(RequestError):
    """The web UI's error page, with the status it answers (403, 404, 409, 422, 503)."""

    def __init__(self, status: int, message: str, *, params: dict[str, str] | None = None) -> None:
        super().__init__(message, msgid=message, params=params)
        self.status = status
        self.message = message

    @classmethod
    def of(cls, status: int, exc: Exception) -> UiError:
        """The page for a RequestError (its msgid and params when it has them) or any other error's text."""
        msgid = getattr(exc, "msgid", None)
        if msgid:
            return cls(status, msgid, params=dict(getattr(exc, "params", {})))
        return cls(status, str(exc))


class InvalidSavedSearch(RequestError):
    """A saved search that cannot be kept: no name, too long, too many for one user (422)."""
class TooLarge(RequestError):
    """An upload (a case attachment) over its configured size limit (413); nothing of it is kept."""


class UnsupportedType(RequestError):
    """An upload whose content (not its name) is a type the site refuses: executables, unknown (415)."""


class InvalidTime(RequestError):
    """A date or datetime (a filter bound, an expiry) that cannot be read (422).

    ``value`` is the text as typed, so the web UI can say it again in the reader's language.
    """

    def __init__(self, message: str, *, value: str = "") -> None:
        super().__init__(
            message,
            msgid="Invalid date or time: %(value)s. Type a date as 07/12/2026 (or pick it), or a date and time.",
            params={"value": value},
        )
        self.value = value


class PlaybookError(SocliteError):
    """A playbook that does not validate, or an action that failed."""


class TemplateError(PlaybookError):
    """A ``{{ field }}`` placeholder names a field the alert does not have."""


class ConnectorError(SocliteError):
    """A remote peer (national system, TAXII server, SMTP, webhook) failed."""


class ReportError(SocliteError):
    """A report could not be rendered or delivered."""


class ServiceUnavailable(SocliteError):
    """A service this process does not run (or has not opened) was asked for."""
