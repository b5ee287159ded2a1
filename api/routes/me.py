"""Who am I: the caller's identity, role and unit scope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from soclite.api.deps import PrincipalDep, RuntimeDep, scope_of

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.get("/me")
def me(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    scope = scope_of(runtime, principal)
    return {"name": principal.name, "role": principal.role.value, "unit": principal.unit, "kind": principal.kind,
            "units": sorted(scope) if scope is not None else None}
