"""Deliver an archived report by e-mail.

When the playbook outbox runs in this process (``runtime.outbox``) and its
``notify_email`` action can carry attachments, delivery goes through it: it is
then durable, retried with backoff and visible with the other actions.
Otherwise (the CLI, a server without playbooks, or a notify_email without
attachments) it is sent directly over SMTP with a few retries, and the outcome
is recorded in the archive (``deliveries``, shown by the API) so a failure
shows and is retried by the scheduler. Either way the report was archived
first and is never lost.
"""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from soclite.config import SmtpSettings
from soclite.errors import ConfigError, ConnectorError
from soclite.reports.archive import ArchivedReport, ReportArchive
from soclite.smtp import open_smtp

_MIME = {"pdf": ("application", "pdf"), "html": ("text", "html"), "csv": ("text", "csv")}


def _subject(report: ArchivedReport) -> str:
    if report.lang == "vi":
        return f"Báo cáo {report.doc_number} - kỳ {report.period}"
    return f"Report {report.doc_number} - period {report.period}"


def build_message(smtp: SmtpSettings, report: ArchivedReport, files: list[Path], recipient: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = recipient
    msg["Subject"] = _subject(report)
    msg.set_content(report.summary + "\n\n" + "\n".join(f"{f.name}  sha256={f.sha256}" for f in report.files))
    for path in files:
        fmt = path.suffix.lstrip(".")
        maintype, subtype = _MIME.get(fmt, ("application", "octet-stream"))
        msg.add_attachment(
            path.read_bytes(),
            maintype=maintype,
            subtype=subtype,
            filename=f"{report.doc_number.replace('/', '-')}_{report.period}.{fmt}",
        )
    return msg


def send_smtp(smtp: SmtpSettings, msg: EmailMessage, *, timeout: float = 30.0) -> None:
    """One SMTP submission (:func:`soclite.smtp.open_smtp`: TLS verified, no clear-text password).

    Credentials without TLS raise ConfigError (a configuration problem, not a delivery failure).
    """
    try:
        with open_smtp(smtp, timeout=timeout) as client:
            client.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectorError(f"SMTP {smtp.host}:{smtp.port}: {exc}") from exc


def outbox_carries_attachments() -> bool:
    """Whether the playbook outbox's notify_email can carry the report files (probed, imported lazily)."""
    try:
        from playbooks.actions.notify import EmailOptions
    except ImportError:
        return False
    return "attachments" in EmailOptions.model_fields


def deliver(
    archive: ReportArchive,
    report: ArchivedReport,
    recipients: list[str],
    smtp: SmtpSettings,
    *,
    outbox: Any = None,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
) -> dict[str, str]:
    """Send ``report`` to each recipient; return ``{recipient: status}`` (queued / sent / failed)."""
    results: dict[str, str] = {}
    files = [archive.file_path(report, f.format) for f in report.files]
    for recipient in recipients:
        if outbox is not None and hasattr(outbox, "submit") and outbox_carries_attachments():
            try:
                outbox.submit(
                    "notify_email",
                    {
                        "to": [recipient],
                        "subject": _subject(report),
                        "body": report.summary,
                        "attachments": [str(p) for p in files],
                    },
                    idempotency_key=f"report:{report.id}:{recipient}",
                    requested_by="reports",
                )
            except Exception as exc:  # fall back to direct SMTP rather than lose the delivery
                archive.record_delivery(report.id, recipient, "outbox", "failed", f"outbox refused: {exc}")
            else:
                archive.record_delivery(report.id, recipient, "outbox", "queued")
                results[recipient] = "queued"
                continue
        msg = build_message(smtp, report, files, recipient)
        error: str | None = None
        tries = 0
        for attempt in range(attempts):
            tries += 1
            try:
                send_smtp(smtp, msg)
                error = None
                break
            except ConfigError as exc:  # e.g. a password without TLS: retrying cannot help
                error = str(exc)
                break
            except ConnectorError as exc:
                error = str(exc)
                if attempt + 1 < attempts:
                    time.sleep(backoff_seconds * (2**attempt))
        status = "failed" if error else "sent"
        archive.record_delivery(report.id, recipient, "smtp", status, error, attempts=tries)
        results[recipient] = status
    return results
