"""Layering checks that read the source: where SQL may run, what the control layer may import."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path

import soclite

PACKAGE = Path(soclite.__file__).resolve().parent

#: Where SQL may run, relative to the soclite package (api/, collectors/, ... are reached through its symlinks).
SQL_ALLOWED = {
    "store/": "the store: events, alerts, hosts, audit; the ingest journal and its dead letters; pipeline stats",
    "control/": "the control repositories over control.db",
    "db.py": "the SQLite helpers every database uses (connect, migrate, Database)",
    "collectors/agent/": "the endpoint agent: a separate program on the workstation whose own spool and state "
    "files are local to it; it never opens a server file",
}

#: Calls that look like SQL but are not, each named exactly (file, source text of the call's start) with why.
NOT_SQL = {
    ("playbooks/worker.py", "cls().execute("): "Action.execute runs a playbook action",
}

SQL_CALL = re.compile(r"\.(execute|executemany|executescript)\(|sqlite3\.connect\(")


def _python_files() -> Iterator[tuple[str, Path]]:
    for folder, dirs, files in os.walk(PACKAGE, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(folder) / name
                yield path.relative_to(PACKAGE).as_posix(), path


def test_the_walk_follows_the_symlinked_stages() -> None:
    seen = {rel.split("/", 1)[0] for rel, _ in _python_files()}
    assert {"api", "collectors", "correlator", "playbooks", "store", "control", "reports"} <= seen


def test_no_sql_outside_store_and_control() -> None:
    offenders = []
    for rel, path in _python_files():
        if any(rel == allowed or rel.startswith(allowed) for allowed in SQL_ALLOWED):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in SQL_CALL.finditer(line):
                start = line.rfind(" ", 0, match.start()) + 1
                if (rel, line[start : match.end()]) in NOT_SQL:
                    continue
                offenders.append(f"{rel}:{number}: {line.strip()}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "sqlite3" for a in node.names):
                offenders.append(f"{rel}:{node.lineno}: import sqlite3")
    assert not offenders, "SQL outside soclite/store, soclite/control and soclite/db.py:\n" + "\n".join(offenders)


def test_the_exceptions_still_exist() -> None:
    """A NOT_SQL entry whose call is gone must be removed, not kept as a silent hole."""
    for (rel, call), _why in NOT_SQL.items():
        assert call in (PACKAGE / rel).read_text(encoding="utf-8"), f"{rel}: {call} no longer there"


#: what soclite.control may not import: the web, the application wiring and the stages built on it
CONTROL_FORBIDDEN = ("fastapi", "starlette", "soclite.api", "soclite.runtime", "soclite.playbooks", "soclite.reports")


def test_control_layer_has_no_web_or_application_imports() -> None:
    offenders = []
    for rel, path in _python_files():
        if not rel.startswith("control/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if any(name == bad or name.startswith(bad + ".") for bad in CONTROL_FORBIDDEN):
                    offenders.append(f"{rel}:{node.lineno}: {name}")
    assert not offenders, "\n".join(offenders)
    assert not (PACKAGE / "control").is_symlink()


def test_the_runtime_is_typed_without_any() -> None:
    """Every service on the Runtime is a typed field: no ``Any``, no string-keyed ``extras``."""
    import dataclasses
    import typing

    from soclite.runtime import Runtime

    hints = typing.get_type_hints(Runtime)
    fields = {f.name for f in dataclasses.fields(Runtime)}
    assert "extras" not in fields
    assert fields == set(hints)
    loose = [name for name, hint in hints.items() if hint is typing.Any or "Any" in repr(hint)]
    assert loose == []
    for expected in ("store", "control", "identity", "users", "cases", "triage", "tuning", "commands", "agents",
                     "iocs", "outbox", "reports", "journal", "engine", "playbooks", "pipeline", "scheduler"):
        assert expected in fields, expected
