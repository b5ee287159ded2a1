"""Case attachments: files an analyst adds to a case (a screenshot, a log extract, a pcap, a letter).

The bytes live under ``data_dir/attachments`` with a random name (the name a person gave is kept
only in the row, so it can never pick a path); the row in control.db keeps the given name, the size,
the SHA-256 (shown, and carried into the incident export so a copy can be checked) and the media
type *detected from the content*, never from the name: a ``report.pdf`` that is a Windows program
is refused as a program. Visibility is the case's: whoever cannot see the case cannot list, read or
delete its files. Every add and delete is audited and written in the case's history.

An upload is copied in chunks while it is counted and hashed, so an over-size file is refused
(:class:`TooLarge`, 413) as soon as it passes the limit and nothing of it stays on disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO

import filetype  # type: ignore[import-untyped]

from soclite.config import CaseSettings
from soclite.control import audit
from soclite.control.cases import Cases
from soclite.db import Database
from soclite.errors import NotFoundError, TooLarge, UnsupportedType
from soclite.models import isoformat, new_id, utcnow

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
#: bytes of the head the type is told from (filetype reads at most 8 KiB; text needs a longer look)
HEAD = 8192

#: Program formats, by their first bytes. filetype knows ELF and PE too, but a shebang script or a
#: Java class (0xCAFEBABE, shared with Mach-O fat binaries) it calls text or nothing.
_PROGRAM_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "application/x-executable"),
    (b"MZ", "application/x-msdownload"),  # DOS/PE: .exe, .dll, .sys, .scr
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", "application/java-vm"),
    (b"#!", "text/x-script"),
)
#: Formats a SOC attaches that filetype does not know: packet captures and Windows event logs.
_SOC_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd4\xc3\xb2\xa1", "application/vnd.tcpdump.pcap"),
    (b"\xa1\xb2\xc3\xd4", "application/vnd.tcpdump.pcap"),
    (b"\x4d\x3c\xb2\xa1", "application/vnd.tcpdump.pcap"),  # nanosecond pcap
    (b"\xa1\xb2\x3c\x4d", "application/vnd.tcpdump.pcap"),
    (b"\x0a\x0d\x0d\x0a", "application/x-pcapng"),
    (b"ElfFile\x00", "application/x-ms-evtx"),
)
_PROGRAM_TYPES = frozenset(t for _, t in _PROGRAM_MAGIC) | {
    "application/x-executable", "application/x-msdownload", "application/x-mach-binary", "application/x-elf",
    "application/vnd.microsoft.portable-executable", "application/x-sharedlib",
}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")


def detect_type(head: bytes) -> tuple[str | None, bool]:
    """The media type told from a file's first bytes, and whether it is a program; (None, False) if unknown."""
    for magic, media in _PROGRAM_MAGIC:
        if head.startswith(magic):
            return media, True
    for magic, media in _SOC_MAGIC:
        if head.startswith(magic):
            return media, False
    kind = filetype.guess(head)
    if kind is not None:
        media = str(kind.mime)
        return media, media in _PROGRAM_TYPES
    if _is_text(head):
        return "text/plain", False
    return None, False


def _is_text(head: bytes) -> bool:
    if not head:
        return True  # an empty file: nothing to run, nothing to hide
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # the head may cut a multi-byte character at its end: only an error there is tolerated
        return exc.start >= len(head) - 3 and len(head) == HEAD
    return True


def clean_name(name: str) -> str:
    """The name a person gave, as a bare file name: no directories, control characters or leading dots."""
    base = re.split(r"[/\\]", name)[-1]
    base = _UNSAFE_NAME.sub("_", unicodedata.normalize("NFC", base)).strip().lstrip(".")
    return base[:200] or "attachment"


class CaseAttachments:
    """The ``case_attachments`` table and the files under ``data_dir/attachments``."""

    def __init__(self, db: Database, data_dir: Path, settings: CaseSettings, cases: Cases) -> None:
        self.db = db
        self.dir = data_dir / "attachments"
        self.settings = settings
        self.cases = cases

    def _check_type(self, head: bytes) -> str:
        media, program = detect_type(head)
        if program and self.settings.refuse_executables:
            raise UnsupportedType(f"the file is a program ({media}); programs are not kept as case attachments",
                                  msgid="The file is a program (%(type)s); programs are not kept as attachments.",
                                  params={"type": str(media)})
        if media is None:
            if not self.settings.allow_unknown_types:
                raise UnsupportedType("the file's type cannot be told from its content; unknown types are refused",
                                      msgid="The file's type cannot be told from its content; unknown types are "
                                            "refused.")  # fmt: skip
            media = "application/octet-stream"
        allowed = self.settings.allowed_types
        if allowed is not None and media not in allowed:
            raise UnsupportedType(f"files of type {media} are not accepted here (allowed: {', '.join(allowed)})",
                                  msgid="Files of type %(type)s are not accepted here.", params={"type": media})
        return media

    def add(self, case_id: str, name: str, source: BinaryIO, *, actor: str, uploaded_by: str,
            scope: frozenset[str] | None) -> dict[str, Any]:
        """Keep ``source`` (read in chunks) as an attachment of the case. Raises NotFoundError, TooLarge,
        UnsupportedType; on any refusal nothing is kept."""
        case = self.cases.get(case_id, scope)
        limit = self.settings.attachment_max_bytes
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        stored = secrets.token_hex(16)
        part = self.dir / f".{stored}.part"
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            # 0600 like every file of the data directory: evidence is for the case's readers only
            with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"the file is larger than the limit of {limit} bytes",
                                       msgid="The file is larger than the limit of %(limit)s bytes.",
                                       params={"limit": str(limit)})
                    if len(head) < HEAD:
                        head += chunk[: HEAD - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            media = self._check_type(head)
            row = {"id": new_id()[:12], "case_id": case_id, "name": clean_name(name), "stored_name": stored,
                   "size": size, "sha256": digest.hexdigest(), "media_type": media, "uploaded_by": uploaded_by,
                   "uploaded_at": isoformat(utcnow())}  # fmt: skip
            part.rename(self.dir / stored)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        try:
            with self.db.write() as conn:
                conn.execute(f"INSERT INTO case_attachments ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))  # fmt: skip
        except BaseException:
            (self.dir / stored).unlink(missing_ok=True)
            raise
        shown = _public(row)
        self.cases.record(case_id, actor, "attachment_added", shown)
        audit.append(self.cases.store, actor, "case.attachment_add", f"case:{case_id}", None, shown, case.get("unit"))
        log.info("case %s: attachment %s (%s, %d bytes, sha256 %s) by %s", case_id, row["id"], media, size,
                 row["sha256"], actor)  # fmt: skip
        return shown

    def of_case(self, case_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        self.cases.get(case_id, scope)
        rows = self.db.reader().execute(
            "SELECT * FROM case_attachments WHERE case_id = ? ORDER BY uploaded_at, id", (case_id,)
        ).fetchall()
        return [_public(dict(r)) for r in rows]

    def _row(self, case_id: str, attachment_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
        self.cases.get(case_id, scope)
        row = self.db.reader().execute(
            "SELECT * FROM case_attachments WHERE id = ? AND case_id = ?", (attachment_id, case_id)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"attachment {attachment_id} not found in case {case_id}")
        return dict(row)

    def open(self, case_id: str, attachment_id: str, scope: frozenset[str] | None) -> tuple[dict[str, Any], Path]:
        """The attachment's row and the path of its bytes (NotFoundError if either is gone)."""
        row = self._row(case_id, attachment_id, scope)
        path = self.dir / row["stored_name"]
        if not path.is_file():
            raise NotFoundError(f"attachment {attachment_id}: its file is missing from the data directory")
        return _public(row), path

    def delete(self, case_id: str, attachment_id: str, *, actor: str, scope: frozenset[str] | None) -> dict[str, Any]:
        row = self._row(case_id, attachment_id, scope)
        with self.db.write() as conn:
            conn.execute("DELETE FROM case_attachments WHERE id = ?", (attachment_id,))
        (self.dir / row["stored_name"]).unlink(missing_ok=True)
        shown = _public(row)
        case = self.cases.get(case_id, None)
        self.cases.record(case_id, actor, "attachment_deleted", shown)
        audit.append(self.cases.store, actor, "case.attachment_delete", f"case:{case_id}", shown, None,
                     case.get("unit"))  # fmt: skip
        return shown


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A row as callers see it: never the stored (random) file name."""
    return {k: v for k, v in row.items() if k != "stored_name"}


__all__ = ["CaseAttachments", "clean_name", "detect_type"]
