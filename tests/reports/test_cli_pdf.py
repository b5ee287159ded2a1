"""`soclite report` as a real process; the PDF checked with poppler (pdftotext, pdffonts, pdftoppm).

The first page is rendered to test-artifacts/reports/report-page1.png and kept.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.numbers import format_decimal
from PIL import Image

from soclite.store.base import AlertQuery
from soclite.store.sqlite import SQLiteStore
from tests.reports.conftest import ARTIFACTS
from tests.reports.expected import month_bounds
from tests.reports.seed import seed

SOCLITE = [sys.executable, "-m", "soclite"]
POPPLER = all(shutil.which(tool) for tool in ("pdftotext", "pdffonts", "pdftoppm"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCLITE_")}
    return subprocess.run([*SOCLITE, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("cli")
    store = SQLiteStore(root / "events.db")
    store.open()
    seed(store, august=1300)
    start, end = month_bounds(2024, 8)
    counts = {
        "total": store.count_alerts(AlertQuery(start=start, end=end))["total"],
        "high": store.count_alerts(AlertQuery(start=start, end=end, severity=["high"]))["total"],
        "medlow": store.count_alerts(AlertQuery(start=start, end=end, severity=["medium", "low"]))["total"],
    }
    store.close()
    return root, counts


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdffonts, pdftoppm) not installed")
def test_cli_pdf_has_summary_with_diacritics_and_embedded_font(
    data_dir: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    root, counts = data_dir
    out = tmp_path / "out"
    proc = _run("report", "--data-dir", str(root), "--period", "2024-08", "--lang", "vi", "--format", "pdf,html,csv",
                "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pdf = out / "report_2024-08_vi.pdf"
    assert pdf.is_file() and (out / "report_2024-08_vi.html").is_file() and (out / "report_2024-08_vi.csv").is_file()
    # stdout lists each file with its SHA-256, as archived
    assert proc.stdout.count("sha256=") == 3

    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = " ".join(text.split())
    vi = lambda n: format_decimal(n, locale="vi")  # noqa: E731
    sentence = (
        f"Trong tháng 8/2024, đã ghi nhận {vi(counts['total'])} cảnh báo mất an toàn thông tin, "
        f"trong đó có {vi(counts['high'])} cảnh báo mức độ cao, {vi(counts['medlow'])} cảnh báo mức độ "
        "trung bình và thấp."
    )
    assert sentence in flat
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in flat and "Độc lập - Tự do - Hạnh phúc" in flat

    # Decree 30/2020: Times New Roman 13-14 pt; offline, its metric-compatible clone Liberation Serif
    # (fonts-liberation2) is embedded, in regular and bold, and no sans-serif face sets the body
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = fonts.splitlines()[2:]
    serif = [line for line in rows if "Liberation-Serif" in line.split()[0]]
    assert {line.split()[0].split("+")[-1] for line in serif} >= {"Liberation-Serif", "Liberation-Serif-Bold"}, fonts
    assert all(line.split()[-5] == "yes" for line in serif), fonts  # the "emb" column
    assert not [line for line in rows if "Noto-Sans" in line or "DejaVu" in line], fonts
    # the body text's size, read back from the first page's layout (pdftotext -bbox: word boxes in points)
    bbox = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    heights = [float(m[1]) - float(m[0]) for m in re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">Trong<', bbox)]
    # a 13 pt line's word box is the font's ascent + descent: 13 x (0.891 + 0.216) ≈ 14.4 pt for Liberation Serif
    assert heights and all(13 * 1.05 <= h <= 14 * 1.15 for h in heights), (heights, bbox[:500])

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = ARTIFACTS / "report-page"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(prefix)], check=True)
    png = next(ARTIFACTS.glob("report-page*1.png"))
    png.replace(ARTIFACTS / "report-page1.png")
    image = Image.open(ARTIFACTS / "report-page1.png").convert("L")
    assert image.size[0] > 400 and image.size[1] > 600  # A4 at 60 dpi ≈ 496 x 702
    histogram = image.histogram()
    dark = sum(histogram[:128])
    assert dark > 2000, "the first page is (nearly) blank"
    shutil.copyfile(pdf, ARTIFACTS / "report-2024-08-vi.pdf")


def test_cli_bad_period_and_language_exit_with_a_clear_message(
    data_dir: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    root, _ = data_dir
    proc = _run("report", "--data-dir", str(root), "--period", "2024-13", "--lang", "vi", "--format", "pdf",
                "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Invalid value for '--period'" in proc.stderr and "2024-Q3" in proc.stderr
    proc = _run("report", "--data-dir", str(root), "--period", "2024-08", "--lang", "fr", "--format", "pdf",
                "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "'fr' is not one of 'vi', 'en'" in proc.stderr
    proc = _run("report", "--data-dir", str(root), "--period", "2024-08", "--format", "xlsx",
                "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "unknown format 'xlsx'" in proc.stderr
    proc = _run("report", "--data-dir", str(root), "--period", "2024-08", "--format", "csv", "--unit", "nope",
                "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert proc.returncode == 1 and "unknown unit 'nope'" in proc.stderr


def test_cli_unit_scoped_csv(data_dir: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    root, _ = data_dir
    proc = _run("report", "--data-dir", str(root), "--period", "2024-08", "--lang", "en", "--format", "csv",
                "--unit", "syt", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report_2024-08_en_syt.csv").read_text(encoding="utf-8-sig")
    store = SQLiteStore(root / "events.db")
    store.open()
    try:
        start, end = month_bounds(2024, 8)
        total = store.count_alerts(AlertQuery(start=start, end=end, units=frozenset({"syt", "bvdk"})))["total"]
    finally:
        store.close()
    rows = list(csv.reader(io.StringIO(text)))
    assert ["summary", "total", "Total", str(total)] in rows
    assert ["header", "scope_unit", "Scope", "syt"] in rows
