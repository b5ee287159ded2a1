"""Tail a log file like ``tail -F``, remembering (inode, position) so restarts resume exactly.

Three things happen to log files and each is handled without loss:

* rotation by rename (logrotate's default): the open descriptor still points at
  the old inode; it is drained to its end (a last line without a newline is taken
  whole, its writer has moved on) before switching to the new file at position 0.
  If the agent was down during the rotation, the stored inode is looked for among
  the file's siblings (``auth.log.1``) and finished first.
* truncation (``copytruncate``): the file is shorter than the position; reading
  restarts at 0 and the offset's ``generation`` is bumped so batch ids stay unique.
* growth: only complete lines are consumed; a partial last line waits for its newline.

Lines are read into ``pending``; the caller takes a batch with :meth:`take` and,
once the batch is durably spooled together with :meth:`take`'s offset, calls
:meth:`commit`. :meth:`rewind` forgets uncommitted lines if spooling failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from soclite.collectors.agent.spool import Offset


@dataclass
class Chunk:
    """Lines of one inode between two byte positions: the unit a batch is made of."""

    source: str
    path: str
    inode: int
    generation: int
    start: int
    end: int
    lines: list[str] = field(default_factory=list)

    @property
    def offset(self) -> Offset:
        return Offset(inode=self.inode, position=self.end, generation=self.generation)


class FileTailer:
    def __init__(
        self,
        path: Path,
        stored: Offset | None,
        *,
        start_at: str = "beginning",
        max_line_bytes: int = 65536,
    ) -> None:
        self.path = path
        self.source = f"file:{path}"
        self.max_line_bytes = max_line_bytes
        self._start_at = start_at
        self._stored = stored
        self._fh: BinaryIO | None = None
        self._reading_path = str(path)
        self.inode = 0
        self.generation = stored.generation if stored else 0
        #: position after the last line read (committed + pending)
        self.position = 0
        #: the durable position
        self.committed: Offset | None = stored
        self.pending: list[str] = []
        self._pending_start = 0
        #: set when the current inode is finished: its pending lines must be shipped before switching
        self._switch_pending = False
        self._truncated = False

    # --- opening --------------------------------------------------------------------
    def _open(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        stored = self.committed
        target, position = str(self.path), 0
        if stored is None:
            position = st.st_size if self._start_at == "end" else 0
        elif stored.inode == st.st_ino:
            position = stored.position
            if position > st.st_size:  # truncated while we were away
                position = 0
                self.generation += 1
        else:
            sibling = self._find_inode(stored.inode)
            if sibling is not None:  # rotated while we were away: finish the old file first
                target, position = sibling, stored.position
        if self._open_at(target, position) and stored is not None and stored.inode != self.inode:
            self.generation = 0  # a file never read before

    def _open_at(self, target: str, position: int) -> bool:
        try:
            fh = open(target, "rb")  # noqa: SIM115 - kept open across polls on purpose (tail -F)
        except FileNotFoundError:
            return False
        self._fh = fh
        self._reading_path = target
        self.inode = os.fstat(fh.fileno()).st_ino
        fh.seek(position)
        self.position = self._pending_start = position
        return True

    def _find_inode(self, inode: int) -> str | None:
        try:
            entries = list(os.scandir(self.path.parent))
        except OSError:
            return None
        for entry in entries:
            if entry.name.startswith(self.path.name) and entry.name != self.path.name:
                try:
                    if entry.inode() == inode and entry.is_file():
                        return entry.path
                except OSError:
                    continue
        return None

    # --- reading --------------------------------------------------------------------
    def read(self, limit: int) -> None:
        """Read complete lines into ``pending`` until ``limit`` lines are pending or nothing more is there."""
        if self._switch_pending:
            if self.pending:
                return
            self._switch()
        if self._fh is None:
            self._open()
            if self._fh is None:
                return
        fh = self._fh
        while len(self.pending) < limit:
            raw = fh.readline(self.max_line_bytes)
            if not raw:
                break
            if not raw.endswith(b"\n") and len(raw) < self.max_line_bytes:
                fh.seek(self.position)  # a partial line: wait for its newline
                break
            self.position += len(raw)
            self.pending.append(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
        if len(self.pending) >= limit:
            return
        self._check_rotation()

    def _check_rotation(self) -> None:
        assert self._fh is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # renamed away, the new file not created yet: keep the old descriptor
        if st.st_ino != self.inode:
            # Finished inode: take a trailing line without a newline, then switch once pending is shipped.
            rest = self._fh.read()
            if rest:
                self.position += len(rest)
                for part in rest.split(b"\n"):
                    if part:
                        self.pending.append(part.rstrip(b"\r").decode("utf-8", "replace"))
            self._switch_pending = True
            if not self.pending:
                self._switch()
        elif st.st_size < self.position:
            # copytruncate: lines pending before the truncation still belong to the old generation.
            self._switch_pending = True
            self._truncated = True  # lines pending before the truncation keep the old generation
            if not self.pending:
                self._switch()

    def _switch(self) -> None:
        self._switch_pending = False
        if self._truncated:
            self._truncated = False
            assert self._fh is not None
            self._fh.seek(0)
            self.generation += 1
            self.position = self._pending_start = 0
            return
        if self._fh is not None:
            self._fh.close()
        self._fh = None
        # The new inode is read from its beginning: every line of a rotated-in file is new.
        self.generation = 0
        self._open_at(str(self.path), 0)

    @property
    def must_flush(self) -> bool:
        """The current inode (or generation) is finished: ship its pending lines before switching."""
        return self._switch_pending

    # --- batches ----------------------------------------------------------------------
    def take(self) -> Chunk | None:
        """Every pending line as a chunk (not yet committed); ``read``'s limit bounds its size."""
        if not self.pending:
            return None
        return Chunk(
            self.source,
            self._reading_path,
            self.inode,
            self.generation,
            self._pending_start,
            self.position,
            list(self.pending),
        )

    def commit(self, chunk: Chunk) -> None:
        self.committed = chunk.offset
        self.pending = []
        self._pending_start = chunk.end

    def rewind(self) -> None:
        """Forget uncommitted lines (spooling failed); they are read again on the next poll."""
        self.pending = []
        self._switch_pending = False
        if self._fh is not None:
            self._fh.close()
        self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
