"""Field-level host updates of the SQLite store, each a read-modify-write under the write lock.

Like the alerts' (:mod:`._sqlite_alerts`), each runs inside one ``BEGIN IMMEDIATE`` transaction (the
caller's :meth:`Database.write`): the lock is taken *before* the host is read, so no other writer (the
API process, the pipeline process) can land between the read and the write, and the row is rebuilt
from the host read under the lock with only the caller's fields changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime

from soclite.errors import NotFoundError, StoreError
from soclite.models import Host
from soclite.store import _common as c
from soclite.store.base import HostChange

UPSERT = (
    "INSERT INTO hosts (id, name_key, agent_id, unit, type, text, doc) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET name_key=excluded.name_key, agent_id=excluded.agent_id, "
    "unit=excluded.unit, type=excluded.type, text=excluded.text, doc=excluded.doc"
)


def host_row(host: Host) -> tuple[str, str, str | None, str | None, str, str, str]:
    return (
        host.id,
        host.name.lower(),
        host.agent_id,
        host.unit,
        str(host.type),
        "\n".join([host.id, host.name, host.os or "", *host.ips]).casefold(),
        host.model_dump_json(warnings=False),
    )


def _read(conn: sqlite3.Connection, host_id: str) -> tuple[str | None, Host] | None:
    row = conn.execute("SELECT unit, doc FROM hosts WHERE id = ?", (host_id,)).fetchone()
    return None if row is None else (row["unit"], Host.model_validate_json(row["doc"]))


def update_host(
    conn: sqlite3.Connection,
    host_id: str,
    changes: HostChange,
    units: frozenset[str] | None,
    create: Host | None,
) -> Host:
    found = _read(conn, host_id)
    if found is not None and (units is None or found[0] in units):
        current = found[1]
    elif found is None and create is not None:
        if create.id != host_id:
            raise StoreError(f"update_host({host_id!r}): the host to create has id {create.id!r}")
        new = c.apply_host_changes(create, changes) or create
        conn.execute(UPSERT, host_row(new))
        return new
    else:
        raise NotFoundError(f"host {host_id!r} not found")
    changed = c.apply_host_changes(current, changes)
    if changed is None:
        return current
    conn.execute(UPSERT, host_row(changed))
    return changed


def touch_hosts(
    conn: sqlite3.Connection, seen: Mapping[str, datetime], create: Mapping[str, Host]
) -> list[Host]:
    stored: list[Host] = []
    for host_id, at in seen.items():
        found = _read(conn, host_id)
        if found is None:
            proto = create.get(host_id)
            if proto is None:
                continue
            if proto.id != host_id:
                raise StoreError(f"touch_hosts: the host to create as {host_id!r} has id {proto.id!r}")
            new = c.touch_host(proto, at) or proto
            conn.execute(UPSERT, host_row(new))
            stored.append(new)
            continue
        touched = c.touch_host(found[1], at)
        if touched is not None:
            # only the JSON document holds last_seen: the indexed columns stay as they are
            conn.execute("UPDATE hosts SET doc = ? WHERE id = ?", (touched.model_dump_json(warnings=False), host_id))
        stored.append(touched or found[1])
    return stored
