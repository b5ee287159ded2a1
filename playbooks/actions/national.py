"""national_sync: deliver the alert to the national monitoring system through the configured connector.

Rows of this action share the ``national`` lane: the worker delivers them strictly in order and holds the
later ones while an earlier one fails with a retryable error (an outage of hours is held in the outbox).
A 4xx for one object dead-letters that object with the reason and the lane goes on.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from soclite.errors import SocliteError
from soclite.models import isoformat
from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError
from soclite.playbooks.services import need

if TYPE_CHECKING:
    from soclite.playbooks.services import ResponseServices


class NationalOptions(Options):
    #: send the alert's event copy (pseudonymized when configured); off = the alert summary only
    include_event: bool = True


class NationalSync(Action):
    name = "national_sync"
    options = NationalOptions
    lane = "national"

    @classmethod
    def skip_reason(cls, runtime: ResponseServices) -> str | None:
        return None if runtime.settings.national.enabled else "the national connector is disabled"

    def execute(self, ctx: ActionContext, options: Options) -> str:
        from soclite.playbooks.connectors import NationalItem, connector_for

        assert isinstance(options, NationalOptions)
        if ctx.alert is None:
            raise PermanentError("national_sync needs an alert")
        alert = dict(ctx.alert)
        if not options.include_event:
            alert["event"] = {}
        connector = connector_for(ctx.runtime)
        item = NationalItem(action_id=ctx.record.id, key=ctx.record.idempotency_key, alert=alert)
        return connector.deliver(item)


class ReportOptions(Options):
    #: an archived report (soclite.reports archive id)
    report_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    format: Literal["pdf", "html", "csv"] = "pdf"


_CONTENT_TYPES = {"pdf": "application/pdf", "html": "text/html", "csv": "text/csv"}


class NationalReportAction(Action):
    """Send an archived periodic report upward, in the same ordered lane as the alerts.

    The file is read from the archive at send time and checked against its recorded SHA-256, so what
    the national system receives is byte for byte what the province archived.
    """

    name = "national_report"
    options = ReportOptions
    lane = "national"

    @classmethod
    def skip_reason(cls, runtime: ResponseServices) -> str | None:
        return NationalSync.skip_reason(runtime)

    def execute(self, ctx: ActionContext, options: Options) -> str:
        from soclite.playbooks.connectors import NationalReport, connector_for

        assert isinstance(options, ReportOptions)
        archive = need(ctx.runtime.reports, "the report archive")
        try:
            report = archive.get(options.report_id)
            path = archive.file_path(report, options.format)
            entry = next(f for f in report.files if f.format == options.format)
            content = path.read_bytes()
            # Hash the bytes actually sent: the file could change between the archive's check and this read.
            if hashlib.sha256(content).hexdigest() != entry.sha256:
                raise SocliteError(f"{path.name} no longer matches the SHA-256 recorded when it was archived")
        except SocliteError as exc:  # missing, or no longer matching its hash: a human must look
            raise PermanentError(f"report {options.report_id}: {exc}") from exc
        item = NationalReport(
            key=ctx.record.idempotency_key,
            report_id=report.id,
            doc_number=report.doc_number,
            period=report.period,
            lang=report.lang,
            created_at=isoformat(report.created_at),
            summary=report.summary,
            filename=f"{report.doc_number.replace('/', '-')}_{report.period}.{options.format}",
            content_type=_CONTENT_TYPES[options.format],
            sha256=entry.sha256,
            content=content,
            params=report.params,
        )
        return connector_for(ctx.runtime).deliver_report(item)


EXPORTED: list[type[Action]] = [NationalSync, NationalReportAction]
