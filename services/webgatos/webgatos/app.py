"""The webgatos Flask application factory: settings, session store and state, then one blueprint
per concern (pages, API, probes, admin) and the WSGI layers every response goes through."""

import socket
import threading

from flask import Flask

from webgatos import admin, api, errors, metrics, pages, probes, tracing
from webgatos.colors import ColorWheel
from webgatos.faults import Faults
from webgatos.headers import with_common_headers
from webgatos.requestbody import MAX_BODY_BYTES
from webgatos.settings import Settings
from webgatos.stores import SESSION_COOKIE_NAME, make_session_interface

__all__ = ["MAX_BODY_BYTES", "Lifecycle", "create_app"]


class Lifecycle:
    """Process state the gunicorn hooks change: draining starts at SIGTERM."""

    def __init__(self):
        self.draining = threading.Event()


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
    # What the blueprints' views share, for the life of the app (gunicorn.conf.py reads it too).
    app.extensions["webgatos"] = {
        "settings": settings,
        "faults": Faults(settings.fault_error_rate, settings.fault_error_status, settings.fault_delay_seconds),
        "lifecycle": Lifecycle(),
        "colors": ColorWheel(),
        "replica_ip": settings.pod_ip or _own_ip(),
    }
    for blueprint in (pages.bp, api.bp, probes.bp, admin.bp):
        app.register_blueprint(blueprint)
    errors.register(app)
    metrics.HTTP.instrument(app)
    app.wsgi_app = with_common_headers(app.wsgi_app, settings.replica_name)
    tracing.instrument(app, settings)
    return app


def _own_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
