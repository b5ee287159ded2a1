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
from contextlib import AbstractContextManager, nullcontext
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from soclite.config import Settings, SmtpSettings
from soclite.errors import ConfigError, ConnectorError, SocliteError
from soclite.reports.archive import ArchivedReport, ReportArchive
from soclite.smtp import open_smtp

_MIME = {
    "pdf": ("application", "pdf"), "html": ("text", "html"), "csv": ("text", "csv"),
    "docx": ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
}


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
            filename=_file_name(report, fmt),
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
        from soclite.playbooks.actions.notify import EmailOptions
    except ImportError:
        return False
    return "attachments" in EmailOptions.model_fields


def _file_name(report: ArchivedReport, fmt: str) -> str:
    return f"{report.doc_number.replace('/', '-')}_{report.period}.{fmt}"


def email_params(archive: ReportArchive, report: ArchivedReport, recipient: str) -> dict[str, Any]:
    """notify_email parameters for one recipient: the archived files with their recorded SHA-256."""
    attachments = []
    for f in report.files:
        path = archive.file_path(report, f.format)  # verified against its hash before it is queued
        maintype, subtype = _MIME.get(f.format, ("application", "octet-stream"))
        attachments.append(
            {
                "path": str(path),
                "filename": _file_name(report, f.format),
                "content_type": f"{maintype}/{subtype}",
                "sha256": f.sha256,
            }
        )
    body = report.summary + "\n\n" + "\n".join(f"{f.name}  sha256={f.sha256}" for f in report.files)
    return {"to": [recipient], "subject": _subject(report), "body": body, "attachments": attachments}


def email_key(report: ArchivedReport, recipient: str) -> str:
    return f"report:{report.id}:{recipient}"


def deliver(
    archive: ReportArchive,
    report: ArchivedReport,
    recipients: list[str],
    smtp: SmtpSettings,
    *,
    outbox: Any = None,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    retry: Any = None,
) -> dict[str, str]:
    """Send ``report`` to each recipient; return ``{recipient: status}`` (queued / sent / failed).

    ``retry`` is the outbox's :class:`playbooks.outbox.RetryPolicy` (None = its default).
    """
    results: dict[str, str] = {}
    files = [archive.file_path(report, f.format) for f in report.files]
    for recipient in recipients:
        if outbox is not None and hasattr(outbox, "submit") and outbox_carries_attachments():
            queued = False
            with _together(archive, outbox):  # the action and its delivery record commit as one
                try:
                    extra = {"retry": retry} if retry is not None else {}
                    outbox.submit(
                        "notify_email",
                        email_params(archive, report, recipient),
                        idempotency_key=email_key(report, recipient),
                        requested_by=f"report:{report.requested_by}",
                        **extra,
                    )
                except Exception as exc:  # fall back to direct SMTP rather than lose the delivery
                    archive.record_delivery(report.id, recipient, "outbox", "failed", f"outbox refused: {exc}")
                else:
                    archive.record_delivery(report.id, recipient, "outbox", "queued")
                    queued = True
            if queued:
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


NATIONAL_RECIPIENT = "national"


def _together(archive: ReportArchive, outbox: Any) -> AbstractContextManager[Any]:
    """One control.db transaction for the outbox row and the delivery record when both use the same database."""
    together: AbstractContextManager[Any] = archive.db.write() if getattr(outbox, "db", None) is archive.db \
        else nullcontext()
    return together


def national_key(report: ArchivedReport) -> str:
    return f"report-national:{report.id}"


def submit_national(
    archive: ReportArchive, report: ArchivedReport, settings: Settings, *, outbox: Any = None, retry: Any = None
) -> str:
    """Queue the report on the national lane of the outbox (action ``national_report``); return the status.

    The national connector runs only beside the outbox (in the server): without one, or with the
    connector disabled, the refusal is recorded in the report's deliveries, never silently dropped.
    """
    fmt = "pdf" if any(f.format == "pdf" for f in report.files) else report.files[0].format
    if not settings.national.enabled:
        error = "national connector disabled (national.enabled: false)"
    elif outbox is None or not hasattr(outbox, "submit"):
        error = "no playbook outbox in this process (the national connector runs in the server)"
    else:
        with _together(archive, outbox):  # the lane's row and its delivery record commit as one
            try:
                archive.file_path(report, fmt)  # refuse a missing or altered file now, not in the lane
                extra = {"retry": retry} if retry is not None else {}
                outbox.submit(
                    "national_report",
                    {"report_id": report.id, "format": fmt},
                    idempotency_key=national_key(report),
                    requested_by=f"report:{report.requested_by}",
                    **extra,
                )
            except SocliteError as exc:
                error = f"outbox refused: {exc}"
            else:
                archive.record_delivery(report.id, NATIONAL_RECIPIENT, "outbox", "queued")
                return "queued"
    archive.record_delivery(report.id, NATIONAL_RECIPIENT, "outbox", "failed", error, attempts=0)
    return "failed"


#: outbox status → the report's delivery status (what the report list shows)
_OUTBOX_STATUS = {"succeeded": "sent", "dead": "failed", "rejected": "failed", "failed": "retrying"}


def sync_outbox_deliveries(archive: ReportArchive, outbox: Any) -> int:
    """Copy the outcome of deliveries handed to the outbox into the archive; return how many changed.

    The outbox is the source of truth (retries, dead letters, an admin's retry); this keeps the report's
    own delivery list (API, UI) in step, so "queued" does not stay forever once the mail went out.
    """
    if outbox is None or not hasattr(outbox, "get_by_key"):
        return 0
    changed = 0
    for report_id, recipient in archive.pending_outbox_deliveries():
        report = archive.get(report_id)
        key = national_key(report) if recipient == NATIONAL_RECIPIENT else email_key(report, recipient)
        record = outbox.get_by_key(key)
        if record is None:
            continue
        status = _OUTBOX_STATUS.get(str(record.status))
        if status is None and record.last_error and str(record.status) in ("pending", "running"):
            status = "retrying"  # between two attempts after a failure
        current = next((d["status"] for d in report.deliveries if d["recipient"] == recipient), None)
        if status is None or status == current:
            continue
        error = record.last_error if status != "sent" else None
        archive.record_delivery(report_id, recipient, "outbox", status, error, attempts=0)
        changed += 1
    return changed
