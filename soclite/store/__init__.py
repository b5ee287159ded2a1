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


def open_store(settings: Settings, *, wait_for_remote: bool = False) -> Store:
    """Build the configured store and open it (migrating the schema if needed).

    ``wait_for_remote``: the server and its workers start even when a remote store's cluster cannot be
    reached yet (:meth:`Store.open_when_reachable`); command-line tools fail at once instead.
    """
    _load_builtin()
    try:
        factory = STORES[settings.store.kind]
    except KeyError:
        raise ConfigError(f"unknown store {settings.store.kind!r}; known: {sorted(STORES)}", key="store.kind") from None
    store = factory(settings)
    if wait_for_remote:
        store.open_when_reachable()
    else:
        store.open()
    return store


def _load_builtin() -> None:
    if STORES:
        return
    from soclite.store import opensearch, sqlite

    register_store("sqlite", sqlite.SQLiteStore.from_settings)
    register_store("opensearch", opensearch.OpenSearchStore.from_settings)


__all__ = ["STORES", "AlertQuery", "EventQuery", "HostQuery", "Page", "Store", "open_store", "register_store"]
