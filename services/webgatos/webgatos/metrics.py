"""Prometheus metrics. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py before any
worker imports prometheus_client) makes every worker write its samples to files that /metrics
aggregates, so the figures are right with several workers."""

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

# The app's own registry, so another app in the same process (tests) cannot clash with its names.
APP_REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"],
                   registry=APP_REGISTRY)
LATENCY = Histogram("http_request_duration_seconds", "Time to answer an HTTP request", ["endpoint"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                    registry=APP_REGISTRY)
SESSIONS_CREATED = Counter("webgatos_sessions_created_total", "Sessions created (a color assigned)",
                           registry=APP_REGISTRY)
STORE_ERRORS = Counter("webgatos_store_errors_total", "Session store calls that failed", ["operation"],
                       registry=APP_REGISTRY)
FAULTS_INJECTED = Counter("webgatos_faults_injected_total", "Requests answered by a fault switch", ["kind"],
                          registry=APP_REGISTRY)
ProcessCollector(registry=APP_REGISTRY)


def exposition(multiproc_dir: str | None) -> tuple[bytes, str]:
    """The metrics in Prometheus text format, aggregated over workers in multiprocess mode."""
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry = APP_REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
