"""Saved searches of Discover, as both the JSON API and the web UI change them: checked, unit-bound, audited.

The search text is parsed before it is kept (a search that cannot run is refused when saved, not when
opened); the owner's unit decides who else sees a shared search (:mod:`soclite.control.saved_searches`).
"""

from __future__ import annotations

from soclite import sitetime
from soclite.api import audit
from soclite.api.search import parse_search
from soclite.control.identity import Principal
from soclite.control.saved_searches import SavedSearch
from soclite.runtime import Runtime


def owner_of(principal: Principal) -> str:
    """A user's own name; an API token's is prefixed so it never reads as a user's searches."""
    return principal.name if principal.kind == "session" else f"{principal.kind}:{principal.name}"


def create(runtime: Runtime, principal: Principal, *, name: str, query: str, range_from: str | None,
           range_to: str | None, shared: bool) -> SavedSearch:
    parse_search(query)  # SearchSyntaxError (422) for a search that cannot be read
    tz = sitetime.zone(runtime.settings.timezone)
    sitetime.parse_bound(range_from, tz, name="from")  # InvalidTime (422) for a bound that cannot be read
    sitetime.parse_bound(range_to, tz, end=True, name="to")
    saved = runtime.saved_searches.add(owner=owner_of(principal), unit=principal.unit, name=name, query=query,
                                       range_from=range_from, range_to=range_to, shared=shared)
    audit.record(runtime, principal, "saved_search.create", f"saved_search:{saved.id}", None,
                 {"name": saved.name, "query": saved.query, "shared": saved.shared}, principal.unit)
    return saved


def delete(runtime: Runtime, principal: Principal, search_id: str) -> SavedSearch:
    gone = runtime.saved_searches.delete(search_id, owner_of(principal))
    audit.record(runtime, principal, "saved_search.delete", f"saved_search:{gone.id}",
                 {"name": gone.name, "query": gone.query, "shared": gone.shared}, None, principal.unit)
    return gone


def visible(runtime: Runtime, principal: Principal) -> list[SavedSearch]:
    return runtime.saved_searches.visible(owner_of(principal), principal.unit)
