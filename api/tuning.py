"""Tuning as the API and the web UI call it: the runtime's engine, the caller as actor, shared hit counts.

Exceptions and rule states themselves are :class:`soclite.control.tuning.Tuning` (``runtime.tuning``).
"""

from __future__ import annotations

import logging
from typing import Any

from soclite.control.audit import actor_of
from soclite.control.identity import Principal
from soclite.control.tuning import SUGGESTED_FIELDS, ExceptionCreate, filter_yaml, suggest_match
from soclite.runtime import Runtime

log = logging.getLogger(__name__)

__all__ = ["SUGGESTED_FIELDS", "ExceptionCreate", "active_exceptions", "apply_rule_states", "create", "filter_yaml",
           "get", "list_all", "may_toggle_rules", "rule_states", "set_enabled", "set_rule_enabled", "shared_hits",
           "suggest_match", "sync"]


def shared_hits(runtime: Runtime, kind: str) -> dict[str, int] | None:
    """Hit counts (``kind``: "rule_hits" or "exception_hits") of a pipeline running in another process.

    None when the pipeline runs in this process: the engine here is the one that counts.
    """
    reader = getattr(runtime.pipeline, kind, None)
    if not callable(reader):
        return None
    try:
        return {str(k): int(v) for k, v in dict(reader()).items()}
    except Exception:  # the list must render even if the hit table is busy
        log.exception("reading %s of the pipeline process failed", kind)
        return {}


def _exception_hits(runtime: Runtime) -> dict[str, int]:
    shared = shared_hits(runtime, "exception_hits")
    hits: dict[str, int] = shared or {}
    if runtime.engine is not None and shared is None:
        try:
            hits = dict(runtime.engine.exception_hits())
        except Exception:  # the list must render even if the engine is busy reloading
            log.exception("exception_hits failed")
    return hits


def create(runtime: Runtime, principal: Principal, body: ExceptionCreate, scope: frozenset[str] | None) -> dict[str, Any]:
    exception_id = runtime.tuning.create(body, name=principal.name, actor=actor_of(principal), unit=principal.unit,
                                         scope=scope, engine=runtime.engine)
    return get(runtime, exception_id, scope)


def list_all(runtime: Runtime, scope: frozenset[str] | None) -> list[dict[str, Any]]:
    return runtime.tuning.list_exceptions(scope, _exception_hits(runtime))


def get(runtime: Runtime, exception_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
    return runtime.tuning.get(exception_id, scope, _exception_hits(runtime))


def set_enabled(runtime: Runtime, principal: Principal, exception_id: str, enabled: bool,
                scope: frozenset[str] | None) -> dict[str, Any]:
    runtime.tuning.set_enabled(exception_id, enabled, actor=actor_of(principal), scope=scope, engine=runtime.engine)
    return get(runtime, exception_id, scope)


def active_exceptions(runtime: Runtime) -> list[tuple[str, str]]:
    return runtime.tuning.active_exceptions()


def sync(runtime: Runtime, extra: list[tuple[str, str]] | None = None) -> int:
    return runtime.tuning.sync(runtime.engine, extra)


def may_toggle_rules(principal: Principal) -> bool:
    from soclite.control.tuning import may_toggle_rules as allowed

    return allowed(principal.role.value, principal.unit)


def set_rule_enabled(runtime: Runtime, principal: Principal, rule_id: str, enabled: bool, before: bool | None) -> None:
    """Apply to the engine (NotFoundError for an unknown rule), persist, audit."""
    runtime.tuning.set_rule_enabled(rule_id, enabled, before, name=principal.name, actor=actor_of(principal),
                                    engine=runtime.engine)


def apply_rule_states(runtime: Runtime) -> int:
    return runtime.tuning.apply_rule_states(runtime.engine)


def rule_states(runtime: Runtime) -> dict[str, bool]:
    return runtime.tuning.rule_states()
