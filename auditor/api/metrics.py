"""Prometheus metrics: HTTP requests counted in process, the rest read from the database.

Audits by status, model calls by stage and status, failures and cost are counted from the
database at scrape time, so every API replica reports the same numbers and a restart loses
nothing. They carry no tenant label: /metrics needs no key, so it must not name tenants.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auditor.storage.store import Store

__all__ = ["DatabaseCollector", "HttpMetrics", "MetricsMiddleware", "scrape"]


class HttpMetrics:
    """Request counters of one app (a registry of its own, so apps in one process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "auditor_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "auditor_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts every request by its route template (``/v1/audits/{audit_id}``), never by the
    raw path, so ids do not become label values."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)


class DatabaseCollector(Collector):
    """Counts read from the database when scraped."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("auditor_database_up", "1 if the database answered the scrape.")
        try:
            counts = self.store.service_counts()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        audits = GaugeMetricFamily("auditor_audits", "Audits by status.", labels=["status"])
        audit_cost = GaugeMetricFamily(
            "auditor_audit_cost_usd",
            "Cost of the audits' model calls, by status.",
            labels=["status"],
        )
        for status, (count, cost) in sorted(counts.audits.items()):
            audits.add_metric([status], count)
            audit_cost.add_metric([status], cost)
        calls = GaugeMetricFamily(
            "auditor_model_calls", "Model calls by stage and status.", labels=["stage", "status"]
        )
        failures = GaugeMetricFamily(
            "auditor_model_call_failures",
            "Model calls that failed for good, by stage.",
            labels=["stage"],
        )
        call_cost = GaugeMetricFamily(
            "auditor_model_call_cost_usd",
            "Cost of the model calls made, by stage.",
            labels=["stage"],
        )
        cost_by_stage: dict[str, float] = {}
        failed_by_stage: dict[str, int] = {}
        for (stage, status), (count, cost) in sorted(counts.calls.items()):
            calls.add_metric([stage, status], count)
            cost_by_stage[stage] = cost_by_stage.get(stage, 0.0) + cost
            failed_by_stage.setdefault(stage, 0)
            if status == "failed":
                failed_by_stage[stage] += count
        for stage, count in failed_by_stage.items():
            failures.add_metric([stage], count)
        for stage, cost in cost_by_stage.items():
            call_cost.add_metric([stage], cost)
        yield from (audits, audit_cost, calls, failures, call_cost)


def scrape(http: HttpMetrics, store: Store) -> bytes:
    """The exposition text: the request counters, then the database counts."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(store))
    return generate_latest(http.registry) + generate_latest(database)
