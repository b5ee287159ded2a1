"""Every number in a rendered report equals the same count asked of the store (SQLite and OpenSearch API)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from babel.numbers import format_decimal

from soclite.reports.archive import ReportArchive
from soclite.reports.service import ReportRequest, generate, resolve_units
from tests.reports.conftest import Seeded
from tests.reports.expected import expected_figures, html_figures, month_bounds, summary_of

REQUIRED = {
    "total", "high", "medium", "low", "medium_low", "handling.handled", "handling.false_positive",
    "handling.unhandled", "handling.on_time", "handling.late", "incidents", "malware", "isolations",
    "isolation_requests", "isolation_commands", "hosts_isolated",
    "previous_total", "previous.high", "scope.servers", "scope.workstations", "scope.with_agent",
    "scope.agents_active", "scope.isolated_now", "tactic.untagged", "tactic.execution",
}


def _render(seeded: Seeded, **kw: object) -> tuple[object, object, dict[str, bytes]]:
    archive = ReportArchive(seeded.data_dir)
    try:
        return generate(seeded.store, seeded.settings, archive, ReportRequest(**kw))  # type: ignore[arg-type]
    finally:
        archive.close()


def _check(seeded: Seeded, html: str, units: frozenset[str] | None, as_of: datetime, lang: str = "vi") -> dict:
    start, end = month_bounds(2024, 8)
    exp = expected_figures(
        seeded.store, start, end, month_bounds(2024, 7), units, as_of, seeded.settings.sla_minutes.model_dump(),
        seeded.data_dir,
    )
    shown = html_figures(html, lang)
    missing = REQUIRED - shown.keys()
    assert not missing, f"figures not in the report: {missing}"
    wrong = {k: (v, exp.get(k)) for k, v in shown.items() if exp.get(k) != v}
    assert not wrong, f"report vs store (shown, expected): {wrong}"
    assert len(shown) >= len(REQUIRED) + 10  # top rules/hosts/units rows are checked too
    return exp


def test_month_report_reconciles_with_store(seeded: Seeded) -> None:
    report, ctx, out = _render(seeded, period="2024-08", lang="vi", formats=("html", "csv"))
    html = out["html"].decode("utf-8")
    exp = _check(seeded, html, None, datetime.fromisoformat(report.params["as_of"]))  # type: ignore[attr-defined]
    assert exp["total"] > 1000  # the seed really exercises thousands separators
    fmt = lambda n: format_decimal(n, locale="vi")  # noqa: E731
    sentence = (
        f"Trong tháng 8/2024, đã ghi nhận {fmt(exp['total'])} cảnh báo mất an toàn thông tin, "
        f"trong đó có {fmt(exp['high'])} cảnh báo mức độ cao, {fmt(exp['medium_low'])} cảnh báo mức độ "
        "trung bình và thấp."
    )
    assert "." in fmt(exp["total"])
    assert summary_of(html) == sentence
    assert report.summary.startswith(sentence + " Đã xử lý xong ")  # type: ignore[attr-defined]
    # boundaries: 00:30 ICT on 1 Aug is in, 23:30 ICT on 31 Jul and 00:30 ICT on 1 Sep are not
    ids = {row.id for row in ctx.rows}  # type: ignore[attr-defined]
    assert "a900001" in ids and "a900002" not in ids and "a900003" not in ids

    rows = list(csv.reader(io.StringIO(out["csv"].decode("utf-8-sig"))))
    summary = {r[1]: r[3] for r in rows if r and r[0] == "summary"}
    for key in ("total", "high", "medium", "low", "medium_low", "malware", "isolations", "isolation_requests",
                "previous_total",
                "handling.handled", "handling.late", "handling.on_time", "scope.servers"):
        assert int(summary[key]) == exp[key], key
    annex_header = rows.index(next(r for r in rows if r and r[0] == "alert_id"))
    annex = rows[annex_header + 1 :]
    assert len(annex) == exp["total"]
    assert sum(r[3] == "high" for r in annex) == exp["high"]
    # the query parameters archived with the report are the exact UTC bounds
    assert report.params["start"] == "2024-07-31T17:00:00+00:00"  # type: ignore[attr-defined]
    assert report.params["end"] == "2024-08-31T17:00:00+00:00"  # type: ignore[attr-defined]


def test_unit_scoped_report_reconciles(seeded: Seeded) -> None:
    units = resolve_units(seeded.store, "syt")
    assert units == frozenset({"syt", "bvdk"})
    report, _ctx, out = _render(seeded, period="2024-08", lang="vi", formats=("html",), unit="syt")
    html = out["html"].decode("utf-8")
    exp = _check(seeded, html, units, datetime.fromisoformat(report.params["as_of"]))  # type: ignore[attr-defined]
    assert 0 < exp["total"] < seeded.store.count_alerts(__import__("soclite.store.base", fromlist=["AlertQuery"])
                                                        .AlertQuery(start=month_bounds(2024, 8)[0],
                                                                    end=month_bounds(2024, 8)[1]))["total"]
    assert "Sở Y tế (syt)" in html


def test_english_report_reconciles(seeded: Seeded) -> None:
    report, _ctx, out = _render(seeded, period="2024-08", lang="en", formats=("html",))
    html = out["html"].decode("utf-8")
    exp = _check(seeded, html, None, datetime.fromisoformat(report.params["as_of"]), lang="en")  # type: ignore[attr-defined]
    fmt = lambda n: format_decimal(n, locale="en")  # noqa: E731
    assert summary_of(html) == (
        f"In August 2024, {fmt(exp['total'])} information security alerts were recorded, of which "
        f"{fmt(exp['high'])} were high severity and {fmt(exp['medium_low'])} medium and low severity."
    )


def test_quarter_and_half_year_labels(seeded: Seeded) -> None:
    _r, _ctx, out = _render(seeded, period="2024-Q3", lang="vi", formats=("html",))
    html = out["html"].decode("utf-8")
    assert summary_of(html).startswith("Trong quý III/2024, đã ghi nhận ")
    # Q3 = July + August + September: the store says how many
    start, _ = month_bounds(2024, 7)
    _, end = month_bounds(2024, 9)
    from soclite.store.base import AlertQuery

    assert html_figures(html)["total"] == seeded.store.count_alerts(AlertQuery(start=start, end=end))["total"]
    _r, _ctx, out = _render(seeded, period="2024-H2", lang="vi", formats=("html",))
    assert summary_of(out["html"].decode()).startswith("Trong 6 tháng cuối năm 2024, ")


def test_empty_period_says_so(seeded: Seeded) -> None:
    _r, ctx, out = _render(seeded, period="2023-01", lang="vi", formats=("html", "csv"))
    html = out["html"].decode("utf-8")
    assert "Không ghi nhận cảnh báo nào trong kỳ" in html
    assert html_figures(html)["handling.handled"] == 0
    assert ctx.total == 0  # type: ignore[attr-defined]
