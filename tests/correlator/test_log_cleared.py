"""Event 104 ("log cleared"): logged to System, naming the cleared log in a UserData field also called Channel.

Each input format must route it as a System event (so the ``service: system`` rules see it) while the
rules read ``Channel`` as the cleared log's name, as SigmaHQ's rules expect:

* "Important Windows Eventlog Cleared" (100ef69e) fires for the core logs (Security, System, PowerShell ...);
* "Eventlog Cleared" (a62b37e0) fires for every other log and leaves those to 100ef69e.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from soclite.collectors.agent.wineventlog import parse_events
from soclite.collectors.normalize import normalize
from soclite.collectors.windows import flatten_xml_json, from_json_record
from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_paths
from soclite.correlator.logsource import LogKey, key_of
from soclite.models import SYSTEM_CHANNEL, Event, utcnow
from tests.correlator.regression import SIGMA

IMPORTANT = "100ef69e-3327-481c-8e5c-6d80d9507556"
GENERIC = "a62b37e0-45d3-48d9-a517-90c1a1b0186b"
AUDIT_LOG_CLEARED = "d99b79d2-0a6f-4f46-ad8b-260b6e17f982"  # Security 1102
RULES = (
    "rules/windows/builtin/system/microsoft_windows_eventlog/win_system_eventlog_cleared.yml",
    "rules/windows/builtin/system/microsoft_windows_eventlog/win_system_susp_eventlog_cleared.yml",
    "rules/windows/builtin/security/win_security_audit_log_cleared.yml",
)

#: cleared log → the rule that must fire (and only it)
CLEARED = {
    "System": IMPORTANT,
    "Security": IMPORTANT,
    "Microsoft-Windows-PowerShell/Operational": IMPORTANT,
    "Windows PowerShell": IMPORTANT,
    "Microsoft-Windows-Sysmon/Operational": IMPORTANT,
    "Application": GENERIC,
    "Microsoft-Windows-TaskScheduler/Operational": GENERIC,
    "Microsoft-Windows-Kernel-IO/Operational": GENERIC,
}
PROVIDER = "Microsoft-Windows-Eventlog"
GUID = "{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"


def evtx_json(cleared: str) -> Event:
    """What the evtx crate gives for a 104 record (as read by iter_evtx)."""
    return flatten_xml_json(
        {
            "Event": {
                "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
                "System": {
                    "Provider": {"#attributes": {"Name": PROVIDER, "Guid": GUID}},
                    "EventID": 104,
                    "Version": 0,
                    "Level": 4,
                    "Task": 104,
                    "Opcode": 0,
                    "Keywords": "0x8000000000000000",
                    "TimeCreated": {"#attributes": {"SystemTime": "2026-11-23T03:04:05.123456Z"}},
                    "EventRecordID": 4242,
                    "Correlation": None,
                    "Execution": {"#attributes": {"ProcessID": 1368, "ThreadID": 9312}},
                    "Channel": "System",
                    "Computer": "WS-017.corp.local",
                    "Security": {"#attributes": {"UserID": "S-1-5-21-1-2-3-500"}},
                },
                "UserData": {
                    "LogFileCleared": {
                        "#attributes": {
                            "xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"
                        },
                        "SubjectUserName": "admin",
                        "SubjectDomainName": "CORP",
                        "Channel": cleared,
                        "BackupPath": None,
                    }
                },
            }
        }
    )


def wevtutil_xml(cleared: str) -> Event:
    text = (
        "<Events><Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name='{PROVIDER}' Guid='{GUID}'/><EventID>104</EventID><Version>0</Version>"
        "<Level>4</Level><Task>104</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
        "<TimeCreated SystemTime='2026-11-23T03:04:05.1234560Z'/><EventRecordID>4242</EventRecordID>"
        "<Correlation/><Execution ProcessID='1368' ThreadID='9312'/><Channel>System</Channel>"
        "<Computer>WS-017.corp.local</Computer><Security UserID='S-1-5-21-1-2-3-500'/></System><UserData>"
        "<LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>"
        "<SubjectUserName>admin</SubjectUserName><SubjectDomainName>CORP</SubjectDomainName>"
        f"<Channel>{cleared}</Channel><BackupPath></BackupPath></LogFileCleared></UserData></Event></Events>"
    )
    (record,) = parse_events(text)
    return from_json_record(record)


def _nxlog_base() -> dict[str, Any]:
    return {
        "EventTime": "2026-11-23 10:04:05",
        "Hostname": "WS-017.corp.local",
        "Keywords": "0x8000000000000000",
        "EventType": "INFO",
        "SeverityValue": 2,
        "Severity": "INFO",
        "EventID": 104,
        "SourceName": PROVIDER,
        "ProviderGuid": GUID,
        "Version": 0,
        "Task": 104,
        "RecordNumber": 4242,
        "ProcessID": 1368,
        "ThreadID": 9312,
        "SubjectUserName": "admin",
        "SubjectDomainName": "CORP",
        "SourceModuleName": "eventlog",
        "SourceModuleType": "im_msvistalog",
    }


def nxlog_data_wins(cleared: str) -> Event:
    """NXLog's one flat object: the UserData Channel replaced the System one."""
    return from_json_record({**_nxlog_base(), "Channel": cleared, "Message": "The log file was cleared."})


def nxlog_message_only(cleared: str) -> Event:
    """NXLog as in the OTRF data: Channel is System's, the cleared log is named in the Message only."""
    message = f"The {cleared} log file was cleared."
    return from_json_record({**_nxlog_base(), "Channel": "System", "Message": message})


def winlogbeat(cleared: str) -> Event:
    return from_json_record(
        {
            "@timestamp": "2026-11-23T03:04:05.123Z",
            "message": f"The {cleared} log file was cleared.",
            "winlog": {
                "channel": "System",
                "event_id": "104",
                "provider_name": PROVIDER,
                "provider_guid": GUID,
                "computer_name": "WS-017.corp.local",
                "record_id": 4242,
                "task": "Log clear",
                "user_data": {"SubjectUserName": "admin", "Channel": cleared, "xml_name": "LogFileCleared"},
            },
        }
    )


def ingest(cleared: str) -> Event:
    """The server's ingest path (normalize) for a Winlogbeat record."""
    record = {
        "winlog": {
            "channel": "System",
            "event_id": 104,
            "provider_name": PROVIDER,
            "computer_name": "WS-017.corp.local",
            "record_id": 4242,
            "user_data": {"Channel": cleared},
        },
        "@timestamp": "2026-11-23T03:04:05.123Z",
    }
    return normalize(record, received=utcnow(), input="http", unit=None, agent_id=None, default_tz="UTC")


FORMATS: dict[str, Callable[[str], Event]] = {
    "evtx": evtx_json,
    "wevtutil-xml": wevtutil_xml,
    "nxlog": nxlog_data_wins,
    "nxlog-message": nxlog_message_only,
    "winlogbeat": winlogbeat,
    "ingest": ingest,
}


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    if not SIGMA.exists():
        pytest.skip("../shared/sigma is not available")
    rs = load_paths([SIGMA / r for r in RULES])
    assert not rs.failures and len(rs.rules) == 3
    return rs


@pytest.mark.parametrize("cleared", list(CLEARED))
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_log_cleared_routes_to_system_and_fires_the_right_rule(
    ruleset: RuleSet, fmt: str, cleared: str
) -> None:
    event = FORMATS[fmt](cleared)
    # rules read the cleared log's name; routing, host and record id come from System
    assert event["Channel"] == cleared
    assert event.get(SYSTEM_CHANNEL, event["Channel"]) == "System"
    assert key_of(event) == LogKey("windows", "system", ())
    assert event["host.name"] == "WS-017.corp.local"
    assert event["EventID"] == 104 and event["Provider_Name"] == PROVIDER
    indexed = Engine(ruleset)
    exhaustive = Engine(ruleset, indexed=False)
    fired = [r.id for r in indexed.match(dict(event))]
    assert fired == [CLEARED[cleared]]
    assert [r.id for r in exhaustive.match(dict(event))] == fired


def test_security_1102_has_no_collision_and_fires(ruleset: RuleSet) -> None:
    text = (
        "<Events><Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name='{PROVIDER}' Guid='{GUID}'/><EventID>1102</EventID>"
        "<TimeCreated SystemTime='2026-11-23T03:04:05.6789012Z'/><EventRecordID>88</EventRecordID>"
        "<Channel>Security</Channel><Computer>WS-017</Computer></System><UserData>"
        "<LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>"
        "<SubjectUserName>admin</SubjectUserName></LogFileCleared></UserData></Event></Events>"
    )
    (record,) = parse_events(text)
    event = from_json_record(record)
    assert event["Channel"] == "Security" and SYSTEM_CHANNEL not in event
    assert [r.id for r in Engine(ruleset).match(event)] == [AUDIT_LOG_CLEARED]
