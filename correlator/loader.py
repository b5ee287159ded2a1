"""Load Sigma rules, correlation rules and filters with pySigma, compiling each detection rule.

Each YAML document is parsed on its own so a broken rule is reported as
``file:line: reason`` (the line where its document starts) and the rest still
load. The result is a :class:`RuleSet`: compiled detection rules, correlation
rules and filters, and the list of failures.

YAML is read with pySigma's own loader (libyaml's C parser, plus its check for
duplicate keys) and the dicts handed to ``SigmaCollection.from_dicts``, so
pySigma's validation and error collection apply as with ``from_yaml``. Given a
``cache`` path, :func:`load_paths` keeps the compiled result there
(:mod:`correlator.cache`) and a later start with the same input loads it
instead of parsing and compiling again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionOR
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from soclite.correlator import cache as rule_cache
from soclite.correlator.anchors import Anchors
from soclite.correlator.compiler import compile_condition
from soclite.correlator.logsource import describe
from soclite.correlator.runtime import RUNTIME, Lowered
from soclite.errors import RuleError

log = logging.getLogger(__name__)

RULE_SUFFIXES = (".yml", ".yaml")


@dataclass
class CompiledRule:
    """One detection rule ready to run: metadata, the generated matcher and its index anchors."""

    id: str
    title: str
    level: str
    status: str
    product: str | None
    category: str | None
    service: str | None
    tags: list[str]
    references: list[str]
    falsepositives: list[str]
    description: str | None
    source: str
    func: Callable[[dict[str, Any], Lowered], bool]
    anchors: Anchors
    code: str
    name: str | None = None
    #: every necessary anchor set, best first by static estimate (an index may use another, see Engine._learn)
    anchor_options: list[frozenset[tuple[str, str, str]]] = field(default_factory=list)
    sigma: SigmaRule | None = field(default=None, repr=False)
    enabled: bool = True
    hits: int = 0
    errors: int = 0
    #: the event fields the rule's detection names (keywords name none): for detection health
    fields: tuple[str, ...] = ()
    #: matches a Sigma filter or an analysts' exception suppressed (since this process started)
    suppressed: int = 0
    #: when it last fired (epoch seconds, this process's clock), None if never since it started
    last_fired: float | None = None

    @property
    def logsource(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("product", self.product), ("category", self.category), ("service", self.service))
            if v
        }


@dataclass
class CompiledFilter:
    """A Sigma filter (site tuning): the rules it applies to and its compiled condition."""

    id: str
    title: str
    source: str
    sigma: SigmaFilter
    func: Callable[[dict[str, Any], Lowered], bool]

    def applies_to(self, rule: CompiledRule) -> bool:
        # pySigma's SigmaLogSource containment, on the rule's (post-pipeline) fields: a cached rule has no
        # pySigma object
        ls = self.sigma.logsource
        if (
            (ls.product is not None and ls.product != rule.product)
            or (ls.category is not None and ls.category != rule.category)
            or (ls.service is not None and ls.service != rule.service)
        ):
            return False
        refs = self.sigma.filter.rules
        if isinstance(refs, str):
            return refs.lower() == "any"
        names = {rule.id, rule.title, rule.name}
        return any(r.reference in names for r in refs)


@dataclass
class LoadFailure:
    source: str  # file:line
    reason: str
    #: the rule's id and title when the document was a mapping that had them (for the rules list)
    rule_id: str | None = None
    title: str | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class RuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[tuple[SigmaCorrelationRule, str]] = field(default_factory=list)
    filters: list[CompiledFilter] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    files: int = 0
    pipelines: list[str] = field(default_factory=list)
    #: how the rules were loaded: "off" (no cache asked), "hit", "miss" (compiled, cache written) or "unsaved"
    cache: str = "off"
    #: seconds spent in load_paths
    load_seconds: float = 0.0


def iter_rule_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
        elif path.exists():
            yield path
        else:
            raise RuleError("no such rule file or folder", source=str(path))


class RuleYAMLLoader(yaml.CSafeLoader):
    """libyaml's parser with pySigma's duplicate-key check (``sigma.rule.SigmaYAMLLoader``, same message).

    pySigma's loader constructs every key twice to compare them; comparing the key nodes' tag and text
    finds the same duplicates (Sigma keys are plain scalars) for a fraction of the cost."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [(k.tag, k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if len(keys) != len(set(keys)):
            seen: set[tuple[str, Any]] = set()
            for key in keys:
                if key in seen:
                    raise yaml.YAMLError(f"Duplicate key '{key[1]}'")
                seen.add(key)
        return super().construct_mapping(node, deep)


_DOC_SEP = re.compile(r"^---", re.MULTILINE)


def _doc_lines(text: str) -> list[int]:
    """Starting line (1-based) of each YAML document of a file."""
    lines = [1]
    for m in _DOC_SEP.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if line == 1:
            continue
        lines.append(line + 1)
    return lines


def _location(exc: Exception, fallback: str) -> str:
    src = getattr(exc, "source", None)
    line = getattr(src, "line", None)
    path = getattr(src, "path", None)
    if path is not None and line:
        return f"{path}:{line}"
    return fallback


def compile_rule(rule: SigmaRule, source: str, placeholders: dict[str, list[str]], seq: int) -> CompiledRule:
    """Compile a parsed pySigma rule (several conditions are OR'ed, as the spec says)."""
    trees = [cond.parse() for cond in rule.detection.parsed_condition]
    tree = trees[0] if len(trees) == 1 else ConditionOR(trees)  # type: ignore[arg-type]
    func, options, code = compile_condition(tree, f"rule_{seq}", placeholders)
    ls = rule.logsource
    return CompiledRule(
        id=str(rule.id) if rule.id else f"{source}",
        title=rule.title,
        level=str(rule.level.name).lower() if rule.level else "medium",
        status=str(rule.status.name).lower() if rule.status else "experimental",
        product=ls.product,
        category=ls.category,
        service=ls.service,
        tags=[str(t) for t in rule.tags],
        references=list(rule.references or []),
        falsepositives=[str(f) for f in (rule.falsepositives or [])],
        description=rule.description,
        source=source,
        func=func,
        anchors=options[0] if options else None,
        code=code,
        anchor_options=options,
        name=rule.name,
        sigma=rule,
        fields=detection_fields(rule),
    )


def detection_fields(rule: SigmaRule) -> tuple[str, ...]:
    """The field names of a rule's detection items, sorted (keyword items have none)."""
    out: set[str] = set()
    stack: list[Any] = list(rule.detection.detections.values())
    while stack:
        item = stack.pop()
        if isinstance(item, SigmaDetection):
            stack.extend(item.detection_items)
        elif isinstance(item, SigmaDetectionItem) and item.field:
            out.add(item.field)
    return tuple(sorted(out))


def compile_filter(
    flt: SigmaFilter, source: str, placeholders: dict[str, list[str]], seq: int
) -> CompiledFilter:
    tree = flt.filter.parsed_condition[0].parse()
    func, _, _ = compile_condition(tree, f"filter_{seq}", placeholders)
    return CompiledFilter(id=str(flt.id or source), title=flt.title, source=source, sigma=flt, func=func)


def load_text(
    text: str,
    origin: str,
    out: RuleSet,
    placeholders: dict[str, list[str]],
    *,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    pipeline: ProcessingPipeline | None = None,
) -> None:
    """Parse and compile every document of one YAML text into ``out`` (``pipeline`` applied to each rule)."""
    starts = _doc_lines(text)
    try:
        docs = list(yaml.load_all(text, Loader=RuleYAMLLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        out.failures.append(LoadFailure(f"{origin}:{line}", f"invalid YAML: {exc}"))
        return
    for i, doc in enumerate(docs):
        where = f"{origin}:{starts[i] if i < len(starts) else 1}"
        if doc is None:
            continue
        if not isinstance(doc, dict):
            out.failures.append(LoadFailure(where, "a Sigma rule must be a YAML mapping"))
            continue
        if keep is not None and not keep(doc):
            continue
        try:
            coll = SigmaCollection.from_dicts([doc], collect_filters=True, resolve_references=False)
            for flt in coll.filters:
                out.filters.append(compile_filter(flt, where, placeholders, len(out.filters)))
            for rule in coll.rules:
                if isinstance(rule, SigmaCorrelationRule):
                    out.correlations.append((rule, where))
                else:
                    if pipeline is not None:
                        pipeline.apply(rule)
                    out.rules.append(compile_rule(rule, where, placeholders, len(out.rules)))
        except (SigmaError, RuleError, ValueError, TypeError, KeyError) as exc:
            rule_id, title = doc.get("id"), doc.get("title")
            out.failures.append(LoadFailure(_location(exc, where), _reason(exc),
                                            str(rule_id) if rule_id else None, str(title) if title else None))  # fmt: skip


def _reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, RuleError) and exc.source is None:
        return text
    # pySigma appends " in <path>" / RuleError prefixes the location: keep only the reason
    return re.sub(r"\s+in\s+\S+:?\d*$", "", text) or type(exc).__name__


def load_paths(
    paths: Iterable[Path],
    placeholders: dict[str, list[str]] | None = None,
    *,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    cache: Path | None = None,
) -> RuleSet:
    """Load every rule file under ``paths``; failures are collected, never raised (except a missing path).

    ``cache``: a file for the compiled rules (see :mod:`correlator.cache`); not used with ``keep``
    (a callable has no content to key on)."""
    t0 = time.perf_counter()
    ph = placeholders or {}
    raw: list[tuple[Path, bytes | OSError]] = []
    for path in iter_rule_files(paths):
        try:
            raw.append((path, path.read_bytes()))
        except OSError as exc:
            raw.append((path, exc))
    key = None
    if cache is not None and keep is None:
        key = rule_cache.cache_key([(str(p), d if isinstance(d, bytes) else b"") for p, d in raw], ph)
        payload = rule_cache.read(cache, key)
        if payload is not None:
            try:
                out = _from_payload(payload, ph)
            except Exception as exc:  # whatever is wrong with it, compiling again is the remedy
                log.warning("rule cache %s not usable (%s): rebuilding", cache, exc)
            else:
                out.cache = "hit"
                out.load_seconds = time.perf_counter() - t0
                return out
    out = _load_files(raw, ph, keep)
    if key is not None and cache is not None:
        out.cache = "miss" if rule_cache.write(cache, key, _to_payload(out)) else "unsaved"
    out.load_seconds = time.perf_counter() - t0
    return out


def _load_files(
    raw: list[tuple[Path, bytes | OSError]],
    ph: dict[str, list[str]],
    keep: Callable[[dict[str, Any]], bool] | None,
) -> RuleSet:
    out = RuleSet()
    texts: list[tuple[Path, str]] = []
    pipeline: ProcessingPipeline | None = None
    for path, data in raw:
        out.files += 1
        try:
            if isinstance(data, OSError):
                raise data
            # as Path.read_text: universal newlines
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except (OSError, UnicodeDecodeError) as exc:
            out.failures.append(LoadFailure(f"{path}:1", f"cannot read: {exc}"))
            continue
        if PIPELINE_MARK.search(text):
            try:
                loaded = ProcessingPipeline.from_yaml(text)
            except (SigmaError, yaml.YAMLError, ValueError, TypeError, KeyError) as exc:
                out.failures.append(LoadFailure(f"{path}:1", f"invalid pySigma pipeline: {exc}"))
                continue
            pipeline = loaded if pipeline is None else pipeline + loaded
            out.pipelines.append(str(path))
            continue
        texts.append((path, text))
    for path, text in texts:
        load_text(text, str(path), out, ph, keep=keep, pipeline=pipeline)
    return out


_META = (
    *("id", "title", "level", "status", "product", "category", "service", "tags", "references"),
    *("falsepositives", "description", "source", "code", "name", "fields"),
)


def _to_payload(rs: RuleSet) -> dict[str, Any]:
    rules = []
    for rule in rs.rules:
        item = rule_cache.dump_function(rule.func, RUNTIME)
        item.meta = {k: getattr(rule, k) for k in _META}
        item.meta["anchor_options"] = rule.anchor_options
        rules.append(item)
    return {
        "rules": rules,
        "filters": [(f.sigma, f.source) for f in rs.filters],
        "correlations": rs.correlations,
        "failures": [(f.source, f.reason, f.rule_id, f.title) for f in rs.failures],
        "files": rs.files,
        "pipelines": rs.pipelines,
    }


def _from_payload(payload: dict[str, Any], ph: dict[str, list[str]]) -> RuleSet:
    out = RuleSet(files=payload["files"], pipelines=list(payload["pipelines"]))
    for item in payload["rules"]:
        meta = item.meta
        options = meta["anchor_options"]
        out.rules.append(
            CompiledRule(
                **{k: meta[k] for k in _META},
                func=rule_cache.load_function(item, RUNTIME),
                anchors=options[0] if options else None,
                anchor_options=options,
            )
        )
    for flt, source in payload["filters"]:
        out.filters.append(compile_filter(flt, source, ph, len(out.filters)))
    out.correlations = list(payload["correlations"])
    out.failures = [LoadFailure(*failure) for failure in payload["failures"]]
    return out


#: A YAML file with top-level ``transformations:`` is a pySigma processing pipeline, applied to every rule loaded
#: with it (e.g. rules/pipelines/windows-audit.yml).
PIPELINE_MARK = re.compile(r"^transformations:", re.MULTILINE)


def logsource_of(rule: CompiledRule) -> dict[str, str]:
    return describe(rule.sigma.logsource) if rule.sigma is not None else rule.logsource
