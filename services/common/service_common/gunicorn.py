"""The gunicorn life cycle both services share; each gunicorn.conf.py calls these.

- `load_settings`: the settings from the environment, or one line naming the bad variable and exit
  code 2, before any worker starts.
- `metrics_directory`: the multiprocess metrics directory; it must exist before a worker imports
  prometheus_client. /tmp stays writable with a read-only root filesystem.
- `drain_on_sigterm`: on SIGTERM a worker first answers /readyz with 503 for the drain time, so a
  load balancer stops sending it traffic, then stops accepting and lets in-flight requests finish.
- `install_single_write_response`: a response's head and its first body bytes leave in one write.
- `server_config`'s `post_fork` / `freeze_loaded_app`: no garbage collection while a worker imports
  the app, then the app's objects frozen out of later collections (the `gc.freeze` recipe).
"""

import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable

from gunicorn.http import wsgi

from service_common.settings import SettingsError

WORKER_CLASS = "service_common.workers.HeadFirstThreadWorker"


def server_config(settings, *, timeout: int, grace_after_drain: int) -> dict:
    """The gunicorn settings both services use: workers with a thread pool sized by the settings
    that take a request only once its head has arrived (WORKER_CLASS, service_common.workers), logs
    to stderr, the heartbeat under /tmp; `timeout` and the graceful time are the service's."""
    return {"bind": f"0.0.0.0:{settings.port}", "workers": settings.workers, "worker_class": WORKER_CLASS,
            "threads": settings.threads, "timeout": timeout, "keepalive": 5,
            "graceful_timeout": int(settings.shutdown_drain_seconds) + grace_after_drain,
            "accesslog": None, "errorlog": "-", "loglevel": "info", "worker_tmp_dir": tempfile.gettempdir(),
            "control_socket_disable": True, "post_fork": pause_gc_while_loading,
            "post_worker_init": freeze_loaded_app}


def pause_gc_while_loading(server, worker) -> None:
    """In the new worker, before it imports the app: the import allocates a few hundred thousand
    long-lived objects, and the collections they trigger find no garbage (a tenth of the start-up)."""
    gc.disable()


def freeze_loaded_app(worker=None) -> None:
    """After the app is loaded: its objects live as long as the worker, so later collections skip
    them (shorter pauses on the request path), and collection resumes for what requests allocate.
    A conf that defines its own post_worker_init calls this first."""
    gc.freeze()
    gc.enable()


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


class SingleWriteResponse(wsgi.Response):
    """gunicorn's HTTP/1 response, with the head held back until the first body bytes so that both
    leave in one `sendall`. gunicorn writes them apart, and a replica SIGKILLed between the two
    writes hands the proxy a head without its body: the proxy has already answered, so it cannot
    retry, and the client gets a cut-short response. With one write the proxy gets all or nothing,
    and nothing is a reset it retries. Chunked bodies and sendfile keep gunicorn's own path."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._held_head = None
        self._hold_head = True

    def send_headers(self):
        if self.headers_sent or self._held_head is not None:
            return
        if self.chunked or not self._hold_head:
            super().send_headers()
            return
        lines = self.default_headers() + [f"{name}: {value}\r\n" for name, value in self.headers]
        self._held_head = ("".join(lines) + "\r\n").encode("latin-1")

    def _flush_head(self, body=b""):
        head, self._held_head = self._held_head, None
        self.sock.sendall(head + body)
        self.headers_sent = True

    def _emit_body(self, data):
        if self._held_head is None:
            super()._emit_body(data)
        else:
            self._flush_head(data)

    def sendfile(self, respiter):
        self._hold_head = False
        if self._held_head is not None:
            self._flush_head()
        return super().sendfile(respiter)

    def close(self):
        self._hold_head = False  # a head not yet sent (no body bytes came) goes out now
        if self._held_head is not None:
            self._flush_head()
        super().close()


def install_single_write_response() -> None:
    """gunicorn's workers build responses through `wsgi.create`, which looks `Response` up when
    called: set in the master, before the workers fork."""
    wsgi.Response = SingleWriteResponse
