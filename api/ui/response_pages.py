"""The response queue (``/actions``): what was asked, what waits for approval, what runs, failed or is done.

Every change goes through :func:`soclite.api.response.change_action`, the function behind the JSON API,
so a browser may approve, reject, retry or cancel exactly what the API allows (same scope, same
two-person rule, same audit entries). Each action shows who did what and when (its history).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from soclite.api import response
from soclite.api.deps import get_runtime
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import _, login_user, render, require_write, scope
from soclite.control.identity import Role
from soclite.control.outbox import CANCELLABLE, ActionRecord, ActionStatus, TwoPersonRule
from soclite.errors import NotFoundError, PlaybookError, UiError

router = APIRouter(include_in_schema=False)

#: the queue's sections, in the order an admin works them
SECTIONS: list[tuple[str, tuple[ActionStatus, ...]]] = [
    ("awaiting", (ActionStatus.AWAITING_APPROVAL,)),
    ("running", (ActionStatus.PENDING, ActionStatus.RUNNING)),
    ("failing", (ActionStatus.FAILED,)),
    ("dead", (ActionStatus.DEAD,)),
    ("done", (ActionStatus.SUCCEEDED, ActionStatus.REJECTED, ActionStatus.CANCELLED)),
]
CHANGES = ("approve", "reject", "retry", "cancel")


def _row(record: ActionRecord, runtime: Any, me: Any) -> dict[str, Any]:
    data = response.describe(record)
    data["history"] = [h.model_dump() for h in runtime.outbox.history(record.id)]
    data["cancellable"] = record.status in CANCELLABLE
    data["scan"] = response.scan_of(runtime, record)  # a malware scan's own state (queued … infected)
    # under the two-person rule the requester sees why there is no Approve button for them
    data["own_request"] = (runtime.settings.response.two_person_rule and record.requested_by == me.name
                           and record.action in response.HOST_ACTIONS)  # fmt: skip
    return data


@router.get("/actions")
def actions_page(request: Request) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    visible_to = scope(request, me)
    sections: list[tuple[str, list[dict[str, Any]]]] = []
    for name, statuses in SECTIONS:
        limit = 50 if name == "done" else 200
        records = runtime.outbox.list_actions(status=[s.value for s in statuses], limit=limit)
        rows = [_row(r, runtime, me) for r in records if response.visible(runtime, r, visible_to)]
        sections.append((name, rows))
    return render(request, "actions.html", me=me, sections=sections,
                  two_person=runtime.settings.response.two_person_rule)


@router.get("/notifications")
def notifications_page(request: Request) -> Response:
    """The notification centre: failing actions of the caller's units, approvals waiting, and (province-wide)
    the connector, journal, pipeline and rule failures (:mod:`soclite.api.notices`), with where to act."""
    me = login_user(request)
    return render(request, "notifications.html", me=me)


@router.post("/actions/{action_id}/{what}")
async def action_change(request: Request, action_id: str, what: str) -> Response:
    fields, _multi = await form_of(request)
    return await in_thread(_action_change, request, action_id, what, fields)


def _action_change(request: Request, action_id: str, what: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=(Role.ADMIN,))
    if what not in CHANGES:
        raise UiError(404, "unknown change")
    reason = fields.get("reason", "").strip()[:2000]
    if what in ("reject", "cancel") and not reason:
        raise UiError(422, _("A reason is required to reject or cancel an action."))
    runtime = get_runtime(request)
    try:
        response.change_action(runtime, me, action_id, what, scope(request, me), reason)
    except NotFoundError:
        raise UiError(404, "action not found") from None
    except TwoPersonRule:
        raise UiError(403, _("Two-person rule: you requested this action, so another admin must approve it.")) from None
    except PlaybookError:
        raise UiError(409, _("This action has already moved on (approved, running or finished): reload the queue.")) from None
    return RedirectResponse(f"/actions#action-{action_id}", status_code=303)
