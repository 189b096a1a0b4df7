"""Prometheus metrics of a service: its own registry (so two apps in one process, as in the tests,
cannot clash), request count and latency per endpoint recorded by one Flask hook, the process
collector, and the exposition, aggregated over gunicorn's workers in multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py before any worker imports prometheus_client)."""

import time
from collections.abc import Sequence

from flask import Flask, Response, g, request, request_finished
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)


class HttpMetrics:
    """http_requests_total{endpoint,method,status} and http_request_duration_seconds{endpoint}."""

    def __init__(self, buckets: Sequence[float]):
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "Time to answer an HTTP request", ["endpoint"],
                                 buckets=tuple(buckets), registry=self.registry)
        ProcessCollector(registry=self.registry)

    def instrument(self, app: Flask) -> None:
        """Time every request from its first hook to the response being sent."""
        app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)

        # The labelled children, looked up once per (endpoint, method, status): `labels()` takes
        # a lock and checks its arguments on every call.
        children = {}

        def record(sender, response: Response, **extra) -> None:
            rule = request.url_rule
            endpoint = rule.rule if rule else "unmatched"
            key = (endpoint, request.method, response.status_code)
            try:
                count, latency = children[key]
            except KeyError:
                count, latency = children[key] = (self.requests.labels(endpoint, key[1], str(key[2])),
                                                  self.latency.labels(endpoint))
            count.inc()
            started_at = g.get("started_at")
            if started_at is not None:
                latency.observe(time.perf_counter() - started_at)

        request_finished.connect(record, app, weak=False)

    def exposition(self, multiproc_dir: str | None) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, aggregated over workers in multiprocess mode."""
        if multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST


def _start_clock() -> None:
    g.started_at = time.perf_counter()
