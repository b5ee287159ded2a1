"""Field-level host writes (Store contract): a last_seen refresh never reverts an isolation change.

The detection child process refreshes ``last_seen`` from events (``touch_hosts``) while the server
(agent heartbeats, the command channel, admins) changes bindings and isolation (``update_host``).
A whole-host ``put_host`` of a copy read before the other writer's change would revert it; these
tests interleave the writers the way it happens in production, in another store object or process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from soclite.errors import NotFoundError, StoreError
from soclite.models import Host, HostType, IsolationState
from soclite.store.base import HostQuery, Store

from .factories import T0


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


def _host(host_id: str = "pc-01", **extra: Any) -> Host:
    data: dict[str, Any] = {"id": host_id, "name": host_id.upper(), "unit": "u1", "last_seen": T0}
    data.update(extra)
    return Host.model_validate(data)


ISOLATING = {
    "isolation": IsolationState.PENDING,
    "isolation_detail": "command c-1",
    "isolation_updated_at": T0 + timedelta(minutes=5),
}


def test_update_host_changes_only_the_given_fields(store: Store) -> None:
    store.put_host(_host(agent_id="agent-1", ips=["10.0.0.1"]))
    got = store.update_host("pc-01", ISOLATING)
    stored = store.get_host("pc-01")
    assert got == stored
    assert (stored.isolation, stored.isolation_detail) == (IsolationState.PENDING, "command c-1")
    assert (stored.agent_id, stored.ips, stored.last_seen) == ("agent-1", ["10.0.0.1"], T0)
    # the indexed fields follow a change: unit scope, name search, agent id lookup
    store.update_host("pc-01", {"unit": "u2", "name": "Renamed", "agent_id": "agent-2", "ips": ["10.9.9.9"]})
    assert store.find_host("renamed") == store.find_host("agent-2") == store.get_host("pc-01", frozenset({"u2"}))
    assert store.query_hosts(HostQuery(units=frozenset({"u1"}))).total == 0
    assert [h.id for h in store.query_hosts(HostQuery(q="10.9.9")).items] == ["pc-01"]
    assert store.get_host("pc-01").isolation == IsolationState.PENDING


def test_update_host_function_decides_on_the_state_it_writes_over(store: Store, twin: Store) -> None:
    store.put_host(_host())
    stale = store.get_host("pc-01")
    twin.update_host("pc-01", {"isolation": IsolationState.ISOLATED})  # lands after the caller's read
    seen: list[IsolationState] = []

    def release_if_isolated(current: Host) -> dict[str, Any]:
        seen.append(current.isolation)
        return {"isolation": IsolationState.RELEASE_PENDING} if current.isolation == "isolated" else {}

    assert stale.isolation == IsolationState.NONE
    assert store.update_host("pc-01", release_if_isolated).isolation == IsolationState.RELEASE_PENDING
    assert seen[-1] == IsolationState.ISOLATED

    class Refused(Exception):
        pass

    def refuse(current: Host) -> dict[str, Any]:
        raise Refused(current.isolation)

    with pytest.raises(Refused):
        store.update_host("pc-01", refuse)
    assert store.get_host("pc-01").isolation == IsolationState.RELEASE_PENDING
    # nothing to change: nothing written, the host returned as stored
    assert store.update_host("pc-01", {}) == store.get_host("pc-01")


def test_update_host_refuses_unknown_fields_bad_values_missing_and_out_of_scope(store: Store) -> None:
    store.put_host(_host())
    with pytest.raises(StoreError, match="cannot change id"):
        store.update_host("pc-01", {"id": "pc-02"})
    with pytest.raises(StoreError, match="cannot change bogus"):
        store.update_host("pc-01", {"bogus": 1})
    with pytest.raises(StoreError, match="invalid field values"):
        store.update_host("pc-01", {"isolation": "bogus"})
    with pytest.raises(NotFoundError):
        store.update_host("missing", {"os": "linux"})
    with pytest.raises(NotFoundError):
        store.update_host("pc-01", {"os": "linux"}, units=frozenset({"u2"}))
    assert store.get_host("pc-01") == _host()
    assert store.update_host("pc-01", {"os": "linux"}, units=frozenset({"u1"})).os == "linux"


def test_update_host_creates_on_first_sight_and_updates_after(store: Store, twin: Store) -> None:
    first = store.update_host("pc-01", {"agent_id": "a1"}, create=_host(type=HostType.SERVER))
    assert first == store.get_host("pc-01")
    assert (first.agent_id, first.type, first.last_seen) == ("a1", HostType.SERVER, T0)
    # the host exists now: create is ignored, only the changes apply (the other writer's fields stay)
    twin.update_host("pc-01", ISOLATING)
    again = store.update_host("pc-01", {"agent_version": "2.0"}, create=_host(os="from-create"))
    assert (again.agent_version, again.os, again.isolation) == ("2.0", None, IsolationState.PENDING)
    with pytest.raises(StoreError, match="has id"):
        store.update_host("pc-02", {}, create=_host("pc-03"))


def test_touch_hosts_only_raises_last_seen(store: Store) -> None:
    store.put_host(_host("pc-01", agent_id="a1", **ISOLATING))
    store.put_host(_host("pc-02", last_seen=T0 + timedelta(hours=1)))
    got = store.touch_hosts(
        {"pc-01": T0 + timedelta(minutes=30), "pc-02": T0 + timedelta(minutes=30), "nope": T0},
        create={"pc-03": _host("pc-03")},
    )
    assert [h.id for h in got] == ["pc-01", "pc-02"]
    one, two = store.get_host("pc-01"), store.get_host("pc-02")
    assert got == [one, two]
    assert one == _host("pc-01", agent_id="a1", **ISOLATING).model_copy(update={"last_seen": T0 + timedelta(minutes=30)})
    assert two.last_seen == T0 + timedelta(hours=1), "an older sighting never lowers last_seen"
    with pytest.raises(NotFoundError):
        store.get_host("nope")
    with pytest.raises(NotFoundError):
        store.get_host("pc-03")  # a prototype only for an id being touched
    assert store.touch_hosts({}) == []


def test_touch_hosts_creates_missing_hosts_once(store: Store, twin: Store) -> None:
    later = T0 + timedelta(minutes=1)
    (created,) = store.touch_hosts({"pc-01": later}, create={"pc-01": _host(os="linux")})
    assert created == store.get_host("pc-01") and (created.os, created.last_seen) == ("linux", later)
    # the other process created it meanwhile with its own fields: the prototype does not replace them
    twin.update_host("pc-01", {"agent_id": "a1", **ISOLATING})
    (touched,) = store.touch_hosts({"pc-01": later + timedelta(minutes=1)}, create={"pc-01": _host(os="other")})
    assert (touched.agent_id, touched.os, touched.isolation) == ("a1", "linux", IsolationState.PENDING)
    assert touched.last_seen == later + timedelta(minutes=1)


def test_touch_after_a_concurrent_isolation_keeps_it(store: Store, twin: Store) -> None:
    """The pipeline found the host (not isolated); an admin isolates it; the pipeline's refresh lands after."""
    store.put_host(_host())
    found = store.find_host("PC-01")
    assert found is not None and found.isolation == IsolationState.NONE
    twin.update_host("pc-01", ISOLATING)  # the server process
    store.touch_hosts({found.id: T0 + timedelta(minutes=10)})
    stored = store.get_host("pc-01")
    assert (stored.isolation, stored.isolation_detail) == (IsolationState.PENDING, "command c-1")
    assert stored.last_seen == T0 + timedelta(minutes=10)


# --- the race, with the refresh in another process ---------------------------------------------------


#: the detection child: raise the host's last_seen a second per round, as fast as it can, until told to
#: stop; then print the number of rounds (argv: spec JSON).
REFRESHER = """
import json, sys, threading, time
from datetime import UTC, datetime, timedelta
spec = json.loads(sys.argv[1])
if spec["kind"] == "sqlite":
    from soclite.store.sqlite import SQLiteStore
    store = SQLiteStore(spec["path"])
    store.open()
else:
    from opensearchpy import OpenSearch
    from soclite.store.opensearch import OpenSearchStore
    auth = tuple(spec["auth"]) if spec.get("auth") else None
    store = OpenSearchStore(OpenSearch(hosts=[spec["url"]], http_auth=auth, verify_certs=spec["verify"]), spec["prefix"])
t0 = datetime.fromisoformat(spec["t0"])
print("ready", flush=True)
sys.stdin.readline()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
i = 0
while not stop.is_set():
    i += 1
    store.touch_hosts({spec["host"]: t0 + timedelta(seconds=i)})
    time.sleep(0.002)  # leave the write lock free at times (the real pipeline refreshes a host once a minute)
store.close()
print(i, flush=True)
"""


def test_isolation_survives_concurrent_last_seen_refreshes(
    store: Store, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A pipeline process refreshing last_seen and the command channel stepping isolation, on one host.

    Each isolation write is read back a moment later: a refresh that wrote a copy of the host read
    before the isolation write would show an older isolation there. (With a ``get_host`` + ``put_host``
    refresh in the child this fails within a few writes, on both stores.)
    """
    store.put_host(_host(agent_id="a1"))
    spec: dict[str, Any] = {"kind": store.kind, "host": "pc-01", "t0": T0.isoformat()}
    if store.kind == "sqlite":
        spec["path"] = str(store.path)  # type: ignore[attr-defined]
    else:
        user = os.environ.get("OPENSEARCH_USERNAME")
        spec |= {
            "url": request.getfixturevalue("opensearch_url"),
            "prefix": store.prefix,  # type: ignore[attr-defined]
            "auth": [user, os.environ.get("OPENSEARCH_PASSWORD", "")] if user else None,
            "verify": os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0",
        }
    child = subprocess.Popen(
        [sys.executable, "-c", REFRESHER, json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    states = [IsolationState.REQUESTED, IsolationState.PENDING, IsolationState.ISOLATED, IsolationState.RELEASE_PENDING]
    writes = 60
    lost: list[str] = []
    try:
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        for n in range(writes):
            state, detail = states[n % len(states)], f"command c-{n}"
            store.update_host(
                "pc-01", {"isolation": state, "isolation_detail": detail, "isolation_updated_at": T0 + timedelta(hours=n)}
            )
            time.sleep(0.002)  # let refreshes land after this write before reading it back (none may revert it)
            now = store.get_host("pc-01")
            if (now.isolation, now.isolation_detail) != (state, detail):
                lost.append(f"wrote {state}/{detail}, read {now.isolation}/{now.isolation_detail}")
        child.stdin.write("stop\n")
        child.stdin.flush()
        rounds = int(child.stdout.readline())
        assert child.wait(60) == 0, "the refreshing process failed"
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    assert not lost, f"{len(lost)} of {writes} isolation writes reverted by a last_seen refresh: {lost[:3]}"
    assert rounds >= 10, f"only {rounds} refreshes ran beside the isolation writes"
    final = store.get_host("pc-01")
    assert final.last_seen == T0 + timedelta(seconds=rounds), "the newest refresh is the one stored"
    assert (final.isolation, final.isolation_detail) == (states[(writes - 1) % len(states)], f"command c-{writes - 1}")
    assert final.agent_id == "a1"


def test_concurrent_touches_and_updates_in_threads_lose_nothing(store: Store, twin: Store) -> None:
    """Both writers in one process on two store objects, each checking its own field at the end."""
    store.put_host(_host())
    rounds = 40
    errors: list[BaseException] = []

    def pipeline() -> None:
        try:
            for i in range(1, rounds + 1):
                store.touch_hosts({"pc-01": T0 + timedelta(seconds=i)})
        except BaseException as exc:
            errors.append(exc)

    def server() -> None:
        try:
            for i in range(rounds):
                twin.update_host("pc-01", {"isolation_detail": f"c-{i}", "agent_version": str(i)})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pipeline), threading.Thread(target=server)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    final = store.get_host("pc-01")
    assert final.last_seen == T0 + timedelta(seconds=rounds)
    assert (final.isolation_detail, final.agent_version) == (f"c-{rounds - 1}", str(rounds - 1))
