"""The PromQL client's answers and its one-line errors, against a small in-process HTTP server
that answers as Prometheus' API does (and one where nothing listens)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from lab.host.procs import LOOPBACK, free_port
from lab.observe.promql import PromQL, PromQLError

ANSWERS = {
    "one": (200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1.0, "0.25"]}]}}),
    "two": (200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"a": "1"}, "value": [1.0, "1"]}, {"metric": {"a": "2"}, "value": [1.0, "2"]}]}}),
    "none": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
    "nan": (200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1.0, "NaN"]}]}}),
    "bad(": (400, {"status": "error", "errorType": "bad_data",
                   "error": "1:5: parse error: unclosed left\nparenthesis"}),
    "range": (200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[10, "0"], [11, "2"]]}]}}),
    "scalar": (200, {"status": "success", "data": {"resultType": "scalar", "result": [5.0, "3"]}}),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query).get("query", [""])[0]
        status, body = ANSWERS.get(query, (500, {"status": "error", "error": "boom"}))
        self.server.seen.append((parts.path, parse_qs(parts.query)))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def api():
    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield PromQL(f"http://{LOOPBACK}:{server.server_address[1]}", timeout=5), server
    server.shutdown()
    server.server_close()


def test_value_of_a_single_series(api):
    client, server = api
    assert client.value("one", at=123.5) == 0.25
    path, params = server.seen[-1]
    assert path == "/api/v1/query" and params["time"] == ["123.500"]


def test_a_scalar_result_is_a_value(api):
    assert api[0].value("scalar") == 3.0


def test_range_series(api):
    client, server = api
    assert client.series("range", 10, 11, 1) == [(10.0, 0.0), (11.0, 2.0)]
    path, params = server.seen[-1]
    assert path == "/api/v1/query_range" and params["step"] == ["1"]


@pytest.mark.parametrize(("query", "reason"), [
    ("none", "no data: none"),
    ("two", "2 series where one was expected (aggregate it): two"),
    ("nan", "the value is NaN (no samples to divide by): nan"),
    ("bad(", "answered HTTP 400 (1:5: parse error: unclosed left parenthesis): bad("),
    ("other", "answered HTTP 500 (boom): other"),
])
def test_errors_are_one_line_naming_the_query(api, query, reason):
    with pytest.raises(PromQLError) as raised:
        api[0].value(query)
    message = str(raised.value)
    assert message.endswith(reason) and "\n" not in message
    assert raised.value.query == query


def test_an_empty_range_is_an_error(api):
    with pytest.raises(PromQLError, match="no data: none$"):
        api[0].query_range("none", 0, 1, 1)


def test_an_unreachable_server_names_itself_and_the_query():
    url = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(PromQLError) as raised:
        PromQL(url, timeout=1).value("sum(up)")
    assert str(raised.value).startswith(f"Prometheus at {url} is unreachable (")
    assert str(raised.value).endswith(": sum(up)")
    assert not PromQL(url, timeout=1).ready()
