"""The periodic reviews page (``/reviews``): every information system's log review and alert-threshold tuning,
with its interval by level, last done (who, when, note), next due date and state, overdue ones first; and a form
to record one as done — the same call as ``POST /api/v1/systems/{id}/reviews`` (soclite.control.reviews), audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from soclite import sitetime
from soclite.api.deps import get_runtime
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import login_user, render, require_write, scope
from soclite.control.audit import actor_of
from soclite.control.identity import Role
from soclite.control.reviews import ReviewRecord
from soclite.errors import NotFoundError, RequestError, UiError
from soclite.models import parse_timestamp, utcnow

router = APIRouter(include_in_schema=False)
_ORDER = {"overdue": 0, "due_soon": 1, "pending": 2, "none": 3}


def _local(value: str | datetime | None, tz: Any) -> str:
    if value is None:
        return "–"
    ts = parse_timestamp(value) if isinstance(value, str) else value
    return ts.astimezone(tz).strftime("%d/%m/%Y")


@router.get("/reviews")
def reviews_page(request: Request) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    tz = sitetime.zone(runtime.settings.timezone)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for system in runtime.systems.list_systems(scope(request, me)):
        for task in runtime.reviews.schedule(system, runtime.settings.compliance.reviews, now):
            last = task.last_done
            rows.append({"system": system, "task": task, "due": _local(task.due_at, tz),
                         "last": _local(last["done_at"], tz) if last else None,
                         "last_by": last["done_by"] if last else "", "last_note": last["note"] if last else "",
                         "days": int(task.remaining_days // 1) if task.remaining_days is not None else None})
    rows.sort(key=lambda r: (_ORDER[r["task"].state], r["task"].due_at or now, r["system"]["name"]))
    return render(request, "reviews.html", me=me, rows=rows,
                  can_record=me.role in (Role.ADMIN, Role.ANALYST),
                  intervals=sorted(runtime.settings.compliance.reviews.interval_months_by_level.items()))


@router.post("/reviews/{system_id}")
async def record_review(request: Request, system_id: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_record, request, system_id, fields)


def _record(request: Request, system_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=(Role.ADMIN, Role.ANALYST))
    runtime = get_runtime(request)
    try:
        day = fields.get("date", "").strip()
        # a day typed by a person is a day in the site's zone: noon of it, so no zone shifts it to another date
        # (today's noon is not yet reached in the morning: then it is now)
        at = (min(datetime.fromisoformat(day).replace(hour=12, tzinfo=sitetime.zone(runtime.settings.timezone)),
                  utcnow()) if day else None)
        body = ReviewRecord(kind=fields.get("kind", ""), at=at, note=fields.get("note", "").strip())  # type: ignore[arg-type]
        runtime.reviews.record(system_id, body, actor=actor_of(me), author=me.name, scope=scope(request, me))
    except ValidationError as exc:
        raise UiError(422, "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    except ValueError as exc:
        raise UiError(422, str(exc)) from None
    except NotFoundError:
        raise UiError(404, "information system not found") from None
    except RequestError as exc:
        raise UiError.of(422, exc) from None
    return RedirectResponse(f"/reviews#system-{system_id}", status_code=303)
