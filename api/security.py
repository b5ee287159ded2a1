"""HTTP hardening of every response, the client address behind proxies, and the API docs behind login.

- Security headers (OWASP Secure Headers): a Content-Security-Policy that allows
  scripts only from this origin's files (no inline script, no inline event
  handler: the UI's behaviour lives in ``dashboards/static/app.js``), no
  framing (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` for old
  browsers), ``X-Content-Type-Options: nosniff``, a ``Referrer-Policy`` that
  never sends our URLs (which carry alert filters) to other sites, and HSTS
  when the request came over TLS.
- ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed only from the peers in
  ``auth.trusted_proxies`` (uvicorn's ProxyHeadersMiddleware with that list; the
  server turns uvicorn's own, which trusts 127.0.0.1, off). Anyone else could
  forge the header and get a fresh login-throttle budget per forged address.
- ``/docs`` and ``/openapi.json`` need a logged-in person unless ``auth.public_docs``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from soclite.config import Settings

#: The policy of every page and API answer.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Swagger UI (only /docs, behind login) is FastAPI's page: an inline bootstrap script and assets
#: from jsDelivr. Relaxed for that one page rather than for the UI.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def install(app: FastAPI, settings: Settings) -> None:
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("Content-Security-Policy", DOCS_CSP if request.url.path == "/docs" else CSP)
        for name, value in HEADERS.items():
            headers.setdefault(name, value)
        if request.url.scheme == "https":
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    app.middleware("http")(security_headers)
    if settings.auth.trusted_proxies:
        # Added last, so it runs first: every later layer (throttle, audit, HSTS) sees the real client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.auth.trusted_proxies))
    _install_docs(app, public=settings.auth.public_docs)


def _install_docs(app: FastAPI, *, public: bool) -> None:
    from soclite.api.deps import READ_ROLES, require_roles

    guard: list[Any] = [] if public else [require_roles(*READ_ROLES)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="soclite API")

