"""gunicorn settings for webgatos: `gunicorn --config gunicorn.conf.py` (the app is `wsgi_app`).

One worker process with threads per replica (scale with replicas). The life cycle (a clean exit on
a bad variable, the metrics directory, drain on SIGTERM) is service_common.gunicorn's.
"""

import logging
import os
import sys

from service_common import gunicorn as lifecycle
from webgatos import tracing
from webgatos.settings import Settings, SettingsError

_settings = lifecycle.load_settings(Settings.from_env, "webgatos")
# Without SECRET_KEY each process would pick its own random key, and the workers of one replica
# would reject each other's cookies: pick one here, in the master, for all of them.
os.environ["SECRET_KEY"] = _settings.secret_key
_METRICS_DIR, _OWN_METRICS_DIR = lifecycle.metrics_directory(_settings.prometheus_multiproc_dir, "webgatos")

wsgi_app = "webgatos:create_app()"
lifecycle.install_single_write_response()
globals().update(lifecycle.server_config(_settings, timeout=30, grace_after_drain=25))


def on_starting(server):
    try:
        _settings.check_workers(server.cfg.workers)  # --workers on the command line overrides the config
    except SettingsError as error:
        print(f"webgatos: {error}", file=sys.stderr)
        sys.exit(2)
    lifecycle.clear_directory(_METRICS_DIR)


def post_fork(server, worker):
    """No collections while the worker imports the app (lifecycle's post_fork, replaced by this
    one), and the span exporter's thread, in the worker: a thread started in the master would not
    survive the fork (OpenTelemetry's batch span processor is not fork-safe)."""
    lifecycle.pause_gc_while_loading(server, worker)
    tracing.start_exporter(_settings)


def post_worker_init(worker):
    """Freeze the loaded app out of later collections; log through gunicorn's error log; drain on SIGTERM."""
    lifecycle.freeze_loaded_app()
    logging.getLogger("webgatos").handlers = worker.log.error_log.handlers
    lifecycle.drain_on_sigterm(worker, worker.wsgi.extensions["webgatos"]["lifecycle"].draining,
                               _settings.shutdown_drain_seconds, worker.log.info)


def worker_exit(server, worker):
    tracing.stop_exporter()
    interface = getattr(getattr(worker, "wsgi", None), "session_interface", None)
    if interface is not None and hasattr(interface, "close"):
        interface.close()


def child_exit(server, worker):
    lifecycle.mark_worker_dead(worker, _METRICS_DIR)


def on_exit(server):
    if _OWN_METRICS_DIR:
        lifecycle.remove_directory(_METRICS_DIR)
