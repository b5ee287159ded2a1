"""Issue 17, part 1: the periodic report says what the store says, in the administrative form.

The August 2024 fixture is rendered by a real ``soclite report`` process with a configuration
file (addressee preset, parent agency, "Nơi nhận", signer), read back with poppler's pdftotext
and pdftoppm, and every figure checked against a fresh query of the store; the isolation counts
are checked against a real command queue in control.db (sent vs. confirmed by the agent).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from babel.numbers import format_decimal

from soclite.config import Settings
from soclite.control.commands import CommandQueue
from soclite.models import AuditEntry, Host, HostType, Unit
from soclite.reports.archive import ReportArchive
from soclite.reports.render import Header
from soclite.reports.service import ReportRequest, generate
from soclite.store.base import AlertQuery
from soclite.store.sqlite import SQLiteStore
from tests.reports.expected import all_alerts, expected_figures, html_figures, month_bounds
from tests.reports.seed import seed

POPPLER = all(shutil.which(tool) for tool in ("pdftotext", "pdftoppm"))
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

CONFIG = {
    "environment": "test",
    "province": "Tỉnh mẫu",
    "reports": {
        "recipient_preset": "mps_a05",
        "issuing_parent": "Sở Khoa học và Công nghệ {province}",
        "issuing_unit": "Trung tâm Giám sát an toàn thông tin mạng",
        "copies_to": ["most", "Ủy ban nhân dân tỉnh (để báo cáo)"],
        "archive_copy": "Lưu: VT, TTGS",
        "signer": {"authority": "KT. Giám đốc", "title": "Phó Giám đốc", "name": "Nguyễn Văn An"},
    },
}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCLITE_")}
    return subprocess.run([sys.executable, "-m", "soclite", *args], capture_output=True, text=True, timeout=180,
                          cwd=cwd, env=env)


@pytest.fixture(scope="module")
def august(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("doc")
    data_dir = root / "data"
    data_dir.mkdir()
    store = SQLiteStore(data_dir / "events.db")
    store.open()
    seed(store, august=700)
    store.close()
    config = root / "soclite.yml"
    config.write_text(yaml.safe_dump(CONFIG, allow_unicode=True), encoding="utf-8")
    out = root / "out"
    proc = _run("report", "--data-dir", str(data_dir), "--config", str(config), "--period", "2024-08", "--lang",
                "vi", "--format", "pdf,html,csv", "--out", str(out), cwd=root)
    assert proc.returncode == 0, proc.stderr
    return {"data_dir": data_dir, "out": out}


def _expected(data_dir: Path) -> dict[str, int]:
    """What the store says; "now" as the as-of time is safe: every open alert of 2024 is late either way."""
    store = SQLiteStore(data_dir / "events.db")
    store.open()
    try:
        start, end = month_bounds(2024, 8)
        return expected_figures(store, start, end, month_bounds(2024, 7), None, datetime.now(UTC),
                                Settings(environment="test").sla_minutes.model_dump(), data_dir)
    finally:
        store.close()


def _pdf_text(pdf: Path, *extra: str) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", *extra, str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdftoppm) not installed")
def test_pdf_header_summary_and_figures_match_the_store(august: dict[str, object]) -> None:
    data_dir, out = Path(str(august["data_dir"])), Path(str(august["out"]))
    html = (out / "report_2024-08_vi.html").read_text(encoding="utf-8")
    exp = _expected(data_dir)
    text = _pdf_text(out / "report_2024-08_vi.pdf")
    flat = " ".join(text.split())
    vi = lambda n: format_decimal(n, locale="vi")  # noqa: E731

    # the issuing body in capitals under its parent agency, then the number (Decree 30/2020 header)
    parent = flat.index("SỞ KHOA HỌC VÀ CÔNG NGHỆ TỈNH MẪU")
    unit = flat.index("TRUNG TÂM GIÁM SÁT AN TOÀN THÔNG TIN MẠNG")
    assert parent < unit < flat.index("Số: 001/BC-ATTT")
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in flat and "Độc lập - Tự do - Hạnh phúc" in flat
    # addressee from the preset (the current oversight body), one setting away from the default
    assert "Kính gửi: Cục An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao (A05), Bộ Công an" in flat
    # "Nơi nhận" and the signer block from the configuration
    copies = flat[flat.index("Nơi nhận:"):]
    assert re.search(r"- Như trên; .*- Bộ Khoa học và Công nghệ; .*- Ủy ban nhân dân tỉnh \(để báo cáo\); .*"
                     r"- Lưu: VT, TTGS\.", copies), copies[:400]
    for line in ("KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC", "Nguyễn Văn An"):
        assert line in copies, line

    # the summary: recorded (not "recorded and handled"), then closed vs. still open, as the store counts
    closed = exp["handling.handled"] + exp["handling.false_positive"]
    assert "đã ghi nhận và xử lý" not in flat
    assert (f"Trong tháng 8/2024, đã ghi nhận {vi(exp['total'])} cảnh báo mất an toàn thông tin, trong đó có "
            f"{vi(exp['high'])} cảnh báo mức độ cao, {vi(exp['medium_low'])} cảnh báo mức độ trung bình và thấp."
            ) in flat
    assert f"Đã xử lý xong {vi(closed)} cảnh báo" in flat
    assert f"còn {vi(exp['handling.unhandled'])} cảnh báo đang theo dõi, xử lý." in flat
    assert exp["handling.unhandled"] > 0 and closed > 0  # the fixture really has both

    # every labelled figure as the reader sees it in the PDF
    for label, key in [
        ("Đã xử lý", "handling.handled"), ("Chưa xử lý xong", "handling.unhandled"), ("Quá hạn", "handling.late"),
        ("Xử lý đúng hạn", "handling.on_time"), ("Phát hiện mã độc", "malware"),
        ("Số yêu cầu cô lập (nhật ký thao tác)", "isolation_requests"),
        ("Số lệnh cô lập đã gửi tới agent", "isolation_commands"),
        ("Số lượt cô lập máy (agent xác nhận đã áp dụng)", "isolations"),
        ("Số máy đã bị cô lập trong kỳ", "hosts_isolated"), ("Máy chủ được giám sát", "scope.servers"),
        ("Máy trạm được giám sát", "scope.workstations"), ("Máy đang bị cô lập", "scope.isolated_now"),
    ]:
        match = re.search(re.escape(label) + r" ([\d.]+)\b", flat)
        assert match, f"{label!r} not followed by a number in the PDF"
        assert int(match.group(1).replace(".", "")) == exp[key], (label, match.group(1), exp[key])
    assert exp["isolation_requests"] == 2  # the seed's audit has two isolation requests in August
    # the severity table, with its shares, and the statistical trend section (issue 17)
    for label, key in [("Cao", "high"), ("Trung bình và thấp", "medium_low"), ("Tổng số", "total")]:
        match = re.search(re.escape(label) + r" ([\d.]+) ([\d,]+)%", flat)
        assert match and int(match.group(1).replace(".", "")) == exp[key], (label, key)
    assert "VIII. Phát hiện xu hướng bằng thống kê" in flat and "trung vị" in flat

    shown = html_figures(html)
    wrong = {k: (v, exp[k]) for k, v in shown.items() if k in exp and exp[k] != v}
    assert not wrong, wrong


def test_csv_labels_every_row_and_rounds_numbers(august: dict[str, object]) -> None:
    data_dir, out = Path(str(august["data_dir"])), Path(str(august["out"]))
    rows = list(csv.reader(io.StringIO((out / "report_2024-08_vi.csv").read_text(encoding="utf-8-sig"))))
    block = rows[1 : rows.index([])]
    blank = [r for r in block if not r[2].strip()]
    assert not blank, f"rows without a label: {blank}"
    keys = {r[1] for r in block if r[0] == "summary"}
    assert {"handling.mtta_minutes", "handling.mttr_minutes", "scope.servers", "scope.agents_active"} <= keys
    for r in block:
        if re.fullmatch(r"-?\d+\.\d+", r[3]):
            assert len(r[3].split(".")[1]) <= 2, r

    # MTTA recomputed from the alerts: the mean of (first response - first seen), rounded as the CSV says
    store = SQLiteStore(data_dir / "events.db")
    store.open()
    try:
        start, end = month_bounds(2024, 8)
        waits = [
            (min(t for t in (a.acknowledged_at, a.closed_at) if t) - a.first_seen).total_seconds() / 60
            for a in all_alerts(store, AlertQuery(start=start, end=end))
            if a.acknowledged_at or a.closed_at
        ]
    finally:
        store.close()
    summary = {r[1]: r[3] for r in block if r[0] == "summary"}
    assert float(summary["handling.mtta_minutes"]) == round(sum(waits) / len(waits), 2)
    assert summary["scope.national_enabled"] == "0"


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdftoppm) not installed")
def test_no_page_is_nearly_empty(august: dict[str, object], tmp_path: Path) -> None:
    """Each page but the last is filled at least 60% down; the last one holds more than a stray line."""
    from PIL import Image

    out = Path(str(august["out"]))
    subprocess.run(["pdftoppm", "-png", "-r", "30", str(out / "report_2024-08_vi.pdf"), str(tmp_path / "p")],
                   check=True)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) >= 3
    fill = []
    for png in pages:
        image = Image.open(png).convert("L")
        width, height = image.size
        px = image.load()
        inked = [y for y in range(height) if any(px[x, y] < 128 for x in range(width))]
        fill.append(round(max(inked) / height, 2) if inked else 0.0)
    assert all(f >= 0.6 for f in fill[:-1]) and fill[-1] >= 0.2, fill


def _enqueue_and_report(data_dir: Path, store: SQLiteStore) -> None:
    queue = CommandQueue.open(data_dir, store)
    try:
        first = queue.enqueue("pc-a", "isolate", {"reason": "t"}, 3600, "k1")
        queue.enqueue("pc-b", "isolate", {"reason": "t"}, 3600, "k2")  # never fetched
        assert [c.id for c in queue.pending_for("ag-a", "pc-a")] == [first.id]
        queue.report(first.id, False, "nft: permission denied")
    finally:
        queue.close()


def test_isolations_count_confirmed_not_sent(tmp_path: Path) -> None:
    """Two commands sent, none applied: 2 sent, 0 isolated; then one confirmed: 1 isolated, on 1 host."""
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    settings = Settings(environment="test", data_dir=tmp_path)
    try:
        store.put_unit(Unit(code="u1", name="Đơn vị 1"))
        store.put_unit(Unit(code="u2", name="Đơn vị 2"))
        store.put_host(Host(id="pc-a", name="PC-A", type=HostType.WORKSTATION, unit="u1", agent_id="ag-a"))
        store.put_host(Host(id="pc-b", name="PC-B", type=HostType.WORKSTATION, unit="u2", agent_id="ag-b"))
        store.append_audit(AuditEntry(at=datetime.now(UTC), actor="user:admin", action="host.isolate",
                                      target="host:pc-a", unit="u1"))
        _enqueue_and_report(tmp_path, store)
        period = datetime.now(UTC).astimezone(ZONE).strftime("%Y-%m")

        def render(unit: str | None = None) -> tuple[object, dict[str, int]]:
            archive = ReportArchive(tmp_path)
            try:
                _r, ctx, outputs = generate(store, settings, archive,
                                            ReportRequest(period=period, formats=("html",), unit=unit))
            finally:
                archive.close()
            return ctx, html_figures(outputs["html"].decode("utf-8"))

        _ctx, shown = render()
        assert (shown["isolation_requests"], shown["isolation_commands"], shown["isolations"],
                shown["hosts_isolated"]) == (1, 2, 0, 0), shown
        queue = CommandQueue.open(tmp_path, store)
        try:
            third = queue.enqueue("pc-b", "isolate", {"reason": "t"}, 3600, "k3")
            queue.pending_for("ag-b", "pc-b")
            queue.report(third.id, True, "table inet soclite_isolation { ... }")
        finally:
            queue.close()
        _ctx, shown = render()
        assert (shown["isolation_commands"], shown["isolations"], shown["hosts_isolated"]) == (3, 1, 1), shown
        # a unit's report counts the commands of its own hosts only
        _ctx, shown = render("u1")
        assert (shown["isolation_requests"], shown["isolation_commands"], shown["isolations"]) == (1, 1, 0), shown
    finally:
        store.close()


def test_addressee_presets_default_and_one_setting_away() -> None:
    default = Header.from_settings(Settings(environment="test"), "001/BC-ATTT")
    assert default.recipient == "Bộ Thông tin và Truyền thông"  # the Ministry the project first reported to
    assert default.issuing_parent == "Sở Khoa học và Công nghệ Tỉnh mẫu"
    a05 = Header.from_settings(Settings(environment="test", reports={"recipient_preset": "mps_a05"}), "1")
    assert "(A05), Bộ Công an" in a05.recipient
    dost = Header.from_settings(Settings(environment="test", province="Tỉnh Đồng Nai",
                                         reports={"recipient_preset": "dost", "copies_to": ["most", "X"]}), "1")
    assert dost.recipient == "Sở Khoa học và Công nghệ Tỉnh Đồng Nai"
    assert dost.distribution("vi") == ["- Như trên;", "- Bộ Khoa học và Công nghệ;", "- X;", "- Lưu: VT."]
    spelled = Header.from_settings(Settings(environment="test", reports={"recipient": "Văn phòng UBND tỉnh"}), "1")
    assert spelled.recipient == "Văn phòng UBND tỉnh"
    with pytest.raises(ValueError, match="recipient_preset"):
        Settings(environment="test", reports={"recipient_preset": "ministry-of-nowhere"})


def test_docx_in_the_decree_30_form(august: dict[str, object], tmp_path: Path) -> None:
    """The DOCX read back with python-docx: page, margins, font, header, figures, charts, "Nơi nhận", signer."""
    docx = pytest.importorskip("docx")
    from docx.shared import Mm, Pt

    data_dir = Path(str(august["data_dir"]))
    config = tmp_path / "soclite.yml"
    config.write_text(yaml.safe_dump(CONFIG, allow_unicode=True), encoding="utf-8")
    proc = _run("report", "--data-dir", str(data_dir), "--config", str(config), "--period", "2024-08", "--lang",
                "vi", "--format", "docx", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    document = docx.Document(str(tmp_path / "out" / "report_2024-08_vi.docx"))
    section = document.sections[0]
    assert abs(section.page_width - Mm(210)) < Mm(0.5) and abs(section.page_height - Mm(297)) < Mm(0.5)
    assert Mm(20) <= section.top_margin <= Mm(25) and Mm(20) <= section.bottom_margin <= Mm(25)
    assert Mm(30) <= section.left_margin <= Mm(35) and Mm(15) <= section.right_margin <= Mm(20)
    normal = document.styles["Normal"].font
    assert normal.name == "Times New Roman" and Pt(13) <= normal.size <= Pt(14)

    head = document.tables[0].rows[0].cells
    left = [p.text for p in head[0].paragraphs]
    assert left == ["SỞ KHOA HỌC VÀ CÔNG NGHỆ TỈNH MẪU", "TRUNG TÂM GIÁM SÁT AN TOÀN THÔNG TIN MẠNG", "Số: 002/BC-ATTT"]
    assert all(r.bold for r in head[0].paragraphs[1].runs) and not any(r.bold for r in head[0].paragraphs[0].runs)
    right = [p.text for p in head[1].paragraphs]
    assert right[:2] == ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    assert re.fullmatch(r"Tỉnh mẫu, ngày \d\d tháng \d\d năm \d{4}", right[2]), right[2]

    body = [p.text for p in document.paragraphs]
    assert "BÁO CÁO" in body
    assert any(p.startswith("Kính gửi: Cục An ninh mạng") and "(A05), Bộ Công an" in p for p in body)
    exp = _expected(data_dir)
    vi = lambda n: format_decimal(n, locale="vi")  # noqa: E731
    summary = next(p for p in body if p.startswith("Trong tháng 8/2024"))
    assert f"đã ghi nhận {vi(exp['total'])} cảnh báo" in summary
    assert f"còn {vi(exp['handling.unhandled'])} cảnh báo đang theo dõi" in summary

    cells = {row.cells[0].text: row.cells[-1].text for table in document.tables[1:-1] for row in table.rows}
    for label, key in [("Máy chủ được giám sát", "scope.servers"), ("Chưa xử lý xong", "handling.unhandled"),
                       ("Số lệnh cô lập đã gửi tới agent", "isolation_commands"),
                       ("Số lượt cô lập máy (agent xác nhận đã áp dụng)", "isolations"),
                       ("Số yêu cầu cô lập (nhật ký thao tác)", "isolation_requests"), ("Phát hiện mã độc", "malware")]:
        assert int(cells[label].replace(".", "")) == exp[key], label
    assert len(document.inline_shapes) == 2  # the two charts

    copies, signer = document.tables[-1].rows[0].cells
    assert [p.text for p in copies.paragraphs] == [
        "Nơi nhận:", "- Như trên;", "- Bộ Khoa học và Công nghệ;", "- Ủy ban nhân dân tỉnh (để báo cáo);",
        "- Lưu: VT, TTGS.",
    ]
    assert copies.paragraphs[0].runs[0].bold and copies.paragraphs[0].runs[0].italic
    lines = [p.text for p in signer.paragraphs if p.text]
    assert lines[:2] == ["KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC"] and lines[-1] == "Nguyễn Văn An"
