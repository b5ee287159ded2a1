"""The Windows event-log source, tested on Linux: its wevtutil command lines, its XML parser
(checked against the EVTX importer on SigmaHQ's regression EVTX files), and its bookmarks with a
fake ``wevtutil`` program on PATH (the external program faked at its boundary: argv in, XML out)."""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soclite.collectors.agent.config import AgentConfig, WindowsEventLogInput, default_windows_event_logs
from soclite.collectors.agent.runner import Agent
from soclite.collectors.agent.spool import Spool
from soclite.collectors.agent.wineventlog import (
    Batch,
    WinEventLogCollector,
    command_line,
    gli_args,
    parse_events,
    parse_gli,
    qe_args,
    xpath_after,
)
from soclite.collectors.normalize import normalize
from soclite.collectors.windows import from_json_record, iter_evtx
from soclite.errors import ConfigError, ParseError

from .agent_support import FakeSoc, ServerThread

SIGMA = Path(__file__).resolve().parents[2].parent / "shared" / "sigma"
REGRESSION = SIGMA / "regression_data"


def _need_sigma() -> None:
    if not REGRESSION.exists():
        if os.environ.get("CI"):
            pytest.fail(
                f"{REGRESSION} is missing: the wevtutil XML parser cannot be checked against EVTX files"
            )
        pytest.skip(f"{REGRESSION} is not available (SigmaHQ regression EVTX files)")


# --- command lines ------------------------------------------------------------------------------------
def test_qe_command_line_for_a_bookmark() -> None:
    args = qe_args("Security", "*", 1234, 500)
    assert args == ["wevtutil", "qe", "Security", "/q:*[System[EventRecordID>1234]]", "/f:xml", "/c:500",
                    "/rd:false", "/e:Events"]  # fmt: skip
    assert command_line(args) == (
        "wevtutil qe Security /q:*[System[EventRecordID>1234]] /f:xml /c:500 /rd:false /e:Events"
    )


def test_qe_command_line_with_a_filter_and_a_channel_with_spaces() -> None:
    query = "*[System[(EventID=1116 or EventID=1117)]]"
    assert xpath_after(query, 7) == "*[System[EventRecordID>7] and (System[(EventID=1116 or EventID=1117)])]"
    line = command_line(qe_args("Microsoft-Windows-Windows Defender/Operational", query, 7, 100))
    assert line == (
        'wevtutil qe "Microsoft-Windows-Windows Defender/Operational" '
        '"/q:*[System[EventRecordID>7] and (System[(EventID=1116 or EventID=1117)])]" '
        "/f:xml /c:100 /rd:false /e:Events"
    )
    assert command_line(gli_args("System")) == "wevtutil gli System"
    with pytest.raises(ValueError, match="unsupported Event Log query"):
        xpath_after("Event/System", 0)


def test_gli_output_is_read_and_junk_is_a_parse_error() -> None:
    text = ("creationTime: 2026-11-01T01:02:03.000Z\r\nlastAccessTime: 2026-11-23T01:02:03.000Z\r\n"
            "fileSize: 20975616\r\nattributes: 32\r\nnumberOfLogRecords: 36258\r\noldestRecordNumber: 1041\r\n")  # fmt: skip
    assert parse_gli(text) == (1041, 36258)
    with pytest.raises(ParseError, match="gli"):
        parse_gli("Failed to read log information.")


# --- config and the platform guard ---------------------------------------------------------------------
def test_defaults_are_windows_only_and_queries_are_validated(tmp_path: Path) -> None:
    assert AgentConfig().windows_event_logs == []  # this machine is not Windows
    channels = [spec.channel for spec in default_windows_event_logs("win32")]
    assert channels == ["Security", "System", "Microsoft-Windows-Sysmon/Operational",
                        "Microsoft-Windows-PowerShell/Operational",
                        "Microsoft-Windows-Windows Defender/Operational"]  # fmt: skip
    assert default_windows_event_logs("linux") == []
    bad = tmp_path / "agent.yml"
    bad.write_text('windows_event_logs:\n  - channel: Security\n    query: "Event[1]"\n', encoding="utf-8")
    from soclite.collectors.agent.config import load_agent_config

    with pytest.raises(ConfigError) as info:
        load_agent_config(bad)
    assert "windows_event_logs.0.query" in str(info.value)
    assert str(bad) in str(info.value)


def test_on_linux_the_source_is_disabled_with_a_clear_reason(tmp_path: Path) -> None:
    soc = FakeSoc()
    srv = ServerThread(soc).start()
    try:
        config = AgentConfig(windows_event_logs=[WindowsEventLogInput(channel="Security")])
        agent = Agent(srv.url, tmp_path / "state", config, enroll_token="se_good", platform="linux")
        try:
            agent.enroll()
            assert agent.wineventlog.readers == []
            assert agent.collect_once(force=True) == 0
            client = agent.client()
            try:
                agent.heartbeat_once(client)
            finally:
                client.close()
            status = soc.heartbeats[-1]["windows_event_logs"]
            assert status["enabled"] is False
            assert "only be read on Windows" in status["reason"] and "linux" in status["reason"]
        finally:
            agent.close()
    finally:
        srv.stop()


# --- the parser against the EVTX importer --------------------------------------------------------------
def _evtx_xml(path: Path) -> list[str]:
    from evtx import PyEvtxParser

    # the crate prints an XML declaration per record; wevtutil prints one <Events> document
    records = [r for r in PyEvtxParser(str(path)).records() if r is not None]
    return [str(r["data"]).split("?>", 1)[-1].strip() for r in records]


def test_wevtutil_xml_flattens_like_the_evtx_importer() -> None:
    _need_sigma()
    files = sorted(REGRESSION.rglob("*.evtx"))
    compared = data_fields = 0
    for path in files:
        document = "<Events>\r\n" + "\r\n".join(_evtx_xml(path)) + "\r\n</Events>"
        mine = [from_json_record(record) for record in parse_events(document)]
        reference = list(iter_evtx(path))
        assert len(mine) == len(reference), path
        for ours, theirs in zip(mine, reference, strict=True):
            for key in ("EventID", "Channel", "Computer", "EventRecordID", "Provider_Name", "@timestamp"):
                assert ours.get(key) == theirs.get(key), (path, key)
            assert isinstance(ours["EventID"], int) and isinstance(ours["EventRecordID"], int)
            for key in ("Image", "CommandLine", "ParentImage", "TargetFilename", "TargetObject", "User",
                        "ScriptBlockText", "ThreatName", "Hashes", "QueryName"):  # fmt: skip
                if key in theirs:
                    # the evtx crate types numbers; XML parsers also fold CR LF to LF (XML 1.0 §2.11)
                    assert ours[key] == str(theirs[key]).replace("\r\n", "\n"), (path, key)
                    data_fields += 1
            assert set(ours) == set(theirs), path
            compared += 1
    assert len(files) >= 150 and compared >= len(files)
    assert data_fields > 300


def test_records_are_accepted_by_the_server_normalizer() -> None:
    _need_sigma()
    path = next(p for p in sorted(REGRESSION.rglob("*.evtx")) if "proc_creation_win_findstr_lsass" in str(p))
    record = parse_events("<Events>" + "".join(_evtx_xml(path)) + "</Events>")[0]
    wire = json.loads(json.dumps(record))  # what the agent ships in its NDJSON body
    event = normalize(wire, received=datetime.now(UTC), input="http", unit="U1", agent_id="a1",
                      default_tz="Asia/Ho_Chi_Minh")  # fmt: skip
    assert event["EventID"] == 1
    assert event["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert event["Image"] == "C:\\Windows\\System32\\findstr.exe"
    assert event["CommandLine"] == "findstr  lsass "
    assert event["host.name"] == "ar-win-dc.attackrange.local"
    assert event["@timestamp"].startswith("2025-10-25T17:41:46.744")


def test_wevtutil_style_xml_with_userdata_qualifiers_and_unnamed_data() -> None:
    ns = "xmlns='http://schemas.microsoft.com/win/2004/08/events/event'"
    text = (
        f"\ufeff<Events><Event {ns}><System><Provider Name='Microsoft-Windows-Eventlog' "
        "Guid='{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}'/><EventID>1102</EventID><Version>0</Version>"
        "<Level>4</Level><Task>104</Task><Opcode>0</Opcode><Keywords>0x4020000000000000</Keywords>"
        "<TimeCreated SystemTime='2026-11-23T03:04:05.6789012Z'/><EventRecordID>88</EventRecordID>"
        "<Correlation/><Execution ProcessID='1234' ThreadID='5678'/><Channel>Security</Channel>"
        "<Computer>WS-017.sotttt.local</Computer><Security/></System><UserData>"
        "<LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>"
        "<SubjectUserSid>S-1-5-21-1-2-3-500</SubjectUserSid><SubjectUserName>admin</SubjectUserName>"
        "</LogFileCleared></UserData></Event>"
        f"<Event {ns}><System><Provider Name='Service Control Manager'/>"
        "<EventID Qualifiers='16384'>7045</EventID><EventRecordID>89</EventRecordID>"
        "<TimeCreated SystemTime='2026-11-23T03:04:06.0000000Z'/><Channel>System</Channel>"
        "<Computer>WS-017.sotttt.local</Computer></System><EventData>"
        "<Data Name='ServiceName'>evil</Data><Data Name='ImagePath'>C:\\x.exe</Data>"
        "<Data Name='StartType'></Data></EventData></Event>"
        f"<Event {ns}><System><Provider Name='PowerShell'/><EventID>400</EventID>"
        "<EventRecordID>90</EventRecordID><Channel>Windows PowerShell</Channel><Computer>WS-017</Computer>"
        "</System><EventData><Data>Available</Data><Data>None</Data></EventData></Event></Events>"
    )
    cleared, service, legacy = (from_json_record(r) for r in parse_events(text))
    assert cleared["EventID"] == 1102 and cleared["EventRecordID"] == 88
    assert cleared["SubjectUserName"] == "admin" and cleared["SubjectUserSid"] == "S-1-5-21-1-2-3-500"
    assert cleared["Execution_ProcessID"] == 1234
    assert cleared["@timestamp"].startswith("2026-11-23T03:04:05.678")
    assert service["EventID"] == 7045 and service["ServiceName"] == "evil" and service["StartType"] == ""
    assert service["Provider_Name"] == "Service Control Manager"
    assert legacy["Data"] == "Available\nNone"
    assert parse_events("<Events>\r\n</Events>\r\n") == []
    with pytest.raises(ParseError, match="malformed"):
        parse_events("<Events><Event>")


# --- a fake wevtutil on PATH ----------------------------------------------------------------------------
FAKE = r"""
import json, os, re, sys
state = os.environ["FAKE_WEVTUTIL_STATE"]
with open(os.path.join(state, "calls.log"), "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
with open(os.path.join(state, "logs.json"), encoding="utf-8") as f:
    logs = json.load(f)
verb, channel, *opts = sys.argv[1:]
log = logs.get(channel)
if log is None:
    sys.stderr.write("Failed to read events. The specified channel could not be found.\r\n")
    sys.exit(15007 % 256)  # exit statuses are 8 bits on Linux; the message says it
if "error" in log:
    sys.stderr.write(log["error"][1] + "\r\n")
    sys.exit(log["error"][0])
ids = [rid for rid, _ in log["events"]]
if verb == "gli":
    sys.stdout.write("creationTime: 2026-11-01T00:00:00.000Z\r\nfileSize: 69632\r\nattributes: 32\r\n"
                     f"numberOfLogRecords: {len(ids)}\r\noldestRecordNumber: {min(ids) if ids else 0}\r\n")
    sys.exit(0)
assert verb == "qe", verb
opt = dict(o[1:].split(":", 1) for o in opts)
assert (opt["f"], opt["rd"], opt["e"]) == ("xml", "false", "Events"), opt
after = int(re.match(r"\*\[System\[EventRecordID>(\d+)\]", opt["q"]).group(1))
chosen = [xml for rid, xml in log["events"] if rid > after][: int(opt["c"])]
sys.stdout.write("<Events>\r\n" + "\r\n".join(chosen) + ("\r\n" if chosen else "") + "</Events>\r\n")
"""

EVENT = (
    "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
    "<Provider Name='Microsoft-Windows-Security-Auditing' Guid='{{54849625-5478-4994-A5BA-3E3B0328C30D}}'/>"
    "<EventID>4625</EventID><Version>0</Version><Level>0</Level><Task>12544</Task><Opcode>0</Opcode>"
    "<Keywords>0x8010000000000000</Keywords><TimeCreated SystemTime='2026-11-23T02:00:{sec:02d}.1000000Z'/>"
    "<EventRecordID>{rid}</EventRecordID><Correlation/><Execution ProcessID='640' ThreadID='700'/>"
    "<Channel>{channel}</Channel><Computer>WS-017.sotttt.local</Computer><Security/></System><EventData>"
    "<Data Name='TargetUserName'>user{rid}</Data><Data Name='LogonType'>3</Data>"
    "<Data Name='IpAddress'>10.0.0.{rid}</Data></EventData></Event>"
)


class FakeWevtutil:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state = root / "fake-state"
        self.state.mkdir()
        bindir = root / "bin"
        bindir.mkdir()
        self.exe = bindir / "wevtutil"
        self.exe.write_text(f"#!{sys.executable}\n{FAKE}", encoding="utf-8")
        self.exe.chmod(self.exe.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("FAKE_WEVTUTIL_STATE", str(self.state))
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
        self.logs: dict[str, Any] = {}
        self.save()

    def set_log(self, channel: str, ids: range | list[int]) -> None:
        self.logs[channel] = {"events": [[rid, EVENT.format(rid=rid, sec=rid % 60, channel=channel)]
                                         for rid in ids]}  # fmt: skip
        self.save()

    def set_error(self, channel: str, code: int, message: str) -> None:
        self.logs[channel] = {"error": [code, message]}
        self.save()

    def save(self) -> None:
        (self.state / "logs.json").write_text(json.dumps(self.logs), encoding="utf-8")

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def queried_after(self) -> list[int]:
        return [int(re.findall(r"EventRecordID>(\d+)", c[2])[0]) for c in self.calls() if c[0] == "qe"]


def spec(channel: str, **extra: Any) -> WindowsEventLogInput:
    return WindowsEventLogInput.model_validate({"channel": channel, "start_at": "beginning", **extra})


def spooled_ids(batches: list[Batch]) -> list[int]:
    return [r["Event"]["System"]["EventRecordID"] for b in batches for r in b.records]


def test_bookmark_moves_only_with_the_spooled_batch_and_survives_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeWevtutil(tmp_path, monkeypatch)
    fake.set_log("Security", range(1, 26))
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    try:
        collector = WinEventLogCollector([spec("Security")], spool, "win32")
        assert collector.readers and collector.readers[0].exe == str(fake.exe)

        def broken(batch: Batch) -> None:
            raise OSError("disk full")

        with pytest.raises(OSError):
            collector.collect(10, broken)
        assert spool.offset("wineventlog:Security").position == 0  # type: ignore[union-attr]
        assert collector.readers[0].bookmark == 0

        got: list[Batch] = []

        def put(batch: Batch) -> None:  # what the runner does: the batch and its bookmark in one transaction
            spool.put(f"b{batch.start}-{batch.end}", batch.source, len(batch.records), b"x", batch.offset)
            got.append(batch)

        assert collector.collect(10, put) == 25  # full batches are read again at once
        assert [(b.start, b.end) for b in got] == [(0, 10), (10, 20), (20, 25)]
        assert spooled_ids(got) == list(range(1, 26))
        assert spool.offset("wineventlog:Security").position == 25  # type: ignore[union-attr]
        assert fake.queried_after() == [0, 0, 10, 20]
        assert collector.status()["channels"]["Security"]["state"] == "ok"
    finally:
        spool.close()

    fake.set_log("Security", range(1, 31))
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    try:
        again = WinEventLogCollector([spec("Security")], spool, "win32")
        got = []
        assert again.collect(10, put) == 5
        assert spooled_ids(got) == [26, 27, 28, 29, 30]
        assert fake.queried_after()[-1] == 25  # resumed after the persisted bookmark (a short batch: done)
    finally:
        spool.close()


def test_start_at_end_skips_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWevtutil(tmp_path, monkeypatch)
    fake.set_log("System", range(100, 151))
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    try:
        collector = WinEventLogCollector([WindowsEventLogInput(channel="System")], spool, "win32")
        got: list[Batch] = []
        assert collector.collect(500, got.append) == 0
        assert spool.offset("wineventlog:System").position == 150  # type: ignore[union-attr]
        fake.set_log("System", range(100, 153))
        assert collector.collect(500, got.append) == 2
        assert spooled_ids(got) == [151, 152]
    finally:
        spool.close()


def test_cleared_log_restarts_from_the_oldest_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeWevtutil(tmp_path, monkeypatch)
    fake.set_log("Security", range(1, 6))
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    try:
        collector = WinEventLogCollector([spec("Security")], spool, "win32")
        got: list[Batch] = []
        assert collector.collect(100, got.append) == 5
        for b in got:
            spool.set_offset(b.source, b.offset)
        fake.set_log("Security", [1, 2])  # cleared (record 1 is the 1102 "log cleared"), then one more
        assert collector.collect(100, got.append) == 0  # nothing after 5: gli shows the newest is 2 → cleared
        status = collector.status()["channels"]["Security"]
        assert status["cleared"] == 1 and status["bookmark"] == 0
        stored = spool.offset("wineventlog:Security")
        assert stored is not None and (stored.position, stored.generation) == (0, 1)
        assert collector.collect(100, got.append) == 2
        assert spooled_ids(got) == [1, 2, 3, 4, 5, 1, 2]
        assert (got[-1].generation, got[-1].start, got[-1].end) == (1, 0, 2)  # a new batch id, not a resend
    finally:
        spool.close()


def test_overwritten_records_are_counted_as_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWevtutil(tmp_path, monkeypatch)
    fake.set_log("Security", range(1, 4))
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    try:
        collector = WinEventLogCollector([spec("Security")], spool, "win32")
        got: list[Batch] = []
        collector.collect(100, got.append)
        fake.set_log("Security", range(10, 13))  # the circular log wrapped: 4..9 are gone
        assert collector.collect(100, got.append) == 3
        assert collector.status()["channels"]["Security"]["missed"] == 6
    finally:
        spool.close()


def test_agent_ships_windows_events_after_ack_and_reports_broken_channels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner wiring end to end on a fake server: an unacknowledged batch stays spooled and is
    resent after a restart without being read twice; access denied and a missing channel are in the
    heartbeat and do not stop the other channels."""
    fake = FakeWevtutil(tmp_path, monkeypatch)
    fake.set_log("System", range(1, 8))
    fake.set_error("Security", 5, "Failed to read events. Access is denied.")
    config = AgentConfig(
        windows_event_logs=[spec("Security"), spec("System"), spec("Microsoft-Windows-Sysmon/Operational")],
        batch_size=4, backoff_initial=0.05, request_timeout=5,
    )  # fmt: skip
    soc = FakeSoc()
    srv = ServerThread(soc).start()
    state = tmp_path / "state"
    try:
        agent = Agent(srv.url, state, config, enroll_token="se_good", platform="win32")
        try:
            agent.enroll()
            soc.fail_with = 503
            assert agent.collect_once(force=True) == 7
            client = agent.client()
            try:
                with pytest.raises(Exception, match="503"):
                    agent.send_once(client)
                assert agent.spool.pending()[0] == 2  # not acknowledged: still spooled
                agent.heartbeat_once(client)
            finally:
                client.close()
            channels = soc.heartbeats[-1]["windows_event_logs"]["channels"]
            assert channels["Security"]["state"] == "access_denied"
            assert "Access is denied" in channels["Security"]["detail"]
            assert channels["Microsoft-Windows-Sysmon/Operational"]["state"] == "not_found"
            assert channels["System"] == {
                "state": "ok",
                "detail": "",
                "bookmark": 7,
                "cleared": 0,
                "missed": 0,
            }
        finally:
            agent.close()
        soc.fail_with = None
        agent = Agent(srv.url, state, config, platform="win32")  # restart: already enrolled
        try:
            assert agent.collect_once(force=True) == 0  # bookmark 7 came back with the spool
            client = agent.client()
            try:
                while agent.send_once(client):
                    pass
            finally:
                client.close()
        finally:
            agent.close()
        ids = [r["Event"]["System"]["EventRecordID"] for r in soc.records]
        assert ids == [1, 2, 3, 4, 5, 6, 7]
        assert soc.duplicates == 0
        assert soc.records[0]["Event"]["EventData"]["TargetUserName"] == "user1"
        assert from_json_record(soc.records[0])["IpAddress"] == "10.0.0.1"
    finally:
        srv.stop()


def test_ndjson_body_is_gzip_of_event_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWevtutil(tmp_path, monkeypatch)
    fake.set_log("System", range(1, 3))
    soc = FakeSoc()
    srv = ServerThread(soc).start()
    try:
        agent = Agent(srv.url, tmp_path / "state", AgentConfig(windows_event_logs=[spec("System")]),
                      enroll_token="se_good", platform="win32")  # fmt: skip
        try:
            agent.enroll()
            agent.collect_once(force=True)
            batch = agent.spool.oldest()
            assert batch is not None and batch.source == "wineventlog:System"
            lines = gzip.decompress(batch.body).decode().splitlines()
            assert [json.loads(line)["Event"]["System"]["Channel"] for line in lines] == ["System", "System"]
        finally:
            agent.close()
    finally:
        srv.stop()


def test_output_in_utf16_or_utf8_keeps_vietnamese_names() -> None:
    from soclite.collectors.agent.wineventlog import decode_output

    xml = EVENT.format(rid=3, sec=3, channel="Security").replace("user3", "Nguyễn Văn Đức")
    document = f"<Events>\r\n{xml}\r\n</Events>\r\n"
    for raw in (document.encode("utf-16"), document.encode("utf-8")):
        (record,) = parse_events(decode_output(raw))
        assert from_json_record(record)["TargetUserName"] == "Nguyễn Văn Đức"


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "/q:*"), ("channel", "-h"), ("query", "*[1) or (1]"), ("query", "*[System[(EventID=1]")],
)
def test_config_refuses_option_like_channels_and_unbalanced_queries(field: str, value: str) -> None:
    from pydantic import ValidationError

    from soclite.collectors.agent.config import WindowsEventLogInput

    spec = {"channel": "Security", "query": "*", field: value}
    with pytest.raises(ValidationError):
        WindowsEventLogInput(**spec)
    WindowsEventLogInput(channel="Security", query="*[System[(EventID=4624 or EventID=4625)] and EventData[Data[@Name='LogonType']='10']]")
