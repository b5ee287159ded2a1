"""The report archive's index: every produced report with its files' SHA-256, and its deliveries.

Tables in control.db (:mod:`soclite.control.schema`, version 8; reports.db before). The files
themselves are under ``data_dir/reports/<id>/`` (:class:`soclite.reports.archive.ReportArchive`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from soclite.db import Database
from soclite.errors import NotFoundError
from soclite.models import new_id


@dataclass
class ArchivedFile:
    format: str
    name: str
    sha256: str
    size: int


@dataclass
class ArchivedReport:
    id: str
    seq: int
    doc_number: str
    created_at: datetime
    period: str
    lang: str
    scope_unit: str | None
    units: list[str] | None
    schedule: str | None
    requested_by: str
    params: dict[str, Any]
    files: list[ArchivedFile]
    summary: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc_number": self.doc_number,
            "created_at": self.created_at.isoformat(),
            "period": self.period,
            # the annual report's (Form 08) periods are its years, "2026-Y"
            "kind": "annual" if self.period.endswith("-Y") else "periodic",
            "lang": self.lang,
            "scope_unit": self.scope_unit,
            "schedule": self.schedule,
            "requested_by": self.requested_by,
            "summary": self.summary,
            "params": self.params,
            "files": [f.__dict__ for f in self.files],
            "deliveries": self.deliveries,
        }


class ReportIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def reserve_number(self, prefix: str, now: datetime) -> tuple[int, str]:
        """The next document number of the year: ``007/BC-ATTT`` (Vietnamese administrative form)."""
        row = self.db.reader().execute(
            "SELECT COALESCE(MAX(seq), 0) FROM reports WHERE year = ?", (now.year,)
        ).fetchone()
        seq = int(row[0]) + 1
        return seq, f"{seq:03d}/{prefix}"

    def add(
        self,
        *,
        report_id: str,
        created: datetime,
        files: list[ArchivedFile],
        prefix: str,
        period: str,
        lang: str,
        scope_unit: str | None,
        units: frozenset[str] | None,
        schedule: str | None,
        requested_by: str,
        params: dict[str, Any],
        summary: str,
        doc_number: tuple[int, str] | None = None,
    ) -> ArchivedReport:
        """Index a report whose files are written, numbering it in the same transaction unless ``doc_number``."""
        with self.db.write() as conn:
            if doc_number is None:
                row = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM reports WHERE year = ?", (created.year,)
                ).fetchone()
                seq = int(row[0]) + 1
                number = f"{seq:03d}/{prefix}"
            else:
                seq, number = doc_number
            conn.execute(
                "INSERT INTO reports (id, seq, year, doc_number, created_at, period, lang, scope_unit, units, "
                "schedule, requested_by, params, files, summary) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    report_id,
                    seq,
                    created.year,
                    number,
                    created.isoformat(),
                    period,
                    lang,
                    scope_unit,
                    json.dumps(sorted(units)) if units is not None else None,
                    schedule,
                    requested_by,
                    json.dumps(params, ensure_ascii=False),
                    json.dumps([f.__dict__ for f in files]),
                    summary,
                ),
            )
        return self.get(report_id)

    def _from_row(self, row: Any) -> ArchivedReport:
        deliveries = [
            dict(d)
            for d in self.db.reader().execute(
                "SELECT recipient, via, status, attempts, last_error, updated_at FROM deliveries WHERE report_id = ? "
                "ORDER BY recipient",
                (row["id"],),
            )
        ]
        return ArchivedReport(
            id=row["id"],
            seq=row["seq"],
            doc_number=row["doc_number"],
            created_at=datetime.fromisoformat(row["created_at"]),
            period=row["period"],
            lang=row["lang"],
            scope_unit=row["scope_unit"],
            units=json.loads(row["units"]) if row["units"] else None,
            schedule=row["schedule"],
            requested_by=row["requested_by"],
            params=json.loads(row["params"]),
            files=[ArchivedFile(**f) for f in json.loads(row["files"])],
            summary=row["summary"],
            deliveries=deliveries,
        )

    def get(self, report_id: str) -> ArchivedReport:
        row = self.db.reader().execute("SELECT * FROM reports WHERE id = ?", (report_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"report {report_id!r} not found")
        return self._from_row(row)

    def recent(self, *, limit: int = 100, offset: int = 0) -> list[ArchivedReport]:
        rows = self.db.reader().execute(
            "SELECT * FROM reports ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?", (limit, offset)
        )
        return [self._from_row(r) for r in rows.fetchall()]

    def find_scheduled(self, schedule: str, period: str) -> ArchivedReport | None:
        row = self.db.reader().execute(
            "SELECT * FROM reports WHERE schedule = ? AND period = ? ORDER BY created_at DESC LIMIT 1",
            (schedule, period),
        ).fetchone()
        return self._from_row(row) if row is not None else None

    def last_scheduled_period(self, schedule: str) -> str | None:
        row = self.db.reader().execute(
            "SELECT period FROM reports WHERE schedule = ? ORDER BY period DESC LIMIT 1", (schedule,)
        ).fetchone()
        return str(row[0]) if row is not None else None

    # --- deliveries -------------------------------------------------------------
    def record_delivery(
        self, report_id: str, recipient: str, via: str, status: str, error: str | None = None, attempts: int = 1
    ) -> None:
        now = datetime.now(UTC).isoformat()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO deliveries (id, report_id, recipient, via, status, attempts, last_error, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(report_id, recipient) DO UPDATE SET via=excluded.via, "
                "status=excluded.status, attempts=deliveries.attempts+excluded.attempts, "
                "last_error=excluded.last_error, updated_at=excluded.updated_at",
                (new_id(), report_id, recipient, via, status, attempts, error, now),
            )

    def pending_outbox_deliveries(self) -> list[tuple[str, str]]:
        """Deliveries handed to the playbook outbox whose outcome may still change (a dead letter can be
        retried by an admin, so "failed" is followed too)."""
        rows = self.db.reader().execute(
            "SELECT report_id, recipient FROM deliveries WHERE via = 'outbox' AND status IN ('queued', 'retrying', 'failed')"
        )
        return [(r[0], r[1]) for r in rows.fetchall()]

    def failed_deliveries(self) -> list[tuple[str, str]]:
        rows = self.db.reader().execute(
            "SELECT report_id, recipient FROM deliveries WHERE status = 'failed' AND via = 'smtp' "
            "AND attempts < 20"
        )
        return [(r[0], r[1]) for r in rows.fetchall()]
