"""The agent's own configuration: a YAML file validated by one pydantic model.

It is separate from the server's :class:`soclite.config.Settings` because an
endpoint has none of the server's concerns (and must stay light to import).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from soclite.collectors.agent.scan import ScanOptions
from soclite.errors import ConfigError


class FileInput(BaseModel):
    """A log file to tail."""

    model_config = {"extra": "forbid"}

    path: Path
    #: a hint for the server's parser registry (e.g. "auth", "nginx"); sent as ``log.parser``.
    parser: str | None = None
    #: where to start on a file never seen before: the whole file, or only new lines.
    start_at: Literal["beginning", "end"] = "beginning"


class WindowsEventLogInput(BaseModel):
    """A Windows event-log channel read with ``wevtutil qe`` (see collectors.agent.wineventlog)."""

    model_config = {"extra": "forbid"}

    channel: str = Field(min_length=1, max_length=255)
    #: an Event Log XPath filter: ``*`` (everything) or ``*[...]``; combined with the bookmark.
    query: str = "*"
    #: where to start on a channel never read before: its oldest record, or only new records
    #: (the default: 2,500 workstations replaying whole Security logs would flood the server).
    start_at: Literal["beginning", "end"] = "end"

    @field_validator("channel")
    @classmethod
    def _plain_channel(cls, value: str) -> str:
        if any(c in value for c in '"\r\n\x00'):
            raise ValueError("a channel name cannot contain quotes, NUL or line breaks")
        if value[0] in "/-":
            # wevtutil would read it as one of its own options
            raise ValueError("a channel name cannot start with '/' or '-'")
        return value

    @field_validator("query")
    @classmethod
    def _xpath_shape(cls, value: str) -> str:
        text = value.strip()
        if text != "*" and not (text.startswith("*[") and text.endswith("]")):
            raise ValueError("must be '*' or an Event Log XPath filter of the form '*[...]'")
        if any(c in text for c in '"\r\n\x00'):
            raise ValueError(
                "use single quotes inside the query; double quotes and line breaks are not allowed"
            )
        if not _balanced(text):
            # An unbalanced filter such as "*[1) or (1]" would escape the bookmark condition it is joined to.
            raise ValueError("brackets and parentheses in the query must balance")
        return text


def _balanced(text: str) -> bool:
    """Brackets and parentheses nest properly outside single-quoted strings."""
    closing = {")": "(", "]": "["}
    stack: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([":
            stack.append(char)
        elif char in closing and (not stack or stack.pop() != closing[char]):
            return False
    return not stack and not quoted


#: channels read by default on a Windows agent (empty elsewhere: there is no event log to read).
WINDOWS_DEFAULT_CHANNELS = (
    "Security",
    "System",
    "Microsoft-Windows-Sysmon/Operational",
    "Microsoft-Windows-PowerShell/Operational",
    "Microsoft-Windows-Windows Defender/Operational",
)


def default_windows_event_logs(platform: str = sys.platform) -> list[WindowsEventLogInput]:
    if platform != "win32":
        return []
    return [WindowsEventLogInput(channel=name) for name in WINDOWS_DEFAULT_CHANNELS]


class IsolationOptions(BaseModel):
    model_config = {"extra": "forbid"}

    #: address(es) of the manager allowed through isolation; default: resolved from the server URL.
    manager_addresses: list[str] = Field(default_factory=list)
    #: the manager's TCP port; default: the server URL's port.
    manager_port: int | None = Field(None, ge=1, le=65535)
    #: a DNS resolver the host may still query while isolated (UDP and TCP 53).
    dns_resolver: str | None = None


class AgentConfig(BaseModel):
    """Everything an operator can tune on an endpoint."""

    model_config = {"extra": "forbid"}

    files: list[FileInput] = Field(default_factory=list)
    journald: bool = False
    #: Windows event-log channels (default: the five above on Windows, none elsewhere).
    windows_event_logs: list[WindowsEventLogInput] = Field(default_factory=default_windows_event_logs)
    #: how often each channel is queried (every query starts a ``wevtutil`` process).
    windows_poll_interval: float = Field(5.0, gt=0, le=3600)
    #: host type reported to the inventory.
    host_type: Literal["server", "workstation"] = "workstation"
    #: most lines per batch.
    batch_size: int = Field(500, ge=1, le=50_000)
    #: a partial batch is shipped after this many seconds.
    flush_interval: float = Field(1.0, gt=0, le=300)
    #: how often files are polled for new lines.
    poll_interval: float = Field(0.25, gt=0, le=60)
    #: disk bound of the spool (gzip bodies); the oldest batches are evicted only at this bound.
    spool_max_bytes: int = Field(256 * 1024 * 1024, ge=64 * 1024)
    #: a line longer than this is cut (and flagged) so one runaway line cannot wedge a batch.
    max_line_bytes: int = Field(65536, ge=256)
    #: PEM bundle of the CA that signed the server certificate (default: the system store).
    ca_file: Path | None = None
    #: sha256 (hex, colons allowed) of the server certificate (DER); checked before anything is sent.
    ca_pin_sha256: str | None = None
    heartbeat_interval: float = Field(30.0, gt=0)
    command_poll_interval: float = Field(10.0, gt=0)
    #: first retry delay after a failed send; doubles up to backoff_max.
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(60.0, gt=0)
    request_timeout: float = Field(30.0, gt=0)
    isolation: IsolationOptions = Field(default_factory=IsolationOptions)
    #: the on-demand malware scan (ClamAV): engine, signature database, timeout
    scan: ScanOptions = Field(default_factory=ScanOptions)

    @field_validator("ca_pin_sha256")
    @classmethod
    def _normalise_pin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        clean = value.replace(":", "").strip().lower()
        if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
            raise ValueError("must be the 64 hex digits of a SHA-256 digest")
        return clean


def load_agent_config(path: Path | None) -> AgentConfig:
    """Read and validate the agent YAML; errors name the file and the key."""
    if path is None:
        return AgentConfig()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read agent configuration: {exc.strerror}", source=source) from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", source=where) from exc
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", source=source)
    try:
        return AgentConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(first["msg"], source=source, key=key) from exc
