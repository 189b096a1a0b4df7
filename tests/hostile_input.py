"""Hypothesis strategies for what an attacker sends the services: HTTP methods, paths, query
strings, headers, cookies and bodies (deep, huge, not JSON, not UTF-8, NaN, duplicate keys...),
shared by the test-client fuzz suites and the pass through real gunicorn replicas. Plus a log
handler that keeps what the apps log, so a test can say no traceback was written."""

import json
import logging

from hypothesis import strategies as st
from webgatos.app import MAX_BODY_BYTES

SESSION_COOKIE = "webgatos_session"
WEBGATOS_PATHS = ["/", "/api/session", "/healthz", "/readyz", "/metrics", "/admin/faults",
                  "/static/cat.svg", "/static/", "/static/../app.py", "/nope", "//api/session", "/api/session/"]
FAULT_KEYS = ["error_rate", "error_status", "delay_seconds"]
ISSUE_DEEP_BODIES = {  # the two requests of issue 18 that answered 500
    "array nested 5000 deep": "[" * 5000 + "]" * 5000,
    "error_rate nested 3000 deep": '{"error_rate": ' + "[" * 3000 + "]" * 3000 + "}",
}

TOKEN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~",
                min_size=1, max_size=12)
# Header values as HTTP carries them: Latin-1, no CR/LF (those end the header).
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
# Text of any script, surrogates aside (they cannot be encoded into a request at all).
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)

methods = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]), TOKEN)

paths = st.one_of(
    st.sampled_from(WEBGATOS_PATHS),
    st.builds(lambda base, tail: base + tail, st.sampled_from(WEBGATOS_PATHS), ANY_TEXT),
    ANY_TEXT.map(lambda text: "/" + text.lstrip("/")),
)
# (method, path): half the time one of webgatos's real routes, so hostile headers and bodies reach
# the views (PUT /admin/faults above all) and not only the 404 and 405 answers.
WEBGATOS_ROUTES = [("GET", "/"), ("GET", "/api/session"), ("HEAD", "/api/session"), ("GET", "/healthz"),
                   ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/admin/faults"), ("PUT", "/admin/faults"),
                   ("GET", "/static/cat.svg")]
routes = st.one_of(st.sampled_from(WEBGATOS_ROUTES), st.tuples(methods, paths))

query_strings = st.one_of(
    st.just(""),
    ANY_TEXT,
    st.lists(st.tuples(st.sampled_from(["iterations", "color", "a", ""]), ANY_TEXT), max_size=3).map(
        lambda pairs: "&".join(f"{key}={value}" for key, value in pairs)),
    st.sampled_from(["%ff%fe", "a=%", "=&=&&", "iterations=%00", "iterations=1&iterations=x"]),
)

# Headers that frame the body (length, encoding) or carry the cookie are chosen separately.
SPECIAL_HEADERS = {"content-type", "content-length", "transfer-encoding", "cookie", "host"}
header_names = st.one_of(
    st.sampled_from(["Accept", "Accept-Encoding", "Range", "If-Modified-Since", "If-None-Match", "If-Range",
                     "Origin", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "Authorization",
                     "Content-Encoding", "Expect", "Connection", "Upgrade", "Accept-Language"]),
    TOKEN,
).filter(lambda name: name.lower() not in SPECIAL_HEADERS)
header_values = st.one_of(
    HEADER_TEXT,
    st.sampled_from(["bytes=0-99999999999999999999", "bytes=-1", "bytes=5-2", "bytes=0-0,1-1,2-2",
                     "Sun, 06 Nov 1994 08:49:37 GMT", "Mon, 99 Foo 99999 99:99:99 GMT", '"x", W/"y"', "*",
                     "gzip", "websocket", "100-continue", "Basic !!!", "close"]),
)
headers = st.dictionaries(header_names, header_values, max_size=5)

hostile_cookies = st.one_of(
    HEADER_TEXT.filter(lambda text: ";" not in text).map(lambda value: f"{SESSION_COOKIE}={value}"),
    st.builds(lambda sid, sig: f"{SESSION_COOKIE}={sid}.{sig}", TOKEN, TOKEN),
    st.sampled_from([f"{SESSION_COOKIE}=", f"{SESSION_COOKIE}", f"{SESSION_COOKIE}=a; {SESSION_COOKIE}=b",
                     f'{SESSION_COOKIE}="quoted\\"', "=;=;", f"{SESSION_COOKIE}=%00%ff"]),
    HEADER_TEXT,
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
fault_objects = st.dictionaries(st.one_of(st.sampled_from(FAULT_KEYS), st.text(max_size=12)), json_values,
                                max_size=4)
valid_fault_objects = st.fixed_dictionaries({}, optional={
    "error_rate": st.floats(0, 1), "error_status": st.integers(500, 599), "delay_seconds": st.floats(0, 60)})


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


json_texts = st.one_of(
    st.builds(json.dumps, st.one_of(json_values, fault_objects, valid_fault_objects)),  # NaN and Infinity included
    st.sampled_from(list(ISSUE_DEEP_BODIES.values())),
    st.integers(0, 6000).map(nested),
    st.integers(0, 6000).map(lambda depth: '{"error_rate": ' + nested(depth, "0.5") + "}"),
    st.integers(0, 3000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.integers(1, 20000).map(lambda depth: "[" * depth),  # never closed
    st.integers(1, 3000).map(lambda depth: '["' * depth),  # brackets hidden in strings
    st.builds(lambda key, a, b: f'{{"{key}": {a}, "{key}": {b}}}', st.sampled_from(FAULT_KEYS), st.integers(),
              st.integers()),  # a key twice
    st.sampled_from(["NaN", "Infinity", "-Infinity", '{"error_rate": NaN}', '{"delay_seconds": Infinity}',
                     '{"error_rate": 1e999}', '{"error_rate": -1e999}', '{"error_status": 1' + "0" * 5000 + "}",
                     '{"error_rate": 0.' + "0" * 5000 + "1}", "", " ", "{", "}", "[]", "{}", "null", '"\\ud800"',
                     '{"\\ud800": 1}', "\ufeff{}", '{"error_rate": 0.5', '{"error_rate": 0.5}}', "1 2"]),
    ANY_TEXT,
)

bodies = st.one_of(
    json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    json_texts.map(lambda text: b"\xff" + text.encode("utf-8", "surrogatepass")),  # not UTF-8
    st.integers(MAX_BODY_BYTES - 16, MAX_BODY_BYTES + 64).map(lambda size: b'{"a": "' + b"x" * size + b'"}'),
)
content_types = st.one_of(
    st.just("application/json"),
    st.sampled_from(["application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
                     "application/merge-patch+json", "text/plain", "application/x-www-form-urlencoded",
                     "multipart/form-data; boundary=x", "multipart/form-data", "application/jsonx", ""]),
    HEADER_TEXT,
)


class LogRecorder(logging.Handler):
    """Keeps every record logged while it is attached, formatted with its traceback if any."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)
