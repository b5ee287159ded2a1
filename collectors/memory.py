"""Give freed memory back to the system after a burst (glibc only; a no-op elsewhere).

CPython frees a large batch's objects, but glibc keeps the freed heap pages of each thread's
arena mapped, so RSS stays at the burst's peak for the life of the process: one 30 MB batch or a
UDP flood would leave the server hundreds of MB bigger. ``malloc_trim(0)`` returns the free pages
(milliseconds of work), and capping glibc at two malloc arenas keeps the executor threads that
parse batches from each holding their own high-water mark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
_lock = threading.Lock()
_last = 0.0
_libc: ctypes.CDLL | None = None
try:
    _name = ctypes.util.find_library("c")
    if _name:
        _candidate = ctypes.CDLL(_name)
        if hasattr(_candidate, "malloc_trim"):
            _libc = _candidate
except OSError:  # pragma: no cover - no C library to load (not Linux/glibc)
    _libc = None


def limit_arenas(count: int = 2) -> None:
    """Cap glibc's malloc arenas (call once at process start, before the worker threads)."""
    if _libc is not None and hasattr(_libc, "mallopt"):
        _libc.mallopt(_M_ARENA_MAX, count)


def release(min_interval: float = 1.0) -> None:
    """Return free heap pages to the system; at most once per ``min_interval`` seconds."""
    global _last
    if _libc is None:
        return
    now = time.monotonic()
    with _lock:
        if now - _last < min_interval:
            return
        _last = now
    _libc.malloc_trim(0)


__all__ = ["limit_arenas", "release"]
