"""Follow the systemd journal through ``journalctl -o json --follow --after-cursor``.

The journal's cursor is the offset: it is stored with each spooled batch, so a
restart resumes right after the last spooled entry. Each entry is turned into an
RFC 5424 line (full timestamp with zone, host, identifier, pid) so the server's
syslog parsers read it like any other syslog message.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from typing import Any

SOURCE = "journald"


def available() -> bool:
    return shutil.which("journalctl") is not None


def to_syslog_line(entry: dict[str, Any]) -> str:
    """RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID - - MSG."""

    def text(key: str) -> str:
        value = entry.get(key)
        if isinstance(value, list):  # journald gives a list for repeated fields, bytes as int lists
            value = (
                value[0]
                if value and not isinstance(value[0], int)
                else bytes(value).decode("utf-8", "replace")
            )
        return str(value) if value not in (None, "") else "-"

    try:
        priority = int(entry.get("PRIORITY", 6))
        facility = int(entry.get("SYSLOG_FACILITY", 3))
    except (TypeError, ValueError):
        priority, facility = 6, 3
    micros = entry.get("__REALTIME_TIMESTAMP")
    try:
        ts = datetime.fromtimestamp(int(str(micros)) / 1e6, UTC) if micros else datetime.now(UTC)
    except (TypeError, ValueError):
        ts = datetime.now(UTC)
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    app = text("SYSLOG_IDENTIFIER") if entry.get("SYSLOG_IDENTIFIER") else text("_COMM")
    message = text("MESSAGE") if entry.get("MESSAGE") is not None else ""
    return f"<{facility * 8 + priority}>1 {stamp} {text('_HOSTNAME')} {app} {text('_PID')} - - {message}"


class JournalFollower:
    """A ``journalctl`` child process read by a thread into a queue of (cursor, line)."""

    def __init__(self, cursor: str | None) -> None:
        args = ["journalctl", "-o", "json", "--follow", "--no-pager"]
        args += ["--after-cursor", cursor] if cursor else ["--lines", "0"]
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=10_000)
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._pump, name="journald", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            cursor = entry.get("__CURSOR")
            if isinstance(cursor, str):
                self.queue.put((cursor, to_syslog_line(entry)))

    def drain(self, limit: int) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        while len(items) < limit:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
