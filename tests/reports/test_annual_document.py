"""Issue 17: the annual report (Form 08) for 15/12–14/12, rendered from a fixture year and read back.

The store holds the seeded 2024 alerts; control.db holds an inventory of information systems (one retired,
which the form leaves out) and incidents inside and outside the year. The report is generated in every format
and each is read back — the PDF with pdftotext (its font with pdffonts), the DOCX with python-docx, the CSV and
the HTML — and every figure is checked against a fresh query of the store and of control.db.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_decimal

from soclite.config import Settings
from soclite.control.incidents import IncidentCreate, Incidents, MilestoneRecord
from soclite.control.systems import InfoSystems, SystemCreate
from soclite.models import AlertStatus
from soclite.reports.archive import ReportArchive
from soclite.reports.periods import parse_period
from soclite.reports.service import ReportRequest, generate
from soclite.store.base import AlertQuery
from soclite.store.sqlite import SQLiteStore
from tests.reports.expected import html_figures
from tests.reports.seed import seed

POPPLER = all(shutil.which(tool) for tool in ("pdftotext", "pdffonts"))
#: the annual report's year 2024: 15/12/2023 00:00 ICT (17:00 UTC the day before) to 14/12/2024 inclusive
YEAR_START = datetime(2023, 12, 14, 17, 0, tzinfo=UTC)
YEAR_END = datetime(2024, 12, 14, 17, 0, tzinfo=UTC)
NOW = datetime(2024, 12, 16, 3, 0, tzinfo=UTC)

SYSTEMS = [
    SystemCreate(name="Cổng dịch vụ công tỉnh", owner="UBND tỉnh", operator="Trung tâm Chuyển đổi số", level=3,
                 approval_status="approved", approval_decision="123/QĐ-UBND ngày 01/02/2024",
                 security_regulation="Quy chế 45/QC-STTTT", deployment_state="operating", review_done=True),
    SystemCreate(name="Hệ thống quản lý văn bản", owner="Văn phòng UBND tỉnh", operator="Trung tâm Chuyển đổi số",
                 level=2, approval_status="submitted", expected_approval_date="03/2025",
                 deployment_state="deploying", expected_completion="06/2025"),
    SystemCreate(name="Phần mềm một cửa điện tử", owner="Sở Nội vụ", operator="Sở Nội vụ", level=4,
                 approval_status="not_submitted", deployment_state="planned"),
    SystemCreate(name="Hệ thống cũ đã dừng", owner="Sở Y tế", operator="Sở Y tế", level=2,
                 deployment_state="retired"),
]


def _incidents(db: Any, store: Any) -> None:
    incidents = Incidents(db, store)

    def make(title: str, detected: datetime, **kw: Any) -> str:
        body = IncidentCreate(title=title, detected_at=detected, **kw)
        return str(incidents.create(body, actor="test", created_by="test", unit=None, scope=None)["id"])

    def done(incident_id: str, milestone: str, at: datetime) -> None:
        incidents.record(incident_id, MilestoneRecord(milestone=milestone, at=at), actor="test", author="test",
                         scope=None)  # type: ignore[arg-type]

    a = make("Mã độc tống tiền", datetime(2024, 3, 2, 1, 0, tzinfo=UTC), severity="serious")
    done(a, "initial_notice", datetime(2024, 3, 2, 9, 0, tzinfo=UTC))  # 8 h: on time
    done(a, "report_72h", datetime(2024, 3, 6, 9, 0, tzinfo=UTC))  # 104 h: late
    done(a, "final_report", datetime(2024, 3, 20, 9, 0, tzinfo=UTC))
    b = make("Lộ dữ liệu cá nhân", datetime(2024, 6, 10, 2, 0, tzinfo=UTC), severity="high", personal_data=True)
    done(b, "initial_notice", datetime(2024, 6, 12, 2, 0, tzinfo=UTC))  # 48 h: late
    done(b, "report_72h", datetime(2024, 6, 12, 3, 0, tzinfo=UTC))  # on time
    make("Tấn công vào cổng", datetime(2024, 12, 14, 16, 30, tzinfo=UTC), severity="medium",
         national_security=True)  # 23:30 ICT on 14/12: the last half hour of the year
    make("Sau kỳ báo cáo", datetime(2024, 12, 14, 17, 30, tzinfo=UTC))  # 00:30 ICT on 15/12: the next year
    make("Trước kỳ báo cáo", datetime(2023, 12, 14, 16, 30, tzinfo=UTC))  # 23:30 ICT on 14/12/2023: the year before


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("annual")
    store = SQLiteStore(root / "events.db")
    store.open()
    seed(store, august=300)
    settings = Settings(environment="test", data_dir=root, province="Tỉnh mẫu",
                        reports={"recipient_preset": "mps_a05", "signer": {"title": "Giám đốc", "name": "Lê Văn B"}})
    archive = ReportArchive(root)
    db = archive.db
    for body in SYSTEMS:
        InfoSystems(db, store).create(body, actor="test", unit=None, scope=None)
    _incidents(db, store)
    _report, ctx, outputs = generate(
        store, settings, archive, ReportRequest(period="2024-Y", formats=("pdf", "html", "csv", "docx")), now=NOW
    )
    q = AlertQuery(start=YEAR_START, end=YEAR_END)
    expected = {
        "total": store.count_alerts(q)["total"],
        "high": store.count_alerts(AlertQuery(start=YEAR_START, end=YEAR_END, severity=["high"]))["total"],
        "medium_low": store.count_alerts(AlertQuery(start=YEAR_START, end=YEAR_END,
                                                    severity=["medium", "low"]))["total"],
        "handling.handled": store.count_alerts(AlertQuery(start=YEAR_START, end=YEAR_END,
                                                          status=[AlertStatus.RESOLVED]))["total"],
        "annual.systems": 3, "annual.systems_approved": 1, "annual.systems_level_2": 1,
        "annual.systems_level_3": 1, "annual.systems_level_4": 1, "annual.systems_level_5": 0,
        "annual.incidents": 3, "annual.incidents_serious": 1, "annual.incidents_high": 1,
        "annual.incidents_medium": 1, "annual.incidents_national_security": 1, "annual.incidents_personal_data": 1,
        "annual.initial_notice_on_time": 1, "annual.report_72h_on_time": 1, "annual.final_reports": 1,
    }
    archive.close()
    store.close()
    assert expected["total"] > 300  # July, August and September of 2024 all lie inside the year
    return {"ctx": ctx, "out": outputs, "expected": expected, "root": root}


def test_the_year_runs_from_15_december_to_14_december() -> None:
    period = parse_period("2024-Y")
    assert (period.start, period.end) == (YEAR_START, YEAR_END)
    assert period.label("vi") == "năm 2024" and period.range_text("vi") == "từ ngày 15/12/2023 đến ngày 14/12/2024"
    assert period.previous().code == "2023-Y" and period.next().code == "2025-Y"


def test_html_figures_equal_the_store_and_the_inventory(year: dict[str, Any]) -> None:
    html = year["out"]["html"].decode("utf-8")
    shown = html_figures(html)
    for key, value in year["expected"].items():
        assert shown[key] == value, key
    assert "Mẫu số 08" in html
    assert "Hệ thống cũ đã dừng" not in html  # retired: not in the form
    rows = re.findall(r'<tr data-system="[^"]+">(.*?)</tr>', html, re.S)
    assert len(rows) == 3
    first = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0])]
    # ordered by level, highest first: the level-4 system leads
    assert first == ["1", "Phần mềm một cửa điện tử", "Sở Nội vụ", "Sở Nội vụ", "4", "Chưa trình", "–", "–", "–",
                     "Kế hoạch", "–", "Chưa"]


def test_docx_read_back_with_python_docx(year: dict[str, Any]) -> None:
    docx = pytest.importorskip("docx")
    from docx.shared import Pt

    document = docx.Document(io.BytesIO(year["out"]["docx"]))
    assert document.styles["Normal"].font.name == "Times New Roman"
    assert Pt(13) <= document.styles["Normal"].font.size <= Pt(14)
    body = [p.text for p in document.paragraphs]
    assert "Mẫu số 08" in body
    assert any(p.startswith("Kính gửi: Cục An ninh mạng") for p in body)
    vi = lambda n: format_decimal(n, locale="vi")  # noqa: E731
    exp = year["expected"]
    summary = next(p for p in body if p.startswith("Trong năm 2024"))
    assert f"ghi nhận {vi(exp['total'])} cảnh báo (trong đó {vi(exp['high'])} cảnh báo mức độ cao)" in summary
    assert "3 hệ thống thông tin" in summary and "và 3 sự cố" in summary
    systems = next(tb for tb in document.tables if tb.rows[0].cells[0].text == "STT")
    assert [c.text for c in systems.rows[0].cells] == [
        "STT", "Tên hệ thống", "Chủ quản", "Đơn vị vận hành", "Cấp độ đề xuất", "Tình trạng phê duyệt",
        "Quyết định phê duyệt", "Quy chế bảo đảm an toàn", "Dự kiến phê duyệt", "Tình trạng triển khai",
        "Dự kiến hoàn thành", "Đã kiểm tra, đánh giá",
    ]
    portal = next([c.text for c in r.cells] for r in systems.rows[1:] if r.cells[1].text == "Cổng dịch vụ công tỉnh")
    assert portal[2:] == ["UBND tỉnh", "Trung tâm Chuyển đổi số", "3", "Đã phê duyệt", "123/QĐ-UBND ngày 01/02/2024",
                          "Quy chế 45/QC-STTTT", "–", "Đang vận hành", "–", "Có"]
    assert len(systems.rows) == 4
    cells = {row.cells[0].text: row.cells[-1].text for tb in document.tables for row in tb.rows}
    for label, key in [("Tổng số", "total"), ("Số sự cố", "annual.incidents"),
                       ("Có vi phạm dữ liệu cá nhân", "annual.incidents_personal_data"),
                       ("Thông báo ban đầu đúng hạn", "annual.initial_notice_on_time"),
                       ("Báo cáo 72 giờ đúng hạn", "annual.report_72h_on_time"),
                       ("Đã phê duyệt cấp độ", "annual.systems_approved"), ("Cấp độ 4", "annual.systems_level_4")]:
        assert int(cells[label].replace(".", "")) == exp[key], label
    signer = [p.text for p in document.tables[-1].rows[0].cells[1].paragraphs if p.text]
    assert signer[0] == "GIÁM ĐỐC" and signer[-1] == "Lê Văn B"


def test_csv_has_every_figure_and_the_system_table(year: dict[str, Any]) -> None:
    rows = list(csv.reader(io.StringIO(year["out"]["csv"].decode("utf-8-sig"))))
    summary = {r[1]: r for r in rows if r and r[0] == "summary"}
    for key, value in year["expected"].items():
        assert summary[key][3] == str(value), key
        assert summary[key][2], f"{key} has no label"
    head = rows.index(next(r for r in rows if r and r[0] == "system_id"))
    assert rows[head][1:4] == ["STT", "Tên hệ thống", "Chủ quản"]
    names = [r[2] for r in rows[head + 1 : head + 4]]
    assert names == ["Phần mềm một cửa điện tử", "Cổng dịch vụ công tỉnh", "Hệ thống quản lý văn bản"]


@pytest.mark.skipif(not POPPLER, reason="poppler-utils not installed")
def test_pdf_read_back_with_pdftotext(year: dict[str, Any], tmp_path: Path) -> None:
    pdf = tmp_path / "annual.pdf"
    pdf.write_bytes(year["out"]["pdf"])
    text = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = " ".join(text.split())
    exp = year["expected"]
    vi = lambda n: format_decimal(n, locale="vi")  # noqa: E731
    assert "Mẫu số 08" in flat and "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in flat
    assert f"ghi nhận {vi(exp['total'])} cảnh báo (trong đó {vi(exp['high'])} cảnh báo mức độ cao) và 3 sự cố" in flat
    for label, key in [("Số sự cố", "annual.incidents"), ("Sự cố nghiêm trọng", "annual.incidents_serious"),
                       ("Thông báo ban đầu đúng hạn", "annual.initial_notice_on_time"),
                       ("Đã phê duyệt cấp độ", "annual.systems_approved"), ("Tổng số", "total")]:
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)\s*$", text, re.M)
        assert match and int(match.group(1).replace(".", "")) == exp[key], label
    for name in ("Cổng dịch vụ công tỉnh", "Phần mềm một cửa điện tử"):
        assert name in flat or name.split()[0] in flat  # a narrow column may wrap the name
    assert "Hệ thống cũ đã dừng" not in flat
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Liberation-Serif" in fonts


def test_annual_summary_is_archived(year: dict[str, Any]) -> None:
    root: Path = year["root"]
    archive = ReportArchive(root)
    try:
        report = archive.recent(limit=1)[0]
    finally:
        archive.close()
    assert report.period == "2024-Y" and report.summary.startswith("Trong năm 2024 (từ ngày 15/12/2023")
    assert timedelta(0) <= NOW - report.created_at <= timedelta(seconds=1)
