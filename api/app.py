"""The FastAPI application factory.

Routers are included here one line each (other packages add theirs: ingest,
deadletters, agents, actions, reports). Errors soclite raises on purpose are
mapped to clear 4xx answers once, here; anything else is a 500 and a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soclite import __version__
from soclite.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PlaybookError,
    RuleError,
    SchemaError,
    StoreError,
)
from soclite.runtime import Runtime

log = logging.getLogger("soclite.api")

#: how often expired exceptions are dropped from the engine
EXCEPTION_SYNC_SECONDS = 60


def create_app(runtime: Runtime) -> FastAPI:
    from soclite.api import tuning
    from soclite.api.metrics import Metrics
    from soclite.api.metrics import router as metrics_router
    from soclite.api.routes import alerts, audit, cases, events, health, hosts, me, rules, stats, units
    from soclite.api.sessions import SessionCodec
    from soclite.api.ui import mount_ui
    from soclite.control.identity import LoginThrottle

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

    app = FastAPI(title="soclite", version=__version__, docs_url="/docs", openapi_url="/openapi.json",
                  lifespan=lifespan)
    app.state.runtime = runtime
    app.state.sessions = SessionCodec(runtime.settings)
    app.state.login_throttle = LoginThrottle(runtime.settings.auth.login_attempts_per_minute)
    app.state.metrics = Metrics()
    app.middleware("http")(app.state.metrics.middleware)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc) or "not found"}, status_code=404)

    @app.exception_handler(ConflictError)
    async def conflict_error(request: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422 if exc.invalid else 409)

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(RuleError)
    async def rule_error(request: Request, exc: RuleError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(PlaybookError)
    async def playbook_error(request: Request, exc: PlaybookError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        if isinstance(exc, SchemaError):
            raise exc
        if "cursor" in str(exc):  # a cursor from another query or tampered with: the caller's mistake
            return JSONResponse({"detail": str(exc)}, status_code=400)
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"storage temporarily unavailable, retry: {exc}"}, status_code=503)

    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(me.router)
    app.include_router(alerts.router)
    app.include_router(events.router)
    app.include_router(hosts.router)
    app.include_router(stats.router)
    app.include_router(units.router)
    app.include_router(cases.router)
    app.include_router(rules.router)
    app.include_router(audit.router)
    app.include_router(__import__("soclite.api.routes.agents", fromlist=["router"]).router)  # AGENT: enroll, heartbeat, commands
    app.include_router(__import__("soclite.api.routes.reports", fromlist=["router"]).router)  # REP: archive, generate, download
    app.include_router(__import__("soclite.api.routes.actions", fromlist=["router"]).router)  # PLAY: actions, connector
    app.include_router(__import__("soclite.api.routes.ingest", fromlist=["router"]).router)  # COLL: POST /api/v1/ingest
    app.include_router(__import__("soclite.api.routes.deadletters", fromlist=["router"]).router)  # COLL: dead letters
    mount_ui(app)
    return app
