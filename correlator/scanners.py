"""Multi-literal scanners: Hyperscan databases (Aho-Corasick where Hyperscan is not installed), compiled
once per literal set and cached by content, bound to the rule positions each literal stands for.

Used by :mod:`correlator.index` (one scanner per field and event type) and :mod:`correlator.keywords`
(the keyword literals over JSON text). Hyperscan scans case-insensitively (ASCII folding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ahocorasick

try:  # optional accelerator
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - depends on the platform's wheels
    HAVE_HYPERSCAN = False

#: scan(text, found): add the positions of the rules whose literal occurs in ``text`` to ``found``
Scanner = Callable[[str, set[int]], None]
#: the same over bytes (JSON text)
BytesScanner = Callable[[bytes, set[int]], None]


def hs_compile(literals: list[str], extra: list[bytes] | None = None) -> Any:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS
    expressions = [lit.encode("utf-8") for lit in literals] + (extra or [])
    db.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[flags] * len(expressions),
        literal=True,
    )
    return db, hyperscan.Scratch(db)


def hs_regex_literal(literal: bytes) -> bytes:
    """``literal`` as a Hyperscan expression that matches it alone (every byte but letters and digits hex-escaped)."""
    return b"".join(bytes((c,)) if chr(c).isalnum() and c < 128 else b"\\x%02x" % c for c in literal)


def hs_compile_regex(literals: list[str], sentinels: tuple[bytes, ...]) -> Any:
    """The ``literals`` (caseless) and the ``sentinels`` (regular expressions, case as written) in one database."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    expressions = [hs_regex_literal(lit.encode("utf-8")) for lit in literals] + list(sentinels)
    single = hyperscan.HS_FLAG_SINGLEMATCH
    db.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[single | hyperscan.HS_FLAG_CASELESS] * len(literals) + [single] * len(sentinels),
    )
    return db, hyperscan.Scratch(db)


def hs_bind(compiled: Any, positions: list[tuple[int, ...]]) -> Scanner:
    """Case-insensitive (ASCII) literal scan; the text must be ASCII or lower-cased."""
    db, scratch = compiled
    scan_db = db.scan

    def on_match(ident: int, start: int, end: int, flags: int, found: Any) -> None:
        found.update(positions[ident])

    def scan(text: str, found: set[int]) -> None:
        # surrogatepass: a lone surrogate (Python's json lets "\ud800" through) is no reason to fail
        scan_db(text.encode("utf-8", "surrogatepass"), on_match, 0, found, scratch)

    return scan


def hs_bind_parts(parts: list[tuple[Any, list[tuple[int, ...]]]]) -> Scanner:
    """:func:`hs_bind` over several databases (see :func:`covering`): each with its positions per id."""
    bound = []
    for (db, scratch), positions in parts:

        def on_match(ident: int, start: int, end: int, flags: int, found: Any, _p: Any = positions) -> None:
            found.update(_p[ident])

        bound.append((db.scan, on_match, scratch))

    def scan(text: str, found: set[int]) -> None:
        data = text.encode("utf-8", "surrogatepass")
        for scan_db, on_match, scratch in bound:
            scan_db(data, on_match, 0, found, scratch)

    return scan


#: scanner-cache kinds that :func:`dump_compiled` can serialize (Hyperscan databases)
_HS_KINDS = ("hyperscan", "hyperscan-json", "hyperscan-raw")


def dump_compiled(cache: dict[Any, Any]) -> dict[Any, bytes]:
    """The Hyperscan databases of a scanner cache (see :func:`_scanner`) as bytes, by the same keys.

    Keys are content (backend, field, literals), so a stored database is valid for any rule set;
    Aho-Corasick automatons are cheap to build and not kept."""
    return {key: hyperscan.dumpb(value[0]) for key, value in cache.items() if key[0] in _HS_KINDS}


def load_compiled(blobs: dict[Any, bytes]) -> dict[Any, Any]:
    """:func:`dump_compiled`'s output back into scanner-cache entries (an unreadable one is skipped)."""
    if not HAVE_HYPERSCAN:
        return {}
    out: dict[Any, Any] = {}
    for key, blob in blobs.items():
        try:
            db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            out[key] = (db, hyperscan.Scratch(db))
        except Exception:  # a database this Hyperscan cannot load is compiled again when needed
            continue
    return out


def aho_compile(literals: list[str]) -> Any:
    auto = ahocorasick.Automaton()
    for ident, lit in enumerate(literals):
        auto.add_word(lit, ident)
    auto.make_automaton()
    return auto


def aho_bind(compiled: Any, positions: list[tuple[int, ...]]) -> Scanner:
    """Same contract as :func:`hs_bind` with pyahocorasick (the text is lower-cased here)."""
    it = compiled.iter

    def scan(text: str, found: set[int]) -> None:
        for _, ident in it(text.lower()):
            found.update(positions[ident])

    return scan


def hs_bind_bytes(compiled: Any, positions: list[tuple[int, ...]]) -> BytesScanner:
    db, scratch = compiled
    scan_db = db.scan

    def on_match(ident: int, start: int, end: int, flags: int, found: Any) -> None:
        found.update(positions[ident])

    def scan(data: bytes, found: set[int]) -> None:
        scan_db(data, on_match, 0, found, scratch)

    return scan



def backend_kind(backend: str) -> str:
    return "hyperscan" if backend == "hyperscan" or (backend == "auto" and HAVE_HYPERSCAN) else "aho"



def cached(cache: dict[Any, Any] | None, key: Any, compile_: Callable[[], Any]) -> Any:
    compiled = cache.get(key) if cache is not None else None
    if compiled is None:
        compiled = compile_()
        if cache is not None:
            cache[key] = compiled
    return compiled


def field_scanner(
    words: list[str],
    positions: list[tuple[int, ...]],
    backend: str,
    field: str,
    cache: dict[Any, Any] | None,
    reuse: bool = False,
) -> Scanner:
    """A scanner over ``words``: the compiled literal set (the costly part) is cached by its words
    alone, so a rebuild that only moves rules between literals binds new positions without compiling.
    ``reuse``: a set not compiled yet may be scanned with cached databases of the field (:func:`covering`)."""
    kind = backend_kind(backend)
    key = (kind, field, tuple(words))
    if reuse and kind == "hyperscan" and cache is not None and key not in cache and len(words) >= REUSE_MIN:
        parts = covering(cache, key, positions)
        if parts is not None:
            return hs_bind_parts(parts)
    compile_ = hs_compile if kind == "hyperscan" else aho_compile
    compiled = cached(cache, key, lambda: compile_(words))
    return hs_bind(compiled, positions) if kind == "hyperscan" else aho_bind(compiled, positions)


#: covering: literal sets at least this large (compiling costs ~14 µs a literal), at most this many
#: cached databases, and at most this many literals compiled for what they leave out
REUSE_MIN = 1000
REUSE_PARTS = 2
REUSE_REST = 256


def covering(
    cache: dict[Any, Any], key: tuple[str, str, tuple[str, ...]], positions: list[tuple[int, ...]]
) -> list[tuple[Any, list[tuple[int, ...]]]] | None:
    """Cached Hyperscan databases of ``key``'s field that hold ``key``'s words between them (the rest,
    if few, compiled apart), each with the positions it reports per id; None when they do not.

    The engine's learning rebuilds a type's index with each rule's rarest anchor option, and each
    option's literals are in a database compiled already: the type's first index or its learning
    index (Engine._explorer). Process creation's CommandLine set, 6,500 literals, then costs no
    0.09 s compile mid-stream, but a scan of two databases. Every word is reported by exactly one
    part with its positions; a part's other words report nothing (an empty tuple)."""
    kind, field, words = key
    wanted = dict(zip(words, positions, strict=True))
    left = set(words)
    bases = [(k[2], value) for k, value in list(cache.items()) if len(k) == 3 and k[0] == kind and k[1] == field]
    parts: list[tuple[Any, list[tuple[int, ...]]]] = []
    while left and len(parts) < REUSE_PARTS and bases:
        base_words, compiled = max(bases, key=lambda base: len(left.intersection(base[0])))
        if not left.intersection(base_words):
            break
        parts.append((compiled, [wanted[w] if w in left else () for w in base_words]))
        left.difference_update(base_words)
    if not parts or len(left) > REUSE_REST:
        return None
    if left:
        rest = sorted(left)
        compiled = cached(cache, (kind, field, tuple(rest)), lambda: hs_compile(rest))
        parts.append((compiled, [wanted[w] for w in rest]))
    return parts
