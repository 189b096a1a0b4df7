"""gunicorn settings for webgatos: `gunicorn --config gunicorn.conf.py 'webgatos:create_app()'`.

One worker process with threads per replica (scale with replicas). On SIGTERM a worker first
answers /readyz with 503 for SHUTDOWN_DRAIN_SECONDS, so a load balancer stops sending it traffic,
then stops accepting and lets in-flight requests finish. A bad environment variable stops
start-up here with one line naming it (exit code 2), before any worker starts.
"""

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading

from webgatos.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
except SettingsError as error:
    print(f"webgatos: {error}", file=sys.stderr)
    sys.exit(2)

# Metrics of all workers are aggregated from files in this directory; it must exist before a
# worker imports prometheus_client. /tmp stays writable with a read-only root filesystem.
# Without SECRET_KEY each process would pick its own random key, and the workers of one replica
# would reject each other's cookies: pick one here, in the master, for all of them.
os.environ["SECRET_KEY"] = _settings.secret_key

_OWN_METRICS_DIR = not _settings.prometheus_multiproc_dir
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="webgatos-metrics-")
    _settings = Settings.from_env()
_METRICS_DIR = _settings.prometheus_multiproc_dir

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = 30
keepalive = 5
graceful_timeout = int(_settings.shutdown_drain_seconds) + 25
accesslog = None
errorlog = "-"
loglevel = "info"
worker_tmp_dir = tempfile.gettempdir()
control_socket_disable = True


def on_starting(server):
    try:
        _settings.check_workers(server.cfg.workers)  # --workers on the command line overrides the config
    except SettingsError as error:
        print(f"webgatos: {error}", file=sys.stderr)
        sys.exit(2)
    for stale in os.listdir(_METRICS_DIR):
        os.remove(os.path.join(_METRICS_DIR, stale))


def post_worker_init(worker):
    """Log the app through gunicorn's error log; replace the worker's SIGTERM handler with drain-then-stop."""
    logging.getLogger("webgatos").handlers = worker.log.error_log.handlers
    stop = worker.handle_exit
    lifecycle = worker.wsgi.extensions["webgatos"]["lifecycle"]

    def drain_then_stop(signum, frame):
        if lifecycle.draining.is_set():
            return  # the arbiter and a process-group kill may both send SIGTERM
        lifecycle.begin_drain()
        worker.log.info("SIGTERM: /readyz answers 503 for %.1fs, then the worker stops",
                        _settings.shutdown_drain_seconds)
        timer = threading.Timer(_settings.shutdown_drain_seconds, stop, args=(signum, frame))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, drain_then_stop)


def worker_exit(server, worker):
    interface = getattr(getattr(worker, "wsgi", None), "session_interface", None)
    if interface is not None and hasattr(interface, "close"):
        interface.close()


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
