"""The gunicorn life cycle both services share; each gunicorn.conf.py calls these.

- `load_settings`: the settings from the environment, or one line naming the bad variable and exit
  code 2, before any worker starts.
- `metrics_directory`: the multiprocess metrics directory; it must exist before a worker imports
  prometheus_client. /tmp stays writable with a read-only root filesystem.
- `drain_on_sigterm`: on SIGTERM a worker first answers /readyz with 503 for the drain time, so a
  load balancer stops sending it traffic, then stops accepting and lets in-flight requests finish.
"""

import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable

from service_common.settings import SettingsError


def server_config(settings, *, timeout: int, grace_after_drain: int) -> dict:
    """The gunicorn settings both services use: one gthread worker pool sized by the settings, logs
    to stderr, the heartbeat under /tmp; `timeout` and the graceful time are the service's."""
    return {"bind": f"0.0.0.0:{settings.port}", "workers": settings.workers, "worker_class": "gthread",
            "threads": settings.threads, "timeout": timeout, "keepalive": 5,
            "graceful_timeout": int(settings.shutdown_drain_seconds) + grace_after_drain,
            "accesslog": None, "errorlog": "-", "loglevel": "info", "worker_tmp_dir": tempfile.gettempdir(),
            "control_socket_disable": True}


def load_settings(read: Callable[[], object], service: str):
    try:
        return read()
    except SettingsError as error:
        print(f"{service}: {error}", file=sys.stderr)
        sys.exit(2)


def metrics_directory(configured: str | None, service: str) -> tuple[str, bool]:
    """(the directory, whether this process made it and removes it at exit). A new one is exported
    as PROMETHEUS_MULTIPROC_DIR for the workers."""
    if configured:
        return configured, False
    directory = tempfile.mkdtemp(prefix=f"{service}-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory, True


def clear_directory(directory: str) -> None:
    for stale in os.listdir(directory):
        os.remove(os.path.join(directory, stale))


def remove_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def mark_worker_dead(worker, directory: str) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid, directory)


def drain_on_sigterm(worker, draining: threading.Event, seconds: float, log: Callable[[str], None]) -> None:
    """Replace the worker's SIGTERM handler with drain-then-stop."""
    stop = worker.handle_exit

    def drain_then_stop(signum, frame):
        if draining.is_set():
            return  # the arbiter and a process-group kill may both send SIGTERM
        draining.set()
        log(f"SIGTERM: /readyz answers 503 for {seconds:.1f}s, then the worker stops")
        timer = threading.Timer(seconds, stop, args=(signum, frame))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, drain_then_stop)
