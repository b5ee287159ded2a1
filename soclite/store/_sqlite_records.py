"""The host, unit and audit tables of the SQLite store (the field-level host updates: :mod:`._sqlite_hosts`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime

from soclite.errors import NotFoundError, StoreError
from soclite.models import AuditEntry, Host, Unit, isoformat
from soclite.store import _common as c
from soclite.store import _sqlite_hosts as _hosts
from soclite.store._sqlite_base import SQLiteBase, Where
from soclite.store.base import HostChange, HostQuery, Page


class SQLiteRecords(SQLiteBase):
    """The host, unit and audit methods of :class:`~soclite.store.sqlite.SQLiteStore`."""

    # --- hosts and units ---------------------------------------------------
    def put_host(self, host: Host) -> Host:
        self._write(_hosts.UPSERT, [_hosts.host_row(host)])
        return host

    def update_host(
        self,
        host_id: str,
        changes: HostChange,
        *,
        units: frozenset[str] | None = None,
        create: Host | None = None,
    ) -> Host:
        """One read-modify-write under the write lock (see _sqlite_hosts)."""
        try:
            with self.db.write() as conn:
                return _hosts.update_host(conn, host_id, changes, units, create)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: update of host {host_id!r} failed, nothing stored: {exc}") from exc

    def touch_hosts(self, seen: Mapping[str, datetime], *, create: Mapping[str, Host] | None = None) -> list[Host]:
        """Every host in one transaction, each read and written under the write lock."""
        if not seen:
            return []
        try:
            with self.db.write() as conn:
                return _hosts.touch_hosts(conn, seen, create or {})
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: last_seen of {len(seen)} hosts failed, nothing stored: {exc}") from exc

    def get_host(self, host_id: str, units: frozenset[str] | None = None) -> Host:
        rows = self._rows("SELECT unit, doc FROM hosts WHERE id = ?", [host_id])
        if not rows or (units is not None and rows[0]["unit"] not in units):
            raise NotFoundError(f"host {host_id!r} not found")
        return Host.model_validate_json(rows[0]["doc"])

    def find_host(self, name: str) -> Host | None:
        key = name.lower()
        rows = self._rows(
            "SELECT doc FROM hosts WHERE id = ? OR name_key = ? OR agent_id = ? "
            "ORDER BY (id = ?) DESC, (name_key = ?) DESC LIMIT 1",
            [key, key, name, key, key],
        )
        return Host.model_validate_json(rows[0]["doc"]) if rows else None

    def query_hosts(self, query: HostQuery) -> Page[Host]:
        where = Where()
        where.any_of("unit", query.units)
        if where.empty:
            return Page(total=0, items=[])
        if query.type:
            where.add("type = ?", query.type)
        if query.q:
            where.add("sl_contains(text, ?)", query.q.casefold())
        total = int(self._rows(f"SELECT count(*) FROM hosts {where.sql()}", where.params)[0][0])
        if query.cursor:
            where.add("id > ?", c.decode_cursor(query.cursor, 1, (str,))[0])
        rows = self._rows(
            f"SELECT id, doc FROM hosts {where.sql()} ORDER BY id LIMIT ?", [*where.params, query.limit + 1]
        )
        items = [Host.model_validate_json(row["doc"]) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(
            total=total, items=items, next=c.encode_cursor([rows[query.limit - 1]["id"]]) if more else None
        )

    def put_unit(self, unit: Unit) -> Unit:
        self._write(
            "INSERT INTO units (code, parent, doc) VALUES (?, ?, ?) "
            "ON CONFLICT(code) DO UPDATE SET parent=excluded.parent, doc=excluded.doc",
            [(unit.code, unit.parent, unit.model_dump_json())],
        )
        return unit

    def delete_unit(self, code: str) -> bool:
        return self._write("DELETE FROM units WHERE code = ?", [(code,)]) > 0

    def list_units(self) -> list[Unit]:
        return [
            Unit.model_validate_json(row["doc"]) for row in self._rows("SELECT doc FROM units ORDER BY code")
        ]

    # --- audit -------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Seq, prev_hash and hash are computed inside the write transaction: the chain cannot fork."""
        try:
            with self.db.write() as conn:
                last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                stored = entry.model_copy(
                    update={
                        "seq": (last["seq"] + 1) if last else 1,
                        "prev_hash": last["hash"] if last else "",
                    }
                )
                stored.hash = stored.compute_hash()
                conn.execute(
                    "INSERT INTO audit (seq, at, actor, action, target, unit, prev_hash, hash, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        stored.seq,
                        isoformat(stored.at),
                        stored.actor,
                        stored.action,
                        stored.target,
                        stored.unit,
                        stored.prev_hash,
                        stored.hash,
                        stored.model_dump_json(),
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: audit append failed: {exc}") from exc
        return stored

    def list_audit(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        where = Where()
        if start:
            where.add("at >= ?", isoformat(start))
        if end:
            where.add("at < ?", isoformat(end))
        total = int(self._rows(f"SELECT count(*) FROM audit {where.sql()}", where.params)[0][0])
        if cursor:
            where.add("seq < ?", c.decode_cursor(cursor, 1, (int,))[0])
        rows = self._rows(
            f"SELECT seq, doc FROM audit {where.sql()} ORDER BY seq DESC LIMIT ?", [*where.params, limit + 1]
        )
        items = [AuditEntry.model_validate_json(row["doc"]) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(
            total=total, items=items, next=c.encode_cursor([rows[limit - 1]["seq"]]) if more else None
        )

    def iter_audit(self) -> Iterator[AuditEntry]:
        seq = 0
        while True:
            rows = self._rows("SELECT seq, doc FROM audit WHERE seq > ? ORDER BY seq LIMIT 1000", [seq])
            if not rows:
                return
            for row in rows:
                yield AuditEntry.model_validate_json(row["doc"])
            seq = rows[-1]["seq"]
