"""The stored IoC lists: what the national system and playbooks added, kept across restarts.

Each value new to a list also gets a receipt time (``ioc_received``, in the same transaction) that
the periodic reports count. Tables in control.db (:mod:`soclite.control.schema`, version 7).
:class:`IocLists` works over any holder of the control database (``db``); the outbox inherits it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from soclite.db import Database
from soclite.models import isoformat


def _now_iso() -> str:
    return isoformat(datetime.now(UTC))


class IocLists:
    db: Database

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_ioc_values(
        self, list_name: str, kind: str, values: Iterable[str], source_id: str | None = None, level: str = "high"
    ) -> list[str]:
        """Add values to a stored IoC list; return the whole list (for ``IocStore.set_list``).

        A value new to the list gets a receipt time (``ioc_received``) for the periodic reports."""
        now = _now_iso()
        with self.db.write() as conn:
            for value in values:
                known = conn.execute(
                    "SELECT 1 FROM ioc_values WHERE list = ? AND value = ?", (list_name, value)
                ).fetchone()
                if known is None:
                    conn.execute(
                        "INSERT INTO ioc_received (list, kind, value, source_id, received_at) VALUES (?, ?, ?, ?, ?)",
                        (list_name, kind, value, source_id, now),
                    )
                conn.execute(
                    "INSERT OR REPLACE INTO ioc_values (list, kind, value, source_id, level) VALUES (?, ?, ?, ?, ?)",
                    (list_name, kind, value, source_id, level),
                )
            # One list, one level: the latest add decides it.
            conn.execute("UPDATE ioc_values SET level = ? WHERE list = ?", (level, list_name))
        return self.ioc_values(list_name)

    def remove_ioc_source(self, list_name: str, source_id: str) -> list[str]:
        with self.db.write() as conn:
            conn.execute("DELETE FROM ioc_values WHERE list = ? AND source_id = ?", (list_name, source_id))
        return self.ioc_values(list_name)

    def iocs_received_between(self, start: datetime, end: datetime, prefix: str = "national:") -> int:
        """Indicators newly stored in lists named ``prefix…`` with a receipt time in [start, end)."""
        row = self.db.reader().execute(
            "SELECT count(*) FROM ioc_received WHERE substr(list, 1, ?) = ? AND received_at >= ? AND received_at < ?",
            (len(prefix), prefix, isoformat(start), isoformat(end)),
        ).fetchone()
        return int(row[0])

    def ioc_values(self, list_name: str) -> list[str]:
        rows = self.db.reader().execute(
            "SELECT value FROM ioc_values WHERE list = ? ORDER BY value", (list_name,)
        )
        return [r[0] for r in rows]

    def ioc_lists(self) -> dict[str, str]:
        """Stored list name → kind."""
        rows = self.db.reader().execute("SELECT DISTINCT list, kind FROM ioc_values")
        return {r[0]: r[1] for r in rows}

    def ioc_list_level(self, list_name: str) -> str:
        """The level hits on a stored list alert at ("high" for lists stored before levels were kept)."""
        row = self.db.reader().execute("SELECT level FROM ioc_values WHERE list = ? LIMIT 1", (list_name,)).fetchone()
        return str(row[0]) if row is not None else "high"
