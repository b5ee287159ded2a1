"""Who an event speaks for: the sender decides the host and unit, never the message.

A message names a host in its own text (the syslog HOSTNAME, a JSON ``host.name``), and anyone
who can send can write any name there. Units and response actions hang on hosts, so the host
and unit of an event come from who sent it:

* an enrolled agent's events are its own host's (:func:`bind_host` with the enrolled name);
* a syslog or HTTP sender is looked up in the source map (``server.sources``): by address/CIDR,
  or over TLS by its client certificate's subject CN; a mapping with a ``host`` binds the events
  to it, one without (a relay) keeps the message's host name but still sets the unit;
* a sender the map does not know gets ``server.unassigned_unit``.

A host name that differs from the bound one is kept as ``host.reported_name`` (it is evidence),
never as the event's host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from soclite.config import ServerSettings, SourceMapping
from soclite.models import HOST_NAME, UNIT, Event

#: the host name the message itself gave, when it is not the host the sender is bound to
REPORTED_HOST = "host.reported_name"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_MAX = 4096


def bind_host(event: Event, host: str) -> None:
    """Make ``host`` the event's host; a different name the message gave becomes ``host.reported_name``."""
    named = event.get(HOST_NAME)
    if isinstance(named, str) and named and named.lower() != host.lower():
        event[REPORTED_HOST] = named
    event[HOST_NAME] = host


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d
    return address


class SourceMap:
    """The allow-list and the source map of one server (see the module docstring)."""

    def __init__(self, mappings: Sequence[SourceMapping], unassigned_unit: str, allow: Iterable[str] = ()) -> None:
        self.unassigned_unit = unassigned_unit
        self._by_network: list[tuple[Network, SourceMapping]] = [
            (ipaddress.ip_network(m.network, strict=False), m) for m in mappings if m.network is not None
        ]
        self._by_subject = {m.tls_subject: m for m in reversed(mappings) if m.tls_subject is not None}
        self._allow = [ipaddress.ip_network(n, strict=False) for n in allow]
        # per-address answers: a flood comes from few addresses, and ip_address() per datagram is slow
        self._allowed: dict[str, bool] = {}
        self._mapped: dict[str, SourceMapping | None] = {}

    @classmethod
    def from_settings(cls, server: ServerSettings) -> SourceMap:
        return cls(server.sources, server.unassigned_unit, server.syslog_allow)

    def allowed(self, address: str) -> bool:
        """Whether syslog accepts a sender (an empty allow-list accepts everyone)."""
        if not self._allow:
            return True
        known = self._allowed.get(address)
        if known is None:
            parsed = _address(address)
            known = parsed is not None and any(parsed in net for net in self._allow if net.version == parsed.version)
            if len(self._allowed) >= _CACHE_MAX:
                self._allowed.clear()
            self._allowed[address] = known
        return known

    def lookup(self, address: str | None, tls_subject: str | None = None) -> SourceMapping | None:
        if tls_subject is not None and tls_subject in self._by_subject:
            return self._by_subject[tls_subject]
        if not address:
            return None
        if address in self._mapped:
            return self._mapped[address]
        parsed = _address(address)
        found = None
        if parsed is not None:
            found = next((m for net, m in self._by_network if net.version == parsed.version and parsed in net), None)
        if len(self._mapped) >= _CACHE_MAX:
            self._mapped.clear()
        self._mapped[address] = found
        return found

    def apply(self, events: Iterable[Event], address: str | None, tls_subject: str | None = None) -> None:
        """Set the unit (and the host, for a host mapping) of a sender's events."""
        mapping = self.lookup(address, tls_subject)
        unit = mapping.unit if mapping is not None else self.unassigned_unit
        host = mapping.host if mapping is not None else None
        for event in events:
            event[UNIT] = unit
            if host is not None:
                bind_host(event, host)


__all__ = ["REPORTED_HOST", "SourceMap", "bind_host"]
