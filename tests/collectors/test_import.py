"""`soclite import` and `soclite deadletter list` as an operator runs them: files of every kind into the journal."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from soclite.store.journal import Journal
from tests.collectors.test_sensor import build_pcap

SOCLITE = [sys.executable, "-m", "soclite.cli"]
EVTX = Path("/work/shared/sigma/regression_data/rules-emerging-threats/2026/Exploits/RedSun/"
            "win_defender_exploit_redsun_tiering_engine_detected_as_eicar/a7c3e5f2-8b1d-4e9a-b6c2-3d7f5e8a9b4c.evtx")  # fmt: skip

DEFENDER_NXLOG = {
    "EventTime": "2026-11-23 17:50:00", "Hostname": "PC-KETOAN-01.sotttt.local", "EventID": 1116,
    "SourceName": "Microsoft-Windows-Windows Defender", "Channel": "Microsoft-Windows-Windows Defender/Operational",
    "Threat Name": "Trojan:Win32/Emotet.RT!MTB", "Severity Name": "Severe",
    "Path": "file:_C:\\Users\\ketoan\\Downloads\\hoadon.doc", "Detection User": "SOTTTT\\ketoan",
}  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOCLITE, *args], capture_output=True, text=True, timeout=120)


def test_import_every_kind_then_reimport_and_list_dead_letters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth = tmp_path / "auth.log"
    auth.write_bytes(
        b"Nov 23 17:40:01 web01 sshd[1]: Failed password for root from 203.0.113.9 port 4000 ssh2\n"
        b"Nov 23 17:40:02 web01 sshd[1]: Accepted password for root from 203.0.113.9 port 4001 ssh2\n"
        b"Nov 23 17:40:03 web01 app: caf\xe9 latin-1 line\n"
    )
    jsonl = tmp_path / "winlogs.jsonl.gz"
    jsonl.write_bytes(gzip.compress(orjson.dumps(DEFENDER_NXLOG) + b"\n{broken json\n[1, 2]\n"))
    pcap = tmp_path / "capture.pcap"
    build_pcap(pcap)
    inputs = [str(auth), str(jsonl), str(pcap)] + ([str(EVTX)] if EVTX.exists() else [])
    first = run("import", "--data-dir", str(data), *inputs)
    assert first.returncode == 0, first.stderr
    journal = Journal(data / "journal.db", max_bytes=1 << 30)
    events = [e for _, e in journal.read("check", 10000)]
    journal.close()
    by_input = {}
    for event in events:
        by_input.setdefault(Path(event["log.file.path"]).name, []).append(event)
    assert [e["event.outcome"] for e in by_input["auth.log"]] == ["failure", "success"]
    (defender,) = by_input["winlogs.jsonl.gz"]
    assert defender["logsource.category"] == "antivirus" and defender["Signature"] == "Trojan:Win32/Emotet.RT!MTB"
    assert defender["Filename"] == "C:\\Users\\ketoan\\Downloads\\hoadon.doc" and defender["EventID"] == 1116
    assert defender["host.name"] == "PC-KETOAN-01.sotttt.local"
    categories = sorted({e["logsource.category"] for e in by_input["capture.pcap"]})
    assert categories == ["dns", "firewall", "proxy"]
    if EVTX.exists():
        assert by_input[EVTX.name][0]["Channel"] == "Microsoft-Windows-Windows Defender/Operational"
    assert f"imported {len(events)} events, 3 dead letters" in first.stdout

    again = run("import", "--data-dir", str(data), *inputs)
    assert again.returncode == 0 and "imported 0 events, 0 dead letters" in again.stdout

    listed = run("deadletter", "list", "--data-dir", str(data), "--json")
    letters = [orjson.loads(line) for line in listed.stdout.splitlines()]
    reasons = " | ".join(letter["reason"] for letter in letters)
    assert len(letters) == 3
    assert "line 2: invalid JSON" in reasons and "line 3: not UTF-8" in reasons
    assert "a record must be a JSON object, not list" in reasons
    assert any(letter["raw"] == "{broken json" for letter in letters)


def test_unreadable_pcap_is_a_dead_letter(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"garbage, not a capture")
    result = run("import", "--data-dir", str(tmp_path / "d"), str(bad))
    assert result.returncode == 0 and "imported 0 events, 1 dead letters" in result.stdout


@pytest.mark.parametrize("missing", ["nope.log"])
def test_missing_file_is_a_usage_error(tmp_path: Path, missing: str) -> None:
    result = run("import", "--data-dir", str(tmp_path), str(tmp_path / missing))
    assert result.returncode == 2 and "does not exist" in result.stderr


def _event_line(i: int) -> bytes:
    return orjson.dumps({"@timestamp": "2026-11-23T10:00:00Z", "host.name": "web01", "message": f"line {i}"}) + b"\n"


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.log.gz"])
def test_truncated_gzip_keeps_what_was_read_and_says_why(tmp_path: Path, name: str) -> None:
    """Issue 13 item 15: a .gz cut short printed a bare "Aborted!" and exited 1."""
    lines = b"".join(_event_line(i) for i in range(5000))
    if name.endswith(".log.gz"):
        lines = b"".join(b"<13>Nov 23 10:00:00 web01 app: line %d\n" % i for i in range(5000))
    whole = gzip.compress(lines, mtime=0)
    cut = tmp_path / name
    cut.write_bytes(whole[: len(whole) // 2])
    result = run("import", "--data-dir", str(tmp_path / "d"), str(cut))
    assert result.returncode == 0, result.stderr
    assert "Aborted" not in result.stderr + result.stdout
    imported = int(result.stdout.split("imported ", 1)[1].split(" ", 1)[0])
    assert 0 < imported < 5000
    listed = run("deadletter", "list", "--data-dir", str(tmp_path / "d"), "--json")
    letters = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert len(letters) == 1
    assert "truncated" in letters[0]["reason"] and f"{imported} record(s) before the damage were kept" in letters[0]["reason"]


def test_pcap_of_garbage_packets_is_a_dead_letter(tmp_path: Path) -> None:
    """Issue 13 item 15: a valid pcap header over garbage records imported as 0 events and no dead letter."""
    import random
    import struct

    rng = random.Random(7)
    records = b""
    for i in range(20):
        # Ethernet frames whose EtherType and payload are noise: nothing decodes as IP, IPv6 or ARP
        frame = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x88\xb5" + bytes(rng.randrange(256) for _ in range(60))
        records += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    bad = tmp_path / "noise.pcap"
    bad.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records)
    result = run("import", "--data-dir", str(tmp_path / "d"), str(bad))
    assert result.returncode == 0 and "imported 0 events, 1 dead letters" in result.stdout
    listed = run("deadletter", "list", "--data-dir", str(tmp_path / "d"), "--json")
    (letter,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert "none of the 20 packet(s) decodes" in letter["reason"]
