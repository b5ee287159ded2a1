"""The process tree around a process event, read from the store (SQLite and OpenSearch alike).

Real event shapes: Sysmon event 1 and 3 (ProcessGuid / ParentProcessGuid), Security 4688
(NewProcessId / ProcessId as hex, per host, reused), auditd EXECVE (pid / ppid as ProcessId /
ParentProcessId after the auditd parser).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soclite.api import process_tree
from soclite.store.base import Store

T0 = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)  # 00:30 on 07/12 in Asia/Ho_Chi_Minh
WINDOW = timedelta(hours=24)


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def sysmon(eid: int, guid: str, minutes: float, image: str, cmd: str = "", parent: str | None = None,
           host: str = "ws-01", unit: str = "SO", **extra: Any) -> dict[str, Any]:
    ev = {"@timestamp": _at(minutes), "event.id": f"{host}-{guid}-{eid}-{minutes}", "host.name": host,
          "soclite.unit": unit, "EventID": eid, "ProcessGuid": guid, "Image": image,
          "logsource.product": "windows", "logsource.service": "sysmon"}
    if eid == 1:
        ev.update({"CommandLine": cmd, "ParentProcessGuid": parent, "logsource.category": "process_creation"})
    ev.update(extra)
    return ev


def names(node: process_tree.ProcessNode) -> list[Any]:
    return [node.image.split("\\")[-1], [names(kid) for kid in node.children]]


def test_sysmon_tree_from_a_creation_and_from_a_network_event(store: Store) -> None:
    g = {n: "{" + f"{i:08d}-aaaa-bbbb-cccc-000000000000" + "}" for i, n in enumerate(
        ["explorer", "cmd", "ps", "whoami", "net", "child_of_net", "late", "other_unit", "sibling"])}
    events = [
        sysmon(1, g["explorer"], -300, "C:\\Windows\\explorer.exe", "explorer.exe", parent="{root}"),
        sysmon(1, g["cmd"], -5, "C:\\Windows\\System32\\cmd.exe", "cmd.exe /c run.bat", parent=g["explorer"]),
        sysmon(1, g["ps"], 0, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
               "powershell -enc SQBFAFgA", parent=g["cmd"]),
        sysmon(3, g["ps"], 1, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
               DestinationIp="203.0.113.45", DestinationPort=443),
        sysmon(1, g["whoami"], 2, "C:\\Windows\\System32\\whoami.exe", "whoami /all", parent=g["ps"]),
        sysmon(1, g["net"], 3, "C:\\Windows\\System32\\net.exe", "net user", parent=g["ps"]),
        sysmon(1, g["child_of_net"], 4, "C:\\Windows\\System32\\net1.exe", "net1 user", parent=g["net"]),
        sysmon(1, g["late"], 60 * 25, "C:\\Windows\\System32\\late.exe", "late", parent=g["ps"]),  # past the window
        sysmon(1, g["other_unit"], 5, "C:\\x\\hidden.exe", "hidden", parent=g["ps"], unit="OTHER"),
        sysmon(1, g["sibling"], -4, "C:\\Windows\\System32\\notepad.exe", "notepad", parent=g["cmd"]),
    ]
    store.write_events(events)
    creation, network = events[2], events[3]
    for anchor in (creation, network):
        tree = process_tree.build(store, anchor, frozenset({"SO"}), WINDOW)
        assert tree is not None
        root = tree.ancestors[0]
        # the ancestors' line down to the anchor (not the parent's other child, notepad), the anchor's children
        # and grandchildren; nothing past the window, nothing of another unit
        assert [n.image.split("\\")[-1] for n in tree.ancestors] == ["explorer.exe", "cmd.exe", "powershell.exe"]
        assert tree.anchor.anchor and tree.anchor.command_line == "powershell -enc SQBFAFgA"
        assert names(tree.anchor) == ["powershell.exe", [["whoami.exe", []], ["net.exe", [["net1.exe", []]]]]]
        assert root.time == T0 - timedelta(minutes=300)
    network_tree = process_tree.build(store, network, frozenset({"SO"}), WINDOW)
    assert network_tree is not None
    assert [e["DestinationIp"] for e in network_tree.activity] == ["203.0.113.45"]
    outside = process_tree.build(store, creation, frozenset({"OTHER"}), WINDOW)  # a reader of another unit
    assert outside is not None and len(outside.ancestors) == 1
    assert [k.image for k in outside.anchor.children] == ["C:\\x\\hidden.exe"]


def win4688(host: str, minutes: float, new_pid: str, creator_pid: str, name: str, cmd: str) -> dict[str, Any]:
    return {"@timestamp": _at(minutes), "event.id": f"{host}-{new_pid}-{minutes}", "host.name": host,
            "soclite.unit": "SO", "EventID": 4688, "NewProcessId": new_pid, "ProcessId": creator_pid,
            "NewProcessName": name, "CommandLine": cmd, "SubjectUserName": "nguyen.van.a",
            "logsource.product": "windows", "logsource.service": "security", "logsource.category": "process_creation"}


def test_security_4688_tree_is_per_host_and_takes_the_newest_reuse_of_a_pid(store: Store) -> None:
    events = [
        win4688("srv-01", -120, "0x100", "0x4", "C:\\Windows\\old-owner.exe", "old owner of pid 0x100"),
        win4688("srv-01", -10, "0x100", "0x4", "C:\\Windows\\System32\\services.exe", "services.exe"),
        win4688("srv-01", 0, "0x2a0", "0x100", "C:\\Windows\\System32\\cmd.exe", "cmd /c whoami"),
        win4688("srv-01", 1, "0x2b4", "0x2a0", "C:\\Windows\\System32\\whoami.exe", "whoami"),
        win4688("srv-02", 1, "0x2c8", "0x2a0", "C:\\Windows\\System32\\other-host.exe", "same pid, other host"),
    ]
    store.write_events(events)
    tree = process_tree.build(store, events[2], None, WINDOW)
    assert tree is not None
    assert [n.image for n in tree.ancestors] == ["C:\\Windows\\System32\\services.exe", "C:\\Windows\\System32\\cmd.exe"]
    assert [k.image for k in tree.anchor.children] == ["C:\\Windows\\System32\\whoami.exe"]
    assert tree.anchor.pid == "0x2a0" and tree.anchor.user == "nguyen.van.a"


def test_auditd_pid_ppid_tree(store: Store) -> None:
    def execve(minutes: float, pid: str, ppid: str, exe: str, cmd: str) -> dict[str, Any]:
        return {"@timestamp": _at(minutes), "event.id": f"au-{pid}-{minutes}", "host.name": "web-01",
                "soclite.unit": "SO", "type": "EXECVE", "ProcessId": pid, "ParentProcessId": ppid, "Image": exe,
                "CommandLine": cmd, "logsource.product": "linux", "logsource.service": "auditd",
                "logsource.category": "process_creation"}

    events = [execve(-1, "900", "1", "/usr/sbin/apache2", "apache2 -k start"),
              execve(0, "901", "900", "/bin/sh", "sh -c id;uname -a"),
              execve(0.5, "902", "901", "/usr/bin/id", "id")]
    store.write_events(events)
    tree = process_tree.build(store, events[1], frozenset({"SO"}), WINDOW)
    assert tree is not None
    assert [n.image for n in tree.ancestors] == ["/usr/sbin/apache2", "/bin/sh"]
    assert [k.command_line for k in tree.anchor.children] == ["id"]


def test_no_tree_for_an_event_that_is_no_process_event() -> None:
    assert process_tree.scheme_of({"source.ip": "203.0.113.45", "@timestamp": _at(0)}) is None
