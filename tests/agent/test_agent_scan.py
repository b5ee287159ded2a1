"""The agent's on-demand malware scan with the real ClamAV (clamscan) and a signature database made here.

Debian's clamav has no virus database offline (freshclam needs the internet), so each test writes the
EICAR test file and an .hdb signature (its MD5 and size) and passes it with ``-d`` (the agent's
``scan.database`` setting).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from soclite.collectors.agent.scan import ScanOptions, run_scan
from soclite.collectors.parsers.antivirus import ClamavParser
from soclite.collectors.parsers.base import LogLine

#: the EICAR anti-malware test file (eicar.org): 68 printable characters every antivirus detects
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def clamscan_or_skip() -> None:
    if shutil.which("clamscan") is None:
        pytest.skip("clamscan is not installed and `make test` installs it (apt-get install clamav); "
                    "run `bash scripts/apt-ensure.sh clamav`")  # fmt: skip


def eicar_lab(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with the EICAR file (nested) and a clean file; an .hdb database that names EICAR."""
    root = tmp_path / "home"
    (root / "user" / "Downloads").mkdir(parents=True)
    (root / "user" / "notes.txt").write_text("biên bản họp\n")
    sample = root / "user" / "Downloads" / "hoa don.com"  # a space in the name, as users name files
    sample.write_text(EICAR)
    database = tmp_path / "sigs" / "eicar.hdb"
    database.parent.mkdir()
    database.write_text(f"{hashlib.md5(EICAR.encode()).hexdigest()}:{len(EICAR)}:Eicar-Test-Signature\n")
    return root, sample


def test_clamscan_finds_eicar_streams_each_finding_and_summarises(tmp_path: Path) -> None:
    clamscan_or_skip()
    root, sample = eicar_lab(tmp_path)
    lines: list[str] = []
    result = run_scan([str(root)], ScanOptions(database=tmp_path / "sigs" / "eicar.hdb"), lines.append)
    assert result.status == "infected" and result.ok and result.engine == "clamscan"
    assert result.findings == [(str(sample), "Eicar-Test-Signature.UNOFFICIAL")]
    # each streamed line is what the server's clamav parser reads: an antivirus event for the Sigma rules
    [line] = lines
    event = ClamavParser().parse(LogLine(message=line))
    assert event is not None
    assert event["logsource.category"] == "antivirus" and event["Filename"] == str(sample)
    assert "eicar" in event["Signature"].lower()
    summary = json.loads(result.detail())
    assert summary["scan"] == "infected" and summary["findings"] == 1
    assert summary["found"] == [{"path": str(sample), "signature": "Eicar-Test-Signature.UNOFFICIAL"}]


def test_a_clean_folder_is_clean_and_a_missing_path_is_an_error(tmp_path: Path) -> None:
    clamscan_or_skip()
    root, sample = eicar_lab(tmp_path)
    sample.unlink()
    options = ScanOptions(database=tmp_path / "sigs" / "eicar.hdb")
    result = run_scan([str(root)], options, lambda line: None)
    assert result.status == "clean" and result.findings == []
    missing = run_scan([str(tmp_path / "nope")], options, lambda line: None)
    assert missing.status == "error" and not missing.ok and "clamscan exited with 2" in (missing.error or "")
    relative = run_scan(["home"], options, lambda line: None)
    assert relative.status == "error" and "not absolute" in (relative.error or "")


def test_no_engine_on_the_host_is_not_available_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = eicar_lab(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a host without ClamAV
    result = run_scan([str(root)], ScanOptions(), lambda line: None)
    assert result.status == "not_available" and not result.ok
    assert "clamdscan or clamscan is not installed" in (result.error or "")
    assert json.loads(result.detail())["scan"] == "not_available"
