"""The sqrt Flask application: `GET /` does `x += sqrt(x)` N times and answers `OK!`."""

import math
import re
import threading

from flask import Flask, Response, request
from prometheus_client import Counter
from service_common.metrics import HttpMetrics

from sqrt.settings import DEFAULT_ITERATIONS, Settings

HTTP = HttpMetrics(buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ITERATIONS = Counter("sqrt_iterations_total", "Square-root iterations computed", registry=HTTP.registry)


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

    HTTP.instrument(app)

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
        body, content_type = HTTP.exposition(settings.prometheus_multiproc_dir)
        return Response(body, content_type=content_type)

    @app.after_request
    def common_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return app
