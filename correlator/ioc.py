"""Indicator-of-compromise lists matched against normalized event fields.

Lists are named and typed (ip, domain, url, hash); each can be replaced as a
whole at run time (the national connector does so on every pull) by building
the new lookup tables aside and swapping one reference, so a concurrent
:meth:`IocStore.match` sees either the old or the new list, never half.
IP lists accept CIDRs; a domain list entry also matches its sub-domains.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from soclite.errors import ConfigError

IocKind = Literal["ip", "domain", "url", "hash"]

#: Event fields each kind of indicator is looked up in.
FIELDS: dict[str, tuple[str, ...]] = {
    "ip": (
        "source.ip",
        "destination.ip",
        "client.ip",
        "host.ip",
        "DestinationIp",
        "SourceIp",
        "IpAddress",
        "c-ip",
    ),
    "domain": (
        "dns.question.name",
        "url.domain",
        "destination.domain",
        "QueryName",
        "DestinationHostname",
        "cs-host",
    ),
    "url": ("url.original", "url.full"),
    "hash": (
        "file.hash.md5",
        "file.hash.sha1",
        "file.hash.sha256",
        "process.hash.sha256",
        "Hashes",
        "sha256",
        "md5",
        "sha1",
    ),
}


@dataclass(frozen=True)
class IocHit:
    list_name: str
    level: str
    kind: str
    field: str
    value: str


@dataclass
class _List:
    name: str
    kind: str
    level: str
    exact: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def __len__(self) -> int:
        return len(self.exact) + len(self.networks)


class IocStore:
    """Named IoC lists, replaceable atomically, matched per event (see module docstring)."""

    def __init__(self) -> None:
        self._lists: dict[str, _List] = {}
        self._lock = threading.Lock()

    def set_list(self, name: str, kind: IocKind, values: Iterable[str], level: str = "high") -> int:
        if kind not in FIELDS:
            raise ConfigError(f"unknown IoC kind {kind!r} (ip, domain, url, hash)", key=name)
        exact: set[str] = set()
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in values:
            value = raw.strip()
            if not value or value.startswith("#"):
                continue
            if kind == "ip":
                try:
                    net = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    continue
                if net.num_addresses == 1:
                    exact.add(str(net.network_address))
                else:
                    nets.append(net)
            elif kind == "domain":
                exact.add(value.lower().rstrip("."))
            else:
                exact.add(value.lower())
        new = _List(name, kind, level, frozenset(exact), tuple(nets))
        with self._lock:
            lists = dict(self._lists)
            lists[name] = new
            self._lists = lists
        return len(new)

    def remove_list(self, name: str) -> None:
        with self._lock:
            lists = dict(self._lists)
            lists.pop(name, None)
            self._lists = lists

    def lists(self) -> dict[str, int]:
        return {name: len(lst) for name, lst in self._lists.items()}

    def load_file(self, path: Path, level: str = "high") -> int:
        """A file: JSON ``{"kind": ..., "values": [...], "level": ...}`` or text, one value per line.

        A text file's kind comes from its name (``*ip*``, ``*domain*``, ``*url*``, ``*hash*``)."""
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data: Any = json.loads(text)
            kind = data.get("kind")
            return self.set_list(f"file:{path.stem}", kind, data.get("values", []), data.get("level", level))
        lowered = path.name.lower()
        kinds = [k for k in FIELDS if k in lowered]
        if not kinds:
            raise ConfigError(
                "cannot tell the IoC kind from the file name (ip, domain, url, hash)", source=str(path)
            )
        return self.set_list(f"file:{path.stem}", kinds[0], text.splitlines(), level)  # type: ignore[arg-type]

    def match(self, event: dict[str, Any]) -> list[IocHit]:
        lists = self._lists
        if not lists:
            return []
        hits: list[IocHit] = []
        for lst in lists.values():
            for fname in FIELDS[lst.kind]:
                value = event.get(fname)
                if value is None:
                    continue
                for candidate in _candidates(lst.kind, value):
                    if _hit(lst, candidate):
                        hits.append(IocHit(lst.name, lst.level, lst.kind, fname, candidate))
                        break
        return hits


def _candidates(kind: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in values:
        text = str(v).strip()
        if kind == "hash":  # Sysmon "SHA256=...,MD5=..." as well as bare hashes
            for part in text.replace(";", ",").split(","):
                out.append(part.split("=", 1)[-1].strip().lower())
        elif kind == "domain":
            out.append(text.lower().rstrip("."))
        elif kind == "url":
            out.append(text.lower())
        else:
            out.append(text)
    return out


def _hit(lst: _List, value: str) -> bool:
    if lst.kind == "domain":
        parts = value.split(".")
        return any(".".join(parts[i:]) in lst.exact for i in range(len(parts) - 1 if len(parts) > 1 else 1))
    if lst.kind == "ip":
        if value in lst.exact:
            return True
        if lst.networks:
            try:
                addr = ipaddress.ip_address(value)
            except ValueError:
                return False
            return any(addr in net for net in lst.networks)
        return False
    return value in lst.exact
