"""The FastAPI application factory.

Routers are included here one line each (other packages add theirs: ingest,
deadletters, agents, actions, reports). Errors soclite raises on purpose are
answered once, here, with the status :data:`ERROR_STATUS` gives their type (the
most specific class in the table wins); anything else is a 500 and a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soclite import __version__
from soclite.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    ConnectorError,
    InvalidCursor,
    InvalidSavedSearch,
    InvalidTime,
    JournalError,
    NotFoundError,
    ParseError,
    PlaybookError,
    RequestError,
    RuleError,
    SchemaError,
    SocliteError,
    StoreError,
    TooLarge,
    TransitionConflict,
    TriageError,
    UnsupportedType,
)
from soclite.runtime import Runtime

log = logging.getLogger(__name__)

#: how often expired exceptions are dropped from the engine
EXCEPTION_SYNC_SECONDS = 60

#: The HTTP status of each error type. The first class of an error's MRO found here decides,
#: so a subclass listed here overrides its base (InvalidCursor is a StoreError but the caller's mistake).
ERROR_STATUS: dict[type[SocliteError], int] = {
    SocliteError: 500,  # raised on purpose, but not meant to reach a request: a bug to look at
    ConfigError: 500,
    SchemaError: 500,  # the data directory is corrupt or newer than this code: an operator must act
    RequestError: 400,
    InvalidCursor: 400,
    ParseError: 400,
    AuthError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    TransitionConflict: 409,
    TriageError: 422,
    TooLarge: 413,
    UnsupportedType: 415,
    InvalidTime: 422,
    InvalidSavedSearch: 422,
    RuleError: 422,
    PlaybookError: 422,
    ConnectorError: 502,
    StoreError: 503,  # nothing was half-written: retry
    JournalError: 503,
}


def error_status(exc: SocliteError) -> int:
    """The status :data:`ERROR_STATUS` gives ``exc``'s most specific listed class."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def create_app(runtime: Runtime) -> FastAPI:
    from soclite.api import security, tuning
    from soclite.api.metrics import Metrics, MetricsMiddleware
    from soclite.api.metrics import router as metrics_router
    from soclite.api.routes import (
        accounts,
        alerts,
        audit,
        cases,
        events,
        health,
        hosts,
        me,
        rules,
        saved_searches,
        stats,
        units,
    )
    from soclite.api.sessions import SessionCodec
    from soclite.api.ui import mount_ui
    from soclite.api.viewcache import ViewCache
    from soclite.control.sessions import LoginThrottle

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def keep_exceptions_fresh() -> None:
            while True:
                await asyncio.sleep(EXCEPTION_SYNC_SECONDS)
                try:
                    await asyncio.to_thread(tuning.sync, runtime)
                except Exception:
                    log.exception("exception sync failed")

        try:
            tuning.sync(runtime)
        except Exception:
            log.exception("pushing exceptions to the engine failed at start")
        try:
            tuning.apply_rule_states(runtime)
        except Exception:
            log.exception("re-applying rule enable/disable state failed at start")
        task = asyncio.create_task(keep_exceptions_fresh())
        try:
            yield
        finally:
            task.cancel()

    # /docs and /openapi.json are served by routes of ours (see security.install_docs): behind login
    # unless auth.public_docs, since the schema maps every operation for an attacker.
    app = FastAPI(title="soclite", version=__version__, docs_url=None, openapi_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.runtime = runtime
    app.state.sessions = SessionCodec(runtime.settings)
    app.state.login_throttle = LoginThrottle(runtime.control, runtime.settings.auth.login_attempts_per_minute)
    app.state.metrics = Metrics(runtime)
    app.state.views = ViewCache()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    security.install(app, runtime.settings)

    @app.exception_handler(SocliteError)
    async def soclite_error(request: Request, exc: SocliteError) -> JSONResponse:
        """The one handler of soclite's errors (the web UI adds its own for UiError and LoginRequired)."""
        code = error_status(exc)
        detail = str(exc) or HTTPStatus(code).phrase
        if code in (502, 503):  # not a bug here: a part or a peer is down, and the caller may retry
            log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
            detail = f"{'a remote peer failed' if code == 502 else 'temporarily unavailable'}, retry: {detail}"
        elif code >= 500:
            log.error("%s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
            detail = HTTPStatus(code).phrase  # the log has the details; the caller cannot act on them
        return JSONResponse({"detail": detail}, status_code=code)

    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(me.router)
    app.include_router(__import__("soclite.api.routes.notifications", fromlist=["router"]).router)  # own alert notifications
    app.include_router(accounts.router)
    app.include_router(alerts.router)
    app.include_router(events.router)
    app.include_router(saved_searches.router)
    app.include_router(hosts.router)
    app.include_router(stats.router)
    app.include_router(units.router)
    app.include_router(cases.router)
    app.include_router(rules.router)
    app.include_router(audit.router)
    app.include_router(__import__("soclite.api.routes.agents", fromlist=["router"]).router)  # AGENT: enroll, heartbeat, commands
    app.include_router(__import__("soclite.api.routes.agent_admin", fromlist=["router"]).router)  # admins: agents, enrolment
    app.include_router(__import__("soclite.api.routes.reports", fromlist=["router"]).router)  # REP: archive, generate, download
    app.include_router(__import__("soclite.api.routes.actions", fromlist=["router"]).router)  # PLAY: actions, connector
    app.include_router(__import__("soclite.api.routes.ingest", fromlist=["router"]).router)  # COLL: POST /api/v1/ingest
    app.include_router(__import__("soclite.api.routes.deadletters", fromlist=["router"]).router)  # COLL: dead letters
    app.include_router(__import__("soclite.api.routes.systems", fromlist=["router"]).router)  # information systems
    app.include_router(__import__("soclite.api.routes.incidents", fromlist=["router"]).router)  # legal clock
    app.include_router(__import__("soclite.api.routes.hunts", fromlist=["router"]).router)  # retro-hunts
    mount_ui(app)
    return app
