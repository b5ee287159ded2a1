"""Prometheus metrics: request counts and latency per route, plus a few gauges of state.

One registry per app (not the global default) so several apps in one process
(tests) do not collide on metric names.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soclite.api.deps import ReaderDep, RuntimeDep

if TYPE_CHECKING:
    from soclite.runtime import Runtime

router = APIRouter(tags=["metrics"])


class IngestCollector(Collector):
    """The syslog inputs' counters (received, dropped, refused, rejected) and "degraded", read at scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        messages = CounterMetricFamily(
            "soclite_input_messages", "Syslog messages per input by outcome (dropped: UDP queue full or journal "
            "refusing; refused: sender not in server.syslog_allow; rejected: unparsable)", labels=["input", "outcome"],
        )  # fmt: skip
        for running in self.runtime.inputs:
            stats = running.stats
            for outcome, value in (("received", stats.received), ("dropped", stats.dropped),
                                   ("refused", stats.refused), ("rejected", stats.rejected)):  # fmt: skip
                messages.add_metric([running.name, outcome], value)
        yield messages
        degraded = GaugeMetricFamily("soclite_degraded", "1 while /health reports degraded (data lost or refused)")
        degraded.add_metric([], 1 if self.runtime.degraded() else 0)
        yield degraded


class Metrics:
    def __init__(self, runtime: Runtime | None = None) -> None:
        self.registry = CollectorRegistry()
        if runtime is not None:
            self.registry.register(IngestCollector(runtime))
        self.requests = Counter(
            "soclite_http_requests", "HTTP requests by route and status class", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "soclite_http_request_seconds", "HTTP request latency by route", ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5), registry=self.registry,
        )
        self.logins = Counter("soclite_logins", "Login attempts by outcome", ["outcome"], registry=self.registry)
        self.up = Gauge("soclite_up", "1 while the API is serving", registry=self.registry)
        self.up.set(1)
        self.journal_lag = Gauge(
            "soclite_journal_lag", "Events in the ingest journal not yet committed, per consumer", ["consumer"],
            registry=self.registry,
        )

    def observe(self, scope: Scope, status: int, started: float) -> None:
        # The route template, not the raw path: ids in paths would explode label cardinality.
        name = getattr(scope.get("route"), "path", "unmatched")
        method = str(scope.get("method", "GET"))
        self.requests.labels(method, name, f"{status // 100}xx").inc()
        self.latency.labels(method, name).observe(time.perf_counter() - started)


class MetricsMiddleware:
    """Count and time every HTTP request, as plain ASGI (see :class:`soclite.api.security.SecurityHeaders`
    for why not ``BaseHTTPMiddleware``). An exception the app lets out counts as a 5xx."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(scope, status, started)


@router.get("/metrics", response_class=Response)
def metrics(request: Request, principal: ReaderDep, runtime: RuntimeDep) -> Response:
    registry: Metrics = request.app.state.metrics
    if runtime.journal is not None:  # read at scrape time: the consumers may run in another process
        for consumer, lag in runtime.journal.lags().items():
            registry.journal_lag.labels(consumer).set(lag)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
