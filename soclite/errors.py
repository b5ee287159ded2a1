"""The one error root of soclite.

Every error soclite raises on purpose derives from :class:`SocliteError`::

    SocliteError
    ├── ConfigError        invalid configuration (names the file and the key)
    ├── ParseError         input that cannot be parsed (goes to the dead-letter store)
    ├── RuleError          a Sigma rule or pipeline that does not load or compile
    ├── StoreError         a store operation failed; the caller may retry it
    │   ├── SchemaError    the on-disk schema is corrupt or newer than this code knows
    │   └── NotFoundError  the object asked for does not exist
    ├── JournalError       the ingest journal refused a batch (e.g. disk bound reached)
    ├── ConflictError      a change refused by the object's state or rules (``invalid``: wrong in itself)
    ├── AuthError          authentication or authorisation refused
    ├── PlaybookError      a playbook that does not validate or an action that failed
    ├── ConnectorError     the national connector or another remote peer failed
    └── ReportError        a report could not be rendered or delivered
"""

from __future__ import annotations


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


class JournalError(SocliteError):
    """The ingest journal refused a batch."""


class ConflictError(SocliteError):
    """A change refused by the current state of the object or the rules it follows.

    E.g. an alert status transition the lifecycle does not allow. ``invalid`` marks a change that
    is wrong in itself whatever the state (an empty comment, a missing close reason): HTTP answers
    those 422 and the others 409.
    """

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


class AuthError(SocliteError):
    """Authentication or authorisation refused."""


class PlaybookError(SocliteError):
    """A playbook that does not validate, or an action that failed."""


class ConnectorError(SocliteError):
    """A remote peer (national system, TAXII server, SMTP, webhook) failed."""


class ReportError(SocliteError):
    """A report could not be rendered or delivered."""
