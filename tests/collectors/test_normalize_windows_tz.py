"""NXLog's EventTime has no zone: it is the Windows host's local time, read in the site's zone."""

from __future__ import annotations

from datetime import UTC, datetime

from soclite.collectors.normalize import normalize


def _record() -> dict:
    return {
        "EventTime": "2026-11-23 10:00:00",
        "Hostname": "ws-tc-01",
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "SourceName": "Microsoft-Windows-Sysmon",
        "EventID": 1,
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": "cmd.exe /c whoami",
    }


def test_nxlog_event_time_is_local_time_of_the_site() -> None:
    event = normalize(_record(), received=datetime.now(UTC), input="http", unit=None, agent_id=None,
                      default_tz="Asia/Ho_Chi_Minh")
    assert event["@timestamp"].startswith("2026-11-23T03:00:00")
    utc = normalize(_record(), received=datetime.now(UTC), input="http", unit=None, agent_id=None, default_tz="UTC")
    assert utc["@timestamp"].startswith("2026-11-23T10:00:00")
