"""The Store contract, run against every implementation (see conftest `store`)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from soclite.errors import NotFoundError, StoreError
from soclite.models import AlertStatus, AuditEntry, Host, HostType, Unit
from soclite.store.base import (
    AlertQuery,
    AlertRepeat,
    AllOf,
    AnyOf,
    EventQuery,
    Expr,
    HostQuery,
    Match,
    Not,
    Store,
)

from .factories import T0, alert, event


# --- events -----------------------------------------------------------------
def test_write_events_is_idempotent_on_event_id(store: Store) -> None:
    batch = [event(i) for i in range(20)]
    assert store.write_events(batch) == 20
    assert store.write_events([*batch[:10], event(20)]) == 1
    assert store.count_events(EventQuery()) == 21
    page = store.query_events(EventQuery(limit=100))
    assert sorted(e["event.id"] for e in page.items) == sorted(f"ev{i:06d}" for i in range(21))


def test_event_roundtrip_keeps_flat_dotted_keys(store: Store) -> None:
    original = event(1)
    original.update({"process.command_line": "powershell -enc AAA", "CommandLine": "x"})
    store.write_events([original])
    (got,) = store.query_events(EventQuery(ids=[original["event.id"]])).items
    assert got == original


def test_events_with_conflicting_shapes_are_all_kept(store: Store) -> None:
    # "host" as a plain field beside "host.name", and one field with two types: stores must keep both.
    clash = event(1)
    clash["host"] = "plain"
    nested = event(4, Image="C:\\Windows\\cmd.exe")
    nested["Image"] = {"path": "C:\\Windows\\cmd.exe"}  # an object where other events have a string
    odd = [event(0, Image="C:\\x.exe"), clash, event(2, EventID="not-a-number"), event(3, EventID=7), nested]
    assert store.write_events(odd) == 5
    got = {e["event.id"]: e for e in store.query_events(EventQuery(limit=10)).items}
    assert got["ev000001"]["host"] == "plain"
    assert got["ev000002"]["EventID"] == "not-a-number"
    assert got["ev000004"] == nested
    # the core fields of an event that could not be mapped stay searchable
    assert store.count_events(EventQuery(host="pc-01", q="line 4")) == 1


def test_event_filters(store: Store) -> None:
    store.write_events(
        [event(i, unit="u1" if i < 10 else "u2", host="PC-01" if i % 2 else "SRV-DB") for i in range(20)]
    )
    assert store.count_events(EventQuery(host="pc-01")) == 10
    assert store.count_events(EventQuery(units=frozenset({"u2"}))) == 10
    assert store.count_events(EventQuery(units=frozenset())) == 0
    assert store.query_events(EventQuery(units=frozenset())).items == []
    assert store.count_events(EventQuery(start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=8))) == 3
    assert store.count_events(EventQuery(fields={"logsource.category": "auth"})) == 10
    assert store.count_events(EventQuery(fields={"logsource.category": "auth"}, host="srv-db")) == 0
    assert store.count_events(EventQuery(fields={"user.name": "root"})) == 20
    # free text: case-insensitive substring of the raw line
    hits = store.query_events(EventQuery(q="FAILED PASSWORD for root from 10.0.0.7 line 7"))
    assert [e["event.id"] for e in hits.items] == ["ev000007"]
    assert store.count_events(EventQuery(q="failed password", units=frozenset({"u1"}))) == 10


def test_event_search_expressions(store: Store) -> None:
    """field:value (whole value, any case), wildcards, free text, AND / OR / NOT: the same on both stores."""
    store.write_events([
        event(1, **{"source.ip": "203.0.113.45", "user.name": "Nguyen.Van.A", "process.command_line": "sqlmap -u x"}),
        event(2, **{"source.ip": "203.0.113.46", "user.name": "tran.thi.b"}),
        event(3, **{"source.ip": "198.51.100.7", "user.name": "nguyen.van.a"}),
    ])

    def ids(expr: Expr) -> set[str]:
        found = {e["event.id"] for e in store.query_events(EventQuery(expr=expr, limit=100)).items}
        assert store.count_events(EventQuery(expr=expr)) == len(found)
        return found

    user = Match("user.name", "nguyen.van.a")
    assert ids(user) == {"ev000001", "ev000003"}  # any case
    assert ids(Match("source.ip", "203.0.113.4")) == set()  # a whole value, not a prefix
    assert ids(Match("source.ip", "203.0.113.*", wildcard=True)) == {"ev000001", "ev000002"}
    assert ids(Match(None, "SQLMAP")) == {"ev000001"}
    assert ids(AllOf((user, Match("source.ip", "198.51.100.7")))) == {"ev000003"}
    assert ids(AnyOf((Match("user.name", "tran.thi.b"), Match(None, "sqlmap")))) == {"ev000001", "ev000002"}
    assert ids(AllOf((Match("source.ip", "203.0.113.*", wildcard=True), Not(user)))) == {"ev000002"}
    assert ids(Not(Match("no.such.field", "x"))) == {"ev000001", "ev000002", "ev000003"}
    assert store.count_events(EventQuery(expr=user, units=frozenset({"u2"}))) == 0


def test_a_host_name_term_finds_the_same_events_as_the_host_filter(store: Store) -> None:
    # the embedded store narrows such a search through its host index: the answers must not change
    store.write_events([event(i, host="PC-01" if i % 2 else "SRV-DB", **{"EventID": i % 3}) for i in range(12)])
    no_name = event(50, EventID=0)
    del no_name["host.name"]
    no_name["Computer"] = "pc-01"  # the host column comes from Computer when host.name is missing
    store.write_events([no_name])

    def ids(expr: Expr) -> list[str]:
        found = sorted(e["event.id"] for e in store.query_events(EventQuery(expr=expr, limit=100)).items)
        assert store.count_events(EventQuery(expr=expr)) == len(found)
        return found

    pc01 = Match("host.name", "Pc-01")
    assert ids(pc01) == [f"ev{i:06d}" for i in range(1, 12, 2)]  # not ev000050: it has no host.name
    assert ids(AllOf((Match("EventID", "0"), pc01))) == ["ev000003", "ev000009"]
    assert ids(AllOf((pc01, Not(Match("EventID", "0"))))) == ["ev000001", "ev000005", "ev000007", "ev000011"]
    assert ids(AnyOf((pc01, Match("EventID", "2")))) == sorted(
        {f"ev{i:06d}" for i in range(1, 12, 2)} | {"ev000002", "ev000008"}
    )
    assert ids(AllOf((Match("host.name", "srv-*", wildcard=True), Match("EventID", "1")))) == ["ev000004", "ev000010"]


def test_event_pages_newest_first_cover_every_row_once(store: Store) -> None:
    # equal timestamps across pages force the tie-breaker to work
    store.write_events([event(i, when=T0 + timedelta(minutes=i // 3)) for i in range(47)])
    seen: list[str] = []
    cursor = None
    stamps: list[str] = []
    while True:
        page = store.query_events(EventQuery(limit=10, cursor=cursor))
        assert page.total == 47
        seen += [e["event.id"] for e in page.items]
        stamps += [e["@timestamp"] for e in page.items]
        cursor = page.next
        if cursor is None:
            break
    assert len(seen) == 47 and set(seen) == {f"ev{i:06d}" for i in range(47)}
    assert stamps == sorted(stamps, reverse=True)


def test_delete_events_before(store: Store) -> None:
    store.write_events([event(i, when=T0 + timedelta(days=i)) for i in range(10)])
    deleted = store.delete_events_before(T0 + timedelta(days=4))
    assert deleted == 4
    assert store.count_events(EventQuery()) == 6
    assert store.count_events(EventQuery(end=T0 + timedelta(days=4))) == 0


# --- alerts -----------------------------------------------------------------
def test_put_alert_replaces_by_id_and_never_duplicates(store: Store) -> None:
    first = alert(1)
    store.put_alert(first)
    store.put_alerts([first, first])
    updated = first.model_copy(update={"count": 5, "status": AlertStatus.ACKNOWLEDGED, "assignee": "an"})
    store.put_alert(updated)
    assert store.count_alerts(AlertQuery()) == {"total": 1}
    got = store.get_alert(first.id)
    assert got.count == 5 and got.status == "acknowledged" and got.assignee == "an"
    assert got == updated


def test_get_alert_scoped_and_missing(store: Store) -> None:
    a = alert(1, unit="u1")
    store.put_alert(a)
    assert store.get_alert(a.id, frozenset({"u1", "u9"})).id == a.id
    with pytest.raises(NotFoundError):
        store.get_alert(a.id, frozenset({"u2"}))
    with pytest.raises(NotFoundError):
        store.get_alert("nope")


def _populate(store: Store) -> None:
    rows = []
    for i in range(60):
        rows.append(
            alert(
                i,
                unit=("u1", "u2", "u3")[i % 3],
                level=("critical", "high", "medium", "low", "informational")[i % 5],
                status=("new", "acknowledged", "resolved", "false_positive")[i % 4],
                host=f"pc-{i % 6:02d}",
                rule_id="rule-a" if i < 30 else "rule-b",
                tags=["attack.t1059"] if i % 2 else ["attack.t1003", "attack.credential_access"],
                assignee="alice" if i % 10 == 0 else None,
                count=i + 1,
            )
        )
    assert store.put_alerts(rows) == 60


def test_alert_filters(store: Store) -> None:
    _populate(store)

    def total(**kw: object) -> int:
        return store.query_alerts(AlertQuery(**kw)).total  # type: ignore[arg-type]

    assert total() == 60
    assert total(units=frozenset({"u1"})) == 20
    assert total(units=frozenset({"u1", "u2"})) == 40
    assert total(units=frozenset()) == 0
    assert total(severity=["high"]) == 24
    assert total(level=["critical"]) == 12
    assert total(status=["new", "acknowledged"]) == 30
    assert total(rule_id="rule-b") == 30
    assert total(assignee="alice") == 6
    assert total(host="PC-01") == 10
    assert total(start=T0 + timedelta(hours=10), end=T0 + timedelta(hours=20)) == 10
    assert total(units=frozenset({"u1"}), severity=["high"], status=["new"]) == len(
        [i for i in range(60) if i % 3 == 0 and i % 5 in (0, 1) and i % 4 == 0]
    )
    some = store.query_alerts(AlertQuery(limit=3)).items
    assert total(ids=[a.id for a in some]) == 3
    assert total(fingerprint=some[0].fingerprint) == 1
    assert total(q="TITLE OF RULE-B") == 30
    # every item really matches its filter, and no unit leaks
    for a in store.query_alerts(AlertQuery(units=frozenset({"u2"}), severity=["low"], limit=100)).items:
        assert a.unit == "u2" and a.severity == "low"


@pytest.mark.parametrize("sort", ["last_seen", "first_seen", "severity", "count"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_alert_cursor_pages_cover_all_rows_exactly_once(store: Store, sort: str, order: str) -> None:
    _populate(store)
    # equal sort keys across pages
    store.put_alerts([alert(100 + i, when=T0 + timedelta(hours=200), count=7) for i in range(9)])
    ids: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.query_alerts(AlertQuery(limit=7, cursor=cursor, sort=sort, order=order))  # type: ignore[arg-type]
        assert page.total == 69
        ids += [a.id for a in page.items]
        pages += 1
        cursor = page.next
        if cursor is None:
            break
    assert len(ids) == 69 and len(set(ids)) == 69
    assert pages == 10
    full = store.query_alerts(AlertQuery(limit=100, sort=sort, order=order)).items  # type: ignore[arg-type]
    assert [a.id for a in full] == ids
    if sort == "last_seen":
        stamps = [a.last_seen for a in full]
        assert stamps == sorted(stamps, reverse=(order == "desc"))


def test_cursor_pages_respect_scope(store: Store) -> None:
    _populate(store)
    scope = frozenset({"u3"})
    cursor, got = None, []
    while True:
        page = store.query_alerts(AlertQuery(units=scope, limit=4, cursor=cursor))
        got += page.items
        cursor = page.next
        if not cursor:
            break
    assert len(got) == 20 and {a.unit for a in got} == {"u3"}


def test_bad_cursor_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        store.query_alerts(AlertQuery(cursor="!!not-a-cursor"))


def test_count_alerts_grouped(store: Store) -> None:
    _populate(store)
    assert store.count_alerts(AlertQuery()) == {"total": 60}
    assert store.count_alerts(AlertQuery(), "severity") == {"high": 24, "medium": 12, "low": 24}
    assert store.count_alerts(AlertQuery(), "status") == {
        "new": 15,
        "acknowledged": 15,
        "resolved": 15,
        "false_positive": 15,
    }
    assert store.count_alerts(AlertQuery(units=frozenset({"u1"})), "unit") == {"u1": 20}
    assert store.count_alerts(AlertQuery(), "rule_id") == {"rule-a": 30, "rule-b": 30}
    assert store.count_alerts(AlertQuery(), "level")["informational"] == 12
    assert store.count_alerts(AlertQuery(), "host")["pc-05"] == 10
    assert store.count_alerts(AlertQuery(), "assignee") == {"alice": 6, "": 54}  # "" = unassigned
    assert store.count_alerts(AlertQuery(), "tags") == {
        "attack.t1059": 30,
        "attack.t1003": 30,
        "attack.credential_access": 30,
    }
    assert store.count_alerts(AlertQuery(units=frozenset()), "severity") == {}
    with pytest.raises(StoreError):
        store.count_alerts(AlertQuery(), "nonsense")


def test_alert_histogram(store: Store) -> None:
    _populate(store)  # one alert per hour from T0
    by_day = store.alert_histogram(AlertQuery(), "day")
    assert [b.start for b in by_day] == [T0, T0 + timedelta(days=1), T0 + timedelta(days=2)]
    assert [sum(b.counts.values()) for b in by_day] == [24, 24, 12]
    assert sum(by_day[0].counts.values()) == 24 and set(by_day[0].counts) <= {"high", "medium", "low"}
    by_hour = store.alert_histogram(AlertQuery(units=frozenset({"u1"})), "hour", group_by="status")
    assert len(by_hour) == 20 and all(sum(b.counts.values()) == 1 for b in by_hour)
    by_month = store.alert_histogram(AlertQuery(), "month", group_by="rule_id")
    assert len(by_month) == 1 and by_month[0].counts == {"rule-a": 30, "rule-b": 30}
    assert store.alert_histogram(AlertQuery(units=frozenset()), "day") == []


def test_alert_histogram_days_are_local_days_of_the_site_zone(store: Store) -> None:
    """00:30 ICT on 7 December is 17:30 UTC on 6 December: its bar is the 7th (and the month is local too)."""
    ict = ZoneInfo("Asia/Ho_Chi_Minh")
    store.put_alerts([
        alert(1, when=datetime(2026, 12, 6, 17, 30, tzinfo=UTC)),  # 00:30 on 7/12 local
        alert(2, when=datetime(2026, 12, 6, 16, 59, tzinfo=UTC)),  # 23:59 on 6/12 local
        alert(3, when=datetime(2026, 12, 7, 16, 0, tzinfo=UTC)),  # 23:00 on 7/12 local
        alert(4, when=datetime(2026, 11, 30, 17, 0, tzinfo=UTC)),  # 00:00 on 1/12 local: December
    ])
    by_day = store.alert_histogram(AlertQuery(), "day", tz=ict)
    assert [(b.start, sum(b.counts.values())) for b in by_day] == [
        (datetime(2026, 12, 1, tzinfo=ict), 1),
        (datetime(2026, 12, 6, tzinfo=ict), 1),
        (datetime(2026, 12, 7, tzinfo=ict), 2),
    ]
    assert all(b.start.utcoffset() == timedelta(hours=7) for b in by_day)
    by_month = store.alert_histogram(AlertQuery(), "month", tz=ict)
    assert [(b.start, sum(b.counts.values())) for b in by_month] == [(datetime(2026, 12, 1, tzinfo=ict), 4)]
    # UTC (no zone given) is unchanged: the 00:30 local alert is on the 6th there
    utc_days = store.alert_histogram(AlertQuery(), "day")
    assert [(b.start.date().day, sum(b.counts.values())) for b in utc_days] == [(30, 1), (6, 2), (7, 1)]


def test_alert_histogram_in_a_half_hour_zone(store: Store) -> None:
    """India is UTC+05:30: a local day starts at 18:30 UTC, inside a UTC hour."""
    ist = ZoneInfo("Asia/Kolkata")
    store.put_alerts([
        alert(1, when=datetime(2026, 12, 6, 18, 40, tzinfo=UTC)),  # 00:10 on 7/12 local
        alert(2, when=datetime(2026, 12, 6, 18, 20, tzinfo=UTC)),  # 23:50 on 6/12 local
    ])
    by_day = store.alert_histogram(AlertQuery(), "day", tz=ist)
    assert [(b.start, sum(b.counts.values())) for b in by_day] == [
        (datetime(2026, 12, 6, tzinfo=ist), 1),
        (datetime(2026, 12, 7, tzinfo=ist), 1),
    ]


def test_alert_q_searches_the_matched_events_fields(store: Store) -> None:
    """IPs, user names, hashes, command lines and paths of the matched events find the alert."""
    first = alert(1)
    first.event = {"event.id": "ev000001", "source.ip": "203.0.113.45", "user.name": "nguyen.van.a",
                   "process.command_line": "python sqlmap.py -u http://portal.gov.vn/?id=1",
                   "file.hash.sha256": "AB12CD34" * 8, "TargetFilename": "C:\\Users\\Public\\Emotet.dll"}
    other = alert(2)
    store.put_alerts([first, other])
    for needle in ("203.0.113.45", "sqlmap", "emotet", "Nguyen.Van.A", "ab12cd34ab12", "Title of rule-a"):
        found = store.query_alerts(AlertQuery(q=needle)).items
        expected = {first.id, other.id} if needle.startswith("Title") else {first.id}
        assert {a.id for a in found} == expected, needle
        assert store.count_alerts(AlertQuery(q=needle))["total"] == len(expected)
    assert store.query_alerts(AlertQuery(q="198.51.100.7")).total == 0
    # a repeat's new matched event is searchable too, and stays so after a triage change
    store.record_repeats([AlertRepeat(id=other.id, last_seen=other.last_seen, first_seen=other.first_seen,
                                      updated_at=other.updated_at, event_ids=["ev-r2"],
                                      texts=["198.51.100.7\nmimikatz.exe"])])
    assert [a.id for a in store.query_alerts(AlertQuery(q="198.51.100.7")).items] == [other.id]
    store.update_alert_fields(other.id, {"status": "acknowledged"})
    assert [a.id for a in store.query_alerts(AlertQuery(q="MIMIKATZ")).items] == [other.id]
    assert store.get_alert(other.id).count == 2


def test_count_alerts_by_user_and_source_ip_of_the_matched_event(store: Store) -> None:
    a1, a2, a3, a4 = alert(1), alert(2), alert(3, unit="u2"), alert(4)
    a1.event = {"user.name": "nguyen.van.a", "source.ip": "203.0.113.45"}
    a2.event = {"TargetUserName": "nguyen.van.a", "IpAddress": "203.0.113.45"}  # Windows native names
    a3.event = {"user.name": "tran.thi.b", "source.ip": "198.51.100.7"}
    a4.event = {"IpAddress": "-"}  # Windows writes "-" for "none"
    store.put_alerts([a1, a2, a3, a4])
    assert store.count_alerts(AlertQuery(), "user") == {"nguyen.van.a": 2, "tran.thi.b": 1, "": 1}
    assert store.count_alerts(AlertQuery(), "source_ip") == {"203.0.113.45": 2, "198.51.100.7": 1, "": 1}
    assert store.count_alerts(AlertQuery(units=frozenset({"u2"})), "user") == {"tran.thi.b": 1}
    by_day = store.alert_histogram(AlertQuery(), "month", group_by="source_ip")
    assert by_day[0].counts == {"203.0.113.45": 2, "198.51.100.7": 1, "": 1}
    # a triage write keeps the groups (OpenSearch rebuilds the document)
    store.update_alert_fields(a1.id, {"status": "acknowledged"})
    assert store.count_alerts(AlertQuery(status=["acknowledged"]), "user") == {"nguyen.van.a": 1}


def test_find_open_alert_for_grouping(store: Store) -> None:
    old = alert(1, when=T0)
    newer = old.model_copy(update={"id": "newer", "last_seen": T0 + timedelta(hours=2)})
    closed = old.model_copy(
        update={"id": "closed", "last_seen": T0 + timedelta(hours=3), "status": AlertStatus.RESOLVED}
    )
    other = alert(2, when=T0 + timedelta(hours=4))
    store.put_alerts([old, newer, closed, other])
    found = store.find_open_alert(old.fingerprint, since=T0 - timedelta(hours=1))
    assert found is not None and found.id == "newer"
    assert store.find_open_alert(old.fingerprint, since=T0 + timedelta(hours=2, minutes=1)) is None
    assert store.find_open_alert("unknown", since=T0) is None


# --- hosts and units --------------------------------------------------------------
def test_hosts(store: Store) -> None:
    for i in range(12):
        store.put_host(
            Host(
                id=f"pc-{i:02d}",
                name=f"PC-{i:02d}",
                type=HostType.SERVER if i < 3 else HostType.WORKSTATION,
                unit="u1" if i % 2 else "u2",
                ips=[f"10.0.0.{i}"],
                agent_id=f"agent-{i}",
                os="Windows 10" if i % 3 else "Ubuntu 22.04",
            )
        )
    store.put_host(store.get_host("pc-01").model_copy(update={"os": "Windows 11"}))
    assert store.get_host("pc-01").os == "Windows 11"
    with pytest.raises(NotFoundError):
        store.get_host("pc-01", frozenset({"u2"}))
    with pytest.raises(NotFoundError):
        store.get_host("nope")
    assert (h := store.find_host("Pc-03")) is not None and h.id == "pc-03"
    assert (h := store.find_host("agent-7")) is not None and h.id == "pc-07"
    assert store.find_host("ghost") is None
    assert store.query_hosts(HostQuery(type="server")).total == 3
    assert store.query_hosts(HostQuery(units=frozenset({"u1"}))).total == 6
    assert store.query_hosts(HostQuery(units=frozenset())).total == 0
    assert [h.id for h in store.query_hosts(HostQuery(q="10.0.0.11")).items] == ["pc-11"]
    assert store.query_hosts(HostQuery(q="ubuntu")).total == 4
    ids, cursor = [], None
    while True:
        page = store.query_hosts(HostQuery(limit=5, cursor=cursor))
        ids += [h.id for h in page.items]
        cursor = page.next
        if not cursor:
            break
    assert ids == [f"pc-{i:02d}" for i in range(12)]


def test_find_hosts_answers_as_find_host_does_for_each_name(store: Store) -> None:
    # detection looks up every host it hears of in one call: by id, by name (any case), by agent id
    store.put_host(Host(id="ws-01", name="WS-01", unit="u1", agent_id="agent-a"))
    store.put_host(Host(id="srv-db", name="DB-Server", unit="u2", agent_id="agent-b"))
    store.put_host(Host(id="h-3", name="Kiosk", unit="u1"))
    names = ["ws-01", "WS-01", "db-server", "agent-b", "kiosk", "ghost", "agent-zz"]
    found = store.find_hosts(names)
    assert {name: host.id for name, host in found.items()} == {
        "ws-01": "ws-01", "WS-01": "ws-01", "db-server": "srv-db", "agent-b": "srv-db", "kiosk": "h-3",
    }  # fmt: skip
    for name in names:
        one = store.find_host(name)
        assert (one.id if one else None) == (found[name].id if name in found else None), name
    assert store.find_hosts([]) == {}


def test_units(store: Store) -> None:
    store.put_unit(Unit(code="tinh", name="Tỉnh"))
    store.put_unit(Unit(code="so-tttt", name="Sở TT&TT", parent="tinh"))
    store.put_unit(Unit(code="so-tttt", name="Sở Thông tin và Truyền thông", parent="tinh"))
    units = store.list_units()
    assert [u.code for u in units] == ["so-tttt", "tinh"]
    assert units[0].name == "Sở Thông tin và Truyền thông"


def test_units_keep_an_english_name_and_can_be_deleted(store: Store) -> None:
    store.put_unit(Unit(code="tinh", name="Tỉnh", name_en="Province"))
    store.put_unit(Unit(code="xa", name="Xã", parent="tinh"))
    assert {u.code: u.name_en for u in store.list_units()} == {"tinh": "Province", "xa": None}
    assert store.delete_unit("xa") is True
    assert store.delete_unit("xa") is False  # already gone
    assert [u.code for u in store.list_units()] == ["tinh"]


# --- audit -------------------------------------------------------------------------
def test_audit_chain(store: Store) -> None:
    entries = [
        store.append_audit(
            AuditEntry(
                actor="alice", action="alert.update", target=f"alert:{i}", after={"status": "acknowledged"}
            )
        )
        for i in range(25)
    ]
    assert [e.seq for e in entries] == list(range(1, 26))
    chain = list(store.iter_audit())
    assert [e.seq for e in chain] == list(range(1, 26))
    prev = ""
    for entry in chain:
        assert entry.prev_hash == prev
        assert entry.hash == entry.compute_hash()
        prev = entry.hash
    # tampering is detectable
    forged = chain[3].model_copy(update={"actor": "mallory"})
    assert forged.compute_hash() != chain[3].hash
    page = store.list_audit(limit=10)
    assert page.total == 25 and [e.seq for e in page.items] == list(range(25, 15, -1))
    assert page.next is not None
    page2 = store.list_audit(limit=10, cursor=page.next)
    assert [e.seq for e in page2.items] == list(range(15, 5, -1))


def test_audit_chain_never_forks_under_concurrent_appends(store: Store) -> None:
    import threading

    def work(n: int) -> None:
        for i in range(10):
            store.append_audit(AuditEntry(actor=f"t{n}", action="x", target=str(i)))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    chain = list(store.iter_audit())
    assert [e.seq for e in chain] == list(range(1, 41))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


def test_unstorable_event_fails_the_whole_batch_which_can_be_retried(store: Store) -> None:
    good = [event(i) for i in range(10)]
    bad = event(99)
    del bad["event.id"]
    with pytest.raises(StoreError):
        store.write_events([*good, bad])
    assert store.count_events(EventQuery()) == 0
    assert store.write_events(good) == 10
