"""ClamAV detections (clamd, clamonacc and clamscan print the same "PATH: SIGNATURE FOUND") → ``category: antivirus``.

Windows Defender detections (EventID 1116/1117) come through the Windows parser and
are mapped by :func:`defender_fields`. Field names: Signature and Filename (SigmaHQ
antivirus rules), threat.name and file.path (ECS).
"""

from __future__ import annotations

import re
from typing import Any

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event, system_field

_FOUND = re.compile(r"^(?:(?:ScanOnAccess|OnAccess\w*): )?(?P<path>.+?): (?P<sig>\S+?)(?:\((?P<hash>[0-9a-f]{32}):\d+\))? FOUND\s*$")
DEFENDER_CHANNEL = "Microsoft-Windows-Windows Defender/Operational"


def _av(signature: str, path: str) -> Event:
    return {
        "logsource.category": "antivirus",
        "event.category": "malware",
        "event.action": "detected",
        "Signature": signature,
        "threat.name": signature,
        "Filename": path,
        "file.path": path,
    }


class ClamavParser:
    name = "clamav"

    def parse(self, line: LogLine) -> Event | None:
        if not line.message.endswith(("FOUND", "FOUND ")):
            return None
        match = _FOUND.match(line.message)
        if match is None:
            return None
        event = _av(match["sig"], match["path"])
        event["logsource.product"] = "clamav"
        event["observer.product"] = line.program or "clamscan"
        if match["hash"]:
            event["file.hash.md5"] = match["hash"]
        return event


def defender_fields(event: dict[str, Any]) -> None:
    """Add antivirus log-source fields to a Windows Defender 1116/1117 event (in place)."""
    try:
        event_id = int(system_field(event, "EventID") or 0)
    except (TypeError, ValueError):
        return
    if system_field(event, "Channel") != DEFENDER_CHANNEL or event_id not in (1116, 1117):
        return
    signature = str(event.get("Threat Name") or event.get("ThreatName") or "")
    path = str(event.get("Path") or "")
    # Defender writes "file:_C:\\path" (and several resources joined by ";").
    path = path.split(";")[0].removeprefix("file:_").removeprefix("containerfile:_")
    event.update(_av(signature, path))
    event["logsource.product"] = "windows"
    event["event.action"] = "detected" if event_id == 1116 else "remediated"
