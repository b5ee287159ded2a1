"""Web pages: login, language switch, overview, the alert queue and the alert detail.

Every page reads through the same services as the JSON API (store queries
with the caller's unit scope, :mod:`api.triage` for changes), so what a user
sees and may do in the browser is exactly what the API allows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from soclite import attack, sitetime
from soclite.api import audit, process_tree, triage, tuning
from soclite.api.deps import end_session, get_runtime, optional_principal, view_cache
from soclite.api.notices import notices, store_health
from soclite.api.routes.alerts import TREE_HOURS as ALERT_TREE_HOURS
from soclite.api.routes.hosts import is_online
from soclite.api.routes.stats import summary
from soclite.api.sessions import LANG_COOKIE, SessionCodec, csrf_ok
from soclite.api.ui import charts, discover
from soclite.api.ui.i18n import LANGUAGES, translator
from soclite.api.ui.web import (
    HTMX,
    STATIC,
    WRITE_ROLES,
    install_handlers,
    language,
    login_user,
    render,
    render_fragment,
    require_write,
    safe_next,
    scope,
)
from soclite.api.viewcache import query_key
from soclite.control.identity import AccountLocked, UserStore
from soclite.control.sessions import SessionStore
from soclite.errors import AuthError, InvalidCursor, LoginRequired, NotFoundError, TriageError, UiError
from soclite.models import ALERT_TRANSITIONS, Alert, AlertStatus, Level, Severity, utcnow
from soclite.reports import trends
from soclite.store.base import AlertQuery, EventQuery, HostQuery, Page

router = APIRouter(include_in_schema=False)

SEVERITY_ORDER = ["high", "medium", "low"]
#: matched-event fields offered as pivots (to Discover and to the alerts holding the value)
PIVOT_FIELDS = frozenset({"source.ip", "destination.ip", "user.name", "TargetUserName", "host.name", "Image",
                          "process.executable", "CommandLine", "process.command_line", "file.hash.sha256",
                          "url.original", "dns.question.name", "TargetFilename", "ParentImage"})


async def form_of(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    form = await request.form()
    single = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    multi = {k: [str(v) for v in form.getlist(k) if isinstance(v, str)] for k in form}
    return single, multi


async def in_thread(func: Callable[..., Response], *args: Any) -> Response:
    return await run_in_threadpool(func, *args)


# --- login, logout, language ----------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/", expired: Annotated[int, Query(ge=0, le=1)] = 0) -> Response:
    codec: SessionCodec = request.app.state.sessions
    token = codec.login_csrf(request)
    response = render(request, "login.html", login_csrf=token, next=safe_next(next), expired=bool(expired), error=None)
    codec.set_login_csrf(response, token)
    return response


@router.post("/login")
async def login_submit(request: Request) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_login, request, fields)


def _login(request: Request, fields: dict[str, str]) -> Response:
    runtime = get_runtime(request)
    codec: SessionCodec = request.app.state.sessions
    username = fields.get("username", "").strip()
    next_url = safe_next(fields.get("next"))
    # The peer, or what a configured proxy (auth.trusted_proxies) says the client was: see create_app.
    ip = request.client.host if request.client else "-"

    def fail(message: str, status: int) -> Response:
        token = codec.login_csrf(request)
        response = render(request, "login.html", status=status, login_csrf=token, next=next_url, expired=False,
                          error=message, username=username)
        codec.set_login_csrf(response, token)
        return response

    if not codec.check_login_csrf(request, fields.get("csrf_token", "")):
        return fail("csrf", 403)
    if not request.app.state.login_throttle.allow(username, ip):
        request.app.state.metrics.logins.labels("throttled").inc()
        return fail("throttled", 429)
    auth = runtime.settings.auth
    try:
        user = UserStore(runtime.control).verify(username, fields.get("password", ""),
                                                 lockout_failures=auth.lockout_failures)
    except AccountLocked:
        request.app.state.metrics.logins.labels("locked").inc()
        audit.record(runtime, f"anonymous@{ip}", "login.locked", f"user:{username[:64]}", None, None, None)
        return fail("locked", 423)
    except AuthError:
        request.app.state.metrics.logins.labels("failure").inc()
        audit.record(runtime, f"anonymous@{ip}", "login.failure", f"user:{username[:64]}", None, None, None)
        locked = runtime.users.get_by_name(username)
        if locked is not None and locked.locked_at is not None and locked.failed_logins == auth.lockout_failures:
            audit.record(runtime, f"anonymous@{ip}", "user.locked", f"user:{locked.username}", None,
                         {"failed_logins": locked.failed_logins}, locked.unit)
        return fail("bad_credentials", 401)
    request.app.state.metrics.logins.labels("success").inc()
    request.app.state.login_throttle.reset(username, ip)
    session_id = SessionStore(runtime.control).create(user.id, minutes=auth.session_minutes, ip=ip)
    audit.record(runtime, f"session:{user.username}", "login.success", f"user:{user.username}", None,
                 {"ip": ip}, user.unit)
    response = RedirectResponse(next_url, status_code=303)
    codec.issue(response, user.id, user.session_version, session_id)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End this session on the server (a copied cookie dies with it), not only in this browser.

    A POST with the session's CSRF token: a forged cross-site logout is refused. Without a
    valid session there is nothing to end, and the browser's stale cookie is cleared anyway.
    """
    fields, _ = await form_of(request)
    return await in_thread(_logout, request, fields, False)


@router.post("/logout-everywhere")
async def logout_everywhere(request: Request) -> Response:
    """End every session of the logged-in user (other browsers, a stolen cookie) and this one."""
    fields, _ = await form_of(request)
    return await in_thread(_logout, request, fields, True)


def _logout(request: Request, fields: dict[str, str], everywhere: bool) -> Response:
    runtime = get_runtime(request)
    principal = None if request.headers.get("authorization") else optional_principal(request, runtime)
    response = RedirectResponse("/login", status_code=303)
    if principal is None or principal.kind != "session":
        request.app.state.sessions.clear(response)
        return response
    if not csrf_ok(principal, fields.get("csrf_token")):
        raise UiError(403, "csrf")
    end_session(runtime, principal, everywhere)
    request.app.state.sessions.clear(response)
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    if code not in LANGUAGES:
        raise UiError(404, "unknown language")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path="/", httponly=True, samesite="lax",
                        secure=get_runtime(request).settings.auth.secure_cookies)
    return response


@router.get("/static/vendor/htmx.min.js")
def htmx_js() -> Response:
    if not HTMX.is_file():
        raise UiError(404, "htmx is not installed (run: npm --prefix dashboards ci)")
    return FileResponse(HTMX, media_type="text/javascript")


# --- overview -------------------------------------------------------------------


def _trend_panel(runtime: Any, units: frozenset[str] | None, now: datetime, tz: Any, _: Any,
                 lang: str) -> tuple[str, list[dict[str, Any]]]:
    """Statistical trend detection on the overview: the last 7 days of alerts per hour over their seasonal
    baseline (chart), and the last 24 hours' rises of alerts per unit, rule and host (list)."""
    if not runtime.settings.compliance.trends.enabled:
        return "", []
    flags, chart = trends.overview_panel(runtime.store, runtime.settings, now, units)
    flagged = {f.hour for f in flags if f.dimension == "total"}
    points = [(hour.astimezone(tz).strftime("%d/%m %H:%M"), observed, median, threshold, hour in flagged)
              for hour, observed, median, threshold in chart]
    labels = {"observed": _("Alerts per hour"), "baseline": _("Seasonal baseline (median)"),
              "threshold": _("Usual range"), "flagged": _("Rise beyond the baseline")}
    names = {"total": _("All alerts"), "unit": _("Unit"), "rule_id": _("Rule"), "host": _("Host")}
    unit_names = {u.code: u.name for u in runtime.store.list_units()}
    rows = [{"what": names[f.dimension], "key": unit_names.get(f.key, f.key) if f.dimension == "unit" else f.key,
             "hour": f.hour.astimezone(tz).strftime("%d/%m/%Y %H:%M"),
             "observed": f.observed, "median": round(f.median, 1), "threshold": round(f.threshold, 1)}
            for f in flags[:10]]
    return charts.baseline_line(points, labels, lang), rows


@router.get("/")
def overview(request: Request, days: Annotated[int, Query(ge=1, le=3660)] = 14) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    units = scope(request, me)
    days = min(max(days, 1), 90)
    now = utcnow()
    tz = sitetime.zone(runtime.settings.timezone)
    first_day = now.astimezone(tz).date() - timedelta(days=days - 1)
    start = sitetime.local_midnight(first_day, tz)  # the bars are the site's days, not UTC ones
    stats = summary(runtime, units, start, None)
    _ = translator(language(request, runtime))
    labels = {"high": _("High"), "medium": _("Medium"), "low": _("Low")}
    buckets = runtime.store.alert_histogram(AlertQuery(start=start, units=units), "day", "severity", tz)
    by_day = {b.start.astimezone(tz).date(): b.counts for b in buckets}
    series = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        series.append((day.strftime("%d/%m"), by_day.get(day, {})))
    severity_chart = charts.stacked_bars(series, SEVERITY_ORDER, labels, language(request, runtime))
    trend_chart, trend_flags = _trend_panel(runtime, units, now, tz, _, language(request, runtime))
    top = runtime.store.count_alerts(AlertQuery(start=start, units=units), group_by="rule_id")
    top_rules = sorted(((k, v) for k, v in top.items() if k != "total"), key=lambda kv: -kv[1])[:8]
    titles = {}
    for rule_id, _count in top_rules:
        page = runtime.store.query_alerts(AlertQuery(rule_id=rule_id, units=units, limit=1))
        titles[rule_id] = page.items[0].rule_title if page.items else rule_id
    top_chart = charts.horizontal_bars([(titles[k], v) for k, v in top_rules], language(request, runtime))
    by_unit = runtime.store.count_alerts(AlertQuery(start=start, units=units, status=["new", "acknowledged",
                                                                                      "in_progress"]), "unit")
    unit_names = {u.code: u.name for u in runtime.store.list_units()}
    hosts_by_unit: dict[str, list[int]] = {}  # unit → [servers, workstations, online]
    cursor: str | None = None
    while True:
        hpage = runtime.store.query_hosts(HostQuery(units=units, limit=5000, cursor=cursor))
        for h in hpage.items:
            row = hosts_by_unit.setdefault(h.unit or "", [0, 0, 0])
            row[0 if h.type == "server" else 1] += 1
            row[2] += 1 if is_online(h, runtime, now) else 0
        cursor = hpage.next
        if not cursor or not hpage.items:
            break
    codes = (set(by_unit) - {"total"}) | set(hosts_by_unit)
    rows: list[tuple[str, int, int, int, int]] = []
    for code in codes:
        servers, workstations, online = hosts_by_unit.get(code, [0, 0, 0])
        rows.append((unit_names.get(code, code), int(by_unit.get(code, 0)), servers, workstations, online))
    unit_rows = sorted(rows, key=lambda r: (-r[1], r[0]))
    connector: dict[str, Any] | None = None
    name = getattr(runtime.outbox, "connector", None)
    if runtime.outbox is not None and name:
        try:
            status = runtime.outbox.connector_status(name)
            connector = status.model_dump(mode="json") if hasattr(status, "model_dump") else dict(status)
        except Exception:  # shown as unknown rather than breaking the overview
            connector = {"state": "unknown"}
    open_total = sum(stats["alerts"]["by_status"].get(s, 0) for s in ("new", "acknowledged", "in_progress"))
    # Per journal consumer: how far detection (alerts) and bulk storage (event search) are behind ingest.
    journal_lag = runtime.journal.lags() if runtime.journal is not None else {}
    return render(request, "overview.html", me=me, stats=stats, days=days, severity_chart=severity_chart,
                  top_chart=top_chart, unit_rows=unit_rows[:20], connector=connector,
                  national_enabled=runtime.settings.national.enabled, open_total=open_total,
                  degraded=runtime.degraded(), inputs=[(i.name, i.stats) for i in runtime.inputs],
                  journal_lag=journal_lag, lag_degraded=runtime.settings.journal.lag_degraded,
                  store_health=store_health(runtime), trend_chart=trend_chart, trend_flags=trend_flags)


# --- alert queue ------------------------------------------------------------------


def _queue_query(request: Request, units: frozenset[str] | None) -> tuple[AlertQuery, dict[str, str]]:
    params = request.query_params
    filters = {k: params.get(k, "").strip() for k in
               ("severity", "status", "host", "q", "rule_id", "assignee", "unit", "from", "to", "sort", "cursor", "group")}

    tz = sitetime.zone(get_runtime(request).settings.timezone)

    def day(value: str, end: bool = False) -> datetime | None:
        # a date typed is a whole local day (sitetime); InvalidTime shows the error page (422)
        return sitetime.parse_bound(value, tz, end=end, name="to" if end else "from")

    # The queue is the work to do: closed alerts are hidden unless asked for (status=all or a status).
    status: list[str] | None = [filters["status"]] if filters["status"] in {s.value for s in AlertStatus} else None
    if filters["status"] in ("", "open"):
        status = ["new", "acknowledged", "in_progress"]
    from soclite.api.deps import narrow

    sort = filters["sort"] if filters["sort"] in ("last_seen", "first_seen", "severity", "count") else "last_seen"
    query = AlertQuery(
        host=filters["host"] or None, q=filters["q"] or None, rule_id=filters["rule_id"] or None,
        assignee=filters["assignee"] or None, start=day(filters["from"]), end=day(filters["to"], end=True),
        severity=[filters["severity"]] if filters["severity"] in {s.value for s in Severity} else None,
        status=status, units=narrow(units, filters["unit"] or None, get_runtime(request)),
        sort=sort,  # type: ignore[arg-type]
        limit=50, cursor=filters["cursor"] or None,
    )
    return query, filters


def _queue_context(request: Request) -> dict[str, Any]:
    """The queue's page of alerts and its rows as HTML, shared by every caller of the same scope, filters,
    language and role until an alert changes (soclite.api.viewcache); the rest of the page is per request."""
    me = login_user(request)
    runtime = get_runtime(request)
    units = scope(request, me)
    query, filters = _queue_query(request, units)
    views = view_cache(request)
    version = runtime.store.alerts_version()  # one reading for every answer of this page (see viewcache)

    def read() -> tuple[Page[Alert], list[tuple[Alert, dict[str, Any]]]]:
        try:
            page = runtime.store.query_alerts(query)
        except InvalidCursor as exc:
            raise UiError(400, str(exc)) from exc
        now = utcnow()
        return page, [(a, triage.sla(a, runtime.settings, now)) for a in page.items]

    page, rows = views.get(("queue", query_key(query)), version, read)
    keep = {k: v for k, v in filters.items() if v and k != "cursor"}
    all_units = runtime.store.list_units()
    unit_names = {u.code: u.name for u in all_units}
    can_write = me.role in WRITE_ROLES
    rows_html = views.get(
        ("queue_rows", query_key(query), language(request, runtime), can_write, tuple(unit_names.items())),
        version, lambda: render_fragment(request, "_alert_rows.html", rows=rows, can_write=can_write,
                                         unit_names=unit_names),
    )
    try:  # live refresh period of the queue, seconds
        refresh = min(max(int(request.query_params.get("refresh", "15")), 2), 300)
    except ValueError:
        refresh = 15
    return {"me": me, "page": page, "rows": rows, "rows_html": rows_html, "filters": filters, "keep": keep,
            "refresh": refresh, "statuses": [s.value for s in AlertStatus], "severities": SEVERITY_ORDER,
            "units": [u for u in all_units if units is None or u.code in units], "unit_names": unit_names,
            "query": query, "version": version}


#: the queue's "group by" choices → the filter a group's link sets (user and source IP: the text search)
QUEUE_GROUPS = {"rule": "rule_id", "host": "host", "user": "q", "source_ip": "q", "unit": "unit"}
#: at most this many days of bars in the queue's histogram (the last ones of the filtered range)
QUEUE_CHART_DAYS = 92


def _queue_charts(request: Request, query: AlertQuery, version: int | None) -> dict[str, Any]:
    """The queue's histogram and groups, kept like its rows (soclite.api.viewcache)."""
    runtime = get_runtime(request)
    lang = language(request, runtime)
    group = request.query_params.get("group", "rule")
    group = group if group in QUEUE_GROUPS else "rule"
    return view_cache(request).get(("queue_charts", query_key(query), group, lang), version,
                                   lambda: _read_queue_charts(request, query, group, lang))


def _read_queue_charts(request: Request, query: AlertQuery, group: str, lang: str) -> dict[str, Any]:
    """The queue's histogram (alerts per local day of the filtered range, by severity) and its groups."""
    from dataclasses import replace

    from soclite.api.routes.alerts import alert_groups

    runtime = get_runtime(request)
    _ = translator(lang)
    tz = sitetime.zone(runtime.settings.timezone)
    today = utcnow().astimezone(tz).date()
    last = (query.end - timedelta(milliseconds=1)).astimezone(tz).date() if query.end else today
    first = query.start.astimezone(tz).date() if query.start else last - timedelta(days=13)
    first = max(first, last - timedelta(days=QUEUE_CHART_DAYS - 1))
    ranged = replace(query, cursor=None, start=sitetime.local_midnight(first, tz),
                     end=sitetime.local_midnight(last + timedelta(days=1), tz))
    buckets = runtime.store.alert_histogram(ranged, "day", "severity", tz)
    by_day = {b.start.astimezone(tz).date(): b.counts for b in buckets}
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    labels = {"high": _("High"), "medium": _("Medium"), "low": _("Low")}
    chart = charts.stacked_bars([(d.strftime("%d/%m"), by_day.get(d, {})) for d in days], SEVERITY_ORDER,
                                labels, lang, height=160)
    groups = alert_groups(runtime, replace(query, cursor=None), group, 10)
    return {"queue_chart": chart, "group": group, "groups": groups, "group_filter": QUEUE_GROUPS[group],
            "chart_range": (first, last)}


@router.get("/alerts")
def alert_queue(request: Request) -> Response:
    from soclite.api.ui.case_pages import open_cases

    context = _queue_context(request)
    context.update(_queue_charts(request, context["query"], context["version"]))
    context["open_cases"] = open_cases(request, context["me"]) if context["me"].role in WRITE_ROLES else []
    return render(request, "alerts.html", **context)


@router.get("/alerts/rows")
def alert_rows(request: Request) -> Response:
    """The queue's table body alone, for live refresh (htmx or app.js's poller).

    The header's counts ride along as response headers (a <tbody> fragment can hold only rows):
    X-Alert-Total (the queue's total under its filters) and X-Notice-Count (the header's badge).
    """
    context = _queue_context(request)
    me = context["me"]
    runtime = get_runtime(request)
    found = notices(runtime, me, scope(request, me))
    response = HTMLResponse(context["rows_html"])
    response.headers["X-Alert-Total"] = str(context["page"].total)
    response.headers["X-Notice-Count"] = str(len(found))
    return response


@router.post("/alerts/bulk")
async def alert_bulk(request: Request) -> Response:
    fields, multi = await form_of(request)
    return await in_thread(_bulk, request, fields, multi.get("ids", []))


def _bulk(request: Request, fields: dict[str, str], ids: list[str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    patch = triage.AlertPatch(
        status=AlertStatus(fields["status"]) if fields.get("status") in {s.value for s in AlertStatus} else None,
        assignee=me.name if fields.get("assign_me") else None,
        close_reason=fields.get("close_reason") or None,
    )
    failed = 0
    for alert_id in ids[:1000]:
        try:
            triage.update_alert(get_runtime(request), me, alert_id, patch, scope(request, me))
        except (NotFoundError, TriageError):
            failed += 1
    target = safe_next(fields.get("return_to") or "/alerts")
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}done={len(ids) - failed}&failed={failed}", status_code=303)


# --- alert detail -----------------------------------------------------------------


@router.get("/alerts/{alert_id}")
def alert_detail(request: Request, alert_id: str) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    units = scope(request, me)
    try:
        alert = triage.get_in_scope(runtime, alert_id, units)
    except NotFoundError:
        raise UiError(404, "alert not found") from None
    matched = runtime.store.query_events(EventQuery(ids=alert.event_ids, units=units, limit=50)).items \
        if alert.event_ids else []
    window = _choice(request, "window", WINDOW_MINUTES, 15)
    tree_hours = _choice(request, "tree", TREE_HOURS, 24)
    context_events = []
    if alert.host:
        around = timedelta(minutes=window)
        context_events = runtime.store.query_events(EventQuery(
            host=alert.host, start=alert.first_seen - around, end=alert.last_seen + around, units=units, limit=50,
        )).items
    # the process tree of the first matched event that is a process event (else of the alert's copy)
    anchor = next((ev for ev in [*matched, alert.event] if ev and process_tree.scheme_of(ev)), None)
    tree = process_tree.build(runtime.store, anchor, units, timedelta(hours=tree_hours)) if anchor else None
    from soclite.api.ui.case_pages import cases_of_alert, open_cases

    codec: SessionCodec = request.app.state.sessions
    host = runtime.store.find_host(alert.host) if alert.host else None
    return render(
        request, "alert.html", me=me, alert=alert, sla=triage.sla(alert, runtime.settings),
        transitions=sorted(s.value for s in ALERT_TRANSITIONS[alert.status]),
        matched=matched, context_events=context_events, timeline=triage.timeline(alert, runtime, units),
        draft=codec.draft(request, request.url.path), host=host,
        suggestion="\n".join(f"{k}: {v}" for k, v in tuning.suggest_match(alert.event).items()),
        levels=[lv.value for lv in Level], cases=cases_of_alert(request, me, alert.id),
        open_cases=open_cases(request, me) if me.role in WRITE_ROLES else [],
        # pivots from a matched event's value: its events (from 7 days before the alert) and its alerts
        pivot_fields=PIVOT_FIELDS, quote_value=discover.quote_value,
        pivot_from=(alert.first_seen - timedelta(days=7)).astimezone(
            sitetime.zone(runtime.settings.timezone)).date().isoformat(),
        attack=attack.from_tags(alert.tags), tree=tree, window=window, windows=WINDOW_MINUTES,
        tree_hours=tree_hours, tree_choices=TREE_HOURS,
    )


#: "events around the alert" (± minutes) and the process tree's window (hours before and after)
WINDOW_MINUTES = (5, 15, 60, 240, 1440)
TREE_HOURS = ALERT_TREE_HOURS


def _choice(request: Request, name: str, choices: tuple[int, ...], default: int) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return default
    return value if value in choices else default


@router.post("/alerts/{alert_id}/update")
async def alert_update(request: Request, alert_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_update, request, alert_id, fields)


def _update(request: Request, alert_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    try:
        patch = triage.AlertPatch(
            status=AlertStatus(fields["status"]) if fields.get("status") else None,
            assignee=fields.get("assignee") if "assignee" in fields else None,
            close_reason=fields.get("close_reason") or None,
            comment=fields.get("comment") or None,
        )
        triage.update_alert(get_runtime(request), me, alert_id, patch, scope(request, me))
    except NotFoundError:
        raise UiError(404, "alert not found") from None
    except (TriageError, ValueError) as exc:
        raise UiError.of(422, exc) from exc
    response = RedirectResponse(f"/alerts/{alert_id}", status_code=303)
    response.delete_cookie("soclite_draft", path="/")
    return response


@router.post("/alerts/{alert_id}/exception")
async def alert_exception(request: Request, alert_id: str) -> Response:
    fields, _ = await form_of(request)
    return await in_thread(_exception, request, alert_id, fields)


def _exception(request: Request, alert_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    require_write(request, me, fields)
    match: dict[str, str] = {}
    for line in fields.get("match", "").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            match[name.strip()] = value.strip()
    expires = fields.get("expires_at") or None
    try:
        body = tuning.ExceptionCreate(
            alert_id=alert_id, match=match, owner=fields.get("owner") or me.name, reason=fields.get("reason", ""),
            expires_at=expiry(expires, sitetime.zone(get_runtime(request).settings.timezone)),
        )
        tuning.create(get_runtime(request), me, body, scope(request, me))
    except NotFoundError:
        raise UiError(404, "alert not found") from None
    except ValueError as exc:
        raise UiError.of(422, exc) from exc
    return RedirectResponse("/rules#exceptions", status_code=303)


def expiry(text: str | None, tz: ZoneInfo) -> datetime | None:
    """An expiry typed in a form: a date lasts to the end of that local day (shown back as that date)."""
    if not text:
        return None
    day = sitetime.parse_date(text)
    if day is not None:
        return sitetime.end_of_local_day(day, tz)
    return sitetime.parse_bound(text, tz, name="expires_at")


def mount(app: FastAPI) -> None:
    from soclite.api.ui import (
        account_pages,
        admin_console,
        admin_pages,
        attack_pages,
        case_pages,
        discover,
        incident_pages,
        notify_pages,
        response_pages,
        review_pages,
    )

    install_handlers(app)
    app.include_router(router)
    app.include_router(admin_pages.router)
    app.include_router(case_pages.router)
    app.include_router(incident_pages.router)
    app.include_router(review_pages.router)
    app.include_router(response_pages.router)
    app.include_router(account_pages.router)
    app.include_router(admin_console.router)
    app.include_router(notify_pages.router)
    app.include_router(discover.router)
    app.include_router(attack_pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")


__all__ = ["LoginRequired", "mount"]
