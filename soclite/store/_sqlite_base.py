"""The SQLite store's shared plumbing: the connection, reads and writes, and WHERE clauses built from parts.

:class:`SQLiteBase` is what the alert tables (:mod:`._sqlite_alert_store`), the host/unit/audit tables
(:mod:`._sqlite_records`) and :class:`~soclite.store.sqlite.SQLiteStore` (which composes them and
opens the file) read and write through.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soclite.db import Database
from soclite.errors import StoreError
from soclite.store._sqlite_events import EventPartitions


def _contains(haystack: str | None, needle: str) -> int:
    return 1 if haystack is not None and needle in haystack else 0


class Where:
    """A WHERE clause built from parts, with its parameters in order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        self.empty = False  # a scope that matches nothing (units=frozenset())

    def add(self, sql: str, *params: Any) -> None:
        self.parts.append(sql)
        self.params.extend(params)

    def any_of(self, column: str, values: Sequence[Any] | frozenset[str] | None) -> None:
        if values is None:
            return
        values = sorted({str(v) for v in values})
        if not values:
            self.empty = True
            return
        self.add(f"{column} IN ({', '.join('?' * len(values))})", *values)

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.parts)) if self.parts else ""


class SQLiteBase:
    """The open store's file, its day files of events, and the read/write helpers every table uses."""

    path: Path
    _db: Database | None
    _events: EventPartitions | None
    _local: threading.local

    @property
    def events(self) -> EventPartitions:
        if self._events is None:
            raise StoreError(f"{self.path}: store is not open")
        return self._events

    @property
    def db(self) -> Database:
        if self._db is None:
            raise StoreError(f"{self.path}: store is not open")
        return self._db

    def _reader(self) -> sqlite3.Connection:
        conn = self.db.reader()
        if getattr(self._local, "registered", None) is not conn:
            conn.create_function("sl_contains", 2, _contains, deterministic=True)
            self._local.registered = conn
        return conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: query failed: {exc}") from exc


    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement over many rows in one transaction; return the rows changed."""
        try:
            with self.db.write() as conn:
                before = conn.total_changes
                conn.executemany(sql, rows)
                return conn.total_changes - before
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: write of {len(rows)} rows failed, nothing stored: {exc}") from exc
