"""Issue 37 on the wire, against real gunicorn replicas of webgatos (memory and Redis stores) and
sqrt: clients that hold connections open with a head that never ends, chunked and cut-short bodies
to the admin API, and the admin API's credential. Every wait is bounded; the slow clients' sockets
are closed at the end of each test whatever happened."""

import http.client
import json
import socket
import threading
import time

import pytest

from lab.host.procs import LOOPBACK, free_port
from tests import hostile_input as hostile
from tests.conftest import ADMIN_AUTH, ADMIN_TOKEN, SQRT_GUNICORN_CONF

SLOW_CLIENTS = 50
PROBE_BUDGET_SECONDS = 1.0
PROBE_ROUNDS = 3
TRICKLE_INTERVAL = 0.5
# The worker refuses a head that has not arrived 10 s after the connection began
# (service_common.workers.HEAD_TIMEOUT_SECONDS); its loop looks every second.
HEAD_CUTOFF_BOUND = 10.0 + 5.0


class SlowHeads:
    """`count` connections that each send the start of a request head, then one more byte every
    TRICKLE_INTERVAL, and never the blank line that ends it (a slowloris); every fifth sends
    nothing at all. Stopped and closed on exit."""

    def __init__(self, host: str, port: int, count: int):
        self.address, self.count = (host, port), count
        self.socks: list[socket.socket] = []
        self.closed_by_server: set[int] = set()
        self.stop = threading.Event()
        self.feeder = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> "SlowHeads":
        for index in range(self.count):
            sock = socket.create_connection(self.address, timeout=5)
            if index % 5:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: replica\r\nX-Slow: ")
            self.socks.append(sock)
        self.feeder.start()
        return self

    def _trickle(self) -> None:
        deadline = time.monotonic() + 60  # bounded even if a test forgets to stop it
        while not self.stop.wait(TRICKLE_INTERVAL) and time.monotonic() < deadline:
            for index, sock in enumerate(self.socks):
                if index % 5 and index not in self.closed_by_server:
                    try:
                        sock.sendall(b"a")
                    except OSError:
                        self.closed_by_server.add(index)

    def all_closed_by_server(self) -> bool:
        """Whether the server has closed every connection (EOF, or a refusal then EOF)."""
        for index, sock in enumerate(self.socks):
            if index in self.closed_by_server:
                continue
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return False
            except OSError:
                data = b""
            if data and not data.startswith(b"HTTP/1.1 408 "):
                raise AssertionError(f"a slow client got {data[:120]!r}")
            if not data:
                self.closed_by_server.add(index)
        return len(self.closed_by_server) == len(self.socks)

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.feeder.join(timeout=5)
        for sock in self.socks:
            sock.close()


def timed_get(host: str, port: int, path: str) -> tuple[int | None, float]:
    """(status or None, seconds) of one GET on a new connection, as a kubelet probe sends it."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_BUDGET_SECONDS * 5)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        status = connection.getresponse().status
    except OSError:
        status = None
    finally:
        connection.close()
    return status, time.monotonic() - started


@pytest.fixture(params=["webgatos memory", "webgatos redis", "sqrt"])
def server(request, start_webgatos, procs) -> tuple[str, int]:
    """(host, port) of one real gunicorn replica, with its service's gunicorn.conf.py."""
    if request.param == "sqrt":
        port = free_port()
        procs.gunicorn("sqrt:create_app()", port, {"SHUTDOWN_DRAIN_SECONDS": "0"}, name="sqrt",
                       config=SQRT_GUNICORN_CONF)
        return LOOPBACK, port
    [url] = start_webgatos(request.param.split()[1], replicas=1)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_probes_and_pages_answer_within_a_second_while_50_slow_heads_are_held(server):
    host, port = server
    slow: list[tuple[str, int | None, float]] = []
    with SlowHeads(host, port, SLOW_CLIENTS) as heads:
        time.sleep(1.0)  # every slow client connected and trickling before the first probe
        for _ in range(PROBE_ROUNDS):
            for path in ("/healthz", "/readyz", "/"):
                status, seconds = timed_get(host, port, path)
                if status != 200 or seconds > PROBE_BUDGET_SECONDS:
                    slow.append((path, status, round(seconds, 2)))
            time.sleep(0.5)
        assert not slow, f"with {SLOW_CLIENTS} slow heads held: (path, status, seconds) {slow}"
        # The slow heads themselves are cut off, not held for ever.
        deadline = time.monotonic() + HEAD_CUTOFF_BOUND
        while not heads.all_closed_by_server():
            assert time.monotonic() < deadline, (f"{SLOW_CLIENTS - len(heads.closed_by_server)} slow heads still "
                                                 f"open {HEAD_CUTOFF_BOUND:g}s after they began")
            time.sleep(0.2)
    status, seconds = timed_get(host, port, "/healthz")
    assert status == 200 and seconds < PROBE_BUDGET_SECONDS


# --- Bodies: one limit under every framing -------------------------------------------------------

def exchange(host: str, port: int, raw: bytes, timeout: float = 15.0) -> bytes:
    """Send raw bytes, end our side, and return what the replica answers until it closes."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the replica may answer and close before it has read everything
            pass
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def chunked(body: bytes, size: int = 4096) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def put_faults(framing: str, payload: bytes) -> bytes:
    return (f"PUT /admin/faults HTTP/1.1\r\nHost: replica\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {ADMIN_TOKEN}\r\n{framing}\r\nConnection: close\r\n\r\n").encode() + payload


LIMIT = hostile.MAX_BODY_BYTES
WANTED = b'{"error_rate":0.5}'
BODY_CASES = {  # name: (raw request, the status it must get)
    "chunked, the issue's 1 MiB of spaces and garbage": (
        put_faults("Transfer-Encoding: chunked", chunked(WANTED + b" " * (1024 * 1024) + b"garbage", 65536)), 413),
    "chunked, one byte over the limit": (
        put_faults("Transfer-Encoding: chunked", chunked(WANTED + b" " * (LIMIT + 1 - len(WANTED)))), 413),
    "chunked, over the limit in one chunk": (
        put_faults("Transfer-Encoding: chunked", chunked(WANTED + b" " * LIMIT, LIMIT * 2)), 413),
    "Content-Length over the limit": (put_faults(f"Content-Length: {LIMIT + 1}", WANTED + b" " * (LIMIT + 1 - 18)),
                                      413),
    "chunked, cut off inside a chunk": (put_faults("Transfer-Encoding: chunked", b"12\r\n" + WANTED[:10]), 400),
    "chunked, cut off before the last chunk": (put_faults("Transfer-Encoding: chunked", b"12\r\n" + WANTED + b"\r\n"),
                                               400),
    "Content-Length, cut short": (put_faults("Content-Length: 100", WANTED), 400),
    "chunk size not hex": (put_faults("Transfer-Encoding: chunked", b"zz\r\n" + WANTED + b"\r\n0\r\n\r\n"), 400),
    "chunk size negative": (put_faults("Transfer-Encoding: chunked", b"-12\r\n" + WANTED + b"\r\n0\r\n\r\n"), 400),
    "chunk size too large": (put_faults("Transfer-Encoding: chunked", b"f" * 20 + b"\r\n" + WANTED + b"\r\n0\r\n\r\n"),
                             400),
    "chunk size larger than the chunk": (
        put_faults("Transfer-Encoding: chunked", b"40\r\n" + WANTED + b"\r\n0\r\n\r\n"), 400),
    "chunk without its CRLF": (put_faults("Transfer-Encoding: chunked", b"12\r\n" + WANTED + b"XX0\r\n\r\n"), 400),
}


@pytest.fixture(params=["memory", "redis"])
def replica(request, start_webgatos) -> tuple[str, int]:
    [url] = start_webgatos(request.param, replicas=1)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def error_rate(host: str, port: int) -> float:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/admin/faults", headers=ADMIN_AUTH)
        return json.loads(connection.getresponse().read())["error_rate"]
    finally:
        connection.close()


def test_bodies_over_the_limit_cut_short_or_malformed_get_a_4xx_and_change_nothing(replica):
    host, port = replica
    wrong = []
    for name, (raw, expected) in BODY_CASES.items():
        answer = exchange(host, port, raw)
        status = int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else None
        rate = error_rate(host, port)
        if status != expected or rate != 0.0:
            wrong.append(f"{name}: status {status} (expected {expected}), error_rate now {rate}")
    assert not wrong, "\n".join(wrong)
    # The same limit lets a whole chunked body within it through.
    answer = exchange(host, port, put_faults("Transfer-Encoding: chunked", chunked(WANTED + b" " * 1000, 7)))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert error_rate(host, port) == 0.5


# --- The admin API's credential ------------------------------------------------------------------

def call(host: str, port: int, method: str, headers: dict, body: str | None = None) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, "/admin/faults", body=body, headers={"Content-Type": "application/json", **headers})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_admin_api_needs_the_token_on_the_wire(replica):
    host, port = replica
    switch_on = json.dumps({"error_rate": 1.0})
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": ADMIN_TOKEN},
                    {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        assert (call(host, port, "GET", headers), call(host, port, "PUT", headers, switch_on)) == (401, 401), headers
    assert error_rate(host, port) == 0.0
    assert call(host, port, "PUT", ADMIN_AUTH, switch_on) == 200
    assert error_rate(host, port) == 1.0


def test_a_replica_without_a_token_refuses_every_admin_request(start_webgatos):
    [url] = start_webgatos("memory", replicas=1, ADMIN_TOKEN="")
    host, port = url.removeprefix("http://").rsplit(":", 1)
    for headers in ({}, ADMIN_AUTH):
        assert call(host, int(port), "PUT", headers, json.dumps({"error_rate": 1.0})) == 403
    status, _ = timed_get(host, int(port), "/api/session")
    assert status == 200
