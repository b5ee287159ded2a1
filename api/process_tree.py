"""The process tree around a process event: its ancestors and descendants, from the stored events.

Three ways to tie a process to its parent, by what the event carries:

* **Sysmon** (``ProcessGuid``): event 1 (process creation) has ``ProcessGuid`` and
  ``ParentProcessGuid``; every other Sysmon event of that process (3 network, 11 file, …) has its
  ``ProcessGuid`` too, so a network event finds its process's creation and, through it, the parent.
  GUIDs do not repeat, unlike pids.
* **Security 4688**: ``NewProcessId`` is the process, ``ProcessId`` its creator (hex strings such as
  ``0x1a2c``); pids are per host and are reused, so a parent is the newest 4688 of that pid on the same
  host before the child.
* **auditd** (and any process creation with pids): ``ProcessId``/``ParentProcessId`` (pid/ppid of the
  EXECVE record) on the same host, the same rule for reuse.

Everything is read through the store's event search (both stores), scoped by the viewer's units, within
a window around the anchor event: ancestors up to ``window`` before it, descendants up to ``window`` after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from soclite.models import Event, parse_timestamp
from soclite.store.base import AllOf, EventQuery, Expr, Match, Store

Scheme = Literal["sysmon", "win4688", "pid"]
MAX_DEPTH = 8  # ancestors followed (a chain longer than this is cut: shown as reaching the window's edge)
MAX_CHILDREN = 30  # per process
CHILD_LEVELS = 2  # children and grandchildren
CREATION = Match("logsource.category", "process_creation")


@dataclass
class ProcessNode:
    event: Event
    scheme: Scheme
    anchor: bool = False
    children: list[ProcessNode] = field(default_factory=list)

    @property
    def image(self) -> str:
        ev = self.event
        return str(ev.get("Image") or ev.get("NewProcessName") or ev.get("process.executable") or ev.get("exe") or "?")

    @property
    def command_line(self) -> str:
        return str(self.event.get("CommandLine") or self.event.get("process.command_line") or "")

    @property
    def pid(self) -> str:
        ev = self.event
        value = ev.get("NewProcessId") if self.scheme == "win4688" else ev.get("ProcessId", ev.get("process.pid"))
        return "" if value is None else str(value)

    @property
    def time(self) -> datetime | None:
        return _time(self.event)

    @property
    def user(self) -> str:
        return str(self.event.get("User") or self.event.get("SubjectUserName") or self.event.get("user.name") or "")


@dataclass
class ProcessTree:
    #: the chain from the oldest ancestor found down to the anchor's process (the last one)
    ancestors: list[ProcessNode]
    anchor: ProcessNode
    #: other events of the anchor's process (Sysmon: network, files, registry…), newest first
    activity: list[Event]
    window: timedelta


def _time(ev: Event) -> datetime | None:
    try:
        return parse_timestamp(ev["@timestamp"]) if ev.get("@timestamp") else None
    except (ValueError, TypeError):
        return None


def _s(value: Any) -> str:
    return str(value).strip()


def scheme_of(event: Event) -> Scheme | None:
    """How ``event`` ties to a process tree, or None when it is no process event."""
    if event.get("ProcessGuid"):
        return "sysmon"
    if event.get("NewProcessId") is not None and _s(event.get("EventID", "4688")) == "4688":
        return "win4688"
    if event.get("ProcessId") is not None and event.get("ParentProcessId") is not None:
        return "pid"
    return None


class _Finder:
    def __init__(self, store: Store, units: frozenset[str] | None, host: str | None) -> None:
        self.store, self.units, self.host = store, units, host

    def find(self, expr: Expr, start: datetime, end: datetime, limit: int) -> list[Event]:
        query = EventQuery(expr=expr, host=self.host, start=start, end=end, units=self.units, limit=limit)
        return self.store.query_events(query).items  # newest first

    def creation(self, scheme: Scheme, key: str, before: datetime, since: datetime) -> Event | None:
        """The creation event of process ``key`` (the newest before ``before``: a pid may be reused)."""
        if scheme == "sysmon":
            expr: Expr = AllOf((Match("ProcessGuid", key), Match("EventID", "1")))
        elif scheme == "win4688":
            expr = AllOf((Match("EventID", "4688"), Match("NewProcessId", key)))
        else:
            expr = AllOf((Match("ProcessId", key), CREATION))
        found = self.find(expr, since, before + timedelta(milliseconds=1), 1)
        return found[0] if found else None

    def children(self, node: ProcessNode, until: datetime) -> list[Event]:
        ev, start = node.event, node.time
        if start is None:
            return []
        if node.scheme == "sysmon":
            expr: Expr = Match("ParentProcessGuid", _s(ev["ProcessGuid"]))
        elif node.scheme == "win4688":
            expr = AllOf((Match("EventID", "4688"), Match("ProcessId", node.pid)))
        else:
            expr = AllOf((Match("ParentProcessId", node.pid), CREATION))
        items = self.find(expr, start, until, MAX_CHILDREN)
        return [e for e in reversed(items) if e.get("event.id") != ev.get("event.id")]  # oldest first


def _parent_key(scheme: Scheme, ev: Event) -> str | None:
    if scheme == "sysmon":
        value = ev.get("ParentProcessGuid")
    elif scheme == "win4688":
        value = ev.get("ProcessId")
    else:
        value = ev.get("ParentProcessId")
    return None if value in (None, "") else _s(value)


def build(store: Store, event: Event, units: frozenset[str] | None, window: timedelta) -> ProcessTree | None:
    """The tree around ``event`` (an alert's matched event), or None when it is no process event."""
    scheme = scheme_of(event)
    at = _time(event)
    if scheme is None or at is None:
        return None
    finder = _Finder(store, units, str(event.get("host.name") or "") or None)
    since = at - window
    activity: list[Event] = []
    own = event
    if scheme == "sysmon" and _s(event.get("EventID", "1")) != "1":
        # not the creation itself: find it (its parent link is there) and list what this process did
        guid = _s(event["ProcessGuid"])
        own = finder.creation(scheme, guid, at, since) or event
        activity = [e for e in finder.find(Match("ProcessGuid", guid), since, at + window, 20)
                    if _s(e.get("EventID", "")) != "1"]
    anchor = ProcessNode(own, scheme, anchor=True)
    chain = [anchor]
    seen = {own.get("event.id")}
    child_time = anchor.time or at
    for _ in range(MAX_DEPTH):
        key = _parent_key(scheme, chain[0].event)
        if key is None:
            break
        parent = finder.creation(scheme, key, child_time, since)
        if parent is None or parent.get("event.id") in seen:
            break
        seen.add(parent.get("event.id"))
        node = ProcessNode(parent, scheme)
        node.children.append(chain[0])
        chain.insert(0, node)
        child_time = node.time or child_time
    level = [anchor]
    for _ in range(CHILD_LEVELS):
        nxt: list[ProcessNode] = []
        for node in level:
            for child in finder.children(node, at + window):
                if child.get("event.id") in seen:
                    continue
                seen.add(child.get("event.id"))
                kid = ProcessNode(child, scheme)
                node.children.append(kid)
                nxt.append(kid)
        level = nxt
    return ProcessTree(ancestors=chain, anchor=anchor, activity=activity, window=window)


def node_json(node: ProcessNode) -> dict[str, Any]:
    """One process of the tree as the API returns it (the creation event's id and the fields shown)."""
    at = node.time
    return {
        "event_id": node.event.get("event.id"), "image": node.image, "command_line": node.command_line,
        "pid": node.pid, "user": node.user, "time": at.isoformat() if at else None, "anchor": node.anchor,
        "children": [node_json(kid) for kid in node.children],
    }


def tree_json(tree: ProcessTree) -> dict[str, Any]:
    """The tree from its oldest ancestor found (``root``), the anchor's id, the anchor process's other events."""
    return {
        "scheme": tree.anchor.scheme, "window_hours": tree.window.total_seconds() / 3600,
        "anchor_event_id": tree.anchor.event.get("event.id"), "depth": len(tree.ancestors),
        "root": node_json(tree.ancestors[0]), "activity": tree.activity,
    }
