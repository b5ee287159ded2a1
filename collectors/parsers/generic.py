"""The fallback: any syslog line is an event of ``product: linux`` with its program as ``process.name``."""

from __future__ import annotations

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event


class GenericSyslogParser:
    name = "syslog"

    def parse(self, line: LogLine) -> Event | None:
        event: Event = {"message": line.message}
        if line.program:
            event["process.name"] = line.program
            event["logsource.product"] = "linux"
            event["logsource.service"] = "syslog"
        return event
