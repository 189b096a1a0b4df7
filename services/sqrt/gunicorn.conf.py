"""gunicorn settings for sqrt: `gunicorn --config gunicorn.conf.py` (the app is `wsgi_app`).

One worker process per replica (the HPA scales replicas on CPU). The life cycle (a clean exit on
a bad variable, the metrics directory, drain on SIGTERM) is service_common.gunicorn's.
"""

from service_common import gunicorn as lifecycle
from sqrt.settings import Settings

_settings = lifecycle.load_settings(Settings.from_env, "sqrt")
_METRICS_DIR, _OWN_METRICS_DIR = lifecycle.metrics_directory(_settings.prometheus_multiproc_dir, "sqrt")

wsgi_app = "sqrt:create_app()"
# The largest allowed `iterations` takes seconds of CPU: a long worker timeout and grace.
lifecycle.install_single_write_response()
globals().update(lifecycle.server_config(_settings, timeout=120, grace_after_drain=60))


def on_starting(server):
    lifecycle.clear_directory(_METRICS_DIR)


def post_worker_init(worker):
    """Freeze the loaded app out of later collections; drain on SIGTERM."""
    lifecycle.freeze_loaded_app()
    lifecycle.drain_on_sigterm(worker, worker.wsgi.extensions["sqrt"]["draining"],
                               _settings.shutdown_drain_seconds, worker.log.info)


def child_exit(server, worker):
    lifecycle.mark_worker_dead(worker, _METRICS_DIR)


def on_exit(server):
    if _OWN_METRICS_DIR:
        lifecycle.remove_directory(_METRICS_DIR)
