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

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
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


class SecurityHeaders:
    """The headers above on every HTTP answer, as plain ASGI: Starlette's ``BaseHTTPMiddleware`` runs each
    request's app in a task of its own and streams the body through a queue, which cost more than the
    API list's own work under 100 concurrent clients (bench/api.py --concurrency, issue 15)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", DOCS_CSP if scope.get("path") == "/docs" else CSP)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if scope.get("scheme") == "https":  # after ProxyHeadersMiddleware (outside) set it
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(SecurityHeaders)
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

