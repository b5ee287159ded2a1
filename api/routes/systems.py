"""Information systems and their security level: read by every role in its units, changed by admins (audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from soclite.api.deps import AdminDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.control.audit import actor_of
from soclite.control.systems import SystemCreate, SystemPatch, retention_months

router = APIRouter(prefix="/api/v1/systems", tags=["systems"])


def _with_retention(runtime: Any, system: dict[str, Any]) -> dict[str, Any]:
    """The minimum months of logs the system's level requires, beside the system."""
    return system | {"retention_months": retention_months(system["level"], runtime.settings)}


@router.get("")
def list_systems(runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    items = [_with_retention(runtime, s) for s in runtime.systems.list_systems(scope)]
    return {"total": len(items), "items": items, "next": None}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_system(body: SystemCreate, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> dict[str, Any]:
    system = runtime.systems.create(body, actor=actor_of(principal), unit=principal.unit, scope=scope)
    return _with_retention(runtime, system)


@router.get("/{system_id}")
def get_system(system_id: str, runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    return _with_retention(runtime, runtime.systems.get(system_id, scope))


@router.patch("/{system_id}")
def patch_system(
    system_id: str, body: SystemPatch, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep
) -> dict[str, Any]:
    system = runtime.systems.update(system_id, body, actor=actor_of(principal), scope=scope)
    return _with_retention(runtime, system)


@router.delete("/{system_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_system(system_id: str, runtime: RuntimeDep, principal: AdminDep, scope: ScopeDep) -> Response:
    runtime.systems.delete(system_id, actor=actor_of(principal), scope=scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
