"""Retro-hunting: one Sigma rule over events already stored, for a time range, within a unit scope.

Where the events are decides how the rule runs:

* **OpenSearch**: the rule becomes a Lucene query through pySigma's OpenSearch backend and soclite's
  schema pipeline (:mod:`soclite.correlator.lucene`); the cluster searches, we page through its hits
  (``search_after``). The unit scope and time range are a ``bool`` filter beside the rule's query.
* **the embedded store** (SQLite day files) and **the cold archive** (``archive/events-*.jsonl.gz``):
  the events are streamed, oldest first, through soclite's own engine compiled for that one rule
  (the same compiler the live correlator uses), so a hunt there matches exactly what detection would.

Both paths yield the same hit rows; :func:`run_hunt` reports progress through a callback as it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sigma.processing.pipeline import ProcessingPipeline

from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_text
from soclite.correlator.lucene import PIPELINES_DIR, to_lucene
from soclite.correlator.matches import host_of
from soclite.errors import RequestError, RuleError
from soclite.models import UNIT, Event, severity_of
from soclite.store import _common as c
from soclite.store.archive import EventArchive
from soclite.store.base import EventQuery, Store

log = logging.getLogger(__name__)

#: the longest inline rule accepted (a Sigma rule is a few KB)
MAX_RULE_BYTES = 256 * 1024


@dataclass(frozen=True)
class HuntRequest:
    rule_yaml: str
    #: where the rule came from (a file, ``rule:<id>``, ``inline``): named in errors
    origin: str
    start: datetime
    end: datetime
    #: unit codes the hunt may read; None = the whole province
    units: frozenset[str] | None
    #: also re-scan the cold archive's segments of the range (embedded store)
    archive: bool = True


@dataclass
class HuntProgress:
    #: what is being read: "store", "opensearch", "archive" or "done"
    phase: str = "store"
    #: events read so far (engine paths) or matching events fetched (OpenSearch)
    scanned: int = 0
    #: how many there are to read, when known
    total: int | None = None
    hits: int = 0


def resolve_rule(spec: str, engine: Engine | None = None, *, files: bool = True) -> tuple[str, str]:
    """(rule YAML, origin) from a rule file (only with ``files``: the API never reads a path it is
    given), a rule id (or name) of the loaded set, or inline YAML."""
    text = spec.strip()
    if not text:
        raise RequestError("no rule given")
    if len(spec.encode()) > MAX_RULE_BYTES:
        raise RequestError(f"the rule is larger than {MAX_RULE_BYTES} bytes")
    if "\n" in text and ("detection" in text or "correlation" in text):
        return spec, "inline"
    if engine is not None:
        for rule in engine.rules:
            if text in (rule.id, rule.name):
                return _rule_from_file(rule.source, rule.id), f"rule:{rule.id}"
    path = Path(text)
    if files and "\n" not in text and len(text) < 4096 and path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RequestError(f"{path}: cannot read the rule: {exc}") from exc
    raise RequestError(f"{text[:80]!r} is neither a rule file, nor the id of a loaded rule, nor inline Sigma YAML")


def _rule_from_file(source: str, rule_id: str) -> str:
    """The YAML document of ``rule_id`` in the file a loaded rule came from (``path:line``)."""
    path = Path(source.rsplit(":", 1)[0])
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RuleError(f"{path}: cannot re-read rule {rule_id}: {exc}") from exc
    for doc in docs:
        if isinstance(doc, dict) and str(doc.get("id")) == rule_id:
            return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    raise RuleError(f"{path}: rule {rule_id} is no longer in its file")


def _engine_pipeline() -> ProcessingPipeline | None:
    pipeline: ProcessingPipeline | None = None
    for path in sorted(PIPELINES_DIR.glob("*.yml")) if PIPELINES_DIR.is_dir() else []:
        loaded = ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))
        pipeline = loaded if pipeline is None else pipeline + loaded
    return pipeline


def compile_hunt(rule_yaml: str, origin: str, placeholders: dict[str, list[str]] | None = None) -> Engine:
    """An engine holding only the hunted rule(s), compiled as the live correlator compiles them."""
    ruleset = RuleSet()
    load_text(rule_yaml, origin, ruleset, placeholders or {}, pipeline=_engine_pipeline())
    if ruleset.failures:
        raise RuleError(str(ruleset.failures[0]))
    if not ruleset.rules and not ruleset.correlations:
        raise RuleError(f"{origin}: no Sigma rule in it")
    return Engine(ruleset, placeholders=placeholders or {})


def hit_row(rule_id: str, title: str, level: str, event: Event, source: str) -> dict[str, Any]:
    """One hit as the CLI prints it and the API returns it (the fields of ``soclite hunt``'s rows)."""
    return {
        "rule_id": rule_id,
        "rule_title": title,
        "level": level,
        "severity": str(severity_of(level)),
        "timestamp": event.get("@timestamp"),
        "host": host_of(event),
        "unit": event.get(UNIT),
        "event_id": event.get("event.id"),
        "source": source,
        "event": event,
    }


def _in_range(event: Event, req: HuntRequest) -> bool:
    try:
        ts = c.event_time(event)
    except Exception:  # an archived event without a usable time cannot be in any range
        return False
    return req.start <= ts < req.end and (req.units is None or event.get(UNIT) in req.units)


def _segment_days(archive: EventArchive, req: HuntRequest) -> list[tuple[str, int]]:
    lo, hi = req.start.astimezone(UTC).strftime("%Y%m%d"), req.end.astimezone(UTC).strftime("%Y%m%d")
    return [(s.day, s.events) for s in archive.segments() if lo <= s.day <= hi]


def run_hunt(
    store: Store,
    req: HuntRequest,
    *,
    archive_dir: Path | None = None,
    placeholders: dict[str, list[str]] | None = None,
    progress: Callable[[HuntProgress], None] | None = None,
    every: int = 2000,
) -> Iterator[dict[str, Any]]:
    """The hits of ``req`` (see :func:`hit_row`), oldest first per source; ``progress`` is called every
    ``every`` events read and at the end."""
    if req.end <= req.start:
        raise RequestError("the hunt's 'to' must be after its 'from'")
    state = HuntProgress()

    def report() -> None:
        if progress is not None:
            progress(state)

    if store.kind == "opensearch":
        yield from _hunt_opensearch(store, req, state, report)
    else:
        engine = compile_hunt(req.rule_yaml, req.origin, placeholders)
        archive = EventArchive(archive_dir) if archive_dir is not None and req.archive else None
        segments = _segment_days(archive, req) if archive is not None else []
        query = EventQuery(start=req.start, end=req.end, units=req.units)
        state.total = store.count_events(query) + sum(n for _, n in segments)
        report()
        scan = getattr(store, "scan_events", None)
        if scan is None:
            raise RuleError(f"the {store.kind} store cannot be scanned")
        last = 0
        for chunk in scan(query):
            for event in chunk:
                yield from _detect(engine, event, "store", state)
            if state.scanned - last >= every:
                last = state.scanned
                report()
        if archive is not None:
            state.phase = "archive"
            report()
            for day, _count in segments:
                source = f"archive:{day}"
                for event in archive.iter_day(day):
                    if _in_range(event, req):
                        yield from _detect(engine, event, source, state)
                    else:
                        state.scanned += 1
                    if state.scanned - last >= every:
                        last = state.scanned
                        report()
    state.phase = "done"
    report()


def _detect(engine: Engine, event: Event, source: str, state: HuntProgress) -> Iterator[dict[str, Any]]:
    state.scanned += 1
    for match in engine.detect(event):
        state.hits += 1
        rule = match.rule
        yield hit_row(rule.id, rule.title, str(rule.level), event, source)


def _hunt_opensearch(
    store: Store, req: HuntRequest, state: HuntProgress, report: Callable[[], None]
) -> Iterator[dict[str, Any]]:
    search = getattr(store, "search_lucene", None)
    if search is None:  # pragma: no cover - every OpenSearch store has it
        raise RuleError("this OpenSearch store cannot run Lucene queries")
    state.phase = "opensearch"
    query = EventQuery(start=req.start, end=req.end, units=req.units)
    for rule, lucene in to_lucene(req.rule_yaml, req.origin):
        level = rule.level.name.lower() if rule.level is not None else "medium"
        log.info("retro-hunt %s on OpenSearch: %s", rule.id, lucene)
        rule_total = 0
        for total, page in search(lucene, query):
            if not rule_total:
                rule_total = total
                state.total = (state.total or 0) + total
            for event in page:
                state.scanned += 1
                state.hits += 1
                yield hit_row(str(rule.id or rule.title), rule.title, level, event, "opensearch")
            report()


__all__ = ["HuntProgress", "HuntRequest", "compile_hunt", "hit_row", "resolve_rule", "run_hunt"]
