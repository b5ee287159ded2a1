"""notify_email attachments: only files of the report archive, never any other file the server can read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.worker import Worker
from tests.playbooks.support import build_runtime, make_settings
from tests.reports.smtp import free_port, start_smtp


def test_attachments_outside_the_report_archive_are_refused(tmp_path: Path) -> None:
    port = free_port()
    controller, inbox = start_smtp(port)  # SMTP is up: a refusal cannot be mistaken for an outage
    runtime = build_runtime(make_settings(tmp_path, smtp={"host": "127.0.0.1", "port": port}))
    data_dir = runtime.settings.data_dir
    reports = data_dir / "reports" / "r1"
    reports.mkdir(parents=True)
    good = reports / "report.pdf"
    good.write_bytes(b"%PDF-1.7 test")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not mail me")
    (reports / "link.pdf").symlink_to(secret)
    (data_dir / "reports-old").mkdir()  # a sibling whose name merely starts like the archive
    (data_dir / "reports-old" / "x.pdf").write_bytes(b"x")
    cases = {
        "outside": str(secret),
        "control-db": str(data_dir / "control.db"),
        "dotdot": str(reports / ".." / ".." / ".." / "secret.txt"),
        "symlink": str(reports / "link.pdf"),
        "prefix-sibling": str(data_dir / "reports-old" / "x.pdf"),
        "folder": str(data_dir / "reports"),
        "missing": str(reports / "nope.pdf"),
    }
    try:
        records = {}
        for name, path in cases.items():
            records[name] = runtime.outbox.submit(
                "notify_email",
                {
                    "to": ["a@tinh.gov.vn"],
                    "attachments": [{"path": path, "filename": "x.pdf", "content_type": "application/pdf"}],
                },
                idempotency_key=f"att:{name}",
                requested_by="t",
            )
        wrong_hash = runtime.outbox.submit(
            "notify_email",
            {
                "to": ["a@tinh.gov.vn"],
                "attachments": [
                    {
                        "path": str(good),
                        "filename": "r.pdf",
                        "content_type": "application/pdf",
                        "sha256": "0" * 64,
                    }
                ],
            },
            idempotency_key="att:hash",
            requested_by="t",
        )
        ok = runtime.outbox.submit(
            "notify_email",
            {
                "to": ["a@tinh.gov.vn"],
                "attachments": [
                    {
                        "path": str(good),
                        "filename": "bao-cao.pdf",
                        "content_type": "application/pdf",
                        "sha256": hashlib.sha256(good.read_bytes()).hexdigest(),
                    }
                ],
            },
            idempotency_key="att:ok",
            requested_by="t",
        )
        Worker(runtime).run_once()
        for name, record in records.items():
            row = runtime.outbox.get(record.id)
            assert row.status == ActionStatus.DEAD, (name, row)
            assert "refused" in (row.last_error or "") or "No such file" in (row.last_error or ""), (
                name,
                row,
            )
        row = runtime.outbox.get(wrong_hash.id)
        assert row.status == ActionStatus.DEAD and "SHA-256" in (row.last_error or "")
        assert runtime.outbox.get(ok.id).status == ActionStatus.SUCCEEDED
        assert len(inbox.messages) == 1  # only the archived report went out
        (part,) = list(inbox.messages[0].iter_attachments())
        assert part.get_filename() == "bao-cao.pdf" and part.get_content() == b"%PDF-1.7 test"
        assert "do not mail me" not in inbox.messages[0].as_string()
    finally:
        controller.stop()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()


def test_attachment_names_and_types_are_validated(tmp_path: Path) -> None:
    import pytest

    from soclite.errors import PlaybookError

    runtime = build_runtime(make_settings(tmp_path))
    try:
        for bad in (
            {"path": "/x", "filename": "../../etc/cron.d/x", "content_type": "application/pdf"},
            {"path": "/x", "filename": "a.pdf", "content_type": "pdf"},
            {"path": "/x", "filename": "a.pdf", "content_type": "application/pdf", "extra": 1},
        ):
            with pytest.raises(PlaybookError, match="invalid parameters"):
                runtime.outbox.submit(
                    "notify_email",
                    {"to": ["a@b"], "attachments": [bad]},
                    idempotency_key=str(bad),
                    requested_by="t",
                )
    finally:
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()
