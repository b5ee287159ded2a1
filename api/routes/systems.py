"""Information systems and their security level: read by every role in its units, changed by admins (audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from soclite.api.deps import AdminDep, AnalystDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.control.audit import actor_of
from soclite.control.reviews import ReviewRecord
from soclite.control.systems import SystemCreate, SystemPatch, retention_months
from soclite.models import utcnow

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


def reviews_of(runtime: Any, system: dict[str, Any]) -> dict[str, Any]:
    """The system's log review and threshold tuning: interval by level, last done, next due, state; history."""
    tasks = runtime.reviews.schedule(system, runtime.settings.compliance.reviews, utcnow())
    return {"system_id": system["id"], "level": system["level"], "tasks": [t.to_json() for t in tasks],
            "history": runtime.reviews.history(system["id"])}


@router.get("/{system_id}/reviews")
def get_reviews(system_id: str, runtime: RuntimeDep, _principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    return reviews_of(runtime, runtime.systems.get(system_id, scope))


@router.post("/{system_id}/reviews", status_code=status.HTTP_201_CREATED)
def record_review(system_id: str, body: ReviewRecord, runtime: RuntimeDep, principal: AnalystDep,
                  scope: ScopeDep) -> dict[str, Any]:
    """Record a log review or a threshold tuning as done (who: the caller; when: ``at`` or now; a note)."""
    runtime.reviews.record(system_id, body, actor=actor_of(principal), author=principal.name, scope=scope)
    return reviews_of(runtime, runtime.systems.get(system_id, scope))
