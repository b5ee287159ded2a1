"""Shared machinery of the web UI: templates, language, the logged-in user, CSRF, errors.

Pages are plain HTML forms that work without JavaScript; htmx (installed from
npm into dashboards/node_modules, see dashboards/package.json) only adds live
refresh of the alert queue when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from soclite import sitetime
from soclite.api.deps import deny, get_runtime, optional_principal, scope_of
from soclite.api.notices import notices
from soclite.api.sessions import LANG_COOKIE, SessionCodec, csrf_ok
from soclite.api.ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, translator
from soclite.config import PACKAGE_ROOT
from soclite.control.identity import Principal, Role
from soclite.errors import AuthError, InvalidTime, LoginRequired, NotFoundError, RequestError, UiError
from soclite.models import parse_timestamp
from soclite.runtime import Runtime

TEMPLATES = PACKAGE_ROOT / "dashboards" / "templates"
STATIC = PACKAGE_ROOT / "dashboards" / "static"
HTMX = PACKAGE_ROOT / "dashboards" / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"

# auto_reload off: the templates are package data, read once per process. With it on, every page stat()ed
# its template and each one it extends or includes (5 a queue page) to see whether it had changed.
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True, auto_reload=False)


def warm_templates() -> int:
    """Compile every template once, at start; returns how many.

    Compiling one takes tens of milliseconds and jinja does not lock it: the first burst of 100 clients
    compiled the same template in each of the thread pool's threads at once (the first seconds of
    bench/api.py --concurrency answered in 3 s).
    """
    names = _env.list_templates(filter_func=lambda name: name.endswith(".html"))
    for name in names:
        _env.get_template(name)
    return len(names)

WRITE_ROLES = (Role.ADMIN, Role.ANALYST)


def _typed_day(value: Any, form: str) -> str:
    """A date filter's value as the date input of the page's language shows it: ``07/12/2026`` (Vietnamese
    text input) or ``2026-12-07`` (an <input type=date> takes ISO only). Anything else is kept as typed."""
    text = "" if value is None else str(value)
    try:
        day = sitetime.parse_date(text) if text else None
    except InvalidTime:
        return text
    return day.strftime(form) if day else text


_env.filters["day_vi"] = lambda value: _typed_day(value, "%d/%m/%Y")
_env.filters["day_iso"] = lambda value: _typed_day(value, "%Y-%m-%d")


def _(message: str) -> str:
    """Marks a message of Python code for the catalogs (the error page translates it when it shows it)."""
    return message


def language(request: Request, runtime: Runtime) -> str:
    lang = request.cookies.get(LANG_COOKIE) or runtime.settings.language or DEFAULT_LANGUAGE
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def safe_next(url: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def current_url(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


class PasswordChangeRequired(AuthError):
    """The user must choose a new password (new account, admin reset, first admin) before anything else."""


PASSWORD_PAGE = "/account/password"


def login_user(request: Request, fields: dict[str, str] | None = None, *, password_page: bool = False) -> Principal:
    """The session's user, or LoginRequired (bearer tokens are for the API, not the UI).

    A user whose password must change is sent to the password page from every other page
    (``password_page`` is that page's own call).
    """
    runtime = get_runtime(request)
    principal = None if request.headers.get("authorization") else optional_principal(request, runtime)
    if principal is None or principal.kind != "session":
        if request.method == "GET":
            raise LoginRequired(safe_next(current_url(request)))
        # A form posted after expiry: come back to the page the form was on (forms carry return_to).
        raise LoginRequired(safe_next((fields or {}).get("return_to") or request.url.path), fields)
    if not password_page:
        user = runtime.users.get(principal.id)
        if user is not None and user.must_change_password:
            raise PasswordChangeRequired(principal.name)
    return principal


def require_write(request: Request, principal: Principal, form: dict[str, str],
                  roles: tuple[Role, ...] = WRITE_ROLES) -> None:
    """CSRF first (a forged form must not even leave an audit entry as the victim), then the role."""
    if not csrf_ok(principal, form.get("csrf_token")):
        raise UiError(403, "csrf")
    if principal.role not in roles:
        raise UiError(403, str(deny(get_runtime(request), principal, request,
                                    f"role {principal.role.value} may not do this").detail))


def fmt_time(value: Any, runtime: Runtime, with_seconds: bool = False, tz: ZoneInfo | None = None) -> str:
    if value in (None, ""):
        return "–"
    ts = value if isinstance(value, datetime) else parse_timestamp(str(value))
    local = sitetime.local(ts, tz or sitetime.zone(runtime.settings.timezone))
    return local.strftime("%d/%m/%Y %H:%M:%S" if with_seconds else "%d/%m/%Y %H:%M")


def fmt_num(value: int | None, lang: str) -> str:
    text = f"{int(value or 0):,}"
    return text.replace(",", ".") if lang == "vi" else text


def render_fragment(request: Request, template: str, **context: Any) -> Markup:
    """A template that is part of a page (no header, no notices): the language's helpers only."""
    runtime = get_runtime(request)
    lang = language(request, runtime)
    tz = sitetime.zone(runtime.settings.timezone)
    return Markup(_env.get_template(template).render(
        _=translator(lang), lang=lang, n=lambda v: fmt_num(v, lang), quote=quote,
        t=lambda v, s=False: fmt_time(v, runtime, s, tz), **context,
    ))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    runtime = get_runtime(request)
    lang = language(request, runtime)
    principal: Principal | None = context.pop("me", None)
    # the header's badge and banner: every page says when something failed (api.notices)
    found = context.pop("notices", None)
    if found is None and principal is not None and principal.role is not Role.AGENT:
        found = notices(runtime, principal, scope_of(runtime, principal))
    found = found or []
    tz = sitetime.zone(runtime.settings.timezone)
    page = _env.get_template(template).render(
        notices=found,
        notice_count=sum(1 for item in found),
        failing=[item for item in found if item.severity == "error"],
        request=request,
        _=translator(lang),
        lang=lang,
        me=principal,
        csrf=principal.csrf if principal else "",
        can_write=principal is not None and principal.role in WRITE_ROLES,
        is_admin=principal is not None and principal.role is Role.ADMIN,
        can_audit=principal is not None and principal.role in (Role.ADMIN, Role.AUDITOR),
        htmx=HTMX.is_file(),
        path=request.url.path,
        here=current_url(request),
        province=runtime.settings.province,
        t=lambda v, s=False: fmt_time(v, runtime, s, tz),
        # the zone every time on the page is in, shown beside them ("UTC+07:00")
        tzlabel=sitetime.offset_label(tz),
        n=lambda v: fmt_num(v, lang),
        quote=quote,
        **context,
    )
    return HTMLResponse(page, status_code=status)


def admin_user(request: Request, fields: dict[str, str] | None = None, *, area: str = "administration") -> Principal:
    """The logged-in admin: for a write (``fields``) the CSRF token and the admin role, for a page the role
    alone (403, audited as a denial naming ``area``)."""
    me = login_user(request, fields)
    if fields is not None:
        require_write(request, me, fields, roles=(Role.ADMIN,))
    elif me.role is not Role.ADMIN:
        raise UiError(403, str(deny(get_runtime(request), me, request, f"{area}: admins only").detail))
    return me


def validation_text(exc: ValidationError) -> str:
    """A form the model refuses, as one line: each field's path and message."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


@contextmanager
def form_errors(not_found: str | None = None, *, request_errors: bool = True) -> Iterator[None]:
    """The errors of a form's write as the UI's error page: NotFoundError 404 (``not_found``, or its own text
    when None), a ValidationError 422 with each field's message, and (``request_errors``) any other
    RequestError 422 in the reader's language. A UiError raised inside passes unchanged."""
    try:
        yield
    except UiError:
        raise
    except NotFoundError as exc:
        raise UiError(404, not_found if not_found is not None else str(exc)) from None
    except ValidationError as exc:
        raise UiError(422, validation_text(exc)) from None
    except RequestError as exc:
        if not request_errors:
            raise
        raise UiError.of(422, exc) from None


def scope(request: Request, principal: Principal) -> frozenset[str] | None:
    return scope_of(get_runtime(request), principal)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        from soclite.api.sessions import SESSION_COOKIE

        # "Expired" only when there was a session to expire (a first visit is just a login).
        expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) or exc.fields else ""
        response = RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}{expired}", status_code=303)
        if exc.fields:
            codec: SessionCodec = request.app.state.sessions
            codec.save_draft(response, exc.next_url.split("?", 1)[0], exc.fields)
        return response

    @app.exception_handler(PasswordChangeRequired)
    async def to_password_page(request: Request, exc: PasswordChangeRequired) -> Response:
        return RedirectResponse(PASSWORD_PAGE, status_code=303)

    @app.exception_handler(UiError)
    async def ui_error(request: Request, exc: UiError) -> Response:
        return error_page(request, exc.status, exc.message, exc.params)

    @app.exception_handler(InvalidTime)
    async def invalid_time(request: Request, exc: InvalidTime) -> Response:
        if is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return error_page(request, 422, exc.msgid or str(exc), exc.params)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """An unknown URL (or a method not allowed) in the UI: the error page, not raw JSON."""
        if is_api(request):
            return await http_exception_handler(request, exc)
        return error_page(request, exc.status_code, "", None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):
            return await request_validation_exception_handler(request, exc)
        return error_page(request, 422, "", None)


def is_api(request: Request) -> bool:
    """Errors are JSON for API paths and for clients that do not ask for HTML; a page for a browser.

    A browser's navigation sends ``Accept: text/html``; API clients (curl, httpx) send ``*/*``.
    """
    path = request.url.path
    if path.startswith(API_PREFIXES) or path in ("/health", "/metrics", "/openapi.json"):
        return True
    return "text/html" not in request.headers.get("accept", "")


API_PREFIXES = ("/api/", "/docs", "/redoc")


def error_page(request: Request, status: int, message: str, params: dict[str, str] | None) -> Response:
    """The error page in the reader's language.

    ``message`` is a catalog id (with ``params``), a known key (csrf, outbox, engine) or free text;
    free text (a message no catalog knows) is shown only below the page's own sentence, as detail.
    Parameter values that are catalog ids (statuses) are translated too.
    """
    runtime = get_runtime(request)
    _ = translator(language(request, runtime))
    me = None
    try:
        me = optional_principal(request, runtime)
    except Exception:  # the error page must render even for a broken session
        me = None
    known = bool(message) and translator("vi")(message) != message
    text = _(message, **{k: _(str(v)) for k, v in (params or {}).items()}) if known else ""
    return render(request, "error.html", status=status, me=me, status_code=status, message=message,
                  text=text, detail="" if known else message)
