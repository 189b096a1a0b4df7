"""gunicorn settings for sqrt: `gunicorn --config gunicorn.conf.py 'sqrt:create_app()'`.

One worker process per replica (the HPA scales replicas on CPU). On SIGTERM a worker answers
/readyz with 503 for SHUTDOWN_DRAIN_SECONDS, then stops accepting and finishes in-flight
requests. A bad environment variable stops start-up here with one line naming it (exit code 2).
"""

import os
import shutil
import signal
import sys
import tempfile
import threading

from sqrt.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
except SettingsError as error:
    print(f"sqrt: {error}", file=sys.stderr)
    sys.exit(2)

# Metrics of all workers are aggregated from files in this directory; it must exist before a
# worker imports prometheus_client. /tmp stays writable with a read-only root filesystem.
_OWN_METRICS_DIR = not _settings.prometheus_multiproc_dir
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sqrt-metrics-")
    _settings = Settings.from_env()
_METRICS_DIR = _settings.prometheus_multiproc_dir

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = 120  # the largest allowed `iterations` takes seconds of CPU
keepalive = 5
graceful_timeout = int(_settings.shutdown_drain_seconds) + 60
accesslog = None
errorlog = "-"
loglevel = "info"
worker_tmp_dir = tempfile.gettempdir()
control_socket_disable = True


def on_starting(server):
    for stale in os.listdir(_METRICS_DIR):
        os.remove(os.path.join(_METRICS_DIR, stale))


def post_worker_init(worker):
    """Replace the worker's SIGTERM handler with drain-then-stop."""
    stop = worker.handle_exit
    draining = worker.wsgi.extensions["sqrt"]["draining"]

    def drain_then_stop(signum, frame):
        if draining.is_set():
            return  # the arbiter and a process-group kill may both send SIGTERM
        draining.set()
        timer = threading.Timer(_settings.shutdown_drain_seconds, stop, args=(signum, frame))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, drain_then_stop)


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
