"""The report sent upward through the national connector, and the connector figures of the report.

Against medallion (TAXII 2.1, a subprocess, killed and restarted as in tests/playbooks/test_pb_taxii.py):
indicators published by the national side are pulled, an alert is sent, the connector goes down while
the report waits in the national lane, comes back, and the report arrives as a STIX ``report`` SDO with
an ``artifact`` holding the PDF. The report's connector figures (IoCs received and sent in the period,
downtime, outages) must equal what the outbox recorded. The signed-JSON variant runs against a local
HTTPS receiver with mutual TLS that verifies the detached JWS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import stix2

from soclite.config import ReportSchedule
from soclite.playbooks.outbox import ActionStatus, RetryPolicy
from soclite.playbooks.worker import Worker
from soclite.reports.archive import ReportArchive
from soclite.reports.context import build_context
from soclite.reports.delivery import national_key, submit_national
from soclite.reports.periods import parse_period
from soclite.reports.render import Header, render_csv, render_html
from soclite.reports.scheduler import ReportScheduler
from soclite.reports.service import ReportRequest, generate
from tests.playbooks.pki import make_pki
from tests.playbooks.support import build_runtime, make_alert, make_settings, wait_for
from tests.playbooks.test_pb_signed_json import NationalReceiver
from tests.playbooks.test_pb_taxii import PASSWORD, PULL, PUSH, USER, Medallion, all_objects

HEADER = Header(doc_number="001/BC-ATTT", issuing_unit="Trung tâm", recipient="Bộ", province="Tỉnh mẫu")


def _indicator(pattern: str) -> dict[str, Any]:
    obj = stix2.Indicator(pattern=pattern, pattern_type="stix", valid_from="2026-01-01T00:00:00Z")
    return dict(json.loads(obj.serialize()))


def _intel_cells(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-intel="([^"]+)">([^<]+)<', html))


@pytest.mark.slow
def test_report_through_taxii_and_connector_figures(tmp_path: Path) -> None:
    medallion = Medallion(tmp_path)
    medallion.start()
    medallion.collection(PULL).add_objects(
        json.dumps(
            {
                "objects": [
                    _indicator("[ipv4-addr:value = '203.0.113.7']"),
                    _indicator("[domain-name:value = 'c2.example.net' OR url:value = 'http://c2.example.net/x']"),
                ]
            }
        )
    )
    settings = make_settings(
        tmp_path,
        playbooks=[],
        national={
            "enabled": True,
            "kind": "taxii",
            "taxii_url": medallion.api_root,
            "taxii_push_collection": PUSH,
            "taxii_pull_collection": PULL,
            "username": USER,
            "password": PASSWORD,
            "heartbeat_seconds": 3600,
            "pull_seconds": 3600,
        },
        reports={"schedules": [{"name": "thang", "every": "monthly", "national": True}]},
    )
    assert settings.reports.schedules[0] == ReportSchedule(name="thang", every="monthly", national=True)
    runtime = build_runtime(settings)
    archive = ReportArchive(settings.data_dir)
    worker = Worker(runtime, poll_seconds=0.05)
    try:
        report, _ctx, outputs = generate(
            runtime.store, settings, archive, ReportRequest(period="2024-08", formats=("pdf", "csv"))
        )
        worker.start()  # heartbeat (connector up) and the first pull of indicators
        wait_for(lambda: len(runtime.outbox.ioc_values("national:ip")) == 1)
        alert = make_alert()
        sync = runtime.outbox.submit(
            "national_sync", {}, idempotency_key="alert-1", requested_by="t", payload=alert.model_dump(mode="json")
        )
        wait_for(lambda: runtime.outbox.get(sync.id).status == ActionStatus.SUCCEEDED)

        medallion.kill()  # the national system goes away; the report waits in the lane
        fast = RetryPolicy(count=5, backoff=0.1, factor=2, max_backoff=0.4)
        assert submit_national(archive, report, settings, outbox=runtime.outbox, retry=fast) == "queued"
        (row,) = runtime.outbox.list_actions(action="national_report")
        assert row.idempotency_key == national_key(report) and row.lane == "national"
        wait_for(lambda: runtime.outbox.get(row.id).attempts >= 2)
        assert runtime.outbox.get(row.id).status in (ActionStatus.FAILED, ActionStatus.RUNNING)
        time.sleep(0.5)
        medallion.start()
        wait_for(lambda: runtime.outbox.get(row.id).status == ActionStatus.SUCCEEDED, timeout=60)
        # queued twice (a scheduler re-run): the same key, the same row, nothing sent again
        assert submit_national(archive, report, settings, outbox=runtime.outbox) == "queued"
        assert len(runtime.outbox.list_actions(action="national_report")) == 1

        objects = all_objects(medallion.collection(PUSH))
        (sdo,) = [o for o in objects if o["type"] == "report"]
        pdf_sha = next(f.sha256 for f in report.files if f.format == "pdf")
        assert sdo["x_soclite_sha256"] == pdf_sha and sdo["x_soclite_doc_number"] == report.doc_number
        assert sdo["x_soclite_period"] == "2024-08" and sdo["description"] == report.summary
        (artifact,) = [o for o in objects if o["type"] == "artifact"]
        assert artifact["id"] in sdo["object_refs"] and artifact["hashes"]["SHA-256"] == pdf_sha
        assert base64.b64decode(artifact["payload_bin"]) == outputs["pdf"]
        assert hashlib.sha256(base64.b64decode(artifact["payload_bin"])).hexdigest() == pdf_sha
        for obj in (sdo, artifact):
            stix2.parse(obj, allow_custom=True)

        # --- the connector figures of a report on the current period equal what the outbox recorded ---
        now = datetime.now(UTC)
        period = parse_period(now.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m"), settings.timezone)
        events = runtime.outbox.connector_events("taxii")
        assert [e.state for e in events] == ["up", "down", "up"]
        expected_down = (
            datetime.fromisoformat(events[2].at.replace("Z", "+00:00"))
            - datetime.fromisoformat(events[1].at.replace("Z", "+00:00"))
        ).total_seconds()
        assert expected_down >= 0.5
        received = runtime.outbox.db.reader().execute(
            "SELECT count(*) FROM ioc_received WHERE list LIKE 'national:%'"
        ).fetchone()[0]
        assert received == 3  # ip, domain, url
        ctx = build_context(runtime.store, settings, period, outbox=runtime.outbox, now=now)
        assert ctx.intel.iocs_received == received
        assert ctx.intel.iocs_held == 3
        assert ctx.intel.iocs_sent == 1  # the alert; the report itself is not an IoC/alert sent
        assert ctx.intel.outages == 1
        assert ctx.intel.downtime_minutes == pytest.approx(expected_down / 60.0)
        html = render_html(ctx, HEADER, "vi")
        cells = _intel_cells(html)
        assert cells["iocs_received"] == "3" and cells["iocs_sent"] == "1" and cells["outages"] == "1"
        assert cells["downtime_minutes"].endswith("phút")
        csv_rows = {
            line.split(",")[1]: line.split(",")[-1]
            for line in render_csv(ctx, HEADER, "en").decode("utf-8-sig").splitlines()
            if line.startswith("summary,intel.")
        }
        assert csv_rows["intel.iocs_received"] == "3" and csv_rows["intel.iocs_sent"] == "1"
        # the CSV rounds minutes to two decimals (issue 17: no float noise such as 30.463398499999997)
        assert float(csv_rows["intel.downtime_minutes"]) == pytest.approx(expected_down / 60.0, abs=0.005)
        # A past period saw none of it: zeros, not the current state.
        past = build_context(runtime.store, settings, parse_period("2024-08"), outbox=runtime.outbox, now=now)
        assert (past.intel.iocs_received, past.intel.iocs_sent, past.intel.outages) == (0, 0, 0)
        assert past.intel.downtime_minutes == 0.0 and past.intel.iocs_held == 3
        # A window cut inside the outage counts only its part of it.
        down_at = datetime.fromisoformat(events[1].at.replace("Z", "+00:00"))
        half = runtime.outbox.connector_downtime("taxii", down_at + timedelta(seconds=expected_down / 2), now, now)
        assert half[0] == pytest.approx(expected_down / 2) and half[1] == 1
    finally:
        worker.stop()
        if medallion.proc is not None and medallion.proc.poll() is None:
            medallion.kill()
        archive.close()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()


class ReportReceiver(NationalReceiver):
    """The signed-JSON national side, also taking ``POST /reports`` (signature verified first)."""

    def __init__(self, pki: dict[str, Path]) -> None:
        super().__init__(pki)
        self.reports: list[dict[str, Any]] = []

    def start(self) -> None:
        super().start()
        assert self.server is not None
        handler = self.server.RequestHandlerClass
        original = handler.do_POST  # type: ignore[attr-defined]
        outer = self

        def do_post(request: Any) -> None:
            if request.path != "/reports":
                return original(request)  # type: ignore[no-any-return]
            body = request.rfile.read(int(request.headers.get("Content-Length", "0")))
            ok = outer.verify(body, request.headers.get("X-JWS-Signature", ""))
            if ok:
                outer.reports.append(orjson.loads(body))
            request.send_response(200 if ok else 401)
            request.send_header("Content-Length", "2")
            request.end_headers()
            request.wfile.write(b"{}")
            return None

        handler.do_POST = do_post  # type: ignore[attr-defined]


def test_report_through_signed_json(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    receiver = ReportReceiver(pki)
    receiver.start()
    settings = make_settings(
        tmp_path,
        playbooks=[],
        national={
            "enabled": True,
            "kind": "signed_json",
            "https_url": f"https://127.0.0.1:{receiver.port}",
            "signing_key": str(pki["signing_key"]),
            "ca_certs": str(pki["ca"]),
            "client_cert": str(pki["client_cert"]),
            "client_key": str(pki["client_key"]),
            "heartbeat_seconds": 3600,
            "pull_seconds": 3600,
        },
        reports={"schedules": [{"name": "thang", "every": "monthly", "formats": ["pdf"], "national": True}]},
    )
    runtime = build_runtime(settings)
    scheduler = ReportScheduler(runtime)  # not started: the scheduled run is called with a chosen "now"
    archive = scheduler.archive
    try:
        (report_id,) = scheduler.run("thang", now=datetime(2024, 9, 5, 3, tzinfo=UTC))
        report = archive.get(report_id)
        outputs = {"pdf": archive.file_path(report, "pdf").read_bytes()}
        Worker(runtime).run_once()
        (row,) = runtime.outbox.list_actions(action="national_report")
        assert runtime.outbox.get(row.id).status == ActionStatus.SUCCEEDED, runtime.outbox.get(row.id)
        (message,) = receiver.reports
        body = message["report"]
        assert message["type"] == "report" and message["id"] == national_key(report)
        assert body["doc_number"] == report.doc_number and body["period"] == "2024-08"
        assert base64.b64decode(body["content_base64"]) == outputs["pdf"]
        assert body["sha256"] == hashlib.sha256(outputs["pdf"]).hexdigest() == report.files[0].sha256
        assert runtime.outbox.connector_status("signed_json").sent == 1
        assert archive.get(report.id).deliveries[0]["recipient"] == "national"
    finally:
        receiver.stop()
        archive.close()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()


def test_national_refused_without_connector_is_recorded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, playbooks=[])
    runtime = build_runtime(settings)
    archive = ReportArchive(settings.data_dir)
    try:
        report, _ctx, _out = generate(
            runtime.store, settings, archive, ReportRequest(period="2024-08", formats=("csv",))
        )
        assert submit_national(archive, report, settings, outbox=runtime.outbox) == "failed"
        (delivery,) = archive.get(report.id).deliveries
        assert delivery["status"] == "failed" and "disabled" in delivery["last_error"]
        assert runtime.outbox.list_actions(action="national_report") == []
    finally:
        archive.close()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()
