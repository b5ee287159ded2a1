"""dashboards/opensearch/: saved objects that resolve, templates in sync with the code, fields that aggregate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.store import _os_mappings as m
from soclite.store.opensearch import OpenSearchStore

from .conftest import opensearch_settings
from .factories import alert

FOLDER = Path(__file__).resolve().parents[2] / "dashboards" / "opensearch"


def _objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FOLDER / "saved-objects.ndjson").read_text().splitlines() if line]


def test_index_template_files_match_the_code() -> None:
    for name, body in m.templates("soclite").items():
        assert json.loads((FOLDER / "index-templates" / f"{name}.json").read_text()) == body
    policy = json.loads((FOLDER / "ism-policy-soclite-events-retention.json").read_text())
    assert policy == m.ism_policy("soclite", 180)


def test_saved_objects_resolve() -> None:
    objects = _objects()
    ids = {(o["type"], o["id"]) for o in objects}
    assert len(ids) == len(objects)
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']} refers to missing {ref}"
        if obj["type"] == "dashboard":
            panels = json.loads(obj["attributes"]["panelsJSON"])
            assert {p["panelRefName"] for p in panels} == {r["name"] for r in obj["references"]}
    patterns = {o["id"]: o["attributes"] for o in objects if o["type"] == "index-pattern"}
    assert patterns["soclite-alerts"]["timeFieldName"] == "last_seen"
    assert patterns["soclite-events"]["title"] == "soclite-events-*"


def _agg_fields(obj: dict[str, Any]) -> list[str]:
    state = json.loads(obj["attributes"]["visState"])
    return [a["params"]["field"] for a in state["aggs"] if "field" in a.get("params", {})]


@pytest.fixture
def prefixed_store(opensearch_url: str, tmp_path: Path) -> Iterator[OpenSearchStore]:
    settings = opensearch_settings(opensearch_url, tmp_path)
    store = OpenSearchStore.from_settings(settings)
    store.open()
    yield store
    store.drop_all()
    store.close()


def test_visualization_fields_aggregate_on_stored_alerts(prefixed_store: OpenSearchStore) -> None:
    store = prefixed_store
    store.put_alerts([alert(i, unit=f"u{i % 3}", level=("high", "medium", "low")[i % 3]) for i in range(9)])
    for obj in _objects():
        if obj["type"] != "visualization" or obj["references"][0]["id"] != "soclite-alerts":
            continue
        for field in _agg_fields(obj):
            kind = "date_histogram" if field == "last_seen" else "terms"
            params: dict[str, Any] = {"field": field}
            if kind == "date_histogram":
                params["calendar_interval"] = "day"
            result = store.client.search(
                index=f"{store.prefix}-alerts", body={"size": 0, "aggs": {"a": {kind: params}}}
            )
            buckets = result["aggregations"]["a"]["buckets"]
            assert sum(b["doc_count"] for b in buckets) == 9, (obj["id"], field)
