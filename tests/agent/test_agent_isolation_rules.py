"""Isolation policy generation (nftables text, Windows netsh argv) and its persisted record.
The kernel side is proven in tests/netns/test_isolation.py."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from soclite.collectors.agent.isolation import (
    IsolationError,
    IsolationPolicy,
    IsolationRecord,
    _complement_ranges,
    nft_ruleset,
    verify,
    windows_commands,
    windows_release_commands,
)


def test_nft_ruleset_allows_only_loopback_manager_and_resolver() -> None:
    text = nft_ruleset(IsolationPolicy(["10.1.2.3", "fd00::1"], 8443, dns_resolver="10.0.0.53"))
    # atomic re-create of our own table only
    assert text.splitlines()[:2] == ["table inet soclite_isolation", "delete table inet soclite_isolation"]
    assert "flush ruleset" not in text
    for hook in ("input", "output", "forward"):
        assert f"type filter hook {hook} priority filter; policy drop;" in text
    assert 'oif "lo" accept' in text and 'iif "lo" accept' in text
    assert "ip daddr 10.1.2.3 tcp dport 8443 accept" in text
    assert "ip6 daddr fd00::1 tcp dport 8443 accept" in text
    assert "ip saddr 10.1.2.3 tcp sport 8443 ct state established accept" in text
    assert (
        "ip daddr 10.0.0.53 udp dport 53 accept" in text and "ip daddr 10.0.0.53 tcp dport 53 accept" in text
    )
    # no blanket "established,related accept": connections opened before isolation must die
    assert "ct state established,related accept" not in text


@pytest.mark.parametrize(
    "policy",
    [IsolationPolicy([], 443), IsolationPolicy(["not-an-ip"], 443), IsolationPolicy(["10.0.0.1"], 0),
     IsolationPolicy(["10.0.0.1"], 443, dns_resolver="dns.example")],
)  # fmt: skip
def test_unsafe_policies_are_refused(policy: IsolationPolicy) -> None:
    with pytest.raises(IsolationError):
        nft_ruleset(policy)


def test_verify_reads_the_kernel_text_not_our_intent() -> None:
    policy = IsolationPolicy(["10.1.2.3"], 8000)
    listed = (
        "table inet soclite_isolation {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
        "\t}\n\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n"
        "\t\tip daddr 10.1.2.3 tcp dport 8000 accept\n\t}\n}\n"
    )
    verify(listed, policy)
    with pytest.raises(IsolationError, match="manager"):
        verify(listed.replace("8000", "8001"), policy)
    with pytest.raises(IsolationError, match="drop policy"):
        verify(listed.replace("policy drop", "policy accept"), policy)


def test_windows_commands_block_everything_but_the_allowed_peers() -> None:
    policy = IsolationPolicy(["10.1.2.3"], 8443, dns_resolver="10.0.0.53")
    cmds = windows_commands(policy, r"C:\ProgramData\soclite\fw-backup.wfw")
    assert cmds[0] == ["netsh", "advfirewall", "export", r"C:\ProgramData\soclite\fw-backup.wfw"]
    assert ["netsh", "advfirewall", "set", "allprofiles", "state", "on"] in cmds
    blocks = [c for c in cmds if "action=block" in c]
    assert {(c[5], c[6]) for c in blocks} == {
        (f"name=soclite-isolation-block-{d}-v{v}", f"dir={d}") for d in ("in", "out") for v in (4, 6)
    }
    v4 = next(c for c in blocks if c[5].endswith("out-v4"))[-1].removeprefix("remoteip=").split(",")
    # every IPv4 address is blocked except exactly the manager and the resolver
    covered = sum(
        int(ipaddress.IPv4Address(r.split("-")[1])) - int(ipaddress.IPv4Address(r.split("-")[0])) + 1
        for r in v4
    )
    assert covered == 2**32 - 2
    for r in v4:
        lo, hi = (int(ipaddress.IPv4Address(x)) for x in r.split("-"))
        for allowed in ("10.1.2.3", "10.0.0.53"):
            assert not lo <= int(ipaddress.IPv4Address(allowed)) <= hi
    release = windows_release_commands(r"C:\b.wfw")
    assert release[-1] == ["netsh", "advfirewall", "import", r"C:\b.wfw"]
    assert all(c[:5] == ["netsh", "advfirewall", "firewall", "delete", "rule"] for c in release[:-1])


def test_complement_of_nothing_is_everything() -> None:
    assert _complement_ranges([], 4) == ["0.0.0.0-255.255.255.255"]
    assert _complement_ranges(["0.0.0.0"], 4) == ["0.0.0.1-255.255.255.255"]


def test_isolation_record_persists_0600(tmp_path: Path) -> None:
    path = tmp_path / "isolation.json"
    IsolationRecord(
        "isolated", {"manager_addresses": ["10.0.0.1"], "manager_port": 80}, "table ...", "c1"
    ).save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = IsolationRecord.load(path)
    assert loaded.state == "isolated" and loaded.policy["manager_port"] == 80 and loaded.command_id == "c1"
    assert IsolationRecord.load(tmp_path / "missing.json").state == "none"
