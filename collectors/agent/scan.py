"""On-demand malware scan: the ``scan`` command runs ClamAV on the host and streams what it finds.

The engine is the host's own: ``clamdscan`` (the running clamd's signatures, fast) or ``clamscan``
(loads the signatures itself; the one that takes ``-d`` for a signature file or folder the site
names, e.g. a local mirror or, in tests, a database made on the spot). Neither installed → the
result says ``not_available`` and why; nothing is pretended.

Each ``PATH: SIGNATURE FOUND`` line is handed to ``on_finding`` as clamscan prints it, and the agent
spools it at once as a record for the server's ``clamav`` parser (``logsource: category antivirus,
product clamav``; fields ``Signature`` and ``Filename`` as SigmaHQ's antivirus rules read them), so
findings become alerts while a long scan is still running. The command's result is a JSON summary
(:meth:`ScanResult.detail`) the server shows in the response queue.

clamscan/clamdscan exit codes: 0 nothing found, 1 something found, 2 an error (a path that does not
exist, a database that does not load); findings printed before an error still count.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

ScanStatus = Literal["clean", "infected", "not_available", "error"]
#: findings named in the result (all of them are sent as events)
LISTED_FINDINGS = 50


class ScanOptions(BaseModel):
    """The agent's ``scan:`` settings."""

    model_config = {"extra": "forbid"}

    #: auto: clamdscan when no ``database`` is set and it is installed, else clamscan
    engine: Literal["auto", "clamdscan", "clamscan"] = "auto"
    #: signatures for clamscan ``-d`` (a .cvd/.cld/.hdb/.ndb file or a folder of them); None: its default
    database: Path | None = None
    #: a scan still running after this long is stopped and reported as an error (with what it found)
    timeout_seconds: float = Field(3600.0, gt=0)
    #: most paths one command may name
    max_paths: int = Field(64, ge=1, le=4096)


@dataclass
class ScanResult:
    status: ScanStatus
    engine: str | None
    paths: list[str]
    findings: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The scan ran to its end (clean or not): what the command reports as done."""
        return self.status in ("clean", "infected")

    def detail(self) -> str:
        return json.dumps({
            "scan": self.status, "engine": self.engine, "paths": self.paths, "findings": len(self.findings),
            "found": [{"path": p, "signature": s} for p, s in self.findings[:LISTED_FINDINGS]],
            "error": self.error,
        }, ensure_ascii=False)  # fmt: skip


def find_engine(options: ScanOptions) -> tuple[str, str] | None:
    """(name, executable) of the engine to run, or None when the host has none."""
    order = {"auto": ("clamscan",) if options.database else ("clamdscan", "clamscan"),
             "clamdscan": ("clamdscan",), "clamscan": ("clamscan",)}[options.engine]  # fmt: skip
    for name in order:
        exe = shutil.which(name)
        if exe:
            return name, exe
    return None


def _finding(line: str) -> tuple[str, str] | None:
    if not line.endswith(" FOUND"):
        return None
    path, sep, signature = line[: -len(" FOUND")].rpartition(": ")
    return (path, signature) if sep and path else None


def check_paths(paths: list[str], options: ScanOptions) -> str | None:
    """Why these paths cannot be scanned (None when they can)."""
    if not paths:
        return "no paths to scan"
    if len(paths) > options.max_paths:
        return f"{len(paths)} paths: at most {options.max_paths} per scan"
    for path in paths:
        if not path.startswith("/") and not (len(path) > 2 and path[1] == ":"):
            return f"path {path!r} is not absolute"
        if "\x00" in path:
            return "a path contains a NUL character"
    return None


def run_scan(paths: list[str], options: ScanOptions, on_finding: Callable[[str], None],
             stop: threading.Event | None = None) -> ScanResult:
    """Scan ``paths``; ``on_finding`` gets each FOUND line (the clamav parser's input) as it is printed."""
    refused = check_paths(paths, options)
    if refused:
        return ScanResult("error", None, paths, error=refused)
    engine = find_engine(options)
    if engine is None:
        wanted = "clamscan" if options.database or options.engine == "clamscan" else "clamdscan or clamscan"
        return ScanResult("not_available", None, paths,
                          error=f"not available: {wanted} is not installed on this host (Debian: apt-get install "
                                "clamav)")  # fmt: skip
    name, exe = engine
    argv = [exe, "--no-summary", "--infected"]
    if name == "clamscan":
        argv.append("--recursive")
        if options.database is not None:
            argv += ["-d", str(options.database)]
    else:
        argv.append("--fdpass")  # clamd reads the files through our descriptors, not with its own rights
    argv += ["--", *paths]
    findings: list[tuple[str, str]] = []
    log.info("scan: %s", " ".join(argv))
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace")  # fmt: skip
    except OSError as exc:
        return ScanResult("error", name, paths, error=f"{name} could not start: {exc}")
    timer = threading.Timer(options.timeout_seconds, proc.kill)
    timer.start()
    stderr_lines: list[str] = []
    drain = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr or []), daemon=True)
    drain.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            found = _finding(line)
            if found is None:
                continue
            findings.append(found)
            on_finding(line)
            if stop is not None and stop.is_set():
                proc.kill()
                break
        code = proc.wait()
    finally:
        timer.cancel()
        drain.join(timeout=5)
    error = None
    if code not in (0, 1):
        tail = " ".join(s.strip() for s in stderr_lines[-5:] if s.strip())
        error = f"{name} exited with {code}" + (f": {tail}" if tail else "")
        if code < 0:
            error = f"{name} stopped (timeout {options.timeout_seconds:g}s or agent stopping)"
    if findings:
        return ScanResult("infected", name, paths, findings, error)
    if error:
        return ScanResult("error", name, paths, error=error)
    return ScanResult("clean", name, paths)


__all__ = ["ScanOptions", "ScanResult", "check_paths", "find_engine", "run_scan"]
