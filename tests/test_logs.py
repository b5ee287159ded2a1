"""One logging convention: loggers named by ``__name__``, one formatter, text or JSON lines."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from soclite.config import Settings
from soclite.logs import JSON_KEYS, configure_logging

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("api", "collectors", "correlator", "playbooks", "soclite")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, soclite = logging.getLogger(), logging.getLogger("soclite")
    handlers, levels = list(root.handlers), (root.level, soclite.level)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(levels[0])
    soclite.setLevel(levels[1])


def _python_files() -> Iterator[Path]:
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            # soclite/api etc. are links to the top-level folders: read each file once
            if path.is_relative_to(ROOT / "soclite") and path.relative_to(ROOT / "soclite").parts[0] in SOURCES:
                continue
            if "node_modules" not in path.parts:
                yield path


def test_every_logger_is_named_by_its_module() -> None:
    """No hand-typed logger names: configuring ``soclite`` must reach every module."""
    bad = []
    for path in _python_files():
        if path == ROOT / "soclite" / "logs.py":  # configures the root and ``soclite`` loggers themselves
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger"
                    and not (len(node.args) == 1 and isinstance(node.args[0], ast.Name)
                             and node.args[0].id == "__name__")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bad == []


def test_json_lines_parse_with_the_documented_keys(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    log = logging.getLogger("soclite.test")
    log.info("plain %s — ünïcode", "line")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("it failed")
    logging.getLogger("soclite.test").debug("below the level: not written")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert tuple(first) == JSON_KEYS
    assert first["level"] == "INFO" and first["logger"] == "soclite.test"
    assert first["message"] == "plain line — ünïcode" and first["exc_info"] is None
    assert isinstance(first["process"], int)
    when = datetime.fromisoformat(first["time"])
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exc_info"]
    assert "\n" not in lines[1]  # the traceback stays inside the one JSON line


def test_text_format_and_a_second_call_replaces_the_handler(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("INFO", stream=second)
    logging.getLogger("soclite.test").warning("once")
    assert first.getvalue() == ""
    line = second.getvalue()
    assert line.count("\n") == 1 and " WARNING soclite.test[" in line and line.rstrip().endswith(": once")
    assert "+00:00" in line.split()[0]


def test_correlator_and_playbooks_loggers_follow_the_soclite_configuration(restore_logging: None) -> None:
    from soclite.correlator import engine
    from soclite.playbooks import runner

    out = io.StringIO()
    configure_logging("WARNING", json=True, stream=out)
    for module in (engine, runner):
        assert module.log.name == module.__name__ and module.log.name.startswith("soclite.")
        assert module.log.getEffectiveLevel() == logging.WARNING
        module.log.info("filtered by the soclite level")
        module.log.warning("from %s", module.__name__)
    logging.getLogger("soclite").setLevel(logging.ERROR)  # the soclite logger governs its children
    engine.log.warning("now filtered")
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(g["logger"], g["message"]) for g in got] == [
        ("soclite.correlator.engine", "from soclite.correlator.engine"),
        ("soclite.playbooks.runner", "from soclite.playbooks.runner"),
    ]


def test_logging_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().logging.format == "text" and Settings().logging.level == "INFO"
    monkeypatch.setenv("SOCLITE_LOGGING__FORMAT", "JSON")
    monkeypatch.setenv("SOCLITE_LOGGING__LEVEL", "debug")
    settings = Settings()
    assert settings.logging.format == "json" and settings.logging.level == "DEBUG"
    monkeypatch.setenv("SOCLITE_LOGGING__FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings()
