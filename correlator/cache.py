"""The compiled-rule cache: a warm start skips YAML parsing, pySigma and code generation.

What a :class:`~correlator.loader.RuleSet` needs to run is kept in one file:
per rule its metadata, the generated function's byte code (``marshal``), the
constants it refers to and its anchor options; filters and correlations as
their pySigma objects (few, re-compiled on load); the load failures.

The cache is valid for exactly one input, named by its key, a SHA-256 over:
the cache format, the Python version (``marshal`` is version-bound), soclite's
and pySigma's versions, the source of the modules that generate the code, the
placeholders, and every rule and pipeline file's path and bytes. Any change
gives another key and so a rebuild. The file carries a SHA-256 of its payload:
a truncated or corrupt file is ignored with a warning and rebuilt, never
half-used. Writes go to a temporary file renamed over the old one, so a reader
never sees a partial cache.

Rules loaded from the cache have ``sigma = None`` (the pySigma rule object is
what costs seconds to rebuild): nothing on the detection path uses it.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import marshal
import os
import pickle
import sys
import tempfile
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
MAGIC = b"SOCLITE-RULES\x00"
#: Modules whose code decides what a compiled rule is: a change in any of them is a rebuild.
_CODEGEN = ("anchors.py", "cache.py", "compiler.py", "loader.py", "regex.py", "runtime.py")
_HERE = Path(__file__).resolve().parent


@dataclass
class CachedRule:
    """A compiled rule as stored: the generated function as byte code plus its constants."""

    meta: dict[str, Any]
    name: str
    code: bytes  # marshal of the compiled module defining ``name``
    consts: dict[str, Any]


def _codegen_digest() -> bytes:
    h = hashlib.sha256()
    for name in _CODEGEN:
        h.update(name.encode())
        h.update((_HERE / name).read_bytes())
    return h.digest()


def cache_key(files: Sequence[tuple[str, bytes]], placeholders: dict[str, list[str]]) -> str:
    """The key of one input: see the module docstring."""
    from importlib.metadata import version

    from soclite import __version__

    h = hashlib.sha256()
    head = f"{CACHE_FORMAT}|{sys.version}|soclite {__version__}|pySigma {version('pySigma')}"
    h.update(head.encode())
    h.update(_codegen_digest())
    for name in sorted(placeholders):
        h.update(b"\x01" + name.encode() + b"\x00" + "\x00".join(placeholders[name]).encode())
    for path, data in files:
        h.update(b"\x02" + path.encode("utf-8", "surrogateescape") + b"\x00")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def dump_function(func: Any, runtime: dict[str, Any]) -> CachedRule:
    """A generated rule function → its byte code and the constants (not the runtime helpers) it uses."""
    name = func.__name__
    skip = set(runtime) | {name, "__builtins__"}
    consts = {k: v for k, v in func.__globals__.items() if k not in skip}
    return CachedRule(meta={}, name=name, code=marshal.dumps(func.__code__), consts=consts)


def load_function(item: CachedRule, runtime: dict[str, Any]) -> Any:
    """The function back from :func:`dump_function` (a module-level function: no defaults, no closure)."""
    ns: dict[str, Any] = dict(runtime)
    ns.update(item.consts)
    ns["__builtins__"] = builtins
    func = types.FunctionType(marshal.loads(item.code), ns, item.name)
    ns[item.name] = func
    return func


def read(path: Path, key: str) -> Any | None:
    """The payload stored for ``key`` at ``path``; None when absent, stale or corrupt (with a warning)."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("rule cache %s unreadable (%s): rebuilding", path, exc)
        return None
    head = len(MAGIC) + 64 + 32
    if len(blob) < head or not blob.startswith(MAGIC):
        log.warning("rule cache %s is not a soclite rule cache: rebuilding", path)
        return None
    stored_key = blob[len(MAGIC) : len(MAGIC) + 64].decode("ascii", "replace")
    digest = blob[len(MAGIC) + 64 : head]
    payload = blob[head:]
    if stored_key != key:
        return None  # another input (rules or versions changed): a normal rebuild
    if hashlib.sha256(payload).digest() != digest:
        log.warning("rule cache %s is corrupt (checksum mismatch): rebuilding", path)
        return None
    try:
        # pickle runs code: the cache is trusted as the code is (a directory only soclite's user writes);
        # the checksum guards against corruption, not against that user
        return pickle.loads(payload)
    except Exception as exc:  # a checksum-valid but unloadable payload (e.g. a class renamed)
        log.warning("rule cache %s cannot be loaded (%s): rebuilding", path, exc)
        return None


def write(path: Path, key: str, payload: Any) -> bool:
    """Store ``payload`` for ``key`` atomically; a failure is a warning (the next start rebuilds)."""
    try:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # e.g. a constant type that does not pickle: run uncached
        log.warning("rule cache not written: %s", exc)
        return False
    blob = MAGIC + key.encode("ascii") + hashlib.sha256(data).digest() + data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("rule cache %s not written: %s", path, exc)
        return False
    return True


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/soclite`` (else ``~/.cache/soclite``): where ``soclite hunt`` keeps its cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "soclite"
