"""Saved searches of Discover: list (own and shared in the caller's unit), save, delete (own only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from soclite.api import saved
from soclite.api.deps import ReaderDep, RuntimeDep

router = APIRouter(prefix="/api/v1/saved-searches", tags=["events"])


class SavedSearchCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    query: str = Field(default="", max_length=4000)
    range_from: str | None = Field(default=None, alias="from", max_length=40)
    range_to: str | None = Field(default=None, alias="to", max_length=40)
    shared: bool = False


@router.get("")
def list_saved(runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    items = saved.visible(runtime, principal)
    return {"total": len(items), "items": [s.to_json() for s in items], "next": None}


@router.post("", status_code=status.HTTP_201_CREATED)
def save(body: SavedSearchCreate, runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    return saved.create(runtime, principal, name=body.name, query=body.query, range_from=body.range_from,
                        range_to=body.range_to, shared=body.shared).to_json()


@router.delete("/{search_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(search_id: str, runtime: RuntimeDep, principal: ReaderDep) -> None:
    saved.delete(runtime, principal, search_id)
