"""The alert spool against a real OpenSearch node of this test's own, stopped and started again.

While the node is down, detection's writes (alerts, their matched events, repeats of alerts stored
before) are kept in the local spool, survive a restart of the process, answer the grouping reads,
and are written back exactly once when the node is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from soclite.config import StoreSettings
from soclite.errors import StoreError
from soclite.event_storage import STORAGE, EventStorage
from soclite.store._os_cluster import build_client
from soclite.store.base import AlertQuery, AlertRepeat, EventQuery
from soclite.store.journal import Journal
from soclite.store.opensearch import OpenSearchStore
from soclite.store.spool import AlertSpool
from tests.opensearch_procs import Node, own_node

from .factories import T0, alert, event

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    with own_node() as found:
        yield found


def test_alerts_wait_in_the_spool_while_the_node_is_down_then_are_written_once(
    node: Node, tmp_path: Path
) -> None:
    settings = StoreSettings(kind="opensearch", opensearch_url=[node.url], index_prefix="spool")
    store = OpenSearchStore(build_client(settings), settings.index_prefix, refresh_events=True)
    store.open()
    path = tmp_path / "spool" / "alerts.db"
    spool = AlertSpool(store, path, retry_every=0)
    before = alert(1)
    before.last_offset = 10
    spool.put_alerts([before])  # the node answers: straight to the store
    assert spool.pending() == 0 and store.get_alert(before.id).count == 1

    node.stop(keep_data=True)
    during = alert(2)
    during.last_offset = 20
    spool.write_matched_events([event(2)])
    spool.put_alerts([during])
    assert spool.pending() == 2
    later = T0 + timedelta(hours=3)
    # a repeat of an alert stored before the outage: counted on it (from what detection last saw)
    updated = spool.record_repeats([AlertRepeat(id=before.id, last_seen=later, first_seen=later,
                                                updated_at=later, count=1, offsets=[30])])  # fmt: skip
    assert [a.count for a in updated] == [2]
    # a repeat of an alert only the spool has: the spooled copy takes it
    updated = spool.record_repeats([AlertRepeat(id=during.id, last_seen=later, first_seen=later,
                                                updated_at=later, count=2, offsets=[31, 32])])  # fmt: skip
    assert [a.count for a in updated] == [3]
    assert spool.get_alert(during.id).count == 3
    found = spool.find_open_alert(during.fingerprint, T0)
    assert found is not None and found.id == during.id
    assert spool.find_open_alert(before.fingerprint, T0 - timedelta(days=1)) is not None  # the recent cache
    assert spool.health_warnings() and "3 write(s)" in spool.health_warnings()[0]
    spool.close()

    # the process restarts while the node is still down: the spool is on disk
    spool = AlertSpool(store, path, retry_every=0)
    assert spool.pending() == 3
    assert spool.retry() is False  # still down: kept

    node.start()
    assert spool.retry() is True and spool.pending() == 0
    assert store.get_alert(before.id).count == 2
    assert store.get_alert(during.id).count == 3
    assert store.query_events(EventQuery(limit=10)).total == 1
    # a second write-back (a crash before the spool noted the first) changes nothing
    spool.flush()
    store.record_repeats([AlertRepeat(id=before.id, last_seen=later, first_seen=later, updated_at=later,
                                      count=1, offsets=[30])])  # fmt: skip
    assert store.get_alert(before.id).count == 2
    page = store.query_alerts(AlertQuery(limit=10))
    assert sorted(a.id for a in page.items) == sorted([before.id, during.id])
    spool.close()
    store.drop_all()
    store.close()


def test_a_store_out_of_disk_makes_event_storage_wait_and_alerts_spool_then_both_catch_up(
    node: Node, tmp_path: Path
) -> None:
    """OpenSearch past its flood-stage disk watermark puts ``read_only_allow_delete`` on the indices and
    answers writes with 429: the same block, set here by hand, on the node of this test."""
    settings = StoreSettings(kind="opensearch", opensearch_url=[node.url], index_prefix="full")
    store = OpenSearchStore(build_client(settings), settings.index_prefix, refresh_events=True)
    store.open()
    journal = Journal(tmp_path / "journal.db", 64 * 1024 * 1024)
    storage = EventStorage(journal, store, batch_size=100)
    spool = AlertSpool(store, tmp_path / "spool" / "alerts.db", retry_every=0)
    journal.append("b1", [event(1), event(2)])
    assert storage.run_once() == 2  # the indices exist before the disk fills
    block = {"index": {"blocks": {"read_only_allow_delete": True}}}
    store.client.indices.put_settings(index="full-*", body=block)
    try:
        journal.append("b2", [event(3), event(4), event(5)])
        with pytest.raises(StoreError):
            storage.run_once()  # refused: its offset stays, nothing acknowledged is dropped
        assert journal.lag(STORAGE) == 3
        spool.put_alerts([alert(7)])  # detection goes on
        assert spool.pending() == 1 and "spool" in spool.health_warnings()[0]
    finally:
        store.client.indices.put_settings(
            index="full-*", body={"index": {"blocks": {"read_only_allow_delete": None}}}
        )
    assert storage.run_once() == 3 and journal.lag(STORAGE) == 0
    assert spool.retry() is True
    assert store.query_events(EventQuery(limit=10)).total == 5
    assert store.query_alerts(AlertQuery(limit=10)).total == 1
    spool.close()
    journal.close()
    store.drop_all()
    store.close()
