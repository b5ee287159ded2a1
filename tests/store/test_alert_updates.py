"""Field-level alert writes (Store contract): detection repeats and triage changes never revert each other.

The pipeline (its own process) adds matches with ``record_repeats`` while analysts change status and
assignee with ``update_alert_fields``. Each test interleaves the two writers the way the race happens
in production; ``twin`` is a second store on the same data, as the other process would hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from soclite.errors import NotFoundError, StoreError
from soclite.models import Alert, AlertStatus
from soclite.store.base import AlertQuery, AlertRepeat, Store

from .factories import T0, alert


@pytest.fixture
def twin(store: Store) -> Iterator[Store]:
    """Another store object on the same data (the other process: pipeline vs. API)."""
    if store.kind == "sqlite":
        from soclite.store.sqlite import SQLiteStore

        other = SQLiteStore(store.path)  # type: ignore[attr-defined]
        other.open()
        yield other
        other.close()
    else:
        from soclite.store.opensearch import OpenSearchStore

        yield OpenSearchStore(store.client, store.prefix)  # type: ignore[attr-defined]  # shares the client


def _repeat(a: Alert, *event_ids: str, minutes: int = 10, count: int | None = None) -> AlertRepeat:
    return AlertRepeat(
        id=a.id,
        last_seen=a.last_seen + timedelta(minutes=minutes),
        first_seen=a.first_seen,
        updated_at=a.updated_at + timedelta(minutes=minutes),
        count=len(event_ids) if count is None else count,
        event_ids=list(event_ids),
    )


RESOLVE = {"status": AlertStatus.RESOLVED, "close_reason": "reimaged", "closed_at": T0 + timedelta(days=1)}


def test_record_repeats_updates_detection_fields_only(store: Store) -> None:
    a = alert(1, assignee="lan")
    b = alert(2)
    store.put_alerts([a, b])
    got = store.record_repeats([_repeat(a, "x1", "x2"), _repeat(a, "x3", minutes=20), _repeat(b, "y1")])
    assert {g.id: g.count for g in got} == {a.id: 4, b.id: 2}
    stored = store.get_alert(a.id)
    assert stored.count == 4
    assert stored.event_ids == [a.event_ids[0], "x1", "x2", "x3"]
    assert stored.last_seen == a.last_seen + timedelta(minutes=20)
    assert stored.first_seen == a.first_seen
    assert (stored.status, stored.assignee) == (AlertStatus.NEW, "lan")
    assert stored.model_dump(exclude={"count", "event_ids", "last_seen", "updated_at"}) == a.model_dump(
        exclude={"count", "event_ids", "last_seen", "updated_at"}
    )
    # the columns/fields queries use follow the document
    assert [x.id for x in store.query_alerts(AlertQuery(sort="count")).items] == [a.id, b.id]
    later = AlertQuery(start=a.last_seen + timedelta(minutes=15), end=a.last_seen + timedelta(minutes=30))
    assert [x.id for x in store.query_alerts(later).items] == [a.id]


def test_record_repeats_earlier_match_moves_first_seen_and_caps_event_ids(store: Store) -> None:
    a = alert(1)
    store.put_alert(a)
    early = AlertRepeat(
        id=a.id, last_seen=a.first_seen - timedelta(hours=1), first_seen=a.first_seen - timedelta(hours=1),
        updated_at=a.updated_at, count=30, event_ids=[f"e{i}" for i in range(30)], max_event_ids=20,
    )
    (got,) = store.record_repeats([early])
    assert got.count == 31
    assert got.first_seen == a.first_seen - timedelta(hours=1)
    assert got.last_seen == a.last_seen  # max, never moved back
    assert len(got.event_ids) == 20 and got.event_ids[:2] == [a.event_ids[0], "e0"]
    assert store.get_alert(a.id) == got


def test_a_replayed_repeat_counts_nothing(store: Store) -> None:
    a = alert(1)
    store.put_alert(a)
    store.record_repeats([_repeat(a, "x1", "x2")])
    (again,) = store.record_repeats([_repeat(a, "x1", "x2")])
    assert again.count == 3
    assert store.get_alert(a.id).count == 3


def _offsets(a: Alert, *offsets: int, minutes: int = 10) -> AlertRepeat:
    """New matches identified by their journal offsets, past the event ids an alert keeps (full list)."""
    return AlertRepeat(
        id=a.id, last_seen=a.last_seen + timedelta(minutes=minutes), first_seen=a.first_seen,
        updated_at=a.updated_at + timedelta(minutes=minutes), count=len(offsets),
        event_ids=[f"o{o}" for o in offsets], max_event_ids=1, offsets=list(offsets),
    )


def test_the_journal_watermark_counts_each_match_once(store: Store) -> None:
    """A replay is recognised by the watermark even when the event ids cannot tell (the list is full)."""
    a = alert(1).model_copy(update={"last_offset": 100})
    store.put_alert(a)
    (got,) = store.record_repeats([_offsets(a, 101, 102, 103)])
    assert (got.count, got.last_offset) == (4, 103)
    # the same matches again (a batch replayed after a crash): nothing counted, nothing moved
    (again,) = store.record_repeats([_offsets(a, 101, 102, 103, minutes=30)])
    assert (again.count, again.last_offset) == (4, 103)
    assert again.last_seen == a.last_seen + timedelta(minutes=10)
    # a replay that also carries new matches: only those above the watermark count
    (mixed,) = store.record_repeats([_offsets(a, 102, 103, 104, 105)])
    assert (mixed.count, mixed.last_offset) == (6, 105)
    # two repeats of one alert in one call: the second sees the watermark the first moved
    (two,) = store.record_repeats([_offsets(a, 106), _offsets(a, 106, 107)])
    assert (two.count, two.last_offset) == (8, 107)
    assert store.get_alert(a.id) == two
    # the watermark never moves back
    (low,) = store.record_repeats([_offsets(a, 50)])
    assert (low.count, low.last_offset) == (8, 107)


def test_the_watermark_starts_on_an_alert_without_one(store: Store) -> None:
    a = alert(1)  # written before offsets existed (or from a caller without them): event ids decide
    store.put_alert(a)
    assert a.last_offset is None
    (got,) = store.record_repeats([_offsets(a, 7, 8)])
    assert (got.count, got.last_offset) == (3, 8)
    (again,) = store.record_repeats([_offsets(a, 7, 8)])
    assert again.count == 3
    with pytest.raises(StoreError, match="offsets"):
        store.record_repeats([AlertRepeat(id=a.id, last_seen=a.last_seen, first_seen=a.first_seen,
                                          updated_at=a.updated_at, count=1, offsets=[9, 10])])


def test_record_repeats_skips_unknown_ids_and_empty_input(store: Store) -> None:
    a = alert(1)
    store.put_alert(a)
    ghost = a.model_copy(update={"id": "no-such-alert"})
    got = store.record_repeats([_repeat(ghost, "x1"), _repeat(a, "x2")])
    assert [g.id for g in got] == [a.id]
    assert store.record_repeats([]) == []
    with pytest.raises(NotFoundError):
        store.get_alert("no-such-alert")


def test_repeat_after_a_concurrent_close_keeps_the_close(store: Store, twin: Store) -> None:
    """Pipeline reads the alert open, the analyst resolves it, then the pipeline writes its repeat."""
    a = alert(1, assignee="lan")
    store.put_alert(a)
    seen_by_pipeline = store.get_alert(a.id)  # pipeline: open, so this match joins it
    assert seen_by_pipeline.status == AlertStatus.NEW
    twin.update_alert_fields(a.id, RESOLVE)  # analyst, in the API process
    (written,) = store.record_repeats([_repeat(seen_by_pipeline, "x1")])
    stored = store.get_alert(a.id)
    assert stored == written
    assert stored.status == AlertStatus.RESOLVED and stored.close_reason == "reimaged"
    assert stored.closed_at == RESOLVE["closed_at"]
    assert stored.count == 2, "the match happened while the alert was open: it counts"
    # closed for grouping and for filters
    assert store.find_open_alert(a.fingerprint, a.first_seen) is None
    assert store.count_alerts(AlertQuery(status=["resolved"])) == {"total": 1}


def test_triage_after_a_concurrent_repeat_keeps_the_count(store: Store, twin: Store) -> None:
    """The analyst's page showed count 1; the pipeline adds a match; the analyst's PATCH lands after."""
    a = alert(1)
    store.put_alert(a)
    seen_by_analyst = twin.get_alert(a.id)
    store.record_repeats([_repeat(a, "x1", "x2")])
    updated = twin.update_alert_fields(seen_by_analyst.id, {"assignee": "minh", "status": "acknowledged"})
    assert (updated.count, updated.assignee, updated.status) == (3, "minh", AlertStatus.ACKNOWLEDGED)
    assert updated.event_ids == [a.event_ids[0], "x1", "x2"]
    assert store.get_alert(a.id) == updated
    assert store.count_alerts(AlertQuery(assignee="minh")) == {"total": 1}


def test_update_alert_fields_function_sees_the_state_it_writes_over(store: Store) -> None:
    a = alert(1)
    store.put_alert(a)
    store.record_repeats([_repeat(a, "x1")])
    seen: list[tuple[int, str]] = []

    def change(current: Alert) -> dict[str, Any]:
        seen.append((current.count, str(current.status)))
        return {"status": AlertStatus.IN_PROGRESS}

    assert store.update_alert_fields(a.id, change).status == AlertStatus.IN_PROGRESS
    assert seen[-1] == (2, "new")

    class Refused(Exception):
        pass

    def refuse(current: Alert) -> dict[str, Any]:
        raise Refused(current.status)

    with pytest.raises(Refused):
        store.update_alert_fields(a.id, refuse)
    assert store.get_alert(a.id).status == AlertStatus.IN_PROGRESS
    # nothing to change: nothing written, the alert returned as stored
    assert store.update_alert_fields(a.id, {}) == store.get_alert(a.id)


def test_update_alert_fields_refuses_detection_fields_unknown_ids_and_out_of_scope(store: Store) -> None:
    a = alert(1, unit="u1")
    store.put_alert(a)
    with pytest.raises(StoreError, match="cannot change count"):
        store.update_alert_fields(a.id, {"count": 99})
    with pytest.raises(StoreError, match="invalid field values"):
        store.update_alert_fields(a.id, {"status": "bogus"})
    with pytest.raises(NotFoundError):
        store.update_alert_fields("missing", {"assignee": "x"})
    with pytest.raises(NotFoundError):
        store.update_alert_fields(a.id, {"assignee": "x"}, units=frozenset({"u2"}))
    assert store.get_alert(a.id) == a
    reopened = store.update_alert_fields(a.id, {"assignee": "x"}, units=frozenset({"u1"}))
    assert reopened.assignee == "x"


def test_concurrent_writers_lose_nothing(store: Store, twin: Store) -> None:
    """A pipeline thread adding matches and an analyst thread toggling status, on two store objects."""
    a = alert(1)
    store.put_alert(a)
    repeats, toggles = 40, 30
    errors: list[BaseException] = []

    def pipeline() -> None:
        try:
            for i in range(repeats):
                store.record_repeats([_repeat(a, f"p{i}", minutes=i + 1)])
        except BaseException as exc:
            errors.append(exc)

    def analyst() -> None:
        try:
            for i in range(toggles):
                status = AlertStatus.IN_PROGRESS if i % 2 == 0 else AlertStatus.ACKNOWLEDGED
                twin.update_alert_fields(a.id, {"status": status, "assignee": f"user{i}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pipeline), threading.Thread(target=analyst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    final = store.get_alert(a.id)
    assert final.count == 1 + repeats
    assert final.last_seen == a.last_seen + timedelta(minutes=repeats)
    assert (final.status, final.assignee) == (AlertStatus.ACKNOWLEDGED, f"user{toggles - 1}")
