"""The webgatos Flask application: a color per user session, kept in the configured store."""

import functools
import hashlib
import json
import logging
import random
import secrets
import socket
import threading
import time

from flask import Flask, Response, jsonify, render_template, request, session
from werkzeug.exceptions import HTTPException

from webgatos import metrics
from webgatos.colors import ColorWheel, text_color
from webgatos.faults import EXPECTED_BODY, FaultInputError, Faults
from webgatos.jsonbody import JsonBodyError, parse_json_body, shown
from webgatos.settings import Settings
from webgatos.stores import (
    SESSION_COOKIE_NAME,
    STORE_UNAVAILABLE_MESSAGE,
    StoreUnavailable,
    make_session_interface,
)

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024  # the admin API's JSON is a few dozen bytes; larger bodies are a 413
# jsonify's compact output, from one encoder: jsonify builds a new one for every response.
API_JSON = json.JSONEncoder(separators=(",", ":"))


class Lifecycle:
    """Process state the gunicorn hooks change: draining starts at SIGTERM."""

    def __init__(self):
        self.draining = threading.Event()

    def begin_drain(self) -> None:
        self.draining.set()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=settings.session_ttl_seconds,
        SESSION_REFRESH_EACH_REQUEST=True,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.json.sort_keys = False
    app.session_interface = make_session_interface(
        app, settings, on_store_error=lambda operation: metrics.STORE_ERRORS.labels(operation).inc())
    colors = ColorWheel()
    faults = Faults(settings.fault_error_rate, settings.fault_error_status, settings.fault_delay_seconds)
    lifecycle = Lifecycle()
    replica_ip = settings.pod_ip or _own_ip()
    app.extensions["webgatos"] = {"settings": settings, "faults": faults, "lifecycle": lifecycle}

    def visit() -> dict:
        """Count this visit in the user's session, giving a color to a new session."""
        user = session._get_current_object()  # the session itself, not a lookup per access
        if getattr(user, "store_unavailable", False):
            raise StoreUnavailable("session store read failed")
        is_new = "color" not in user
        if is_new:
            user["color"] = colors.next()
            metrics.SESSIONS_CREATED.inc()
        user["visits"] = visits = int(user.get("visits", 0)) + 1
        return {
            "color": user["color"],
            "hostname": settings.replica_name,
            "ip": replica_ip,
            "store": settings.session_store,
            "new": is_new,
            "visits": visits,
            "session_id_hash": hashlib.sha256(user.sid.encode()).hexdigest()[:12],
        }

    metrics.HTTP.instrument(app)
    app.wsgi_app = with_common_headers(app.wsgi_app, settings.replica_name)

    def with_faults(view):
        """The fault switches in front of a session view: a delay, then maybe an error instead."""
        @functools.wraps(view)
        def faulted():
            delay, error_status = faults.draw()
            if delay:
                metrics.FAULTS_INJECTED.labels("delay").inc()
                time.sleep(delay)
            if error_status is not None:
                metrics.FAULTS_INJECTED.labels("error").inc()
                return Response(f"Injected fault ({error_status}).\n", status=error_status, mimetype="text/plain")
            return view()
        return faulted

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error):
        log.warning("session store unavailable: %s", error)  # the client gets a generic 503; the cause is here
        return Response(STORE_UNAVAILABLE_MESSAGE, status=503, mimetype="text/plain", headers={"Retry-After": "1"})

    @app.errorhandler(413)
    def body_too_large(error):
        return Response(f"Request body over {MAX_BODY_BYTES} bytes.\n", status=413, mimetype="text/plain")

    @app.errorhandler(500)
    def internal_error(error):
        return Response("Internal error.\n", status=500, mimetype="text/plain")

    @app.get("/")
    @with_faults
    def index():
        data = visit()
        nonce = secrets.token_urlsafe(16)
        html = render_template("index.html", **data, text_color=text_color(data["color"]),
                               number=random.randint(0, 999_999), nonce=nonce)
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return response

    @app.get("/api/session")
    @with_faults
    def api_session():
        return Response(API_JSON.encode(visit()) + "\n", mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz():
        if lifecycle.draining.is_set():
            return Response("draining\n", status=503, mimetype="text/plain")
        try:
            app.session_interface.ping()
        except StoreUnavailable as error:
            log.warning("readyz: session store unavailable: %s", error)
            return Response("session store unavailable\n", status=503, mimetype="text/plain")
        return Response("ready\n", mimetype="text/plain")

    @app.get("/metrics")
    def prometheus_metrics():
        body, content_type = metrics.HTTP.exposition(settings.prometheus_multiproc_dir)
        return Response(body, content_type=content_type)

    @app.get("/admin/faults")
    def get_faults():
        return jsonify(faults.snapshot())

    @app.put("/admin/faults")
    def put_faults():
        if not request.is_json:
            given = f", not {shown(request.mimetype)}" if request.mimetype else ""
            return jsonify({"error": f"Content-Type must be application/json{given}: send {EXPECTED_BODY}"}), 400
        try:
            return jsonify(faults.update(parse_json_body(request_body())))
        except (JsonBodyError, FaultInputError) as error:
            return jsonify({"error": str(error)}), 400

    return app


COMMON_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                  ("X-Frame-Options", "DENY")]
NO_STORE_PATHS = frozenset({"/", "/api/session"})  # per-user pages


def with_common_headers(wsgi_app, replica_name: str):
    """Add the replica's name and the security headers to every response, error pages included.
    Views never set these, so they are appended to the header list as it goes to the server: on
    werkzeug's Headers each set or setdefault rescans and revalidates the list (a tenth of a
    request's cost in the profile)."""
    headers = [("X-Replica", replica_name), *COMMON_HEADERS]
    no_store = [*headers, ("Cache-Control", "no-store")]

    def app_with_headers(environ, start_response):
        extra = no_store if environ.get("PATH_INFO") in NO_STORE_PATHS else headers

        def start_with_headers(status, response_headers, exc_info=None):
            response_headers.extend(extra)
            return start_response(status, response_headers, exc_info)

        return wsgi_app(environ, start_with_headers)

    return app_with_headers


def request_body() -> bytes:
    """The raw body, or JsonBodyError when the server cannot deliver it (e.g. gunicorn's
    InvalidChunkSize for a broken chunked body, an exception of the server's own)."""
    try:
        return request.get_data(cache=False)
    except HTTPException:
        raise  # 413 over MAX_CONTENT_LENGTH, 400 for a client gone mid-body: answers already
    except Exception as error:
        raise JsonBodyError(f"cannot read the body: {type(error).__name__}") from None


def _own_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
