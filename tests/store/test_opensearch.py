"""OpenSearch-only behaviour: index layout, templates, bulk failure handling, retention, ISM.

Runs against OPENSEARCH_URL (a real node: `make test` starts one), or osmem-server outside CI; what
osmem cannot do is marked real_opensearch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from soclite.errors import StoreError
from soclite.models import UNIT, Host
from soclite.store import open_store
from soclite.store.base import AlertQuery, EventQuery
from soclite.store.opensearch import OpenSearchStore

from .conftest import OPENSEARCH_URL, opensearch_settings
from .factories import T0, alert, event
from .faulty_proxy import FaultyProxy


@pytest.fixture
def os_store(opensearch_url: str, tmp_path: Path) -> Iterator[OpenSearchStore]:
    store = OpenSearchStore.from_settings(opensearch_settings(opensearch_url, tmp_path), refresh_events=True)
    store.open()
    yield store
    store.drop_all()
    store.close()


@pytest.fixture
def proxied(opensearch_url: str, tmp_path: Path) -> Iterator[tuple[OpenSearchStore, FaultyProxy]]:
    proxy = FaultyProxy(opensearch_url)
    store = OpenSearchStore.from_settings(opensearch_settings(proxy.url, tmp_path), refresh_events=True)
    store.open()
    yield store, proxy
    store.drop_all()
    store.close()
    proxy.close()


def _indices(store: OpenSearchStore) -> list[str]:
    return sorted(store.client.indices.get(index=f"{store.prefix}-*"))


def test_open_store_builds_opensearch_from_settings(opensearch_url: str, tmp_path: Path) -> None:
    store = open_store(opensearch_settings(opensearch_url, tmp_path))
    try:
        assert isinstance(store, OpenSearchStore)
        assert store.count_alerts(AlertQuery()) == {"total": 0}
    finally:
        store.drop_all()  # type: ignore[attr-defined]
        store.close()


def test_templates_and_daily_indices(os_store: OpenSearchStore) -> None:
    templates = os_store.client.indices.get_index_template(name=f"{os_store.prefix}-*")["index_templates"]
    assert {t["name"] for t in templates} == {
        f"{os_store.prefix}-{n}" for n in ("events", "alerts", "hosts", "units", "audit")
    }
    os_store.write_events([event(1, when=T0), event(2, when=T0 + timedelta(days=1, hours=1))])
    events = [name for name in _indices(os_store) if "-events-" in name]
    assert events == [f"{os_store.prefix}-events-2024.08.01", f"{os_store.prefix}-events-2024.08.02"]
    mapping = os_store.client.indices.get_mapping(index=events[0])[events[0]]["mappings"]
    host = mapping["properties"]["host"]["properties"]["name"]
    assert host["type"] == "keyword" and host["normalizer"] == "soclite_lowercase"


def test_case_insensitive_field_match(os_store: OpenSearchStore) -> None:
    os_store.write_events([event(1, host="WS-KeToan-01", Image="C:\\Windows\\System32\\CMD.EXE")])
    assert os_store.count_events(EventQuery(fields={"Image": "c:\\windows\\system32\\cmd.exe"})) == 1
    assert os_store.count_events(EventQuery(host="ws-ketoan-01")) == 1


def test_alert_id_is_the_document_id(os_store: OpenSearchStore) -> None:
    a = alert(1)
    os_store.put_alert(a)
    os_store.put_alert(a)
    doc = os_store.client.get(index=f"{os_store.prefix}-alerts", id=a.id)
    assert doc["_source"]["id"] == a.id
    assert os_store.count_alerts(AlertQuery()) == {"total": 1}


def test_bulk_backs_off_on_429(proxied: tuple[OpenSearchStore, FaultyProxy]) -> None:
    store, proxy = proxied
    proxy.bulk_faults.extend([("reject", 429), ("items", {0: 429, 3: 429})])
    before = proxy.bulk_requests
    assert store.write_events([event(i) for i in range(6)]) == 6
    assert proxy.bulk_requests - before == 3  # rejected, half-written, the two refused items resent
    assert store.count_events(EventQuery()) == 6


def test_item_failure_raises_naming_items_and_retry_completes(
    proxied: tuple[OpenSearchStore, FaultyProxy],
) -> None:
    store, proxy = proxied
    batch = [event(i) for i in range(8)]
    proxy.bulk_faults.append(("items", {2: 500, 5: 500}))
    with pytest.raises(StoreError) as info:
        store.write_events(batch)
    message = str(info.value)
    assert "ev000002" in message and "ev000005" in message and "2 of 8" in message
    assert store.count_events(EventQuery()) == 6
    assert store.write_events(batch) == 2  # the retry stores exactly what was missing
    assert store.count_events(EventQuery()) == 8


def test_unreachable_cluster_is_a_store_error(tmp_path: Path) -> None:
    store = OpenSearchStore.from_settings(opensearch_settings("http://127.0.0.1:9", tmp_path))
    with pytest.raises(StoreError):
        store.open()
    with pytest.raises(StoreError):
        store.write_events([event(1)])


def test_retention_deletes_whole_daily_indices(os_store: OpenSearchStore) -> None:
    os_store.write_events([event(i, when=T0 + timedelta(days=i, hours=6)) for i in range(5)])
    assert os_store.delete_events_before(T0 + timedelta(days=3)) == 3
    names = [n.rsplit("-", 1)[1] for n in _indices(os_store) if "-events-" in n]
    assert names == ["2024.08.04", "2024.08.05"]
    assert os_store.count_events(EventQuery()) == 2


def test_retention_trims_the_day_it_falls_in(os_store: OpenSearchStore) -> None:
    os_store.write_events([event(i, when=T0 + timedelta(hours=i)) for i in range(6)])
    assert os_store.delete_events_before(T0 + timedelta(hours=4)) == 4
    assert os_store.count_events(EventQuery()) == 2


def test_ism_skipped_without_the_plugin(os_store: OpenSearchStore, caplog: pytest.LogCaptureFixture) -> None:
    if OPENSEARCH_URL:
        pytest.skip("a real cluster may have the ISM plugin")
    assert os_store.ism_installed is False
    # Opening again (as each process and CLI command does) logs no warning for the missing plugin.
    with caplog.at_level("WARNING"):
        again = OpenSearchStore(os_store.client, os_store.prefix)
        again.open()
    assert again.ism_installed is False
    assert not [r for r in caplog.records if "_ism" in r.getMessage()]


@pytest.mark.real_opensearch
def test_ism_policy_installed_on_a_real_cluster(os_store: OpenSearchStore) -> None:
    if not OPENSEARCH_URL:
        pytest.skip("OPENSEARCH_URL is not set")
    client: OpenSearch = os_store.client
    plugins = client.cat.plugins(format="json")
    if not any(p.get("component") == "opensearch-index-management" for p in plugins):
        pytest.skip("cluster has no ISM plugin")
    assert os_store.ism_installed
    policy = client.transport.perform_request(
        "GET", f"/_plugins/_ism/policies/{os_store.prefix}-events-retention"
    )
    assert policy["policy"]["ism_template"][0]["index_patterns"] == [f"{os_store.prefix}-events-*"]
    client.transport.perform_request("DELETE", f"/_plugins/_ism/policies/{os_store.prefix}-events-retention")


# --- compare-and-set alert updates (no painless on osmem: if_seq_no + retry) -----------------------
def test_a_write_between_read_and_write_is_retried_not_overwritten(os_store: OpenSearchStore) -> None:
    from soclite.models import Alert, AlertStatus
    from soclite.store.base import AlertRepeat

    a = alert(1)
    os_store.put_alert(a)
    other = OpenSearchStore(os_store.client, os_store.prefix)  # the pipeline process
    calls: list[int] = []

    def resolve(current: Alert) -> dict[str, object]:
        calls.append(current.count)
        if len(calls) == 1:  # the pipeline writes a repeat after our read, before our write
            repeat = AlertRepeat(id=a.id, last_seen=a.last_seen, first_seen=a.first_seen,
                                 updated_at=a.updated_at, event_ids=["x1"])
            other.record_repeats([repeat])
        return {"status": AlertStatus.RESOLVED, "close_reason": "ok"}

    stored = os_store.update_alert_fields(a.id, resolve)
    assert calls == [1, 2], "the stale write must be refused (409) and recomputed from the new version"
    assert (stored.status, stored.count) == (AlertStatus.RESOLVED, 2)
    assert os_store.get_alert(a.id) == stored


def test_a_document_that_keeps_changing_is_a_retryable_error(os_store: OpenSearchStore) -> None:
    from soclite.models import Alert
    from soclite.store.base import AlertRepeat

    a = alert(1)
    os_store.put_alert(a)
    other = OpenSearchStore(os_store.client, os_store.prefix)
    calls: list[int] = []

    def always_raced(current: Alert) -> dict[str, object]:
        calls.append(1)
        other.record_repeats([AlertRepeat(id=a.id, last_seen=a.last_seen, first_seen=a.first_seen,
                                          updated_at=a.updated_at, event_ids=[f"x{len(calls)}"])])
        return {"assignee": "lan"}

    with pytest.raises(StoreError, match="kept changing"):
        os_store.update_alert_fields(a.id, always_raced)
    stored = os_store.get_alert(a.id)
    assert stored.assignee is None and stored.count == 1 + len(calls)


def test_host_units_of_a_batch_cost_one_search_and_survive_an_outage(
    proxied: tuple[OpenSearchStore, FaultyProxy],
) -> None:
    # Both journal consumers give unit-less events (syslog) the unit of their host. One search per
    # unknown host (three on a miss) held detection up for 20 s when 2,500 workstations were first heard of.
    from soclite.event_storage import HostUnits

    store, proxy = proxied
    hosts = {f"pc-{i:03d}": Host(id=f"pc-{i:03d}", name=f"PC-{i:03d}", unit="u1" if i % 2 else "u2") for i in range(300)}
    store.touch_hosts(dict.fromkeys(hosts, T0), create=hosts)
    units = HostUnits(store)
    events: list[dict[str, Any]] = [{"host.name": f"PC-{i:03d}"} for i in range(300)]
    events += [{"host.name": f"new-{i}"} for i in range(200)] + [{"host.name": "pc-001", UNIT: "kept"}]
    proxy.paths.clear()
    units.fill(events)
    assert [p for p in proxy.paths if p.endswith("/_search")] == [f"/{store.prefix}-hosts/_search"]
    assert [e[UNIT] for e in events[:4]] == ["u2", "u1", "u2", "u1"]
    assert {e[UNIT] for e in events[300:500]} == {None} and events[500][UNIT] == "kept"
    proxy.paths.clear()
    units.fill([{"host.name": "PC-007"}, {"host.name": "new-3"}])
    assert proxy.paths == []  # cached, misses too

    units.ttl = 0.0  # everything due again, and the cluster answers 503
    proxy.away = True
    again: list[dict[str, Any]] = [{"host.name": "PC-007"}, {"host.name": "never-seen"}]
    try:
        units.fill(again)  # does not raise: detection goes on through an outage
    finally:
        proxy.away = False
    assert [e[UNIT] for e in again] == ["u1", None]
