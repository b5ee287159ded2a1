"""Periodic reports to the Ministry and the province.

How a report is made (``service.generate``)::

    period code ──parse──▶ Period (local midnights → UTC bounds)
    Store contract (count_alerts, alert_histogram, query_alerts, query_hosts, list_audit)
        ──context.build_context──▶ ReportContext (every figure, language-free)
        ──render──▶ HTML (jinja2 + catalog vi/en, matplotlib charts) → PDF (WeasyPrint) + CSV
        ──archive──▶ data_dir/reports/<id>/ with SHA-256 and the exact query (index in control.db)
        ──delivery──▶ e-mail via the playbook outbox, or SMTP directly with retries

``scheduler.ReportScheduler`` runs the configured schedules with a persistent
APScheduler job store; ``cli`` provides ``soclite report``; the API serves the
archive from ``api/routes/reports.py``.
"""

from __future__ import annotations

from soclite.reports.periods import Period, parse_period
from soclite.reports.service import ReportRequest, generate

__all__ = ["Period", "ReportRequest", "generate", "parse_period"]
