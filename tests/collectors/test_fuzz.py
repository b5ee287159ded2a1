"""Fuzzing: whatever the bytes, normalization yields an event or a ParseError — never another exception."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from soclite.collectors.normalize import normalize, normalize_batch
from soclite.collectors.parsers import PARSERS, LogLine
from soclite.errors import ParseError

RECEIVED = datetime(2026, 11, 23, 10, 45, tzinfo=UTC)
PREFIXES = [
    "", "<13>", "<38>Nov 23 17:40:01 web01 sshd[1]: ", "<165>1 2026-11-23T17:00:00Z h app 1 ID [a b=\"", "<13>1 ",
    "Nov 23 17:41:00 web01 sudo: ", "type=SYSCALL msg=audit(1.2:3): ", "type=EXECVE msg=audit(1.2:3): a0=",
    '1.2.3.4 - - [23/Nov/2026:17:40:05 +0700] "', "client @0x1 1.2.3.4#53 (x): query: ", "query[A] ",
    "Nov 23 17:42:00 web01 useradd[1]: new user: ", "Dec 31 23:59:59 ", "2026-02-30T00:00:00Z h x: ",
    '<189>date=2026-11-23 time=17:40:01 devid="FG1" logid="1" type=', "<189>12: Nov 23 17:40:01: %SYS-5-CONFIG_I: ",
    "<166>Nov 23 17:40:01 asa : %ASA-5-111008: User '", "<166>Nov 23 17:40:01 asa : %ASA-4-106023: Deny tcp src ",
    "<134>Nov 23 17:40:01 filterlog[1]: 5,,,1,em0,match,block,in,", "Nov 23 17:40:06\t10.0.0.1\tu\ttty\t1.2.3.4\tstop\tcmd=",
    "11/23/2026 5:40:01 PM 0A1C PACKET  00AB UDP Rcv 1.2.3.4 3f2a R Q [8081   DR  NOERROR] ", "10,11/23/26,17:40:01,",
    "type=SOCKADDR msg=audit(1.2:3): saddr=", "type=PATH msg=audit(1.2:3): item=0 nametype=CREATE name=",
]  # fmt: skip


def _check(record: Any) -> None:
    try:
        event = normalize(record, received=RECEIVED, input="fuzz", unit=None, agent_id=None, default_tz="Asia/Ho_Chi_Minh")
    except ParseError:
        return
    assert isinstance(event["@timestamp"], str) and len(event["event.id"]) >= 8


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PREFIXES), st.text(max_size=300))
def test_syslog_lines_never_crash(prefix: str, tail: str) -> None:
    _check({"message": prefix + tail})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from([None, "sshd", "sudo", "su", "useradd", "dnsmasq", "nginx", "clamd", "filterlog"]))
def test_each_parser_never_crashes(text: str, program: str | None) -> None:
    line = LogLine(message=text, program=program, path="/var/log/dnsmasq.log")
    for parser in PARSERS.values():
        try:
            result = parser.parse(line)
        except ParseError:
            continue
        assert result is None or isinstance(result, dict)


# Records reach normalize from orjson.loads, which turns integers beyond 64 bits into floats.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["message", "@timestamp", "logsource.product", "event.id", "MESSAGE",
                                        "_HOSTNAME", "__REALTIME_TIMESTAMP", "host.name", "x"]), json_values, max_size=5))
def test_json_records_never_crash(record: dict[str, Any]) -> None:
    _check(record)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PREFIXES).map(lambda p: {"message": p + "x=1"}), max_size=8))
def test_batches_keep_one_result_per_record_or_join(records: list[dict[str, Any]]) -> None:
    out = normalize_batch(records, received=RECEIVED, input="fuzz", unit=None, agent_id=None, default_tz="UTC")
    assert len(out) <= len(records)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["EventID", "Channel", "SourceName", "Hostname", "winlog", "Event", "Path",
                                        "Threat Name", "EventTime", "@timestamp", "message"]), json_values, max_size=6))
def test_windows_like_records_never_crash(record: dict[str, Any]) -> None:
    _check(record)
