"""Logging for every soclite process: one formatter, plain text or one JSON object per line.

Every module logs through ``logging.getLogger(__name__)``, so all of soclite
(api, collectors, correlator, playbooks, store, ...) sits under the ``soclite``
logger. Entry points (``soclite server``, the pipeline worker, the agent) call
:func:`configure_logging` once instead of ``logging.basicConfig``; the handler
goes on the root logger so library lines (uvicorn, httpx, opensearch) come out
in the same format, which a log shipper needs when the format is JSON.

JSON lines carry ``time`` (UTC, ISO 8601 with its offset), ``level``,
``logger``, ``process``, ``message`` and ``exc_info`` (the traceback, or null).
Settings: ``logging: {level: INFO, format: text|json}`` in the YAML file or
``SOCLITE_LOGGING__FORMAT=json`` / ``SOCLITE_LOGGING__LEVEL=DEBUG``.
"""

from __future__ import annotations

import json as _json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: the logger every soclite module's logger descends from
ROOT_LOGGER = "soclite"

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"

#: the keys of a JSON line, in order
JSON_KEYS = ("time", "level", "logger", "process", "message", "exc_info")


class Formatter(logging.Formatter):
    """The one soclite formatter: a text line, or with ``json=True`` one JSON object per record.

    Times are UTC in ISO 8601 with the offset (``2026-01-31T23:59:59.123+00:00``) in both forms,
    so lines from processes on differently configured hosts sort and compare as they are.
    """

    def __init__(self, *, json: bool = False) -> None:
        super().__init__(TEXT_FORMAT)
        self.json = json

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        if not self.json:
            return super().format(record)
        doc: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
            "exc_info": self.formatException(record.exc_info) if record.exc_info else None,
        }
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return _json.dumps(doc, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs (a marker type so a second call replaces it)."""


def configure_logging(level: int | str = logging.INFO, json: bool = False, stream: TextIO | None = None) -> None:
    """Send every record to ``stream`` (stderr) in text or JSON; ``soclite`` and the root log at ``level``.

    Calling it again (the pipeline worker does once its settings arrive) replaces the handler
    it installed before rather than adding a second one.
    """
    if isinstance(level, str):
        level = level.upper()
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(Formatter(json=json))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(ROOT_LOGGER).setLevel(level)


__all__ = ["JSON_KEYS", "ROOT_LOGGER", "Formatter", "configure_logging"]
