"""Load Sigma rules, correlation rules and filters with pySigma, compiling each detection rule.

Each YAML document is parsed on its own so a broken rule is reported as
``file:line: reason`` (the line where its document starts) and the rest still
load. The result is a :class:`RuleSet`: compiled detection rules, correlation
rules and filters, and the list of failures.
"""

from __future__ import annotations

import re
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
from sigma.rule import SigmaRule

from soclite.correlator.anchors import Anchors
from soclite.correlator.compiler import compile_condition
from soclite.correlator.logsource import describe
from soclite.correlator.runtime import Lowered
from soclite.errors import RuleError

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
        if rule.sigma is None:
            return False
        if rule.sigma.logsource not in self.sigma.logsource:
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


def iter_rule_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
        elif path.exists():
            yield path
        else:
            raise RuleError("no such rule file or folder", source=str(path))


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
    )


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
        docs = list(yaml.safe_load_all(text))
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
            out.failures.append(LoadFailure(_location(exc, where), _reason(exc)))


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
) -> RuleSet:
    """Load every rule file under ``paths``; failures are collected, never raised (except a missing path)."""
    out = RuleSet()
    ph = placeholders or {}
    texts: list[tuple[Path, str]] = []
    pipeline: ProcessingPipeline | None = None
    for path in iter_rule_files(paths):
        out.files += 1
        try:
            text = path.read_text(encoding="utf-8")
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


#: A YAML file with top-level ``transformations:`` is a pySigma processing pipeline, applied to every rule loaded
#: with it (e.g. rules/pipelines/windows-audit.yml).
PIPELINE_MARK = re.compile(r"^transformations:", re.MULTILINE)


def logsource_of(rule: CompiledRule) -> dict[str, str]:
    return describe(rule.sigma.logsource) if rule.sigma is not None else rule.logsource
