"""Discover's saved searches: a query and its time range, owned by a user, shareable within the owner's unit.

Table ``saved_searches`` in control.db (:mod:`soclite.control.schema`, version 13). A search is listed to
its owner and, when ``shared``, to every user of the same unit (province-level users, unit None, share
among themselves). Only the owner deletes it. The query is kept as typed; it is read and checked again
each time it runs (a saved search never bypasses the reader's unit scope: scoping is applied then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from soclite.db import Database
from soclite.errors import InvalidSavedSearch, NotFoundError
from soclite.models import new_id

MAX_NAME = 120
MAX_QUERY = 4000
MAX_PER_USER = 200


@dataclass(frozen=True)
class SavedSearch:
    id: str
    owner: str
    unit: str | None
    name: str
    query: str
    range_from: str | None
    range_to: str | None
    shared: bool
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "owner": self.owner, "unit": self.unit, "name": self.name, "query": self.query,
                "from": self.range_from, "to": self.range_to, "shared": self.shared,
                "created_at": self.created_at.isoformat()}


def _row(row: Any) -> SavedSearch:
    return SavedSearch(id=row["id"], owner=row["owner"], unit=row["unit"], name=row["name"], query=row["query"],
                       range_from=row["range_from"], range_to=row["range_to"], shared=bool(row["shared"]),
                       created_at=datetime.fromisoformat(row["created_at"]))


class SavedSearches:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, owner: str, unit: str | None, name: str, query: str, range_from: str | None = None,
            range_to: str | None = None, shared: bool = False) -> SavedSearch:
        name, query = name.strip(), query.strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidSavedSearch(f"a saved search needs a name of 1 to {MAX_NAME} characters",
                                     msgid="A saved search needs a name of 1 to %(max)s characters.",
                                     params={"max": str(MAX_NAME)})
        if len(query) > MAX_QUERY:
            raise InvalidSavedSearch(f"a saved search's query is at most {MAX_QUERY} characters",
                                     msgid="A saved search's query is at most %(max)s characters.",
                                     params={"max": str(MAX_QUERY)})
        search_id = new_id()
        with self.db.write() as conn:
            count = conn.execute("SELECT COUNT(*) FROM saved_searches WHERE owner = ?", (owner,)).fetchone()[0]
            if int(count) >= MAX_PER_USER:
                raise InvalidSavedSearch(f"at most {MAX_PER_USER} saved searches per user: delete some first",
                                         msgid="At most %(max)s saved searches per user: delete some first.",
                                         params={"max": str(MAX_PER_USER)})
            conn.execute(
                "INSERT INTO saved_searches (id, owner, unit, name, query, range_from, range_to, shared, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (search_id, owner, unit, name, query, range_from or None, range_to or None, int(shared),
                 datetime.now(UTC).isoformat()),
            )
        return self.get(search_id, owner, unit)

    def visible(self, user: str, unit: str | None) -> list[SavedSearch]:
        """The user's own searches and those shared in the user's unit, by name."""
        rows = self.db.reader().execute(
            "SELECT * FROM saved_searches WHERE owner = ? OR (shared = 1 AND unit IS ?) ORDER BY name COLLATE NOCASE, id",
            (user, unit),
        ).fetchall()
        return [_row(r) for r in rows]

    def get(self, search_id: str, user: str, unit: str | None) -> SavedSearch:
        """One search the user may see (NotFoundError otherwise: another unit's search does not exist for them)."""
        row = self.db.reader().execute(
            "SELECT * FROM saved_searches WHERE id = ? AND (owner = ? OR (shared = 1 AND unit IS ?))",
            (search_id, user, unit),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"saved search {search_id!r} not found")
        return _row(row)

    def delete(self, search_id: str, owner: str) -> SavedSearch:
        """Delete one of the owner's searches and return it (a shared search is deleted by its owner only)."""
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM saved_searches WHERE id = ? AND owner = ?",
                               (search_id, owner)).fetchone()
            if row is None:
                raise NotFoundError(f"saved search {search_id!r} not found among yours")
            conn.execute("DELETE FROM saved_searches WHERE id = ?", (search_id,))
        return _row(row)
