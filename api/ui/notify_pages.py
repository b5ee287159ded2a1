"""The user's own alert notifications page (``/account/notifications``): the same functions as the
API (:mod:`soclite.api.notify_settings`), with the session's CSRF token. Every role may keep rules for
itself (a viewer on duty reads alerts too); the rules only ever match alerts of the user's scope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from soclite.api import notify_settings
from soclite.api.deps import get_runtime, scope_of
from soclite.api.ui.pages import form_of, in_thread
from soclite.api.ui.web import login_user, render, require_write
from soclite.control.identity import Principal, Role
from soclite.control.notify_rules import Prefs, RuleIn
from soclite.errors import NotFoundError, RequestError, UiError

router = APIRouter(include_in_schema=False)
PAGE = "/account/notifications"


@router.get(PAGE)
def notifications_settings(request: Request) -> Response:
    return _page(request, login_user(request))


def _page(request: Request, me: Principal, new_secret: tuple[str, str] | None = None) -> Response:
    runtime = get_runtime(request)
    data = notify_settings.overview(runtime, me)
    scope = scope_of(runtime, me)
    units = [u for u in runtime.store.list_units() if scope is None or u.code in scope]
    return render(request, "notify_settings.html", me=me, data=data, units=units, new_secret=new_secret,
                  unit_names={u.code: u.name for u in units})  # fmt: skip


@router.post(PAGE + "/{what}")
async def notifications_change(request: Request, what: str) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_change, request, what, fields, multi)


def _lines(text: str) -> list[str]:
    return [p.strip() for p in text.replace(",", "\n").splitlines() if p.strip()]


def _change(request: Request, what: str, fields: dict[str, str], multi: dict[str, list[str]]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields, roles=tuple(Role))  # one's own settings: every role
    runtime = get_runtime(request)
    try:
        if what == "settings":
            start, end = fields.get("quiet_start", "").strip(), fields.get("quiet_end", "").strip()
            notify_settings.set_prefs(runtime, me, Prefs(
                quiet_start=start or None, quiet_end=end or None, quiet_mode=fields.get("quiet_mode") or "hold",
                rate_limit_per_hour=int(fields.get("rate_limit_per_hour") or 20)))  # fmt: skip
        elif what == "rule":
            rule = notify_settings.add_rule(runtime, me, RuleIn(
                name=fields.get("name", "").strip(), min_severity=fields.get("min_severity") or "high",
                units=[u for u in multi.get("units", []) if u], rule_patterns=_lines(fields.get("patterns", "")),
                channel=fields.get("channel") or "email", target=fields.get("target", "").strip()))  # fmt: skip
            secret = runtime.notification_rules.signing_secret(rule.id)
            if secret is not None:  # shown this once, on this answer (never on a page reached again)
                return _page(request, me, (rule.name, secret))
        elif what in ("enable", "disable"):
            notify_settings.set_enabled(runtime, me, fields.get("rule_id", ""), what == "enable")
        elif what == "delete":
            notify_settings.delete_rule(runtime, me, fields.get("rule_id", ""))
        else:
            raise UiError(404, "unknown action")
    except ValidationError as exc:
        raise UiError(422, "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    except ValueError as exc:
        raise UiError(422, str(exc)) from None
    except NotFoundError as exc:
        raise UiError(404, str(exc)) from None
    except RequestError as exc:
        raise UiError.of(422, exc) from None
    return RedirectResponse(PAGE, status_code=303)
