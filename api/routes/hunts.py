"""Retro-hunts: ``POST /api/v1/hunts`` starts one Sigma rule over stored events (analysts and admins),
``GET /api/v1/hunts/{id}`` gives its progress and hits, within the caller's units.

The rule is the id of a loaded rule or inline Sigma YAML (never a path on the server). ``from``/``to``
are typed bounds in the site's zone (a date is a whole local day). Starting and finishing are audited
(:mod:`soclite.control.hunts`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from soclite.api.deps import AnalystDep, RuntimeDep, ScopeDep, narrow
from soclite.control.audit import actor_of
from soclite.control.retrohunt import MAX_RULE_BYTES, HuntRequest, resolve_rule
from soclite.errors import RequestError
from soclite.sitetime import parse_bound, zone

router = APIRouter(prefix="/api/v1/hunts", tags=["hunts"])


class HuntCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: the id (or name) of a loaded rule, or a whole Sigma rule as YAML
    rule: str = Field(min_length=1, max_length=MAX_RULE_BYTES)
    start: str = Field(alias="from", min_length=1, max_length=64)
    end: str = Field(alias="to", min_length=1, max_length=64)
    #: narrow the hunt to this unit's subtree (within the caller's own units)
    unit: str | None = Field(None, max_length=64)
    #: also re-scan the cold archive's segments of the range (embedded store)
    archive: bool = True


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_hunt(body: HuntCreate, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep) -> dict[str, Any]:
    tz = zone(runtime.settings.timezone)
    start = parse_bound(body.start, tz, name="from")
    end = parse_bound(body.end, tz, end=True, name="to")
    if start is None or end is None:
        raise RequestError("a hunt needs both 'from' and 'to'")
    if end <= start:
        raise RequestError("the hunt's 'to' must be after its 'from'")
    rule_yaml, origin = resolve_rule(body.rule, runtime.engine, files=False)
    req = HuntRequest(rule_yaml=rule_yaml, origin=origin, start=start, end=end,
                      units=narrow(scope, body.unit, runtime), archive=body.archive)
    # compile (or convert) up front: a broken rule is the caller's 422 now, not a failed job later
    if runtime.store.kind == "opensearch":
        from soclite.correlator.lucene import to_lucene

        to_lucene(rule_yaml, origin)
    else:
        from soclite.control.retrohunt import compile_hunt

        compile_hunt(rule_yaml, origin, runtime.hunts.placeholders)
    return runtime.hunts.start(req, actor=actor_of(principal), unit=principal.unit)


@router.get("/{hunt_id}")
def get_hunt(
    hunt_id: str,
    runtime: RuntimeDep,
    principal: AnalystDep,
    scope: ScopeDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> dict[str, Any]:
    return runtime.hunts.get(hunt_id, scope, actor=actor_of(principal), offset=offset, limit=limit)
