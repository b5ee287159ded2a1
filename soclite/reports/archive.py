"""The report archive: every produced report kept on disk with its SHA-256 and its exact query.

Layout: ``data_dir/reports/<id>/report.<fmt>`` plus ``query.json``; the index
is :class:`soclite.control.reports.ReportIndex` in control.db. A report is archived
before anyone tries to deliver it, so a failed e-mail never loses a report.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soclite.control.reports import ArchivedFile, ArchivedReport, ReportIndex
from soclite.control.schema import open_control_db
from soclite.db import Database
from soclite.errors import NotFoundError, ReportError
from soclite.models import new_id

__all__ = ["ArchivedFile", "ArchivedReport", "ReportArchive", "sha256_file"]

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ReportArchive:
    """The archived files under data_dir/reports, indexed in control.db (``db``, or its own connection)."""

    def __init__(self, data_dir: Path, db: Database | None = None) -> None:
        self.root = data_dir / "reports"
        self.root.mkdir(parents=True, exist_ok=True)
        self._owns_db = db is None
        self.db = db if db is not None else open_control_db(data_dir)
        self.index = ReportIndex(self.db)

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def reserve_number(self, prefix: str, now: datetime) -> tuple[int, str]:
        """The next document number of the year: ``007/BC-ATTT`` (Vietnamese administrative form)."""
        return self.index.reserve_number(prefix, now)

    def store(
        self,
        *,
        outputs: dict[str, bytes],
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
        now: datetime | None = None,
    ) -> ArchivedReport:
        """Write the files (fsync'd), then index them with their hashes in one transaction."""
        created = now or datetime.now(UTC)
        report_id = new_id()
        folder = self.root / report_id
        folder.mkdir(parents=True)
        files: list[ArchivedFile] = []
        for fmt, data in outputs.items():
            path = folder / f"report.{fmt}"
            with path.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            files.append(ArchivedFile(fmt, path.name, hashlib.sha256(data).hexdigest(), len(data)))
        (folder / "query.json").write_text(json.dumps(params, ensure_ascii=False, indent=2), encoding="utf-8")
        return self.index.add(
            report_id=report_id, created=created, files=files, prefix=prefix, period=period, lang=lang,
            scope_unit=scope_unit, units=units, schedule=schedule, requested_by=requested_by, params=params,
            summary=summary, doc_number=doc_number,
        )

    def get(self, report_id: str) -> ArchivedReport:
        return self.index.get(report_id)

    def recent(self, *, limit: int = 100, offset: int = 0) -> list[ArchivedReport]:
        return self.index.recent(limit=limit, offset=offset)

    def find_scheduled(self, schedule: str, period: str) -> ArchivedReport | None:
        return self.index.find_scheduled(schedule, period)

    def last_scheduled_period(self, schedule: str) -> str | None:
        return self.index.last_scheduled_period(schedule)

    def file_path(self, report: ArchivedReport, fmt: str) -> Path:
        """The archived file, verified against its recorded SHA-256 before anyone receives it."""
        for f in report.files:
            if f.format == fmt:
                path = self.root / report.id / f.name
                if not path.is_file():
                    raise NotFoundError(f"report {report.id}: file {f.name} is missing from the archive")
                if sha256_file(path) != f.sha256:
                    raise ReportError(f"report {report.id}: {f.name} does not match its recorded SHA-256")
                return path
        raise NotFoundError(f"report {report.id} has no {fmt} file")

    # --- deliveries -------------------------------------------------------------
    def record_delivery(
        self, report_id: str, recipient: str, via: str, status: str, error: str | None = None, attempts: int = 1
    ) -> None:
        self.index.record_delivery(report_id, recipient, via, status, error, attempts)

    def pending_outbox_deliveries(self) -> list[tuple[str, str]]:
        """Deliveries handed to the playbook outbox whose outcome may still change."""
        return self.index.pending_outbox_deliveries()

    def failed_deliveries(self) -> list[tuple[str, str]]:
        return self.index.failed_deliveries()
