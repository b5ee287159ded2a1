"""Discover: search stored events with field:value, phrases and AND/OR/NOT (see :mod:`soclite.api.search`).

A time histogram of the matches (local hours or days), the newest matches, a field sidebar with the
top values among the events shown (like Kibana's, a sample: counting every value of every field over
millions of events is a job for a dashboard, not a page view) and, from any value, a pivot to the
alerts whose matched events hold it (alert search covers matched events' fields).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from soclite import sitetime
from soclite.api import saved
from soclite.api.deps import get_runtime
from soclite.api.search import SearchSyntaxError, parse_search
from soclite.api.sessions import csrf_ok
from soclite.api.ui import charts
from soclite.api.ui.i18n import translator
from soclite.api.ui.web import language, login_user, render, scope
from soclite.errors import InvalidCursor, InvalidSavedSearch, NotFoundError, UiError
from soclite.models import RAW, TIMESTAMP, utcnow
from soclite.store.base import EventQuery

router = APIRouter(include_in_schema=False)

#: fields listed first in the sidebar when the events have them (the ones analysts pivot on)
SIDEBAR_FIRST = ("host.name", "user.name", "source.ip", "destination.ip", "destination.port", "event.action",
                 "process.executable", "Image", "CommandLine", "process.command_line", "url.original",
                 "dns.question.name", "file.hash.sha256", "EventID", "logsource.product", "logsource.category")
#: never in the sidebar: unique per event or internal
SIDEBAR_SKIP = {"event.id", TIMESTAMP, RAW, "soclite.received", "message"}
PAGE = 50
MAX_HOURS = 25  # a day (and a DST hour) or less is shown by hour; a longer range by day
MAX_DAYS = 62


def quote_value(value: str) -> str:
    """A value as a phrase of the search language (so IPs, paths and spaces need no escaping)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sidebar(items: list[dict[str, Any]], top: int = 5) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """(field, events having it, [(value, count)] top values) over the events shown."""
    counters: dict[str, Counter[str]] = {}
    for event in items:
        for name, value in event.items():
            if name in SIDEBAR_SKIP or name.startswith("soclite.") or value in (None, "") or isinstance(value, dict | list):
                continue
            counters.setdefault(name, Counter())[str(value)] += 1
    order = {name: i for i, name in enumerate(SIDEBAR_FIRST)}
    names = sorted(counters, key=lambda n: (order.get(n, len(order)), -sum(counters[n].values()), n))
    return [(n, sum(counters[n].values()), counters[n].most_common(top)) for n in names[:30]]


def _buckets(start: datetime, end: datetime, tz: Any) -> tuple[list[tuple[str, datetime, datetime]], str]:
    """Local hours (short ranges) or local days between start and end: (label, from, to) each."""
    if end - start <= timedelta(hours=MAX_HOURS):
        first = sitetime.local(start, tz).replace(minute=0, second=0, microsecond=0)
        out, at = [], first
        while at < end:
            nxt = at + timedelta(hours=1)
            out.append((at.strftime("%H:00") if at.hour else at.strftime("%d/%m"), at, nxt))
            at = nxt
        return out, "hour"
    first_day = sitetime.local(start, tz).date()
    last_day = sitetime.local(end - timedelta(milliseconds=1), tz).date()
    first_day = max(first_day, last_day - timedelta(days=MAX_DAYS - 1))
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    return [(d.strftime("%d/%m"), sitetime.local_midnight(d, tz), sitetime.local_midnight(d + timedelta(days=1), tz))
            for d in days], "day"


@router.get("/events")
def discover(request: Request) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    units = scope(request, me)
    tz = sitetime.zone(runtime.settings.timezone)
    params = request.query_params
    text = params.get("query", "").strip()
    start = sitetime.parse_bound(params.get("from"), tz, name="from")
    end = sitetime.parse_bound(params.get("to"), tz, end=True, name="to")
    now = utcnow()
    window_end = end or now
    window_start = start or window_end - timedelta(hours=24)
    try:
        expr = parse_search(text)
    except SearchSyntaxError as exc:
        raise UiError.of(422, exc) from exc
    query = EventQuery(expr=expr, start=window_start, end=window_end, units=units, limit=PAGE,
                       cursor=params.get("cursor") or None)
    try:
        page = runtime.store.query_events(query)
    except InvalidCursor as exc:
        raise UiError(400, str(exc)) from exc
    lang = language(request, runtime)
    _ = translator(lang)
    bars, interval = _buckets(window_start, window_end, tz)
    counts = [(label, {"events": runtime.store.count_events(replace(query, start=a, end=b, cursor=None))})
              for label, a, b in bars]
    chart = charts.stacked_bars(counts, ["events"], {"events": _("Events")}, lang, height=150, slots=True)
    keep = {k: v for k, v in (("query", text), ("from", params.get("from", "")), ("to", params.get("to", ""))) if v}
    # the bars' own bounds (local wall-clock time, to the minute) for brushing: a drag over bars i..j, or the
    # keyboard's zoom links, set from = bar i's start and to = bar j's end
    fmt = "%Y-%m-%dT%H:%M"
    bounds = [(label, sitetime.local(a, tz).strftime(fmt), sitetime.local(b, tz).strftime(fmt)) for label, a, b in bars]
    return render(request, "events.html", me=me, page=page, query_text=text, chart=chart, interval=interval,
                  window=(window_start, window_end), fields=sidebar(page.items), keep=keep, bounds=bounds,
                  counts=[c["events"] for _, c in counts], saved_searches=saved.visible(runtime, me),
                  owner=saved.owner_of(me),
                  filters={"from": params.get("from", ""), "to": params.get("to", "")}, quote_value=quote_value)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


@router.post("/events/saved")
async def save_search(request: Request) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_save, request, fields)


def _save(request: Request, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    if not csrf_ok(me, fields.get("csrf_token")):
        raise UiError(403, "csrf")
    try:
        item = saved.create(get_runtime(request), me, name=fields.get("name", ""), query=fields.get("query", ""),
                            range_from=fields.get("from") or None, range_to=fields.get("to") or None,
                            shared=bool(fields.get("shared")))
    except (SearchSyntaxError, InvalidSavedSearch) as exc:
        raise UiError.of(422, exc) from exc
    return RedirectResponse(f"/events?saved={item.id}&" + _query_string(item.query, item.range_from, item.range_to),
                            status_code=303)


@router.post("/events/saved/{search_id}/delete")
async def delete_search(request: Request, search_id: str) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_delete, request, search_id, fields)


def _delete(request: Request, search_id: str, fields: dict[str, str]) -> Response:
    me = login_user(request, fields)
    if not csrf_ok(me, fields.get("csrf_token")):
        raise UiError(403, "csrf")
    try:
        saved.delete(get_runtime(request), me, search_id)
    except NotFoundError:
        raise UiError(404, "saved search not found") from None
    return RedirectResponse("/events", status_code=303)


def _query_string(query: str, start: str | None, end: str | None) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in (("query", query), ("from", start or ""), ("to", end or "")) if v})
