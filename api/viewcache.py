"""What the alert pages read, kept while the alerts stay the same: the store's alerts version decides.

A hundred analysts on the queue asked the same questions of the same alerts: the page of rows with their
SLA state, the histogram, the top groups with their labels, the rows rendered as HTML (bench/api.py
--concurrency: ~12 ms of CPU per queue page at 100,000 alerts, where one Python process has one core to
serve them all). Each answer is filed under the alerts version it was computed at
(:meth:`~soclite.store.base.Store.alerts_version`, which moves on every alert write by any process), and
is used again only while the version is the same *and* for at most ``ttl`` seconds: some of what is kept
depends on the clock (an SLA turns overdue, "today" on a chart), not on the alerts. A store without a
cheap version (OpenSearch) answers None, and nothing is kept.

The version is read *before* the answer is computed, so an answer is never filed under a newer version
than the data it saw: a write in between makes the next reader compute again. The key must hold
everything else the answer depends on: the caller's unit scope, the filters, the language.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")

_MISSING = object()

#: how long an answer is used at most, seconds (SLA states and the chart's "today" follow the clock)
VIEW_TTL_SECONDS = 5.0
#: how many answers are kept (least recently used first out)
VIEW_CACHE_SIZE = 256


class ViewCache:
    """A small LRU of computed answers, each valid for one alerts version and ``ttl`` seconds."""

    def __init__(self, size: int = VIEW_CACHE_SIZE, ttl: float = VIEW_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[int, float, object]] = OrderedDict()
        self._flights: dict[Hashable, threading.RLock] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: int | None, compute: Callable[[], T]) -> T:
        """The answer of ``compute()`` for ``key`` at alerts ``version`` (None: never kept).

        Callers missing the same key at once compute it once: the others wait for that answer instead
        of each asking the store the same question (the first burst of a hundred clients on a cold cache).
        """
        if version is None or self.size <= 0:
            return compute()
        found = self._lookup(key, version)
        if found is not _MISSING:
            return cast(T, found)  # filed by this same key's compute
        with self._lock:
            flight = self._flights.setdefault(key, threading.RLock())
        try:
            with flight:
                found = self._lookup(key, version)
                if found is not _MISSING:
                    return cast(T, found)
                value = compute()
                with self._lock:
                    self.misses += 1
                    self._entries[key] = (version, self._clock(), value)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.size:
                        self._entries.popitem(last=False)
                return value
        finally:
            with self._lock:  # a waiter that finds it gone only re-reads the entry: nothing is lost
                if self._flights.get(key) is flight:
                    del self._flights[key]

    def _lookup(self, key: Hashable, version: int) -> object:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == version and now - hit[1] < self.ttl:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit[2]
        return _MISSING

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def query_key(query: Any) -> Hashable:
    """A dataclass query (AlertQuery) as a key: its fields in order, sets sorted, lists as tuples, so two
    equal queries give equal keys whatever order their unit scope was built in."""
    def canon(value: Any) -> Hashable:
        if isinstance(value, (set, frozenset)):
            return ("set", *sorted(str(v) for v in value))
        if isinstance(value, (list, tuple)):
            return ("seq", *(canon(v) for v in value))
        return cast(Hashable, value)
    return (type(query).__name__, *((f.name, canon(getattr(query, f.name))) for f in dataclasses.fields(query)))
