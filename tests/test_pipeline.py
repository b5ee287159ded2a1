"""The pipeline with its real parts: journal → Sigma engine → SQLite store, grouping and replay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from soclite.collectors.normalize import normalize
from soclite.config import Settings, load_settings
from soclite.correlator.engine import Engine
from soclite.models import AlertStatus
from soclite.pipeline import CONSUMER, Pipeline
from soclite.runtime import Runtime
from soclite.store import AlertQuery, EventQuery
from soclite.store.journal import Journal


@pytest.fixture
def runtime(tmp_path: Path):
    settings: Settings = load_settings(environment="test", data_dir=tmp_path)
    rt = Runtime.build(settings)
    rt.journal = Journal(tmp_path / "journal.db", settings.journal.max_bytes, settings.journal.warn_ratio)
    rt.engine = Engine.from_settings(settings)
    yield rt
    rt.journal.close()
    rt.close()


def _lines(lines: list[str], host: str = "srv-portal-01") -> list[dict]:
    received = datetime.now(UTC)
    return [
        normalize({"message": line, "host.name": host}, received=received, input="test", unit="ttdl",
                  agent_id=None, default_tz="Asia/Ho_Chi_Minh")
        for line in lines
    ]


def _clamav(n: int) -> list[str]:
    return [f"<38>Aug  1 10:00:{n:02d} ws-01 clamd[812]: /home/a/f{n}.exe: Win.Trojan.Agent-{n} FOUND"
            for n in range(n)]


def test_events_and_alerts_reach_the_store(runtime: Runtime) -> None:
    events = _lines(_clamav(3), host="ws-01")
    runtime.journal.append("b1", events)
    pipeline = Pipeline(runtime)
    assert pipeline.run_once() == 3
    assert runtime.journal.lag(CONSUMER) == 0
    assert pipeline.storage is not None and pipeline.storage.run_once() == 3  # every event: storage consumer
    assert runtime.store.count_events(EventQuery()) == 3
    page = runtime.store.query_alerts(AlertQuery(rule_id=None))
    assert page.total == 1, [a.rule_title for a in page.items]
    alert = page.items[0]
    assert alert.severity == "high" and alert.host == "ws-01" and alert.unit == "ttdl"
    # Three detections of one rule on one host within the window: one alert, counted three times.
    assert alert.count == 3
    assert len(alert.event_ids) == 3
    # The host appeared in the inventory from its events.
    assert runtime.store.find_host("ws-01") is not None


def test_replay_after_crash_before_commit_adds_nothing(runtime: Runtime) -> None:
    events = _lines(_clamav(2), host="ws-02")
    runtime.journal.append("b1", events)
    first = Pipeline(runtime)
    rows = runtime.journal.read(CONSUMER, 100)
    first.process([event for _, event in rows])  # written, then "crash" before the commit
    before = runtime.store.query_alerts(AlertQuery()).items
    second = Pipeline(runtime)  # a restarted process replays the same journal rows
    assert second.run_once() == 2
    after = runtime.store.query_alerts(AlertQuery()).items
    assert [a.id for a in after] == [a.id for a in before]
    assert after[0].count == 2
    assert second.storage is not None and second.storage.run_once() == 2
    assert runtime.store.count_events(EventQuery()) == 2


def test_a_closed_alert_is_not_reopened_by_a_repeat(runtime: Runtime) -> None:
    runtime.journal.append("b1", _lines(_clamav(1), host="ws-03"))
    pipeline = Pipeline(runtime)
    pipeline.run_once()
    alert = runtime.store.query_alerts(AlertQuery()).items[0]
    alert.status = AlertStatus.RESOLVED
    alert.close_reason = "reimaged"
    runtime.store.put_alert(alert)
    runtime.journal.append("b2", _lines(_clamav(2)[1:], host="ws-03"))
    pipeline.run_once()
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert len(alerts) == 2
    assert {a.status for a in alerts} == {AlertStatus.RESOLVED, AlertStatus.NEW}


def test_unit_comes_from_the_host_inventory_when_the_event_has_none(runtime: Runtime) -> None:
    from soclite.models import Host

    runtime.store.put_host(Host(id="srv-ketoan-01", name="srv-ketoan-01", unit="so-tc"))
    received = datetime.now(UTC)
    line = "<38>Aug  1 10:00:00 srv-ketoan-01 clamd[1]: /tmp/x: Win.Trojan.X-1 FOUND"
    event = normalize({"message": line}, received=received, input="syslog-udp", unit=None, agent_id=None,
                      default_tz="Asia/Ho_Chi_Minh")
    runtime.journal.append(None, [event])
    Pipeline(runtime).run_once()
    alert = runtime.store.query_alerts(AlertQuery()).items[0]
    assert alert.unit == "so-tc"
    assert runtime.store.query_alerts(AlertQuery(units=frozenset({"ttdl"}))).total == 0


def test_the_last_seen_refresh_keeps_an_isolation_set_after_the_host_was_read(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline found the host before the server isolated it: its refresh writes last_seen only."""
    from soclite.models import Host, IsolationState

    store = runtime.store
    store.put_host(Host(id="ws-05", name="WS-05", unit="ttdl", agent_id="a5"))
    stale = store.find_host("ws-05")
    found = store.find_host

    def find_then_isolate(name: str) -> Host | None:
        if name == "ws-05":  # the command channel lands between the pipeline's read and its write
            store.update_host("ws-05", {"isolation": IsolationState.PENDING, "isolation_detail": "c-1"})
            return stale
        return found(name)

    monkeypatch.setattr(store, "find_host", find_then_isolate)
    lines = {h: [f"<38>Aug  1 10:00:00 {h} clamd[812]: /tmp/f.exe: Win.Trojan.Agent-1 FOUND"] for h in ("ws-05", "ws-new")}
    runtime.journal.append("b1", _lines(lines["ws-05"], host="ws-05") + _lines(lines["ws-new"], host="ws-new"))
    Pipeline(runtime).run_once()
    monkeypatch.undo()
    host = store.get_host("ws-05")
    assert (host.isolation, host.isolation_detail, host.agent_id) == (IsolationState.PENDING, "c-1", "a5")
    assert host.last_seen is not None
    created = store.get_host("ws-new")  # a first-seen host is created from its events
    assert (created.unit, created.last_seen is not None) == ("ttdl", True)


def _sqlite(path: Path, sql: str) -> None:
    """Change a database from outside, as another process or a failing disk would."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.executescript(sql)
    finally:
        conn.close()


FAIL_ALERTS = "CREATE TRIGGER fail_alerts BEFORE INSERT ON alerts BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;"


def test_a_failed_alert_write_is_retried_not_lost(runtime: Runtime, tmp_path: Path) -> None:
    from soclite.errors import StoreError

    runtime.journal.append("b1", _lines(_clamav(3), host="ws-04"))
    pipeline = Pipeline(runtime)
    _sqlite(tmp_path / "events.db", FAIL_ALERTS)
    with pytest.raises(StoreError):
        pipeline.run_once()
    assert runtime.journal.lag(CONSUMER) == 3, "nothing may be committed past an alert that was not stored"
    _sqlite(tmp_path / "events.db", "DROP TRIGGER fail_alerts;")
    assert pipeline.run_once() == 3
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert len(alerts) == 1 and alerts[0].count == 3
    assert pipeline.storage is not None and pipeline.storage.run_once() == 3
    assert runtime.store.count_events(EventQuery()) == 3


def test_a_failed_playbook_trigger_is_retried_and_not_doubled(runtime: Runtime, tmp_path: Path) -> None:
    from soclite.playbooks.outbox import Outbox
    from soclite.playbooks.runner import PlaybookRunner

    runtime.outbox = Outbox.from_settings(runtime.settings, runtime.control)
    runtime.playbooks = PlaybookRunner.from_runtime(runtime)
    runtime.journal.append("b1", _lines(_clamav(1), host="ws-05"))
    pipeline = Pipeline(runtime)
    _sqlite(runtime.settings.data_dir / "control.db",
            "CREATE TRIGGER fail_actions BEFORE INSERT ON actions BEGIN SELECT RAISE(ABORT, 'outbox full'); END;")
    with pytest.raises(Exception, match="outbox full"):
        pipeline.run_once()
    assert runtime.journal.lag(CONSUMER) == 1
    # The alert itself was stored before the trigger failed; the replay must still hand it to the playbooks.
    assert runtime.store.query_alerts(AlertQuery()).total == 1
    _sqlite(runtime.settings.data_dir / "control.db", "DROP TRIGGER fail_actions;")
    assert pipeline.run_once() == 1
    alert = runtime.store.query_alerts(AlertQuery()).items[0]
    assert alert.count == 1
    actions = runtime.outbox.list_actions(alert_id=alert.id)
    items = actions.items if hasattr(actions, "items") else actions
    assert items, "the high alert's national sync / notification must have been submitted on the retry"
    keys = [a.idempotency_key for a in items]
    assert len(keys) == len(set(keys))
    # A third pass over the same events (another crash before commit) adds no action.
    rows = runtime.journal.read(CONSUMER, 10)
    assert rows == []


def _playbooks(runtime: Runtime) -> None:
    from soclite.playbooks.outbox import Outbox
    from soclite.playbooks.runner import PlaybookRunner

    runtime.outbox = Outbox.from_settings(runtime.settings, runtime.control)
    runtime.playbooks = PlaybookRunner.from_runtime(runtime)


def _action_keys(runtime: Runtime, alert_id: str) -> list[str]:
    actions = runtime.outbox.list_actions(alert_id=alert_id)
    return [a.idempotency_key for a in (actions.items if hasattr(actions, "items") else actions)]


FAIL_ACTIONS = "CREATE TRIGGER fail_actions BEFORE INSERT ON actions BEGIN SELECT RAISE(ABORT, 'outbox full'); END;"


def test_a_retry_counts_an_alert_with_more_matches_than_it_keeps_ids_once(runtime: Runtime, tmp_path: Path) -> None:
    """25 matches > MAX_EVENT_IDS: the replay is recognised by the journal watermark, not the kept ids."""
    from soclite.pipeline import MAX_EVENT_IDS

    _playbooks(runtime)
    runtime.journal.append("b1", _lines(_clamav(25), host="ws-09"))
    pipeline = Pipeline(runtime)
    _sqlite(runtime.settings.data_dir / "control.db", FAIL_ACTIONS)
    with pytest.raises(Exception, match="outbox full"):
        pipeline.run_once()
    (stored,) = runtime.store.query_alerts(AlertQuery()).items
    assert stored.count == 25 and len(stored.event_ids) == MAX_EVENT_IDS
    assert stored.last_offset == runtime.journal.read(CONSUMER, 100)[-1][0]
    _sqlite(runtime.settings.data_dir / "control.db", "DROP TRIGGER fail_actions;")
    assert pipeline.run_once() == 25
    (alert,) = runtime.store.query_alerts(AlertQuery()).items
    assert alert.count == 25, "the retry counted matches 21-25 again"
    keys = _action_keys(runtime, alert.id)
    created = [k for k in keys if k.endswith(":created")]
    assert created, "the queued 'created' hand-over (notification, national sync) was dropped"
    assert len(keys) == len(set(keys)) and all(k.endswith(":created") for k in keys)
    # Another restart replaying the same rows (a crash before the commit again) changes nothing.
    fresh = Pipeline(runtime)
    rows = runtime.journal.read("replay-check", 100)
    fresh.process([e for _, e in rows], [o for o, _ in rows])
    (again,) = runtime.store.query_alerts(AlertQuery()).items
    assert again.count == 25 and sorted(_action_keys(runtime, alert.id)) == sorted(keys)
    # The host was new: it is in the inventory before the hand-over, so the workstation playbook ran too.
    assert any(k.startswith("pb:malware-workstation-isolate:") for k in keys)


def test_a_retry_with_more_events_hands_over_created_and_updated(runtime: Runtime, tmp_path: Path) -> None:
    """The retried batch is longer (more was appended meanwhile): old matches replayed, new ones counted,
    and the alert's "created" trigger still reaches the playbooks."""
    _playbooks(runtime)
    runtime.journal.append("b1", _lines(_clamav(25), host="ws-10"))
    pipeline = Pipeline(runtime, batch_size=25)
    _sqlite(runtime.settings.data_dir / "control.db", FAIL_ACTIONS)
    with pytest.raises(Exception, match="outbox full"):
        pipeline.run_once()
    _sqlite(runtime.settings.data_dir / "control.db", "DROP TRIGGER fail_actions;")
    runtime.journal.append("b2", _lines(_clamav(30)[25:], host="ws-10"))
    seen: list[tuple[int, str]] = []
    runner = runtime.playbooks
    original = runner.on_alert

    def spy(alert, change):  # records what the pipeline hands over, then the real runner runs
        seen.append((alert.count, change))
        return original(alert, change)

    runner.on_alert = spy
    pipeline.batch_size = 100
    assert pipeline.run_once() == 30
    (alert,) = runtime.store.query_alerts(AlertQuery()).items
    assert alert.count == 30
    assert seen == [(25, "created"), (30, "updated")]
    assert [k for k in _action_keys(runtime, alert.id) if k.endswith(":created")]


class _AnalystActsBeforeTheRepeatLands:
    """The real store, with an analyst's PATCH (the real triage code) landing just before the
    pipeline's repeat write, i.e. after the pipeline read the alert as open: the race being tested."""

    def __init__(self, store, runtime: Runtime, patch) -> None:
        self._store, self._runtime, self._patch = store, runtime, patch
        self.patched: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def record_repeats(self, repeats):
        from soclite.api.triage import update_alert
        from soclite.control.identity import Principal, Role

        analyst = Principal(id="u1", name="lan", role=Role.ANALYST, unit=None)
        for repeat in repeats:
            update_alert(self._runtime, analyst, repeat.id, self._patch, None)
            self.patched.append(repeat.id)
        return self._store.record_repeats(repeats)


def test_an_analyst_close_during_a_repeat_is_kept_and_the_match_counted(runtime: Runtime) -> None:
    from soclite.api.triage import AlertPatch

    runtime.journal.append("b1", _lines(_clamav(1), host="ws-06"))
    pipeline = Pipeline(runtime)
    pipeline.run_once()
    (created,) = runtime.store.query_alerts(AlertQuery()).items
    racing = _AnalystActsBeforeTheRepeatLands(
        runtime.store, runtime, AlertPatch(status=AlertStatus.RESOLVED, close_reason="đã xử lý")
    )
    runtime.store = racing
    runtime.journal.append("b2", _lines(_clamav(3)[1:], host="ws-06"))
    assert pipeline.run_once() == 2
    assert racing.patched == [created.id], "the pipeline grouped the repeats into the open alert"
    runtime.store = racing._store
    (alert,) = runtime.store.query_alerts(AlertQuery()).items
    assert alert.id == created.id
    assert alert.status == AlertStatus.RESOLVED and alert.close_reason == "đã xử lý"
    assert alert.closed_at is not None
    assert alert.count == 3, "both matches happened while the alert was open: they count"
    assert len(alert.event_ids) == 3
    # A later repeat does not reopen it: it starts a new alert.
    runtime.journal.append("b3", _lines(_clamav(4)[3:], host="ws-06"))
    pipeline.run_once()
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert sorted(a.status for a in alerts) == [AlertStatus.NEW, AlertStatus.RESOLVED]


def test_an_assignment_during_a_repeat_is_kept(runtime: Runtime) -> None:
    from soclite.api.triage import AlertPatch

    runtime.journal.append("b1", _lines(_clamav(1), host="ws-07"))
    pipeline = Pipeline(runtime)
    pipeline.run_once()
    runtime.store = _AnalystActsBeforeTheRepeatLands(
        runtime.store, runtime, AlertPatch(status=AlertStatus.IN_PROGRESS, assignee="minh")
    )
    runtime.journal.append("b2", _lines(_clamav(2)[1:], host="ws-07"))
    pipeline.run_once()
    runtime.store = runtime.store._store
    (alert,) = runtime.store.query_alerts(AlertQuery()).items
    assert (alert.status, alert.assignee, alert.count) == (AlertStatus.IN_PROGRESS, "minh", 2)


def test_a_replay_does_not_reopen_an_alert_closed_since_the_crash(runtime: Runtime) -> None:
    from soclite.api.triage import AlertPatch, update_alert
    from soclite.control.identity import Principal, Role

    runtime.journal.append("b1", _lines(_clamav(2), host="ws-08"))
    rows = runtime.journal.read(CONSUMER, 100)
    Pipeline(runtime).process([event for _, event in rows])  # stored, then "crash" before the commit
    (alert,) = runtime.store.query_alerts(AlertQuery()).items
    analyst = Principal(id="u1", name="lan", role=Role.ANALYST, unit=None)
    update_alert(runtime, analyst, alert.id, AlertPatch(status=AlertStatus.FALSE_POSITIVE,
                                                        close_reason="test scan"), None)
    assert Pipeline(runtime).run_once() == 2  # the restarted process replays the batch
    (after,) = runtime.store.query_alerts(AlertQuery()).items
    assert after.id == alert.id
    assert (after.status, after.count) == (AlertStatus.FALSE_POSITIVE, 2)


class _SlowEventWrites:
    """The real store, whose event write waits for the test to release it: a batch still in hand."""

    def __init__(self, store) -> None:
        import threading

        self._store = store
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def write_matched_events(self, events):  # detection's event write (bulk storage is another consumer)
        self.entered.set()
        self.release.wait(30)
        return self._store.write_matched_events(events)


def test_stop_waits_for_the_batch_and_never_saves_state_under_it(runtime: Runtime, tmp_path: Path) -> None:
    import threading

    from soclite.correlator.engine import STATE_FILE

    runtime.engine.state_dir = tmp_path / "state"
    slow = _SlowEventWrites(runtime.store)
    runtime.store = slow
    runtime.journal.append("b1", _lines(_clamav(2), host="ws-11"))
    pipeline = Pipeline(runtime, idle_sleep=0.01)
    pipeline.start()
    assert slow.entered.wait(10)
    # Still in the batch after the timeout: no state written underneath it, and the caller is told.
    assert pipeline.stop(timeout=0.2) is False
    assert not (tmp_path / "state" / STATE_FILE).exists()
    # A stop that outlasts the batch: the batch is finished (committed) and only then the state saved.
    threading.Timer(0.3, slow.release.set).start()
    assert pipeline.stop(timeout=10) is True
    assert runtime.journal.lag(CONSUMER) == 0
    assert (tmp_path / "state" / STATE_FILE).exists()
    runtime.store = slow._store


def test_alert_search_finds_values_of_every_matched_event(runtime: Runtime) -> None:
    """q on alerts looks into the matched events: the first one (written with the alert) and the repeats'."""
    pipeline = Pipeline(runtime)
    runtime.journal.append("b1", _lines(_clamav(1), host="ws-07"))
    pipeline.run_once()
    runtime.journal.append("b2", [*_lines(_clamav(3)[1:], host="ws-07")])  # two repeats of the same alert
    pipeline.run_once()
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert len(alerts) == 1 and alerts[0].count == 3
    for needle in ("Win.Trojan.Agent-0", "/home/a/f2.exe", "win.trojan.agent-1"):
        assert runtime.store.query_alerts(AlertQuery(q=needle)).total == 1, needle
    assert runtime.store.query_alerts(AlertQuery(q="Win.Trojan.Agent-9")).total == 0


def _wait(predicate, timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.02)


def test_alerts_are_visible_while_event_storage_is_stalled_and_storage_catches_up(runtime: Runtime) -> None:
    import sqlite3

    from soclite.event_storage import STORAGE
    from soclite.models import isoformat
    from soclite.store import _common as c
    from soclite.store._sqlite_events import day_of

    noise = [f"<38>Aug  1 10:01:{n % 60:02d} ws-20 sshd[9]: Accepted publickey for canbo{n} from 10.0.0.{n % 250} "
             f"port {4000 + n} ssh2" for n in range(500)]  # fmt: skip
    batches = [_lines(noise[:250], host="ws-20"), _lines(_clamav(3), host="ws-20"), _lines(noise[250:], host="ws-20")]
    for n, batch in enumerate(batches):
        runtime.journal.append(f"b{n}", batch)
    # Another process holds the write lock of every day file these events go to: bulk storage is stuck.
    days = {day_of(isoformat(c.event_time(e))) for batch in batches for e in batch}
    blockers = []
    for day in sorted(days):
        runtime.store.events._writer(day)  # the file exists (as after an earlier write that day)
        blocker = sqlite3.connect(runtime.store.events.path_of(day), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        blockers.append(blocker)
    pipeline = Pipeline(runtime, idle_sleep=0.01, storage_batch_size=100)
    pipeline.start()
    try:
        _wait(lambda: runtime.journal.lag(CONSUMER) == 0, 30, "detection through the whole journal")
        # The alert and the events it matched are readable while bulk storage has stored nothing.
        (alert,) = runtime.store.query_alerts(AlertQuery()).items
        assert alert.count == 3
        matched = runtime.store.query_events(EventQuery(ids=alert.event_ids))
        assert matched.total == 3 and {e["event.id"] for e in matched.items} == set(alert.event_ids)
        assert runtime.store.count_events(EventQuery()) == 0
        assert runtime.journal.lag(STORAGE) == 503
        # Compaction waits for the slowest consumer: nothing storage has not committed is deleted.
        runtime.journal.compact()
        assert runtime.journal.count() == 503
    finally:
        for blocker in blockers:
            blocker.execute("ROLLBACK")
            blocker.close()
    try:
        _wait(lambda: runtime.journal.lag(STORAGE) == 0, 60, "storage caught up")
    finally:
        assert pipeline.stop(timeout=30)
    # Every event once: the three matched events were written by both consumers, stored once.
    assert runtime.store.count_events(EventQuery()) == 503
    ids = [e["event.id"] for e in runtime.store.query_events(EventQuery(limit=1000)).items]
    assert len(ids) == len(set(ids)) == 503
    assert runtime.store.query_events(EventQuery(ids=alert.event_ids)).total == 3
    runtime.journal.compact()
    assert runtime.journal.count() == 0


def test_a_storage_batch_replayed_after_a_crash_before_its_commit_is_stored_once(runtime: Runtime) -> None:
    from soclite.event_storage import STORAGE, EventStorage

    runtime.journal.append("b1", _lines(_clamav(5), host="ws-21"))
    rows = runtime.journal.read(STORAGE, 100)
    runtime.store.write_events([event for _, event in rows])  # written, then "crash" before the commit
    storage = EventStorage(runtime.journal, runtime.store)
    assert storage.run_once() == 5  # the restarted consumer replays the batch
    assert runtime.journal.lag(STORAGE) == 0
    assert runtime.store.count_events(EventQuery()) == 5


def test_detection_stores_only_matched_events_and_storage_the_rest_with_units(runtime: Runtime) -> None:
    from soclite.models import Host, HostType

    runtime.store.put_host(Host(id="ws-22", name="ws-22", type=HostType.WORKSTATION, unit="so-yt"))
    events = _lines([_clamav(1)[0].replace("ws-01", "ws-22"), "<38>Aug  1 10:02:00 ws-22 cron[1]: nothing to see"],
                     host="ws-22")
    for event in events:
        event.pop("soclite.unit", None)  # a syslog sender: the unit comes from the inventory
    runtime.journal.append("b1", events)
    pipeline = Pipeline(runtime)
    assert pipeline.run_once() == 2
    assert runtime.store.count_events(EventQuery(host="ws-22")) == 0  # bulk storage has not run
    (alert,) = runtime.store.query_alerts(AlertQuery(host="ws-22")).items
    assert runtime.store.count_events(EventQuery(ids=alert.event_ids)) == 1  # the matched event, at once
    assert pipeline.storage is not None and pipeline.storage.run_once() == 2
    stored = runtime.store.query_events(EventQuery(host="ws-22")).items
    assert len(stored) == 2 and {e.get("soclite.unit") for e in stored} == {"so-yt"}


def test_a_new_alert_reaches_the_users_notification_rules_once(runtime: Runtime) -> None:
    """The pipeline hands each new alert to the per-user notifier (a repeat of it says nothing new)."""
    from soclite.control.identity import UserStore
    from soclite.control.notify_rules import RuleIn
    from soclite.playbooks.user_notify import UserNotifier

    user = UserStore(runtime.control).add("trucban", "trucban-password-1", role="viewer")
    runtime.notification_rules.add(user.id, RuleIn(name="mã độc", min_severity="high", rule_patterns=["*clamav*"],
                                                   channel="webhook", target="http://127.0.0.1:9/hook"))  # fmt: skip
    runtime.notifier = UserNotifier(runtime.notification_rules, runtime.users, runtime.store, runtime.outbox,
                                    runtime.settings)  # fmt: skip
    runtime.journal.append("b1", _lines(_clamav(1), host="ws-01"))
    Pipeline(runtime).run_once()
    runtime.journal.append("b2", _lines(_clamav(1), host="ws-01"))  # the same detection again: a repeat
    Pipeline(runtime).run_once()
    [decision] = runtime.notification_rules.recent(user.id)
    assert decision["status"] == "sent" and decision["channel"] == "webhook"
    [action] = runtime.outbox.list_actions(action="notify_webhook")
    assert action.params["body"]["type"] == "soclite.alert" and "ClamAV" in action.params["body"]["alert"]["rule_title"]


MIMIKATZ_RULE = """
title: Mimikatz keywords anywhere
id: 0f4f0c8e-6a4e-4c7b-9d3e-2b1c5d6e7f80
status: test
level: high
logsource: {product: windows}
detection:
    keywords: ['sekurlsa::', 'kerberos::golden']
    condition: keywords
"""


def test_detection_searches_the_journal_bodies_for_keywords(runtime: Runtime, tmp_path: Path) -> None:
    """The detection consumer hands the engine each event's journal body: a keyword anywhere in it
    fires, an event without one does not, and a unit filled in from the inventory (after the body's
    keys) is searched too."""
    from soclite.correlator.loader import RuleSet, load_text
    from soclite.models import UNIT, Host

    rs = RuleSet()
    load_text(MIMIKATZ_RULE, "mimikatz", rs, {})
    runtime.engine = Engine(rs)
    runtime.store.put_host(Host(id="ws-k", name="ws-k", unit="kerberos::golden-unit"))
    base = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "logsource.product": "windows"}
    events = [
        {**base, "host.name": "ws-a", UNIT: "ttdl", "CommandLine": 'mimikatz "SEKURLSA::logonpasswords"'},
        {**base, "host.name": "ws-b", UNIT: "ttdl", "CommandLine": "notepad.exe"},
        {**base, "host.name": "ws-k", UNIT: None, "CommandLine": "notepad.exe"},  # the unit's key is in the body
    ]
    runtime.journal.append("b1", events)
    assert Pipeline(runtime).run_once() == 3
    alerts = runtime.store.query_alerts(AlertQuery()).items
    assert sorted(a.host for a in alerts) == ["ws-a", "ws-k"]
    assert {a.host: a.unit for a in alerts}["ws-k"] == "kerberos::golden-unit"
