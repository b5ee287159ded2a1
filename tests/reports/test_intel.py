"""Exchange with the national system, read from the real playbook outbox when it runs in the process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from soclite.config import Settings
from soclite.reports.context import build_context
from soclite.reports.periods import parse_period
from soclite.reports.render import Header, render_html
from soclite.store.sqlite import SQLiteStore

HEADER = Header(doc_number="001/BC-ATTT", issuing_unit="Trung tâm", recipient="Bộ", province="Tỉnh mẫu")


def test_iocs_from_outbox_and_no_data_without_it(tmp_path: Path) -> None:
    from soclite.playbooks.outbox import Outbox

    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    outbox = Outbox(tmp_path / "outbox.db")
    settings = Settings(environment="test", data_dir=tmp_path)
    try:
        outbox.add_ioc_values("national:ip", "ip", ["203.0.113.5", "203.0.113.6", "198.51.100.7"], source_id="b1")
        outbox.add_ioc_values("local:domain", "domain", ["bad.example"])
        period = parse_period("2024-08")
        ctx = build_context(store, settings, period, outbox=outbox)
        assert ctx.intel.iocs_held == 3  # only the national lists
        assert ctx.intel.iocs_received == 0  # they arrived now, not in August 2024
        assert ctx.intel.iocs_sent == 0
        assert ctx.intel.downtime_minutes is None  # connector disabled and never seen: no data
        now = datetime.now(UTC)
        current = parse_period(now.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m"), settings.timezone)
        outbox.add_ioc_values("national:ip", "ip", ["203.0.113.5"], source_id="b2")  # known value: not new
        assert build_context(store, settings, current, outbox=outbox, now=now).intel.iocs_received == 3
        html = render_html(ctx, HEADER, "vi")
        assert "Không ghi nhận cảnh báo nào trong kỳ" in html

        bare = build_context(store, settings, period)
        assert bare.intel.iocs_received is None and bare.intel.iocs_sent is None
        assert render_html(bare, HEADER, "vi").count("không có dữ liệu") >= 3
        assert render_html(bare, HEADER, "en").count("no data") >= 3
    finally:
        outbox.close()
        store.close()
