"""Stores: the registry of implementations of :class:`soclite.store.base.Store`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from soclite.errors import ConfigError
from soclite.store.base import AlertQuery, EventQuery, HostQuery, Page, Store

if TYPE_CHECKING:
    from soclite.config import Settings

#: name → factory(settings) ; the one place to find every store.
STORES: dict[str, Callable[[Settings], Store]] = {}


def register_store(name: str, factory: Callable[[Settings], Store]) -> None:
    if name in STORES:
        raise ValueError(f"store {name!r} registered twice")
    STORES[name] = factory


def open_store(settings: Settings) -> Store:
    """Build the configured store and open it (migrating the schema if needed)."""
    _load_builtin()
    try:
        factory = STORES[settings.store.kind]
    except KeyError:
        raise ConfigError(f"unknown store {settings.store.kind!r}; known: {sorted(STORES)}", key="store.kind") from None
    store = factory(settings)
    store.open()
    return store


def _load_builtin() -> None:
    if STORES:
        return
    from soclite.store import opensearch, sqlite

    register_store("sqlite", sqlite.SQLiteStore.from_settings)
    register_store("opensearch", opensearch.OpenSearchStore.from_settings)


__all__ = ["STORES", "AlertQuery", "EventQuery", "HostQuery", "Page", "Store", "open_store", "register_store"]
