"""Index templates of the OpenSearch store, as data (also used by dashboards/opensearch/).

Mapping strategy for flat events with dotted keys: OpenSearch reads
``host.name`` as the path host → name, which is what queries (and pySigma's
OpenSearch backend) expect, and ``_source`` keeps the flat keys as sent. Two
traps are closed here:

* type conflicts (``EventID`` a number in one event, a string in another):
  every dynamic value is mapped as ``keyword`` (numbers and booleans too), so
  any later value fits; strings get a lowercase normalizer because Sigma and
  our filters compare case-insensitively;
* shape conflicts (``host`` a plain value in one event, ``host.name`` in
  another): the core fields are declared up front, and an event that still
  cannot be mapped is stored with only those fields plus its full JSON in the
  unindexed ``soclite.doc`` (see :mod:`soclite.store.opensearch`): kept, not lost.

Date detection is off so a string that looks like a date does not fix a field's type.
"""

from __future__ import annotations

from typing import Any

import orjson

from soclite.models import Event

NORMALIZER = "soclite_lowercase"

_KEYWORD_LC: dict[str, Any] = {"type": "keyword", "normalizer": NORMALIZER, "ignore_above": 8191}
_KEYWORD: dict[str, Any] = {"type": "keyword"}
_DATE: dict[str, Any] = {"type": "date"}
_HIDDEN_TEXT: dict[str, Any] = {"type": "text", "index": False}

#: hidden fields the store adds to an event document and strips when reading it back.
EVENT_TEXT = "soclite.text"
EVENT_HOST_KEY = "soclite.host_key"
EVENT_DOC = "soclite.doc"
EVENT_HIDDEN = (EVENT_TEXT, EVENT_HOST_KEY, EVENT_DOC)
#: the fields kept as fields when an event has to fall back to ``soclite.doc``.
EVENT_CORE = (
    "@timestamp",
    "event.id",
    "host.name",
    "soclite.unit",
    "logsource.product",
    "logsource.category",
    "logsource.service",
    EVENT_TEXT,
    EVENT_HOST_KEY,
)

#: hidden fields of alert and host documents.
ALERT_HIDDEN = ("sev_rank", "closed", "text", "host_key", "user_key", "source_ip_key")
HOST_HIDDEN = ("name_key", "text")


def _settings() -> dict[str, Any]:
    return {"analysis": {"normalizer": {NORMALIZER: {"type": "custom", "filter": ["lowercase"]}}}}


def events_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-events-*"],
        "priority": 200,
        "_meta": {"managed_by": "soclite"},
        "template": {
            "settings": {**_settings(), "index": {"mapping": {"total_fields": {"limit": 5000}}}},
            "mappings": {
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": [
                    {"strings": {"match_mapping_type": "string", "mapping": _KEYWORD_LC}},
                    {"longs": {"match_mapping_type": "long", "mapping": _KEYWORD}},
                    {"doubles": {"match_mapping_type": "double", "mapping": _KEYWORD}},
                    {"booleans": {"match_mapping_type": "boolean", "mapping": _KEYWORD}},
                ],
                "properties": {
                    "@timestamp": _DATE,
                    "event.id": _KEYWORD,
                    "event.original": {"type": "keyword", "normalizer": NORMALIZER, "ignore_above": 8191},
                    "host.name": _KEYWORD_LC,
                    "soclite.unit": _KEYWORD,
                    "logsource.product": _KEYWORD_LC,
                    "logsource.category": _KEYWORD_LC,
                    "logsource.service": _KEYWORD_LC,
                    EVENT_TEXT: _KEYWORD,
                    EVENT_HOST_KEY: _KEYWORD,
                    EVENT_DOC: _HIDDEN_TEXT,
                },
            },
        },
    }


#: alert fields added after the first release: put on an existing index at open (adding fields is allowed).
#: user_key / source_ip_key: the matched event's user and source IP, for grouping (count_alerts).
ALERT_ADDED_FIELDS: dict[str, Any] = {"properties": {"user_key": _KEYWORD, "source_ip_key": _KEYWORD}}


def alerts_template(prefix: str) -> dict[str, Any]:
    keywords = ("id", "fingerprint", "rule_id", "level", "severity", "status", "assignee", "unit", "kind")
    props: dict[str, Any] = {name: _KEYWORD for name in keywords}
    props.update({name: _DATE for name in ("first_seen", "last_seen", "created_at", "updated_at")})
    props.update({name: _DATE for name in ("acknowledged_at", "closed_at")})
    props.update(
        {
            "rule_title": {"type": "text", "fields": {"raw": _KEYWORD}},
            "host": _KEYWORD_LC,
            "host_key": _KEYWORD,
            "tags": _KEYWORD,
            "count": {"type": "long"},
            "sev_rank": {"type": "integer"},
            "closed": {"type": "boolean"},
            "text": _KEYWORD,
            "event_ids": _KEYWORD,
            **ALERT_ADDED_FIELDS["properties"],
            # The event copy is for reading, not searching: unmapped, so it cannot explode the mapping.
            "event": {"type": "object", "enabled": False},
        }
    )
    return {
        "index_patterns": [f"{prefix}-alerts"],
        "priority": 200,
        "_meta": {"managed_by": "soclite"},
        "template": {"settings": _settings(), "mappings": {"dynamic": False, "properties": props}},
    }


def hosts_template(prefix: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        name: _KEYWORD for name in ("id", "unit", "type", "agent_id", "isolation", "name_key", "text")
    }
    props.update({"name": _KEYWORD_LC, "ips": _KEYWORD, "last_seen": _DATE, "os": _KEYWORD_LC})
    return {
        "index_patterns": [f"{prefix}-hosts"],
        "priority": 200,
        "_meta": {"managed_by": "soclite"},
        "template": {"settings": _settings(), "mappings": {"dynamic": False, "properties": props}},
    }


def units_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-units"],
        "priority": 200,
        "_meta": {"managed_by": "soclite"},
        "template": {
            "mappings": {
                "dynamic": False,
                "properties": {"code": _KEYWORD, "parent": _KEYWORD, "name": {"type": "text"}},
            }
        },
    }


def audit_template(prefix: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        name: _KEYWORD for name in ("actor", "action", "target", "unit", "prev_hash", "hash")
    }
    props.update({"seq": {"type": "long"}, "at": _DATE})
    return {
        "index_patterns": [f"{prefix}-audit"],
        "priority": 200,
        "_meta": {"managed_by": "soclite"},
        "template": {"mappings": {"dynamic": False, "properties": props}},
    }


def templates(prefix: str, replicas: int | None = None) -> dict[str, dict[str, Any]]:
    """Template name → body, installed (idempotently) when the store opens.

    ``replicas``: ``index.number_of_replicas`` of every index they create (None: the cluster's default).
    """
    found = {
        f"{prefix}-events": events_template(prefix),
        f"{prefix}-alerts": alerts_template(prefix),
        f"{prefix}-hosts": hosts_template(prefix),
        f"{prefix}-units": units_template(prefix),
        f"{prefix}-audit": audit_template(prefix),
    }
    if replicas is not None:
        for body in found.values():
            body["template"].setdefault("settings", {})["number_of_replicas"] = replicas
    return found


def ism_policy(prefix: str, retention_days: int) -> dict[str, Any]:
    """Delete daily event indices older than the retention (only where the ISM plugin exists)."""
    return {
        "policy": {
            "description": f"soclite: delete {prefix} event indices after {retention_days} days",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [
                        {"state_name": "delete", "conditions": {"min_index_age": f"{retention_days}d"}}
                    ],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [f"{prefix}-events-*"], "priority": 100}],
        }
    }


def fallback_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """An event whose shape the index cannot map: core fields stay searchable, the rest kept as JSON."""
    original = {k: v for k, v in doc.items() if k not in EVENT_HIDDEN}
    kept = {k: doc[k] for k in EVENT_CORE if doc.get(k) is not None}
    kept[EVENT_DOC] = orjson.dumps(original).decode("utf-8")
    return kept


def event_from_source(source: dict[str, Any]) -> Event:
    if EVENT_DOC in source:
        event: Event = orjson.loads(source[EVENT_DOC])
        return event
    return {k: v for k, v in source.items() if k not in EVENT_HIDDEN}
