"""Sigma rules as OpenSearch Lucene queries over soclite's event indices (retro-hunting on OpenSearch).

The conversion is pySigma's own OpenSearch backend (``pysigma-backend-opensearch``) with a processing
pipeline for soclite's event schema:

* native fields keep their names in stored events (``Image``, ``CommandLine``, ``EventID``...), so
  SigmaHQ field names need no renaming; the Windows aliases the live engine uses
  (``rules/pipelines/*.yml``: Security 4688 ``NewProcessName`` for ``Image``...) are applied too,
  so a retro-hunt and the live correlator look at the same fields;
* a rule's ``logsource`` becomes conditions on the stored ``logsource.product``/``category``/``service``
  fields (the normalizer sets them on every event; see :mod:`soclite.correlator.logsource`): without
  them a ``process_creation`` rule would also match web logs that happen to share a field name.

Case: every stored string is a keyword with a lowercase normalizer (``store._os_mappings``), and
OpenSearch normalizes the terms of wildcard queries on such fields as well, so the backend's
case-preserving output compares case-insensitively, as Sigma asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sigma.backends.opensearch.opensearch import OpensearchLuceneBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.conditions import RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.rule import SigmaRule

from soclite.errors import RuleError

#: the live engine's pySigma pipelines (field aliases), shipped with the package
PIPELINES_DIR = Path(__file__).parent.parent / "rules" / "pipelines"
_LOGSOURCE_FIELDS = ("product", "category", "service")


@dataclass
class _HasLogsource(RuleProcessingCondition):
    """The rule's logsource names ``attribute`` (product, category or service)."""

    attribute: str = "product"

    def match(self, rule: SigmaRule | SigmaCorrelationRule) -> bool:
        return isinstance(rule, SigmaRule) and getattr(rule.logsource, self.attribute, None) is not None


def schema_pipeline() -> ProcessingPipeline:
    """soclite's event schema for pySigma backends: logsource conditions, then the engine's field aliases."""
    items = [
        ProcessingItem(
            identifier=f"soclite_logsource_{attr}",
            transformation=AddConditionTransformation(
                conditions={f"logsource.{attr}": f"${attr}"}, template=True, name=f"soclite_logsource_{attr}"
            ),
            rule_conditions=[_HasLogsource(attribute=attr)],
        )
        for attr in _LOGSOURCE_FIELDS
    ]
    pipeline = ProcessingPipeline(name="soclite event schema", priority=10, items=items)
    if PIPELINES_DIR.is_dir():
        for path in sorted(PIPELINES_DIR.glob("*.yml")):
            pipeline = pipeline + ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))
    return pipeline


def to_lucene(rule_yaml: str, origin: str = "rule") -> list[tuple[SigmaRule, str]]:
    """Each detection rule of ``rule_yaml`` with its Lucene query (correlation rules are refused: a
    retro-hunt runs single-event rules)."""
    try:
        collection = SigmaCollection.from_yaml(rule_yaml)
    except SigmaError as exc:
        raise RuleError(f"{origin}: {exc}") from exc
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    if not rules:
        raise RuleError(f"{origin}: no Sigma detection rule to hunt with (correlation rules are not supported here)")
    out: list[tuple[SigmaRule, str]] = []
    for rule in rules:
        backend = OpensearchLuceneBackend(schema_pipeline())
        try:
            queries = backend.convert_rule(rule)
        except SigmaError as exc:
            raise RuleError(f"{origin}: rule {rule.id or rule.title} cannot be converted for OpenSearch: {exc}") from exc
        out.extend((rule, str(q)) for q in queries)
    return out


__all__ = ["PIPELINES_DIR", "schema_pipeline", "to_lucene"]
