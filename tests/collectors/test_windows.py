"""Windows records (EVTX, NXLog, Winlogbeat, XML-JSON) → one flat event shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.windows import flatten_xml_json, from_json_record, iter_evtx, parse_json_line
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
