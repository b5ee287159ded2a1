"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from soclite import __version__
from soclite.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    from api.routes import health

    app = FastAPI(title="soclite", version=__version__, docs_url="/docs", openapi_url="/openapi.json")
    app.state.runtime = runtime
    app.include_router(health.router)
    return app
