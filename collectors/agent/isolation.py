"""Host isolation: an allow-list firewall applied by the agent, verified by reading it back.

Linux (nftables): everything lives in one table of our own, ``inet soclite_isolation``,
so applying never edits the operator's rules and releasing is deleting that table —
the previous state is exactly restored. A drop verdict in any base chain is final in
nftables, so other tables' accepts cannot bypass the isolation.

What stays allowed: loopback, the manager (address(es) + TCP port, so commands and
the release still arrive), optionally one DNS resolver, and IPv6 neighbour discovery
(without it an IPv6 manager is unreachable). Unlike a generic "established, related
accept", return traffic is accepted only from those peers: an attacker's connection
that was open before isolation must die too.

What the agent reports is the text of ``nft list table`` after applying — the state
the kernel holds, not the state we asked for — so the console can show "verified".

Windows: the same policy as ``netsh advfirewall`` commands (block rules covering the
whole address space except the allowed peers; Windows Firewall gives block rules
precedence over allow rules). The generated commands are unit-tested; running them sits
behind ``platform == "win32"`` and has not been exercised on a Windows host.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soclite.errors import SocliteError

TABLE = "soclite_isolation"
FAMILY = "inet"
NFT = "nft"
RULE_GROUP = "soclite-isolation"


class IsolationError(SocliteError):
    """Isolation could not be applied, verified or released (reported to the server)."""


@dataclass(frozen=True)
class IsolationPolicy:
    manager_addresses: list[str]
    manager_port: int
    dns_resolver: str | None = None

    def validate(self) -> None:
        if not self.manager_addresses:
            raise IsolationError("no manager address to keep reachable; refusing to cut the host off")
        for value in [*self.manager_addresses, *([self.dns_resolver] if self.dns_resolver else [])]:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise IsolationError(f"not an IP address: {value!r}") from None
        if not 1 <= self.manager_port <= 65535:
            raise IsolationError(f"bad manager port {self.manager_port}")


def resolve_manager(host: str, port: int) -> list[str]:
    """The addresses the manager's name resolves to now (isolation cuts DNS, so resolve before)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise IsolationError(f"cannot resolve manager {host!r}: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


# --- Linux / nftables -------------------------------------------------------------------


def _family_keyword(address: str) -> str:
    return "ip6" if ipaddress.ip_address(address).version == 6 else "ip"


def nft_ruleset(policy: IsolationPolicy) -> str:
    """The nftables script: re-creates our table atomically (add + delete + define in one transaction)."""
    policy.validate()
    out_rules: list[str] = ['oif "lo" accept']
    in_rules: list[str] = ['iif "lo" accept']
    nd = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept"
    out_rules.append(nd)
    in_rules.append(nd)
    for address in policy.manager_addresses:
        fam = _family_keyword(address)
        out_rules.append(f"{fam} daddr {address} tcp dport {policy.manager_port} accept")
        in_rules.append(f"{fam} saddr {address} tcp sport {policy.manager_port} ct state established accept")
    if policy.dns_resolver:
        fam = _family_keyword(policy.dns_resolver)
        for proto in ("udp", "tcp"):
            out_rules.append(f"{fam} daddr {policy.dns_resolver} {proto} dport 53 accept")
            in_rules.append(f"{fam} saddr {policy.dns_resolver} {proto} sport 53 ct state established accept")

    def chain(name: str, hook: str, rules: Sequence[str]) -> str:
        body = "".join(f"\t\t{rule}\n" for rule in rules)
        return f"\tchain {name} {{\n\t\ttype filter hook {hook} priority filter; policy drop;\n{body}\t}}\n"

    return (
        f"table {FAMILY} {TABLE}\n"
        f"delete table {FAMILY} {TABLE}\n"
        f"table {FAMILY} {TABLE} {{\n"
        + chain("input", "input", in_rules)
        + chain("output", "output", out_rules)
        + chain("forward", "forward", [])
        + "}\n"
    )


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as exc:
        raise IsolationError(f"{args[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise IsolationError(f"{' '.join(args)} timed out") from exc


def current_ruleset() -> str | None:
    """``nft list table inet soclite_isolation`` as the kernel has it, or None when absent."""
    proc = _run([NFT, "list", "table", FAMILY, TABLE])
    if proc.returncode != 0:
        return None
    return proc.stdout


def verify(text: str, policy: IsolationPolicy) -> None:
    """Check the read-back ruleset really drops by default and lets the manager through."""
    for hook in ("input", "output"):
        if f"hook {hook} priority filter; policy drop;" not in text:
            raise IsolationError(f"read-back ruleset has no drop policy on {hook}")
    for address in policy.manager_addresses:
        compressed = str(ipaddress.ip_address(address))
        if f"daddr {compressed} tcp dport {policy.manager_port} accept" not in text:
            raise IsolationError(
                f"read-back ruleset does not allow the manager {compressed}:{policy.manager_port}"
            )


def apply_linux(policy: IsolationPolicy) -> str:
    """Apply, read back, verify; return the ruleset text the kernel holds."""
    script = nft_ruleset(policy)
    proc = _run([NFT, "-f", "-"], stdin=script)
    if proc.returncode != 0:
        raise IsolationError(f"nft refused the ruleset: {proc.stderr.strip()}")
    text = current_ruleset()
    if text is None:
        raise IsolationError("the isolation table is missing right after applying it")
    verify(text, policy)
    return text


def release_linux() -> None:
    """Delete our table (and only it); releasing an already released host is fine."""
    if current_ruleset() is None:
        return
    proc = _run([NFT, "delete", "table", FAMILY, TABLE])
    if proc.returncode != 0 and current_ruleset() is not None:
        raise IsolationError(f"nft could not delete the isolation table: {proc.stderr.strip()}")


# --- Windows / netsh ---------------------------------------------------------------------


def _complement_ranges(allowed: Sequence[str], version: int) -> list[str]:
    """Address ranges covering the whole space of ``version`` except the allowed addresses."""
    if version == 4:
        lowest, highest = 0, 2**32 - 1
        make: Any = ipaddress.IPv4Address
    else:
        lowest, highest = 0, 2**128 - 1
        make = ipaddress.IPv6Address
    points = sorted(
        {int(ipaddress.ip_address(a)) for a in allowed if ipaddress.ip_address(a).version == version}
    )
    ranges: list[str] = []
    start = lowest
    for point in points:
        if point > start:
            ranges.append(f"{make(start)}-{make(point - 1)}")
        start = point + 1
    if start <= highest:
        ranges.append(f"{make(start)}-{make(highest)}")
    return ranges


def windows_commands(policy: IsolationPolicy, backup_path: str) -> list[list[str]]:
    """netsh commands isolating a Windows host, each an argv list (no shell quoting pitfalls).

    The firewall policy is exported first (release re-imports it), the firewall is turned on
    for every profile, and block rules cover every remote address except the manager and
    the resolver. Block rules win over any allow rule already present.
    """
    policy.validate()
    allowed = [*policy.manager_addresses, *([policy.dns_resolver] if policy.dns_resolver else [])]
    commands: list[list[str]] = [
        ["netsh", "advfirewall", "export", backup_path],
        ["netsh", "advfirewall", "set", "allprofiles", "state", "on"],
    ]
    for version in (4, 6):
        ranges = _complement_ranges(allowed, version)
        for direction in ("in", "out"):
            commands.append(
                [
                    "netsh", "advfirewall", "firewall", "add", "rule",
                    f"name={RULE_GROUP}-block-{direction}-v{version}",
                    f"dir={direction}", "action=block", "enable=yes", "profile=any",
                    f"remoteip={','.join(ranges)}",
                ]
            )  # fmt: skip
    return commands


def windows_release_commands(backup_path: str) -> list[list[str]]:
    commands = [
        ["netsh", "advfirewall", "firewall", "delete", "rule", f"name={RULE_GROUP}-block-{d}-v{v}"]
        for v in (4, 6)
        for d in ("in", "out")
    ]
    commands.append(["netsh", "advfirewall", "import", backup_path])
    return commands


def _run_all(commands: list[list[str]]) -> None:
    for argv in commands:
        proc = _run(argv)
        if proc.returncode != 0:
            raise IsolationError(f"{' '.join(argv[:5])} failed: {(proc.stdout + proc.stderr).strip()[:500]}")


def apply_windows(policy: IsolationPolicy, backup_path: str) -> str:
    """Run the netsh commands and return the rules as Windows lists them (not exercised in CI)."""
    _run_all(windows_commands(policy, backup_path))
    shown = [
        _run(["netsh", "advfirewall", "firewall", "show", "rule", f"name={RULE_GROUP}-block-{d}-v{v}"])
        for v in (4, 6)
        for d in ("in", "out")
    ]
    if any(proc.returncode != 0 for proc in shown):
        raise IsolationError("the isolation rules are missing right after adding them")
    return "\n".join(proc.stdout for proc in shown)


def release_windows(backup_path: str) -> None:
    _run_all(windows_release_commands(backup_path))


# --- persisted state ----------------------------------------------------------------------


@dataclass
class IsolationRecord:
    """What the agent must keep true across restarts (state_dir/isolation.json)."""

    state: str = "none"  # none | isolated
    policy: dict[str, Any] = field(default_factory=dict)
    ruleset: str | None = None
    command_id: str | None = None

    @classmethod
    def load(cls, path: Path) -> IsolationRecord:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise IsolationError(f"{path}: unreadable isolation state: {exc}") from exc
        return cls(**{k: data[k] for k in ("state", "policy", "ruleset", "command_id") if k in data})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


class Isolator:
    """Applies and releases isolation on this platform and keeps the record in the state dir."""

    def __init__(self, state_dir: Path, platform: str) -> None:
        self.path = state_dir / "isolation.json"
        self.platform = platform
        self.record = IsolationRecord.load(self.path)

    @property
    def _backup(self) -> str:
        return str(self.path.with_name("firewall-backup.wfw"))

    def isolate(self, policy: IsolationPolicy, command_id: str | None = None) -> str:
        if self.platform.startswith("linux"):
            text = apply_linux(policy)
        elif self.platform == "win32":
            text = apply_windows(policy, self._backup)
        else:
            raise IsolationError(f"isolation is not implemented on {self.platform}")
        self.record = IsolationRecord("isolated", asdict(policy), text, command_id)
        self.record.save(self.path)
        return text

    def release(self, command_id: str | None = None) -> str:
        if self.platform.startswith("linux"):
            release_linux()
            done = "released: table inet soclite_isolation deleted"
        elif self.platform == "win32":
            release_windows(self._backup)
            done = "released: isolation rules deleted, firewall policy re-imported"
        else:
            raise IsolationError(f"isolation is not implemented on {self.platform}")
        self.record = IsolationRecord("none", {}, None, command_id)
        self.record.save(self.path)
        return done

    def ensure(self) -> None:
        """Re-apply a persisted isolation whose rules are gone (agent restart, reboot, flushed rules)."""
        if self.record.state != "isolated":
            return
        policy = IsolationPolicy(**self.record.policy)
        if not self.platform.startswith("linux"):
            return  # netsh rules persist across reboots; no cheap read-back to compare
        if current_ruleset() is None:
            self.isolate(policy, self.record.command_id)

    def status(self) -> dict[str, Any]:
        if self.record.state != "isolated":
            return {"state": "none"}
        if not self.platform.startswith("linux"):
            return {"state": "isolated", "ruleset": self.record.ruleset}
        live = current_ruleset()
        return {"state": "isolated" if live else "failed", "ruleset": live or self.record.ruleset}
