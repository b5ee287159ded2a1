"""A literal set scanned with cached databases that hold it (scanners.covering) finds what its own would."""

from __future__ import annotations

import random
from typing import Any

import pytest

from soclite.correlator import scanners
from soclite.correlator.scanners import REUSE_MIN, REUSE_REST, field_scanner, hs_bind, hs_compile

pytestmark = pytest.mark.skipif(not scanners.HAVE_HYPERSCAN, reason="Hyperscan is not installed")

RNG = random.Random(14)
ALPHABET = "abcdef\\:. -"


def _words(n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(RNG.choice(ALPHABET) for _ in range(RNG.randint(3, 7))))
    return sorted(out)


def _texts(words: list[str]) -> list[str]:
    texts = ["".join(RNG.choice(ALPHABET) for _ in range(RNG.randint(0, 300))) for _ in range(300)]
    texts += [RNG.choice(words).upper() + " x " + RNG.choice(words) for _ in range(200)]
    return texts


def _cached(cache: dict[Any, Any], words: list[str]) -> None:
    cache[("hyperscan", "F", tuple(words))] = hs_compile(words)


def _same_as_own(words: list[str], cache: dict[Any, Any], pool: list[str]) -> None:
    positions = [(i, i + 1) for i in range(len(words))]
    got = field_scanner(words, positions, "hyperscan", "F", cache, reuse=True)
    want = hs_bind(hs_compile(words), positions)
    for text in _texts(pool):
        found: set[int] = set()
        got(text, found)
        expected: set[int] = set()
        want(text, expected)
        assert found == expected, text


def test_a_set_split_between_two_cached_databases() -> None:
    pool = _words(2 * REUSE_MIN)
    first, second = pool[: REUSE_MIN + 300], pool[REUSE_MIN - 300 :]  # overlapping halves
    cache: dict[Any, Any] = {}
    _cached(cache, first)
    _cached(cache, second)
    wanted = sorted(RNG.sample(pool, REUSE_MIN + 100))  # most of each, some of the overlap
    before = len(cache)
    _same_as_own(wanted, cache, pool)
    assert len(cache) == before  # nothing compiled (the reference scanner compiles outside the cache)


def test_what_the_cached_databases_lack_is_compiled_apart() -> None:
    pool = _words(REUSE_MIN + 300)
    cache: dict[Any, Any] = {}
    _cached(cache, pool[: REUSE_MIN + 200])
    wanted = pool[100 : REUSE_MIN + 250]  # 50 words no database holds
    _same_as_own(wanted, cache, pool)
    assert ("hyperscan", "F", tuple(pool[REUSE_MIN + 200 : REUSE_MIN + 250])) in cache
    assert ("hyperscan", "F", tuple(wanted)) not in cache


def test_a_set_the_cache_barely_holds_is_compiled_whole() -> None:
    pool = _words(REUSE_MIN + REUSE_REST + 10)
    cache: dict[Any, Any] = {}
    _cached(cache, pool[: REUSE_MIN // 2])
    _same_as_own(pool, cache, pool)
    assert ("hyperscan", "F", tuple(pool)) in cache
