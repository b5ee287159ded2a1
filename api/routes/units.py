"""Units: the tree province → department/district → unit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from soclite.api import audit
from soclite.api.deps import AdminDep, RuntimeDep, ScopeDep
from soclite.models import Unit

router = APIRouter(prefix="/api/v1/units", tags=["units"])


@router.get("")
def list_units(runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    units = [u for u in runtime.store.list_units() if scope is None or u.code in scope]
    return {"total": len(units), "items": [u.model_dump(mode="json") for u in units], "next": None}


class UnitCreate(BaseModel):
    model_config = {"extra": "forbid"}

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=300)
    parent: str | None = Field(None, max_length=64)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_unit(body: UnitCreate, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    """Create or rename a unit; a unit-bound admin may only add below its own unit."""
    existing = {u.code: u for u in runtime.store.list_units()}
    if body.parent is not None and body.parent not in existing:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"parent unit {body.parent!r} does not exist")
    if body.parent == body.code:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a unit cannot be its own parent")
    if body.code in existing and body.parent is not None:
        from soclite.store.base import unit_subtree

        if body.parent in unit_subtree(list(existing.values()), body.code):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the parent is below this unit (a cycle)")
    if scope is not None and (body.parent not in scope or (body.code in existing and body.code not in scope)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a unit-bound admin may only add units inside its own unit")
    before = existing[body.code].model_dump(mode="json") if body.code in existing else None
    unit = runtime.store.put_unit(Unit(code=body.code, name=body.name, parent=body.parent))
    audit.record(runtime, principal, "unit.put", f"unit:{unit.code}", before, unit.model_dump(mode="json"), unit.code)
    return unit.model_dump(mode="json")
