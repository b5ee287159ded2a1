"""What a parser sees and returns: one :class:`LogLine` in, a partial event (or None: not mine) out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from soclite.models import Event


@dataclass(frozen=True)
class LogLine:
    """A message after syslog framing: the text plus what the header (or the agent) said about it."""

    message: str
    #: the syslog APP-NAME / TAG, lower-cased (None for a plain file line)
    program: str | None = None
    hostname: str | None = None
    timestamp: datetime | None = None
    #: the file the agent read it from (log.file.path), a hint for formats without a tag
    path: str | None = None


class Parser(Protocol):
    """A message parser. ``parse`` returns the fields it recognised (including ``logsource.*``) or None.

    It must never raise anything but :class:`~soclite.errors.ParseError`; the fuzz tests hold it to that.
    """

    name: str

    def parse(self, line: LogLine) -> Event | None: ...
