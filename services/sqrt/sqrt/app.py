"""The sqrt Flask application: `GET /` does `x += sqrt(x)` N times and answers `OK!`."""

import math
import re
import threading
import time

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

from sqrt.settings import DEFAULT_ITERATIONS, Settings

# The app's own registry, so another app in the same process (tests) cannot clash with its names.
APP_REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"],
                   registry=APP_REGISTRY)
LATENCY = Histogram("http_request_duration_seconds", "Time to answer an HTTP request", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=APP_REGISTRY)
ITERATIONS = Counter("sqrt_iterations_total", "Square-root iterations computed", registry=APP_REGISTRY)
ProcessCollector(registry=APP_REGISTRY)


def burn(iterations: int) -> float:
    """The php-apache walkthrough's loop: `$x += sqrt($x)`, starting from 0.0001."""
    x = 0.0001
    for _ in range(iterations):
        x += math.sqrt(x)
    return x


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    draining = threading.Event()
    app.extensions["sqrt"] = {"settings": settings, "draining": draining}

    def bad_request(reason: str) -> Response:
        return Response(f"{reason}\n", status=400, mimetype="text/plain")

    @app.before_request
    def start_request():
        g.started_at = time.perf_counter()

    def record(sender, response: Response, **extra) -> None:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        started_at = g.get("started_at")
        if started_at is not None:
            LATENCY.labels(endpoint).observe(time.perf_counter() - started_at)

    request_finished.connect(record, app, weak=False)

    @app.get("/")
    def index():
        raw = request.args.get("iterations")
        iterations = DEFAULT_ITERATIONS
        if raw is not None:
            if not re.fullmatch(r"\d{1,12}", raw.strip()):
                return bad_request(f"iterations={raw!r} is not valid: use a whole number from 0 "
                                   f"to {settings.max_iterations}")
            iterations = int(raw)
        if iterations > settings.max_iterations:
            return bad_request(f"iterations={iterations} is above the maximum {settings.max_iterations} "
                               "(SQRT_MAX_ITERATIONS)")
        burn(iterations)
        ITERATIONS.inc(iterations)
        return Response("OK!", mimetype="text/plain")

    @app.get("/healthz")
    def healthz():
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz():
        if draining.is_set():
            return Response("draining\n", status=503, mimetype="text/plain")
        return Response("ready\n", mimetype="text/plain")

    @app.get("/metrics")
    def prometheus_metrics():
        if settings.prometheus_multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=settings.prometheus_multiproc_dir)
        else:
            registry = APP_REGISTRY
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    @app.after_request
    def common_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return app
