"""National connector registry: ``CONNECTORS`` maps ``settings.national.kind`` to an adapter class.

A new national protocol is one module with a :class:`~playbooks.connectors.base.Connector` subclass
registered here; a duplicate name raises, an unknown kind raises naming ``national.kind``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soclite.errors import ConfigError, ConnectorError
from soclite.playbooks.connectors.base import Connector, NationalItem, NationalReport, PulledIndicator

if TYPE_CHECKING:
    from soclite.playbooks.services import ResponseServices

CONNECTORS: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    if cls.name in CONNECTORS:
        raise ConnectorError(
            f"connector {cls.name!r} is already registered by {CONNECTORS[cls.name].__module__}"
        )
    CONNECTORS[cls.name] = cls
    return cls


def build_connector(runtime: ResponseServices) -> Connector:
    kind = runtime.settings.national.kind
    try:
        cls = CONNECTORS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown connector kind {kind!r}; known: {', '.join(sorted(CONNECTORS))}", key="national.kind"
        ) from None
    return cls(runtime)


def connector_for(runtime: ResponseServices) -> Connector:
    """The runtime's connector, built once."""
    if runtime.national_connector is None:
        runtime.national_connector = build_connector(runtime)
    return runtime.national_connector


from soclite.playbooks.connectors import signed_json, taxii  # noqa: E402  (registration)

register(taxii.TaxiiConnector)
register(signed_json.SignedJsonConnector)

__all__ = [
    "CONNECTORS",
    "Connector",
    "NationalItem",
    "NationalReport",
    "PulledIndicator",
    "build_connector",
    "connector_for",
    "register",
]
