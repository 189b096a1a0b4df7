"""service_common.gunicorn's SingleWriteResponse against gunicorn's own Response, on a socket that
records each `sendall`: a head and its body must leave in one write, and the bytes must be the same."""

import subprocess
import sys

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import wsgi
from service_common.gunicorn import SingleWriteResponse

from tests.conftest import REPO_ROOT, SQRT_GUNICORN_CONF, WEBGATOS_GUNICORN_CONF


class RecordingSocket:
    def __init__(self):
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))


class Request:
    def __init__(self, method="GET", version=(1, 1)):
        self.method = method
        self.version = version

    def should_close(self):
        return False


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch):
    monkeypatch.setattr(util, "http_date", lambda *args: "Thu, 03 Dec 2026 09:00:00 GMT")


def respond(response_class, status, headers, body_parts, method="GET"):
    sock = RecordingSocket()
    response = response_class(Request(method), sock, Config())
    response.start_response(status, headers)
    for part in body_parts:
        response.write(part)
    response.close()
    return sock.writes, response


def test_gunicorns_own_response_writes_the_head_and_the_body_apart():
    """Why the subclass exists; if gunicorn starts writing them together, it can go."""
    writes, _ = respond(wsgi.Response, "200 OK", [("Content-Length", "5")], [b"hello"])
    assert len(writes) == 2, writes
    assert writes[0].endswith(b"\r\n\r\n") and writes[1] == b"hello"


def test_a_sized_response_leaves_in_one_write_with_the_same_bytes():
    headers = [("Content-Type", "text/html"), ("Content-Length", "5")]
    writes, response = respond(SingleWriteResponse, "200 OK", headers, [b"hello"])
    own_writes, _ = respond(wsgi.Response, "200 OK", headers, [b"hello"])
    assert writes == [b"".join(own_writes)]
    assert response.headers_sent and response.sent == 5


def test_only_the_first_body_write_carries_the_head():
    headers = [("Content-Length", "10")]
    writes, _ = respond(SingleWriteResponse, "200 OK", headers, [b"hello", b"world"])
    own_writes, _ = respond(wsgi.Response, "200 OK", headers, [b"hello", b"world"])
    assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\nhello") and writes[1] == b"world"
    assert b"".join(writes) == b"".join(own_writes)


@pytest.mark.parametrize("method, status, body_parts", [
    ("HEAD", "200 OK", [b"dropped"]),
    ("GET", "204 No Content", []),
    ("GET", "200 OK", []),
])
def test_a_response_without_body_bytes_sends_its_head_on_close(method, status, body_parts):
    headers = [("Content-Length", "0")] if status.startswith("200") and method == "GET" else []
    writes, response = respond(SingleWriteResponse, status, headers, body_parts, method)
    own_writes, _ = respond(wsgi.Response, status, headers, body_parts, method)
    assert writes == own_writes and len(writes) == 1 and response.headers_sent


def test_a_chunked_response_keeps_gunicorns_framing():
    writes, _ = respond(SingleWriteResponse, "200 OK", [], [b"hello", b"world"])
    own_writes, _ = respond(wsgi.Response, "200 OK", [], [b"hello", b"world"])
    assert writes == own_writes
    assert b"Transfer-Encoding: chunked" in writes[0]


def test_nothing_is_on_the_wire_before_the_body_so_an_error_can_still_be_a_500():
    """gunicorn writes a 500 only while `headers_sent` is false."""
    sock = RecordingSocket()
    response = SingleWriteResponse(Request(), sock, Config())
    response.start_response("200 OK", [("Content-Length", "5")])
    response.send_headers()
    assert sock.writes == [] and not response.headers_sent


@pytest.mark.processes
@pytest.mark.parametrize("conf", [WEBGATOS_GUNICORN_CONF, SQRT_GUNICORN_CONF], ids=["webgatos", "sqrt"])
def test_each_services_gunicorn_config_installs_it(conf, tmp_path):
    """In a fresh interpreter, as gunicorn's master reads the file before it forks the workers."""
    program = ("import runpy, sys; from gunicorn.http import wsgi; runpy.run_path(sys.argv[1]); "
               "print(wsgi.Response.__module__, wsgi.Response.__name__)")
    result = subprocess.run([sys.executable, "-c", program, str(conf)], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
                                                            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["service_common.gunicorn", "SingleWriteResponse"]


GC_LIFECYCLE = """
import gc, logging, runpy, sys, types
conf = runpy.run_path(sys.argv[1])
conf["post_fork"](None, None)  # gunicorn calls it in the new worker, before the app is imported
paused = not gc.isenabled()
app = __import__(sys.argv[2]).create_app()
worker = types.SimpleNamespace(wsgi=app, handle_exit=lambda *args: None,
                               log=types.SimpleNamespace(error_log=logging.getLogger("test"), info=print))
conf["post_worker_init"](worker)
print(paused, gc.isenabled(), gc.get_freeze_count() > 10_000)
"""


@pytest.mark.processes
@pytest.mark.parametrize(("conf", "package"), [(WEBGATOS_GUNICORN_CONF, "webgatos"), (SQRT_GUNICORN_CONF, "sqrt")],
                         ids=["webgatos", "sqrt"])
def test_a_worker_imports_the_app_without_collections_then_freezes_it_and_collects_again(conf, package, tmp_path):
    result = subprocess.run([sys.executable, "-c", GC_LIFECYCLE, str(conf), package], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
                                                            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                                                            "SECRET_KEY": "test"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["True", "True", "True"]
