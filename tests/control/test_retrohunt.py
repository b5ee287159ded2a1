"""Retro-hunt: the same Sigma rule over the same stored events finds the same events on the embedded store,
in the cold archive and on a real OpenSearch node; a unit-scoped hunt sees only its units' events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soclite.control.retrohunt import HuntProgress, HuntRequest, resolve_rule, run_hunt
from soclite.errors import RequestError, RuleError
from soclite.models import isoformat
from soclite.store.archive import EventArchive
from soclite.store.base import Store
from soclite.store.sqlite import SQLiteStore
from tests.opensearch_node import OPENSEARCH_URL, require_real_node_in_ci
from tests.store.conftest import opensearch_settings

RULE = r"""
title: Whoami with all groups
id: 0c2f1a9e-5a8b-4f0e-9d7a-1f3c2b4a5d6e
status: test
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        Image|endswith: '\whoami.exe'
        CommandLine|contains: '/all'
    filter:
        User: 'NT AUTHORITY\SYSTEM'
    condition: sel and not filter
level: high
"""

T0 = datetime(2024, 8, 1, 1, 0, tzinfo=UTC)


def _event(i: int, *, unit: str, image: str, cmd: str, user: str = "CORP\\bob",
           category: str = "process_creation", product: str = "windows", day: int = 0) -> dict[str, Any]:
    return {
        "@timestamp": isoformat(T0 + timedelta(days=day, minutes=i)),
        "event.id": f"rh{i:04d}",
        "host.name": f"PC-{unit.upper()}-{i % 3}",
        "soclite.unit": unit,
        "logsource.product": product,
        "logsource.category": category,
        "Image": image,
        "CommandLine": cmd,
        "User": user,
        "event.original": f"{image} {cmd}",
    }


def fixture_events() -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """(events over three days, ids the rule must find in u1, ids it must find in u2)."""
    events = [
        _event(1, unit="u1", image="C:\\Windows\\System32\\whoami.exe", cmd="whoami /all"),
        _event(2, unit="u1", image="C:\\WINDOWS\\system32\\WHOAMI.EXE", cmd="WHOAMI /ALL", day=1),  # any case
        _event(3, unit="u1", image="C:\\Windows\\System32\\whoami.exe", cmd="whoami /all",
               user="NT AUTHORITY\\SYSTEM"),  # the filter
        _event(4, unit="u1", image="C:\\Windows\\System32\\whoami.exe", cmd="whoami /priv"),  # not /all
        _event(5, unit="u1", image="C:\\Tools\\notwhoami.exe.bak", cmd="x /all"),  # does not end with it
        _event(6, unit="u1", image="C:\\Windows\\System32\\whoami.exe", cmd="whoami /all",
               category="webserver", product="apache"),  # another log source
        _event(7, unit="u2", image="C:\\Windows\\System32\\whoami.exe", cmd="cmd /c whoami /all", day=2),
        _event(8, unit="u2", image="C:\\Windows\\System32\\cmd.exe", cmd="cmd /all", day=2),
        _event(9, unit="u1", image="C:\\Windows\\System32\\whoami.exe", cmd="whoami /all", day=5),  # out of range
    ]
    return events, {"rh0001", "rh0002"}, {"rh0007"}


def _request(units: frozenset[str] | None, *, archive: bool = True) -> HuntRequest:
    return HuntRequest(rule_yaml=RULE, origin="inline", start=T0 - timedelta(hours=1), end=T0 + timedelta(days=3),
                       units=units, archive=archive)


def _ids(store: Store, req: HuntRequest, archive_dir: Path | None = None) -> dict[str, str]:
    progress: list[HuntProgress] = []
    hits = {h["event_id"]: h["source"] for h in run_hunt(
        store, req, archive_dir=archive_dir, progress=lambda p: progress.append(HuntProgress(**p.__dict__)))}
    assert progress and progress[-1].phase == "done" and progress[-1].hits == len(hits)
    return hits


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    store.write_events(fixture_events()[0])
    yield store
    store.close()


@pytest.fixture
def os_store(tmp_path: Path) -> Iterator[Store]:
    require_real_node_in_ci()
    if not OPENSEARCH_URL:
        pytest.skip("OPENSEARCH_URL is not set (a real node: the pySigma backend's queries need real OpenSearch)")
    from soclite.store.opensearch import OpenSearchStore

    store = OpenSearchStore.from_settings(opensearch_settings(OPENSEARCH_URL, tmp_path), refresh_events=True)
    store.open()
    store.write_events(fixture_events()[0])
    yield store
    store.drop_all()
    store.close()


def test_the_embedded_store_finds_exactly_the_matching_events(sqlite_store: SQLiteStore) -> None:
    _, in_u1, in_u2 = fixture_events()
    hits = _ids(sqlite_store, _request(None))
    assert hits == dict.fromkeys(in_u1 | in_u2, "store")


def test_opensearch_and_the_embedded_store_find_the_same_events(sqlite_store: SQLiteStore, os_store: Store) -> None:
    _, in_u1, in_u2 = fixture_events()
    on_sqlite = _ids(sqlite_store, _request(None))
    on_opensearch = _ids(os_store, _request(None))
    assert set(on_opensearch) == set(on_sqlite) == in_u1 | in_u2
    assert set(on_opensearch.values()) == {"opensearch"}


def test_a_unit_scoped_hunt_sees_only_its_units(sqlite_store: SQLiteStore, os_store: Store) -> None:
    _, in_u1, in_u2 = fixture_events()
    for store in (sqlite_store, os_store):
        assert set(_ids(store, _request(frozenset({"u2"})))) == in_u2
        assert set(_ids(store, _request(frozenset({"u1"})))) == in_u1
        assert _ids(store, _request(frozenset())) == {}


def test_a_unit_scoped_hunt_on_the_embedded_store(sqlite_store: SQLiteStore) -> None:
    _, in_u1, in_u2 = fixture_events()
    assert set(_ids(sqlite_store, _request(frozenset({"u2"})))) == in_u2
    assert set(_ids(sqlite_store, _request(frozenset({"u1"})))) == in_u1


def test_the_archive_rescan_finds_the_archived_events(sqlite_store: SQLiteStore, tmp_path: Path) -> None:
    _, in_u1, in_u2 = fixture_events()
    archive_dir = tmp_path / "archive"
    # days 0..2 leave the hot store for the archive; day 5 stays hot (and is out of the hunt's range)
    segments = sqlite_store.archive_events_before(T0 + timedelta(days=3), EventArchive(archive_dir))
    assert [s.day for s in segments] == ["20240801", "20240802", "20240803"]
    hits = _ids(sqlite_store, _request(None), archive_dir)
    assert set(hits) == in_u1 | in_u2
    assert hits["rh0001"] == "archive:20240801" and hits["rh0007"] == "archive:20240803"
    assert set(_ids(sqlite_store, _request(frozenset({"u2"})), archive_dir)) == in_u2
    # without the archive, nothing of those days is left to find
    assert _ids(sqlite_store, _request(None, archive=False), archive_dir) == {}


def test_a_rule_is_found_by_file_by_loaded_id_or_inline(tmp_path: Path) -> None:
    from soclite.control.retrohunt import compile_hunt

    path = tmp_path / "r.yml"
    path.write_text(RULE, encoding="utf-8")
    text, origin = resolve_rule(str(path))
    assert origin == str(path) and "whoami" in text
    assert resolve_rule(RULE)[1] == "inline"
    engine = compile_hunt(RULE, "x")
    engine.rules[0].source = f"{path}:2"
    text, origin = resolve_rule("0c2f1a9e-5a8b-4f0e-9d7a-1f3c2b4a5d6e", engine)
    assert origin == "rule:0c2f1a9e-5a8b-4f0e-9d7a-1f3c2b4a5d6e" and "whoami" in text
    with pytest.raises(RequestError, match="neither a rule file"):
        resolve_rule("no-such-rule")


def test_a_broken_rule_is_a_clear_error(sqlite_store: SQLiteStore) -> None:
    bad = HuntRequest(rule_yaml="title: x\ndetection:\n  condition: nothing\n", origin="inline",
                      start=T0, end=T0 + timedelta(days=1), units=None)
    with pytest.raises(RuleError):
        list(run_hunt(sqlite_store, bad))
    with pytest.raises(RequestError, match="after"):
        list(run_hunt(sqlite_store, HuntRequest(RULE, "inline", T0, T0, None)))
