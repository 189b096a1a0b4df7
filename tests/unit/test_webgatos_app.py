"""webgatos through Flask's test client: pages, sessions, probes, faults, bad input."""

import re

import pytest
from webgatos import Settings, create_app
from webgatos.colors import PALETTE, ColorWheel, text_color

from lab.host.procs import free_port
from tests.hostile_input import ISSUE_DEEP_BODIES, MAX_BODY_BYTES

COOKIE = "webgatos_session"


ADMIN_TOKEN = "unit-test-admin-token"


def make_client(**overrides):
    """A client of an app with an admin token, which it sends on every request (the admin API's
    own checks are in test_webgatos_admin.py)."""
    settings = Settings(**{"replica_name": "webgatos-test", "secret_key": "unit-test-key",
                           "admin_token": ADMIN_TOKEN, **overrides})
    client = create_app(settings).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    return client


@pytest.fixture
def client():
    return make_client()


def session_cookie(client):
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


def test_page_shows_color_replica_and_cat(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    body = re.search(r'<body data-color="(#[0-9a-f]{6})" data-replica="([^"]+)"', html)
    assert body, html
    assert body[1] in PALETTE
    assert body[2] == "webgatos-test"
    assert 'src="/static/cat.svg"' in html
    assert response.headers["X-Replica"] == "webgatos-test"


def test_page_makes_no_external_request(client):
    html = client.get("/").get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html and "url(" not in html
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "img-src 'self'" in policy


def test_cat_picture_is_served_by_the_app(client):
    response = client.get("/static/cat.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert b"<svg" in response.data and b"http://www.w3.org/2000/svg" in response.data
    assert b"href=" not in response.data  # nothing fetched from elsewhere


def test_session_keeps_its_color_and_counts_visits(client):
    first = client.get("/api/session").get_json()
    second = client.get("/api/session").get_json()
    assert first["new"] is True and second["new"] is False
    assert first["color"] == second["color"]
    assert re.fullmatch(r"#[0-9a-f]{6}", first["color"])
    assert (first["visits"], second["visits"]) == (1, 2)
    assert first["session_id_hash"] == second["session_id_hash"]
    assert first["store"] == "memory" and first["hostname"] == "webgatos-test" and first["ip"]


def test_cookie_is_opaque_signed_and_http_only(client):
    response = client.get("/api/session")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header
    value = session_cookie(client)
    assert "color" not in value and "#" not in value
    assert response.get_json()["session_id_hash"] not in value


def test_new_sessions_get_colors_round_robin():
    wheel = ColorWheel(start=0)
    assert [wheel.next() for _ in range(len(PALETTE) + 1)] == [*PALETTE, PALETTE[0]]
    client = make_client()
    colors = []
    for _ in range(3):
        client.delete_cookie(COOKIE)
        colors.append(client.get("/api/session").get_json()["color"])
    start = PALETTE.index(colors[0])
    assert colors == [PALETTE[(start + i) % len(PALETTE)] for i in range(3)]


@pytest.mark.parametrize("cookie", [
    "garbage",
    "",
    "a" * 4000,
    "not-a-session.signature",
    "%00%ff",
])
def test_garbage_cookie_gets_a_new_session(client, cookie):
    client.set_cookie(COOKIE, cookie)
    response = client.get("/api/session")
    assert response.status_code == 200
    assert response.get_json()["new"] is True


def test_tampered_cookie_gets_a_new_session(client):
    first = client.get("/api/session").get_json()
    sid, signature = session_cookie(client).rsplit(".", 1)
    client.set_cookie(COOKIE, f"{sid[:-1]}{'A' if sid[-1] != 'A' else 'B'}.{signature}")
    response = client.get("/api/session")
    assert response.status_code == 200
    assert response.get_json()["new"] is True
    assert response.get_json()["session_id_hash"] != first["session_id_hash"]


def test_cookie_signed_with_another_key_gets_a_new_session():
    other = make_client(secret_key="another-key")
    other.get("/api/session")
    client = make_client()
    client.set_cookie(COOKIE, session_cookie(other))
    assert client.get("/api/session").get_json()["new"] is True


def test_expired_session_gets_a_new_one():
    settings = Settings(replica_name="w", secret_key="k", session_ttl_seconds=1)
    app = create_app(settings)
    client = app.test_client()
    client.get("/api/session")
    # Expire it in the store itself (what the TTL does), keeping the browser's cookie.
    app.session_interface.cache.clear()
    response = client.get("/api/session")
    assert response.status_code == 200 and response.get_json()["new"] is True


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/admin/faults", "/static/cat.svg"])
def test_probes_metrics_admin_and_static_create_no_session(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["X-Replica"] == "webgatos-test"


def test_metrics_count_requests(client):
    client.get("/api/session")
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'http_requests_total\{endpoint="/api/session",method="GET",status="200"\} [1-9]', text)
    assert "webgatos_sessions_created_total" in text


def test_metrics_label_each_answer_by_route_method_and_status_and_time_it(client):
    # The registry is the process's (gunicorn's multiprocess mode reads it): compare before and after.
    series = {("http_requests_total", 'endpoint="/api/session",method="GET",status="200"'): 2,
              ("http_requests_total", 'endpoint="unmatched",method="GET",status="404"'): 1,
              ("http_requests_total", 'endpoint="unmatched",method="POST",status="405"'): 1,
              ("http_request_duration_seconds_count", 'endpoint="/api/session"'): 2,
              ("http_request_duration_seconds_count", 'endpoint="unmatched"'): 2}

    def samples() -> dict:
        text = client.get("/metrics").get_data(as_text=True)
        found = {}
        for name, labels in [*series, ("http_request_duration_seconds_sum", 'endpoint="/api/session"')]:
            match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
            found[name, labels] = float(match.group(1)) if match else 0.0
        return found

    before = samples()
    for method, path in (("GET", "/api/session"), ("GET", "/api/session"), ("GET", "/nope"), ("POST", "/api/session")):
        client.open(path, method=method)
    after = samples()
    assert {key: after[key] - before[key] for key in series} == series
    spent = after["http_request_duration_seconds_sum", 'endpoint="/api/session"'] - \
        before["http_request_duration_seconds_sum", 'endpoint="/api/session"']
    assert 0 < spent < 5


def test_unknown_path_is_a_plain_404(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.headers["X-Replica"] == "webgatos-test"


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


@pytest.mark.parametrize("method, path, status, no_store", [
    ("GET", "/", 200, True), ("GET", "/api/session", 200, True), ("GET", "/healthz", 200, False),
    ("GET", "/static/cat.svg", 200, False), ("GET", "/nope", 404, False), ("POST", "/api/session", 405, True),
    ("PUT", "/admin/faults", 400, False),
])
def test_every_response_carries_the_replica_and_the_security_headers_once(client, method, path, status, no_store):
    response = client.open(path, method=method)
    assert response.status_code == status
    for name, value in {**SECURITY_HEADERS, "X-Replica": "webgatos-test"}.items():
        assert response.headers.getlist(name) == [value], name
    if no_store:
        assert response.headers.getlist("Cache-Control") == ["no-store"]
    else:
        assert "no-store" not in response.headers.getlist("Cache-Control"), path


def test_an_injected_fault_and_a_store_outage_carry_the_headers_too():
    faulted = make_client(fault_error_rate=1.0).get("/api/session")
    down = make_client(session_store="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0",
                       store_timeout_seconds=0.2).get("/api/session")
    for response in (faulted, down):
        assert response.status_code == 503
        assert all(response.headers.getlist(name) == [value] for name, value in SECURITY_HEADERS.items())
        assert response.headers["Cache-Control"] == "no-store"


def test_faults_from_settings_hit_app_endpoints_only():
    client = make_client(fault_error_rate=1.0, fault_error_status=502)
    assert client.get("/").status_code == 502
    assert client.get("/api/session").status_code == 502
    for path in ("/healthz", "/readyz", "/metrics", "/admin/faults"):
        assert client.get(path).status_code == 200, path


def test_faults_change_at_run_time(client):
    assert client.get("/admin/faults").get_json() == {"error_rate": 0.0, "error_status": 503, "delay_seconds": 0.0}
    response = client.put("/admin/faults", json={"error_rate": 1, "error_status": 500})
    assert response.status_code == 200
    assert response.get_json() == {"error_rate": 1.0, "error_status": 500, "delay_seconds": 0.0}
    assert client.get("/api/session").status_code == 500
    assert client.get("/readyz").status_code == 200
    client.put("/admin/faults", json={"error_rate": 0})
    assert client.get("/api/session").status_code == 200


def test_delay_fault_slows_app_requests(client):
    import time
    client.put("/admin/faults", json={"delay_seconds": 0.2})
    started = time.monotonic()
    assert client.get("/api/session").status_code == 200
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(("body", "reason"), [
    ({"error_rate": 1.5}, "error_rate=1.5"),
    ({"error_rate": -0.1}, "error_rate=-0.1"),
    ({"error_rate": "0.5"}, "error_rate='0.5'"),
    ({"error_rate": True}, "error_rate=True"),
    ({"error_status": 404}, "error_status=404"),
    ({"error_status": 503.5}, "error_status=503.5"),
    ({"delay_seconds": -1}, "delay_seconds=-1"),
    ({"delay_seconds": 3600}, "delay_seconds=3600"),
    ({"latency": 1}, "unknown key(s) 'latency'"),
    ({}, "JSON object"),
    ([1, 2], "JSON object"),
])
def test_bad_fault_input_is_a_400_with_a_reason(client, body, reason):
    response = client.put("/admin/faults", json=body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert client.get("/admin/faults").get_json()["error_rate"] == 0.0  # nothing applied


def test_non_json_fault_body_is_a_400(client):
    response = client.put("/admin/faults", data="error_rate=1", content_type="text/plain")
    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.processes)])
@pytest.mark.parametrize("body", ISSUE_DEEP_BODIES.values(), ids=ISSUE_DEEP_BODIES.keys())
def test_deeply_nested_fault_body_is_a_400_with_a_reason(request, store, body):
    """Issue 18: these bodies made the JSON parser exceed the recursion limit, a 500."""
    extra = {"redis_url": request.getfixturevalue("redis_url")} if store == "redis" else {}
    client = make_client(session_store=store, **extra)
    response = client.put("/admin/faults", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "deeper than 32 levels" in response.get_json()["error"]
    assert client.get("/admin/faults").get_json()["error_rate"] == 0.0


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"error_rate": NaN}', "NaN is not a JSON number"),
    (b'{"error_rate": Infinity}', "Infinity is not a JSON number"),
    (b'{"delay_seconds": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"error_rate": 1e999}', "number out of range: 1e999"),
    (b'{"error_status": 5' + b"0" * 5000 + b"}", "number longer than 100 characters"),
    (b'{"error_rate": 0.1, "error_rate": 1}', "key 'error_rate' twice"),
    (b'{"error_rate": "\xff"}', "not valid UTF-8"),
    (b"\xef\xbb\xbf{}", "BOM"),
    (b'{"error_rate": 0.5', "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[" * 33 + b"]" * 33, "deeper than 32 levels"),
    (b"[" * 32 + b"]" * 32, "body must be a JSON object"),  # 32 levels parse: the fault check answers
    (b'{"a\\nb": 1, "c": 2, "d": 3, "e": 4}', "unknown key(s) 'a\\nb', 'c', 'd', ...: use any of"),
    (b'{"a": "' + b"[" * 5000 + b'"}', "unknown key(s) 'a'"),  # brackets inside a string do not nest
])
def test_fault_body_that_is_not_plain_json_is_a_400_with_a_reason(client, body, reason):
    response = client.put("/admin/faults", data=body, content_type="application/json")
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert client.get("/admin/faults").get_json()["error_rate"] == 0.0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_fault_body_needs_the_json_content_type(client, content_type):
    response = client.put("/admin/faults", data=b'{"error_rate": 1}', content_type=content_type)
    assert response.status_code == 400
    assert "Content-Type must be application/json" in response.get_json()["error"]
    assert client.get("/admin/faults").get_json()["error_rate"] == 0.0


def test_fault_body_over_the_size_limit_is_a_413_with_a_reason(client):
    response = client.put("/admin/faults", data=b" " * (MAX_BODY_BYTES + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.get_data(as_text=True) == f"Request body over {MAX_BODY_BYTES} bytes.\n"


def test_unreachable_redis_answers_503_without_traceback_and_keeps_probes_alive():
    # Nothing listens on a fresh free port: every Redis call is refused.
    client = make_client(session_store="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0",
                         store_timeout_seconds=0.5)
    for path in ("/", "/api/session"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.get_data(as_text=True) == "Session store unavailable, try again shortly.\n"
        assert "Set-Cookie" not in response.headers
    # A validly signed cookie makes the app read the store first: that read fails too.
    memory_client = make_client()
    memory_client.get("/api/session")
    client.set_cookie(COOKIE, session_cookie(memory_client))
    assert client.get("/api/session").status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    for operation in ("read", "write"):
        assert f'webgatos_store_errors_total{{operation="{operation}"}}' in metrics.get_data(as_text=True)


@pytest.mark.parametrize(("background", "text"), [
    ("#ffffff", "#000000"), ("#000000", "#ffffff"), ("#ffe119", "#000000"), ("#000075", "#ffffff"),
    ("#800000", "#ffffff"), ("#aaffc3", "#000000"),
])
def test_text_color_contrasts_with_background(background, text):
    assert text_color(background) == text


@pytest.mark.parametrize("background", PALETTE)
def test_every_palette_color_gets_readable_text(background):
    def luminance(color):
        channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    lighter, darker = sorted((luminance(background), luminance(text_color(background))), reverse=True)
    assert (lighter + 0.05) / (darker + 0.05) >= 4.5  # WCAG AA for normal text


def test_hazelcast_store_starts_fast_and_answers_503_while_the_cluster_is_unreachable():
    import time
    import warnings

    with warnings.catch_warnings():  # the client imports asyncore (deprecated); stores.py does the same
        warnings.simplefilter("ignore", DeprecationWarning)
        import hazelcast  # noqa: F401  its import (a second on a busy machine) is not the start-up under test

    # Waiting for the cluster would never end (no member listens and the client retries for ever),
    # so a generous bound still fails a start-up or a call that waits for it.
    bound = 5.0
    started = time.monotonic()
    app = create_app(Settings(replica_name="w", secret_key="k", session_store="hazelcast",
                              hazelcast_members=(f"127.0.0.1:{free_port()}",), store_timeout_seconds=0.5))
    try:
        assert time.monotonic() - started < bound  # the client connects in the background
        client = app.test_client()
        for path in ("/readyz", "/api/session", "/"):
            began = time.monotonic()
            response = client.get(path)
            assert response.status_code == 503, path
            assert time.monotonic() - began < bound, path
        assert client.get("/healthz").status_code == 200
    finally:
        app.session_interface.close()


def test_the_pod_ip_from_the_downward_api_is_the_replicas_ip():
    client = make_client(pod_ip="10.244.1.7")
    assert client.get("/api/session").get_json()["ip"] == "10.244.1.7"
    assert "10.244.1.7" in client.get("/").get_data(as_text=True)
