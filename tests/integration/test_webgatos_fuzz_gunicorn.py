"""Hostile raw HTTP against real gunicorn replicas of webgatos (memory and Redis stores): request
lines, headers, cookies, framing (Content-Length, chunked) and bodies as an attacker may send them.
Every answer is below 500, the replica keeps serving and keeps sessions, and its log never shows a
traceback. Plus the requests of issue 18, on the wire."""

import http.client
import json
import re
import socket
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import hostile_input as hostile
from tests.conftest import ADMIN_AUTH, ADMIN_TOKEN, fuzz_examples

STATUS_LINE = re.compile(rb"(?:^|\r\n)HTTP/\d\.\d (\d{3})")
NO_FAULTS = json.dumps({"error_rate": 0.0, "delay_seconds": 0.0})
BROKEN_CHUNKED_PUT = (b"PUT /admin/faults HTTP/1.1\r\nHost: replica\r\nContent-Type: application/json\r\n"
                      + f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()
                      + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")


class Replica:
    """One gunicorn replica: its address, and its log read piece by piece."""

    def __init__(self, url: str, proc):
        parts = urlsplit(url)
        self.url, self.host, self.port, self.proc = url, parts.hostname, parts.port, proc
        self.log_offset = 0

    def send(self, raw: bytes, timeout: float = 15.0) -> bytes:
        """Send raw bytes, end our side, and return everything the replica answers until it closes."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            try:
                sock.sendall(raw)
                sock.shutdown(socket.SHUT_WR)
            except OSError:  # the replica may refuse the rest of a bad request and close first
                pass
            chunks = []
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    def call(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheader("Set-Cookie"), response.read()
        finally:
            connection.close()

    def new_log(self) -> str:
        text = self.proc.log_path.read_text(errors="replace")
        new, self.log_offset = text[self.log_offset:], len(text)
        return new


@pytest.fixture(params=["memory", "redis"])
def replica(request, start_webgatos, procs):
    [url] = start_webgatos(request.param, replicas=1)
    replica = Replica(url, procs.procs[-1])
    yield replica
    log = replica.proc.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


def latin1(text: str) -> bytes:
    return text.encode("latin-1")


request_targets = st.one_of(
    st.builds(lambda path, query: quote(path, safe="/%?=&;+:@!$'()*,~") + (f"?{quote(query, safe='=&%')}"
                                                                            if query else ""),
              hostile.paths, hostile.query_strings),
    st.builds(lambda path, query: (path + ("?" + query if query else "")).encode("utf-8", "surrogatepass")
              .decode("latin-1"), hostile.paths, hostile.query_strings),  # raw bytes, as no client should
    st.sampled_from(["*", "http://replica/api/session", "api/session", "/%", "/%zz", "/" + "a" * 9000, ""]),
)
versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.1 x", ""])
raw_routes = st.one_of(  # (method, request target): as in hostile.routes, half the time a real route
    st.builds(lambda route, query: (route[0], route[1] + (f"?{quote(query, safe='=&%')}" if query else "")),
              st.sampled_from(hostile.WEBGATOS_ROUTES), hostile.query_strings),
    st.tuples(st.one_of(hostile.methods, st.sampled_from(["get", "G ET", "", "PUT\x00", "CONNECT"])), request_targets),
)


@st.composite
def framed(draw, body: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Framing headers and the bytes after the header block, honest or not."""
    kind = draw(st.sampled_from(["length", "none", "wrong length", "chunked", "broken chunked", "both"]))
    if kind == "length":
        return [("Content-Length", str(len(body)))], body
    if kind == "none":
        return [], body
    if kind == "wrong length":
        value = draw(st.one_of(st.integers(-5, len(body) + 5).map(str), st.sampled_from(
            ["", "abc", "1e3", "+1", " 2", "0x10", "99999999999999999999999", "1,1", "-0"])))
        headers = [("Content-Length", value)]
        if draw(st.booleans()):
            headers.append(("Content-Length", str(len(body))))
        return headers, body
    chunks = draw(st.lists(st.integers(1, 64), max_size=4))
    encoded, rest = b"", body
    for size in chunks:
        piece, rest = rest[:size], rest[size:]
        encoded += b"%x\r\n%s\r\n" % (len(piece), piece)
    encoded += b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest) if rest else b"0\r\n\r\n"
    if kind == "broken chunked":
        encoded = draw(st.sampled_from([b"zz\r\n" + encoded, b"ffffffffffffffffffff\r\n", encoded[:-2], b"5\r\n{}",
                                        b"2;\x00\r\n{}\r\n0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n", encoded + b"GARBAGE",
                                        b"2\r\n{}XX0\r\n\r\n"]))
    headers = [("Transfer-Encoding", draw(st.sampled_from(["chunked", "gzip, chunked", "chunked, gzip", "CHUNKED",
                                                           "identity", " chunked"])))]
    if kind == "both":
        headers.append(("Content-Length", str(len(encoded))))
    return headers, encoded


@st.composite
def raw_requests(draw) -> bytes:
    method, target = draw(raw_routes)
    line = f"{method} {target} {draw(versions)}"
    hosts = st.sampled_from(["replica", "", "a b", "[::1", "x" * 300])
    headers = [("Host", draw(hosts))] if draw(st.booleans()) else []
    headers += list(draw(hostile.headers).items())
    if draw(st.booleans()):
        headers.append(("Content-Type", draw(hostile.content_types)))
    if draw(st.booleans()):
        headers.append(("Cookie", draw(hostile.hostile_cookies)))
    if draw(st.booleans()):  # with the admin token half the time, so hostile bodies reach the admin views
        headers.append(("Authorization", f"Bearer {ADMIN_TOKEN}"))
    framing, payload = draw(framed(draw(hostile.bodies)))
    headers += framing
    headers.append(("Connection", "close"))
    head = "\r\n".join([line, *(f"{name}: {value}" for name, value in draw(st.permutations(headers)))])
    return latin1(head) + b"\r\n\r\n" + payload


@settings(max_examples=fuzz_examples(1), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_requests())
def test_any_raw_request_is_below_500_and_logs_no_traceback(replica, raw):
    """The replica is shared by all the examples, as by every attacker of a real deployment."""
    status, set_cookie, _ = replica.call("GET", "/api/session")
    assert status == 200
    own_cookie = set_cookie.split(";", 1)[0]
    color = json.loads(replica.call("GET", "/api/session", headers={"Cookie": own_cookie})[2])["color"]

    answer = replica.send(raw)
    # A valid PUT /admin/faults may have switched faults on: the checks below need them off.
    assert replica.call("PUT", "/admin/faults", NO_FAULTS, {"Content-Type": "application/json", **ADMIN_AUTH})[0] == 200

    statuses = [int(code) for code in STATUS_LINE.findall(answer)]
    assert all(code < 500 for code in statuses), answer[:500]
    assert replica.call("GET", "/healthz")[0] == 200  # still serving
    status, _, body = replica.call("GET", "/api/session", headers={"Cookie": own_cookie})
    assert status == 200 and json.loads(body)["color"] == color  # sessions intact
    log = replica.new_log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


@settings(max_examples=fuzz_examples(1), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=hostile.bodies, content_type=hostile.content_types)
def test_fault_admin_on_the_wire_answers_200_or_400_with_a_reason(replica, body, content_type):
    status, _, answer = replica.call("PUT", "/admin/faults", body, {"Content-Type": content_type, **ADMIN_AUTH})
    assert replica.call("PUT", "/admin/faults", NO_FAULTS, {"Content-Type": "application/json", **ADMIN_AUTH})[0] == 200
    if status == 413:
        assert len(body) > hostile.MAX_BODY_BYTES
    elif status != 200:
        assert status == 400, answer[:300]
        reason = json.loads(answer)["error"]
        assert reason and "\n" not in reason
    log = replica.new_log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


@pytest.mark.parametrize("body", hostile.ISSUE_DEEP_BODIES.values(), ids=hostile.ISSUE_DEEP_BODIES.keys())
def test_issue_18_deep_json_is_a_400_with_a_reason_on_the_wire(replica, body):
    response = requests.put(replica.url + "/admin/faults", data=body,
                            headers={"Content-Type": "application/json", **ADMIN_AUTH}, timeout=15)
    assert response.status_code == 400
    assert "deeper than 32 levels" in response.json()["error"]
    assert requests.get(replica.url + "/admin/faults", headers=ADMIN_AUTH, timeout=15).json()["error_rate"] == 0.0
    assert "Traceback" not in replica.new_log()


def test_broken_chunked_body_is_a_400_with_a_reason(replica):
    """Found by the fuzz pass: gunicorn's own InvalidChunkSize, raised while the app read the body."""
    answer = replica.send(BROKEN_CHUNKED_PUT)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"cannot read the body: InvalidChunkSize" in answer
    assert "Traceback" not in replica.new_log()
