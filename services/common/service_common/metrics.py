"""Prometheus metrics of a service: its own registry (so two apps in one process, as in the tests,
cannot clash), request count and latency per endpoint recorded by one Flask hook, the process
collector, and the exposition, aggregated over gunicorn's workers in multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py before any worker imports prometheus_client)."""

import time
from collections.abc import Sequence

from flask import Flask
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
        """Count and time every request around the app's WSGI call, from its start to the status
        line (what Flask's request_finished signal marks). At this layer it costs one call per
        request: a before_request hook and a signal receiver cost a tenth of a session request."""
        # The labelled children, looked up once per (endpoint, method, status): `labels()` takes
        # a lock and checks its arguments on every call.
        children = {}
        wsgi_app = app.wsgi_app

        def counted(environ, start_response):
            started_at = time.perf_counter()

            def start_and_count(status: str, headers, exc_info=None):
                flask_request = environ.get("werkzeug.request")
                rule = flask_request.url_rule if flask_request is not None else None
                key = (rule.rule if rule else "unmatched", environ.get("REQUEST_METHOD", ""), status[:3])
                try:
                    count, latency = children[key]
                except KeyError:
                    count, latency = children[key] = (self.requests.labels(*key), self.latency.labels(key[0]))
                count.inc()
                latency.observe(time.perf_counter() - started_at)
                return start_response(status, headers, exc_info)

            return wsgi_app(environ, start_and_count)

        app.wsgi_app = counted

    def exposition(self, multiproc_dir: str | None) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, aggregated over workers in multiprocess mode."""
        if multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST
