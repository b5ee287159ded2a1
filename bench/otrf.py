"""What the correlator benches take from the shared OTRF file, with no soclite import: the SigmaHQ rules
they load and the event subsets they time apart (bench/correlator.py, bench/correlator_ab.py, whose
workers import another checkout's soclite)."""

from __future__ import annotations

from typing import Any

import orjson


def windows_only(doc: dict[str, Any]) -> bool:
    """A rule document of ``logsource: product: windows``."""
    logsource = doc.get("logsource") or {}
    return isinstance(logsource, dict) and logsource.get("product") == "windows"


def add_to_subsets(line: bytes, proc: list[bytes], script: list[bytes]) -> None:
    """``line`` into ``proc`` if it is a process creation (Sysmon 1, Security 4688), into ``script`` if
    a PowerShell script block (4104); a cheap byte test first, as most lines are neither."""
    if not (b'"EventID":1,' in line or b'"EventID":4688' in line or b'"EventID":4104' in line):
        return
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return
    if isinstance(rec, dict):
        eid = rec.get("EventID")
        channel = str(rec.get("Channel", "")).lower()
        if (eid == 1 and "sysmon" in channel) or (eid == 4688 and channel == "security"):
            proc.append(line)
        elif eid == 4104:
            script.append(line)
