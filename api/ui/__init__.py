"""The server-rendered web UI (templates and static files live in dashboards/)."""

from __future__ import annotations

from fastapi import FastAPI


def mount_ui(app: FastAPI) -> None:
    from soclite.api.ui import pages, web

    pages.mount(app)
    web.warm_templates()
