"""/api/v1/events?query=: the Discover search language over the API, scoped like every event query."""

from __future__ import annotations

from soclite.runtime import Runtime

from .conftest import auth, seed


def test_query_param_searches_fields_with_boolean_operators(runtime: Runtime, client: object,
                                                          tokens: dict[str, str]) -> None:
    seed(runtime)
    h = auth(tokens["admin"])

    def total(query: str, token: str = tokens["admin"]) -> int:
        r = client.get("/api/v1/events", params={"query": query, "limit": 100}, headers=auth(token))  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    assert total('CommandLine:"powershell -enc 1"') == 3  # one per unit
    assert total('CommandLine:"POWERSHELL -ENC 1" AND soclite.unit:SO') == 1
    assert total("host.name:so-* AND NOT CommandLine:*enc?0") == 5
    assert total("marker-HA OR marker-SO") == 18  # text: marker-HA also holds marker-HA-XA
    assert total('CommandLine:"powershell -enc 1"', tokens["analyst_ha"]) == 2  # HA and HA-XA only
    bad = client.get("/api/v1/events", params={"query": "EventID:[1 TO 2]"}, headers=h)  # type: ignore[attr-defined]
    assert bad.status_code == 400 and "range searches are not supported" in bad.json()["detail"]
