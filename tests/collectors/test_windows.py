"""Windows records (EVTX, NXLog, Winlogbeat, XML-JSON) → one flat event shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from soclite.collectors.windows import flatten_xml_json, from_json_record, iter_evtx, parse_json_line
from soclite.errors import ParseError

SIGMA = Path(__file__).resolve().parents[3] / "shared" / "sigma"


def test_iter_evtx_flattens_system_and_eventdata() -> None:
    files = sorted((SIGMA / "regression_data").rglob("*.evtx"))
    if not files:
        pytest.skip("../shared/sigma regression data not available")
    events = list(iter_evtx(files[0]))
    assert events
    ev = events[0]
    for key in (
        "EventID",
        "Channel",
        "Computer",
        "Provider_Name",
        "EventRecordID",
        "@timestamp",
        "host.name",
    ):
        assert key in ev, key
    assert isinstance(ev["EventID"], int)
    assert ev["host.name"] == ev["Computer"]
    assert ev["@timestamp"].endswith("Z")


def test_evtx_defender_field_names_lose_spaces() -> None:
    files = list((SIGMA / "regression_data").rglob("*tiering_engine_detected_as_eicar*/*.evtx"))
    if not files:
        pytest.skip("regression file not available")
    ev = next(iter_evtx(files[0]))
    assert ev["ThreatName"].endswith("EICAR_Test_File") and "Threat Name" not in ev


def test_xml_json_with_unnamed_data_and_userdata() -> None:
    record = {
        "Event": {
            "System": {
                "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7045},
                "Channel": "System",
                "Computer": "srv1",
                "TimeCreated": {"#attributes": {"SystemTime": "2026-01-02T03:04:05.678Z"}},
            },
            "UserData": {"LogFileCleared": {"SubjectUserName": "bob"}},
        }
    }
    ev = flatten_xml_json(record)
    assert ev["EventID"] == 7045 and ev["SubjectUserName"] == "bob"
    assert ev["@timestamp"] == "2026-01-02T03:04:05.678Z"
    unnamed = flatten_xml_json(
        {
            "Event": {
                "System": {"EventID": 800, "Channel": "Windows PowerShell"},
                "EventData": {"Data": ["a", "b"]},
            }
        }
    )
    assert unnamed["Data"] == "a\nb"


def test_nxlog_record() -> None:
    ev = from_json_record(
        {
            "EventID": "4688",
            "Channel": "Security",
            "Hostname": "WS1.corp",
            "SourceName": "X",
            "RecordNumber": 9,
            "EventTime": "2020-06-09 22:50:54",
            "NewProcessName": "c:\\a.exe",
        }
    )
    assert ev["EventID"] == 4688 and ev["Computer"] == "WS1.corp" and ev["host.name"] == "WS1.corp"
    assert ev["EventRecordID"] == 9 and ev["Provider_Name"] == "X"
    assert ev["@timestamp"] == "2020-06-09T22:50:54.000Z"


def test_winlogbeat_record() -> None:
    ev = from_json_record(
        {
            "@timestamp": "2024-01-01T00:00:00.000Z",
            "message": "m",
            "winlog": {
                "event_id": "1",
                "channel": "Microsoft-Windows-Sysmon/Operational",
                "computer_name": "pc9",
                "provider_name": "Microsoft-Windows-Sysmon",
                "record_id": 5,
                "event_data": {"Image": "c:\\x.exe"},
            },
        }
    )
    assert (ev["EventID"], ev["Channel"], ev["Image"], ev["host.name"]) == (
        1,
        "Microsoft-Windows-Sysmon/Operational",
        "c:\\x.exe",
        "pc9",
    )


def test_parse_json_line_errors_name_the_line() -> None:
    with pytest.raises(ParseError, match=r"f\.jsonl:7"):
        parse_json_line(b"{broken", source="f.jsonl", lineno=7)
    with pytest.raises(ParseError):
        parse_json_line(b"[1, 2]")


NXLOG_SYSMON = {
    "EventID": 1,
    "Channel": "Microsoft-Windows-Sysmon/Operational",
    "Hostname": "WS1",
    "EventTime": "2026-11-23 10:00:00",
    "Image": "c:\\a.exe",
}


def test_nxlog_event_time_is_local_time_of_the_site() -> None:
    ev = from_json_record(dict(NXLOG_SYSMON), default_tz="Asia/Ho_Chi_Minh")
    assert ev["@timestamp"] == "2026-11-23T03:00:00.000Z"
    assert from_json_record(dict(NXLOG_SYSMON))["@timestamp"] == "2026-11-23T10:00:00.000Z"  # UTC default
    line = parse_json_line(
        b'{"EventID": 4624, "Channel": "Security", "EventTime": "2026-07-01 12:30:00"}',
        default_tz="Europe/Berlin",  # summer time: +02:00
    )
    assert line["@timestamp"] == "2026-07-01T10:30:00.000Z"


def test_nxlog_zoned_times_win_over_default_zone() -> None:
    # a zoned EventReceivedTime names the NXLog host's offset: EventTime is read in it
    ev = from_json_record(
        {**NXLOG_SYSMON, "EventReceivedTime": "2026-11-23T10:00:02+02:00"}, default_tz="Asia/Ho_Chi_Minh"
    )
    assert ev["@timestamp"] == "2026-11-23T08:00:00.000Z"
    # a zoned EventTime (NXLog ISO 8601 output) is taken as it is
    ev = from_json_record({**NXLOG_SYSMON, "EventTime": "2026-11-23T10:00:00-05:00"}, default_tz="UTC")
    assert ev["@timestamp"] == "2026-11-23T15:00:00.000Z"
    # the record's own @timestamp (Logstash, UTC) is kept
    ev = from_json_record({**NXLOG_SYSMON, "@timestamp": "2026-11-23T02:59:59.000Z"}, default_tz="UTC")
    assert ev["@timestamp"] == "2026-11-23T02:59:59.000Z"
    # Sysmon's UtcTime is UTC without a zone, more precise than EventTime
    ev = from_json_record(
        {**NXLOG_SYSMON, "UtcTime": "2026-11-23 03:00:00.250"}, default_tz="Asia/Ho_Chi_Minh"
    )
    assert ev["@timestamp"] == "2026-11-23T03:00:00.250Z"
    # only a zone-less reception time: the site's zone
    ev = from_json_record(
        {"EventID": 4624, "Channel": "Security", "EventReceivedTime": "2026-11-23 10:00:05"},
        default_tz="Asia/Ho_Chi_Minh",
    )
    assert ev["@timestamp"] == "2026-11-23T03:00:05.000Z"


def test_winlogbeat_timestamp_is_utc_whatever_the_default_zone() -> None:
    ev = from_json_record(
        {
            "@timestamp": "2026-11-23T03:00:00.000Z",
            "winlog": {"event_id": 4624, "channel": "Security", "computer_name": "dc1"},
        },
        default_tz="Asia/Ho_Chi_Minh",
    )
    assert ev["@timestamp"] == "2026-11-23T03:00:00.000Z"


def test_unknown_default_zone_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="Mars/Olympus"):
        from_json_record(dict(NXLOG_SYSMON), default_tz="Mars/Olympus")


def test_out_of_range_local_time_falls_back_instead_of_raising() -> None:
    """Year 1 at +07:00 is before year 1 in UTC: the next time field is used, the record is not lost."""
    rec = {"EventID": 4624, "Channel": "Security", "EventTime": "0001-01-01 00:00:00"}
    assert "@timestamp" not in from_json_record(dict(rec), default_tz="Asia/Ho_Chi_Minh")
    rec["EventReceivedTime"] = "2026-01-01 00:00:00"
    assert from_json_record(rec, default_tz="Asia/Ho_Chi_Minh")["@timestamp"] == "2025-12-31T17:00:00.000Z"


def test_data_field_shadowing_a_system_field_keeps_both() -> None:
    """A data field named like a System field takes the plain name (as SigmaHQ rules read it); the System
    value stays under System_<name> and is what host.name, @timestamp and routing use."""
    record = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Eventlog"}},
                "EventID": 104,
                "Channel": "System",
                "Computer": "srv1.corp",
                "EventRecordID": 7,
                "TimeCreated": {"#attributes": {"SystemTime": "2026-01-02T03:04:05.678Z"}},
            },
            "UserData": {
                "Vendor": {
                    "Channel": "Application",
                    "Computer": "elsewhere",
                    "EventRecordID": 99,
                    "TimeCreated": "1999-01-01T00:00:00Z",
                    "Provider_Name": "Other",
                    "EventID": "5",
                    "Empty": None,
                }
            },
        }
    }
    ev = flatten_xml_json(record)
    assert (ev["Channel"], ev["System_Channel"]) == ("Application", "System")
    assert (ev["Computer"], ev["System_Computer"], ev["host.name"]) == ("elsewhere", "srv1.corp", "srv1.corp")
    assert (ev["EventRecordID"], ev["System_EventRecordID"]) == (99, 7)
    assert (ev["EventID"], ev["System_EventID"]) == ("5", 104)
    assert (ev["Provider_Name"], ev["System_Provider_Name"]) == ("Other", "Microsoft-Windows-Eventlog")
    assert ev["System_TimeCreated"] == "2026-01-02T03:04:05.678Z"
    assert ev["@timestamp"] == "2026-01-02T03:04:05.678Z"
    # no collision, nothing added
    plain = flatten_xml_json({"Event": {"System": {"EventID": 1, "Channel": "Security"}, "EventData": {"A": "b"}}})
    assert not [k for k in plain if k.startswith("System_")]


def test_winlogbeat_user_data_shadows_system_fields() -> None:
    ev = from_json_record(
        {
            "winlog": {
                "event_id": 104,
                "channel": "System",
                "computer_name": "pc9",
                "provider_name": "Microsoft-Windows-Eventlog",
                "record_id": 5,
                "user_data": {"Channel": "Application", "Computer": "other"},
            },
        }
    )
    assert (ev["Channel"], ev["System_Channel"], ev["host.name"]) == ("Application", "System", "pc9")
