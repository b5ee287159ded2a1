"""Syslog framing: RFC 5424 (structured data, BOM, nil values), RFC 3164 (year inference, zone), PRI errors."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from soclite.collectors.syslog import parse_syslog
from soclite.errors import ParseError

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_rfc5424_with_structured_data_and_bom() -> None:
    line = (
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 '
        '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] '
        "\ufeffAn application event log entry"
    )
    msg = parse_syslog(line, tz=HCM, received=NOW)
    assert msg.format == "rfc5424"
    assert (msg.facility, msg.severity) == (20, 5)
    assert msg.timestamp == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert msg.hostname == "mymachine.example.com"
    assert (msg.app_name, msg.procid, msg.msgid) == ("evntslog", "77", "ID47")
    assert msg.structured_data == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert msg.message == "An application event log entry"


def test_rfc5424_nil_values_escapes_and_local_offset() -> None:
    line = '<13>1 2026-11-23T17:00:00.123456789+07:00 - - - - [x@1 v="a\\"b\\]c\\\\d"] hello'
    msg = parse_syslog(line, tz=HCM, received=NOW)
    assert msg.hostname is None and msg.app_name is None and msg.procid is None and msg.msgid is None
    assert msg.structured_data == {"x@1": {"v": 'a"b]c\\d'}}
    assert msg.timestamp == datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
    assert msg.message == "hello"


def test_rfc3164_zone_and_year_inference() -> None:
    msg = parse_syslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", tz=HCM, received=NOW)
    assert msg.format == "rfc3164"
    assert (msg.facility, msg.severity) == (4, 2)
    # read in Asia/Ho_Chi_Minh (UTC+7), year of reception
    assert msg.timestamp == datetime(2026, 10, 11, 15, 14, 15, tzinfo=UTC)
    assert (msg.hostname, msg.app_name, msg.procid) == ("mymachine", "su", None)
    assert msg.message == "'su root' failed for lonvick on /dev/pts/8"


def test_rfc3164_december_line_received_in_january_is_last_year() -> None:
    msg = parse_syslog("<13>Dec 31 23:59:59 h app[1]: x", tz=HCM, received=datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC))
    assert msg.timestamp == datetime(2026, 12, 31, 16, 59, 59, tzinfo=UTC)
    assert msg.procid == "1"


def test_traditional_file_line_without_pri_and_rfc3339_file_line() -> None:
    plain = parse_syslog("Nov 23 17:40:01 web01 sshd[1234]: Connection closed", tz=HCM, received=NOW)
    assert (plain.format, plain.hostname, plain.app_name, plain.procid) == ("text", "web01", "sshd", "1234")
    hp = parse_syslog("2026-11-23T17:40:01.5+07:00 web01 CRON[9]: (root) CMD (true)", tz=HCM, received=NOW)
    assert hp.timestamp == datetime(2026, 11, 23, 10, 40, 1, 500000, tzinfo=UTC)
    assert (hp.hostname, hp.app_name, hp.message) == ("web01", "CRON", "(root) CMD (true)")


@pytest.mark.parametrize(
    "line",
    ["<192>Nov 1 00:00:00 h x: y", "<1a>x", "<>x", "<013>Nov 1 00:00:00 h x: y", "<13>1 2026-01-01T00:00:00Z h a p m [bad",
     "<13>1 - h a p", "<13>1 not-a-time h a p m - x"],
)  # fmt: skip
def test_malformed_headers_raise_parse_error(line: str) -> None:
    with pytest.raises(ParseError):
        parse_syslog(line, tz=HCM, received=NOW)
