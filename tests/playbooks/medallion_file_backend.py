"""A medallion backend that keeps its data across restarts, like a real national TAXII server would.

medallion's MemoryBackend loads a JSON file at start but never writes it back; this subclass writes the
file (atomically: temp file + rename) after every accepted POST, before the answer goes out, so anything
acknowledged survives a SIGKILL. Used only by the tests (medallion runs it as a subprocess).
"""

from __future__ import annotations

import json
import os
from typing import Any

from medallion.backends.memory_backend import MemoryBackend


class FileBackend(MemoryBackend):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        self._path = kwargs["filename"]
        super().__init__(**kwargs)

    def add_objects(self, *args: Any, **kwargs: Any) -> Any:
        status = super().add_objects(*args, **kwargs)
        tmp = f"{self._path}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self.data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._path)
        return status
