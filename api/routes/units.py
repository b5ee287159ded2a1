"""Units: the tree province → department/district → unit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

from soclite.api import admin_ops
from soclite.api.deps import AdminDep, RuntimeDep, ScopeDep
from soclite.errors import AuthError, RequestError

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
    name_en: str | None = Field(None, max_length=300)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_unit(body: UnitCreate, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Create, rename or move a unit; a unit-bound admin may only work below its own unit (api.admin_ops)."""
    try:
        unit = admin_ops.put_unit(runtime, principal, body.code, body.name, body.parent, body.name_en)
    except AuthError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except RequestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return unit.model_dump(mode="json")


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
def delete_unit(code: str, runtime: RuntimeDep, principal: AdminDep) -> Response:
    """Delete an empty unit (409 naming what still belongs to it)."""
    admin_ops.delete_unit(runtime, principal, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
