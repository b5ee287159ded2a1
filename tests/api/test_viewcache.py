"""The alert pages' answer cache: kept for one alerts version and a few seconds, computed once at a time."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from soclite.api.viewcache import ViewCache, query_key
from soclite.store.base import AlertQuery


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_only_at_its_version() -> None:
    cache = ViewCache(ttl=60)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("k", 7, compute) == 1
    assert cache.get("k", 7, compute) == 1  # same version: kept
    assert cache.get("k", 8, compute) == 2  # an alert changed: computed again
    assert cache.get("other", 8, compute) == 3  # another key is another answer
    assert len(calls) == 3


def test_an_answer_expires_after_its_ttl() -> None:
    clock = Clock()
    cache = ViewCache(ttl=5, clock=clock)
    calls: list[int] = []
    cache.get("k", 1, lambda: calls.append(1))
    clock.now += 4.9
    cache.get("k", 1, lambda: calls.append(1))
    assert len(calls) == 1
    clock.now += 0.2  # an SLA may have turned overdue since: read again
    cache.get("k", 1, lambda: calls.append(1))
    assert len(calls) == 2


def test_a_store_without_a_version_is_never_cached() -> None:
    cache = ViewCache()
    calls: list[int] = []
    for _ in range(3):
        cache.get("k", None, lambda: calls.append(1))
    assert len(calls) == 3


def test_least_recently_used_answers_leave_first() -> None:
    cache = ViewCache(size=2, ttl=60)
    calls: list[str] = []
    for key in ("a", "b", "a", "c", "a", "b"):
        cache.get(key, 1, lambda key=key: calls.append(key))
    assert calls == ["a", "b", "c", "b"]  # "b" was the oldest when "c" came


def test_an_error_is_not_kept() -> None:
    cache = ViewCache(ttl=60)

    def fail() -> int:
        raise ValueError("store down")

    for _ in range(2):
        with pytest.raises(ValueError):
            cache.get("k", 1, fail)
    assert cache.get("k", 1, lambda: 5) == 5


def test_concurrent_misses_of_one_key_compute_once() -> None:
    cache = ViewCache(ttl=60)
    calls: list[int] = []
    arrived = threading.Semaphore(0)
    followers = 8
    release = threading.Event()

    def slow() -> int:
        calls.append(1)
        # hold the answer until every follower has called get() (they then wait for it or find it)
        for _ in range(followers):
            assert arrived.acquire(timeout=60)
        release.wait(0.3)  # let the last one reach the wait; a pass never depends on this
        return 42

    results: list[int] = []
    leader = threading.Thread(target=lambda: results.append(cache.get("k", 1, slow)))
    leader.start()
    while not calls:  # the leader is inside compute before any follower asks
        threading.Event().wait(0.01)

    def follow() -> None:
        arrived.release()
        results.append(cache.get("k", 1, lambda: calls.append(1) or 0))

    threads = [threading.Thread(target=follow) for _ in range(followers)]
    for t in threads:
        t.start()
    for t in [leader, *threads]:
        t.join(60)
    assert results == [42] * (followers + 1)
    assert len(calls) == 1


@dataclass
class _Q:
    units: frozenset[str] | None
    status: list[str] | None


def test_equal_queries_give_equal_keys() -> None:
    a = AlertQuery(units=frozenset(["H-A", "H-B", "PROV"]), status=["new", "acknowledged"])
    b = AlertQuery(units=frozenset(["PROV", "H-B", "H-A"]), status=("new", "acknowledged"))
    assert query_key(a) == query_key(b)
    assert hash(query_key(a)) == hash(query_key(b))
    assert query_key(a) != query_key(AlertQuery(units=frozenset(["H-A"]), status=["new", "acknowledged"]))
    assert query_key(a) != query_key(AlertQuery(units=None, status=["new", "acknowledged"]))
    assert query_key(_Q(frozenset(["x"]), None)) != query_key(_Q(None, ["x"]))
