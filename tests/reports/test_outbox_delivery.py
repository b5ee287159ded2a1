"""Report e-mail through the playbook outbox: SMTP down → retried / dead-lettered → SMTP up → one mail.

Real parts: the SQLite store, the outbox and its worker thread, aiosmtpd on 127.0.0.1, the API app
(list and retry actions with an admin token). The report is archived before any delivery and stays
intact (SHA-256 checked) through every failure.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from soclite.api.app import create_app
from soclite.playbooks.outbox import ActionStatus, RetryPolicy
from soclite.playbooks.worker import Worker
from soclite.reports.archive import ReportArchive, sha256_file
from soclite.reports.delivery import deliver, email_key, sync_outbox_deliveries
from soclite.reports.service import ReportRequest, generate
from tests.playbooks.support import build_runtime, make_settings, wait_for
from tests.reports.smtp import free_port, start_smtp

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette prefers its httpx fork; plain httpx works the same
    from fastapi.testclient import TestClient


def test_report_mail_retried_through_the_outbox_then_received_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: the SMTP server is down
    settings = make_settings(tmp_path, smtp={"host": "127.0.0.1", "port": port, "sender": "soc@tinh.gov.vn"})
    runtime = build_runtime(settings)
    archive = ReportArchive(settings.data_dir)
    worker = Worker(runtime, poll_seconds=0.05)
    controller = None
    try:
        report, _ctx, outputs = generate(
            runtime.store, settings, archive, ReportRequest(period="2024-08", formats=("pdf", "csv"))
        )
        pdf = archive.file_path(report, "pdf")
        worker.start()
        # Recipient 1 keeps retrying (short backoff); recipient 2 gives up after two attempts (dead letter).
        patient = deliver(
            archive, report, ["lanhdao@tinh.gov.vn"], settings.smtp, outbox=runtime.outbox,
            retry=RetryPolicy(count=1000, backoff=0.1, factor=1.5, max_backoff=0.3),
        )
        brief = deliver(
            archive, report, ["vanthu@tinh.gov.vn"], settings.smtp, outbox=runtime.outbox,
            retry=RetryPolicy(count=2, backoff=0.1, factor=1, max_backoff=0.1),
        )
        assert patient == {"lanhdao@tinh.gov.vn": "queued"} and brief == {"vanthu@tinh.gov.vn": "queued"}
        rows = {r.idempotency_key: r for r in runtime.outbox.list_actions(action="notify_email")}
        first = rows[email_key(report, "lanhdao@tinh.gov.vn")]
        second = rows[email_key(report, "vanthu@tinh.gov.vn")]

        dead = wait_for(lambda: runtime.outbox.get(second.id).status == ActionStatus.DEAD)
        assert dead
        wait_for(lambda: runtime.outbox.get(first.id).attempts >= 3)
        failing = runtime.outbox.get(first.id)
        assert failing.status in (ActionStatus.FAILED, ActionStatus.RUNNING, ActionStatus.PENDING)
        assert "Connection refused" in (runtime.outbox.get(second.id).last_error or "")
        # The report is untouched by the failures: still archived, same bytes.
        assert sha256_file(pdf) == next(f.sha256 for f in report.files if f.format == "pdf")
        assert {d["status"] for d in archive.get(report.id).deliveries} == {"queued"}
        # The report's own delivery list follows the outbox (the scheduler's periodic job does this).
        assert sync_outbox_deliveries(archive, runtime.outbox) == 2
        shown = {d["recipient"]: d for d in archive.get(report.id).deliveries}
        assert shown["vanthu@tinh.gov.vn"]["status"] == "failed"
        assert "Connection refused" in shown["vanthu@tinh.gov.vn"]["last_error"]
        assert shown["lanhdao@tinh.gov.vn"]["status"] == "retrying"

        admin = runtime.identity.create_token(role="admin", name="admin1")
        headers = {"Authorization": f"Bearer {admin}"}
        with TestClient(create_app(runtime)) as client:
            listed = client.get("/api/v1/actions", params={"status": "dead"}, headers=headers).json()
            assert [i["id"] for i in listed["items"]] == [second.id]

            controller, inbox = start_smtp(port)  # SMTP is back
            wait_for(lambda: runtime.outbox.get(first.id).status == ActionStatus.SUCCEEDED, timeout=30)
            retried = client.post(f"/api/v1/actions/{second.id}/retry", headers=headers)
            assert retried.status_code == 200, retried.text
            wait_for(lambda: runtime.outbox.get(second.id).status == ActionStatus.SUCCEEDED, timeout=30)

        # Delivering again (e.g. the scheduler runs twice) reuses the same idempotency keys: no new mail.
        deliver(archive, report, ["lanhdao@tinh.gov.vn", "vanthu@tinh.gov.vn"], settings.smtp,
                outbox=runtime.outbox)
        time.sleep(0.5)
        assert len(runtime.outbox.list_actions(action="notify_email")) == 2
        assert sorted(m["To"] for m in inbox.messages) == ["lanhdao@tinh.gov.vn", "vanthu@tinh.gov.vn"]
        for message in inbox.messages:
            assert report.doc_number in message["Subject"]
            files = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
            stem = f"{report.doc_number.replace('/', '-')}_{report.period}"
            assert set(files) == {f"{stem}.pdf", f"{stem}.csv"}
            assert files[f"{stem}.pdf"] == outputs["pdf"] == pdf.read_bytes()
            assert next(p for p in message.iter_attachments()).get_content_type() == "application/pdf"
        assert archive.get(report.id).files == report.files
        sync_outbox_deliveries(archive, runtime.outbox)
        shown = {d["recipient"]: d for d in archive.get(report.id).deliveries}
        assert {r: d["status"] for r, d in shown.items()} == {
            "lanhdao@tinh.gov.vn": "sent",
            "vanthu@tinh.gov.vn": "sent",
        }
        assert shown["vanthu@tinh.gov.vn"]["last_error"] is None
    finally:
        worker.stop()
        if controller is not None:
            controller.stop()
        archive.close()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()
