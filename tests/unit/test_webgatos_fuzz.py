"""Hostile requests against webgatos through Flask's test client, with each session store (memory in
the process, a real redis-server, a real Hazelcast cluster): whatever the method, path, query string,
headers, cookie and body, the answer is below 500, the app logs no traceback, and the session
contract holds for every request the app accepts."""

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webgatos import Settings, create_app
from webgatos.colors import PALETTE
from webgatos.stores import SESSION_PATHS

from lab.host.procs import wait_until
from tests import hostile_input as hostile
from tests.conftest import fuzz_examples

SESSION_KEYS = {"color", "hostname", "ip", "store", "new", "visits"}
ADMIN_TOKEN = "fuzz-admin-token-0123456789"
NO_FAULTS = {"error_rate": 0.0, "delay_seconds": 0.0}


@pytest.fixture(scope="module", params=[
    "memory", pytest.param("redis", marks=pytest.mark.processes),
    pytest.param("hazelcast", marks=[pytest.mark.hazelcast, pytest.mark.processes])])
def store_app(request):
    """One app per store for all the examples, as one replica serves every attacker."""
    store = request.param
    extra = {}
    if store == "redis":
        extra["redis_url"] = request.getfixturevalue("redis_url")
    elif store == "hazelcast":
        members, cluster_name = request.getfixturevalue("hazelcast_members")
        extra.update(hazelcast_members=tuple(members.split(",")), hazelcast_cluster_name=cluster_name)
    # A generous store timeout: a busy machine must not turn a healthy store into 503s.
    app = create_app(Settings(replica_name="webgatos-fuzz", secret_key="fuzz-key", session_store=store,
                              store_timeout_seconds=10.0, admin_token=ADMIN_TOKEN, **extra))
    client = app.test_client()
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60, what=f"the {store} store")
    yield app
    app.session_interface.close()


@pytest.fixture(scope="module")
def app_log():
    """What the app logs: its modules and Flask's app logger ("webgatos.app", where an unhandled
    error goes) are under "webgatos". Other apps' store clients in this process log elsewhere."""
    recorder = hostile.LogRecorder()
    logger = logging.getLogger("webgatos")
    logger.addHandler(recorder)
    yield recorder
    logger.removeHandler(recorder)


def with_query(path: str, query: str) -> str:
    """The URL as a client sends it: a generated path may hold a `?` of its own, and the scheme and
    host keep a path such as `//x` a path (alone, the test client reads `x` as a host)."""
    return f"http://localhost{path}?{query}" if query else f"http://localhost{path}"


def session_cookie(response) -> str:
    [cookie] = [value for value in response.headers.getlist("Set-Cookie")
                if value.startswith(f"{hostile.SESSION_COOKIE}=")]
    return cookie.split(";", 1)[0].split("=", 1)[1]


def check_session_json(data: dict, store: str) -> None:
    assert set(data) >= SESSION_KEYS, data
    assert data["store"] == store and data["hostname"] == "webgatos-fuzz" and data["ip"]
    assert data["color"] in PALETTE and isinstance(data["new"], bool) and data["visits"] >= 1


@settings(max_examples=fuzz_examples(3))
@given(route=hostile.routes, query=hostile.query_strings, headers=hostile.headers, body=hostile.bodies,
       content_type=hostile.content_types, cookie=st.one_of(st.sampled_from(["own", None]), hostile.hostile_cookies))
def test_any_request_is_below_500_logs_no_traceback_and_keeps_the_session(
        store_app, app_log, route, query, headers, body, content_type, cookie):
    method, path = route
    store = store_app.extensions["webgatos"]["settings"].session_store
    client = store_app.test_client(use_cookies=False)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"  # hostile bodies reach the admin views
    app_log.lines.clear()
    first = client.get("/api/session")
    assert first.status_code == 200, first.get_data(as_text=True)
    own = session_cookie(first)
    color = first.get_json()["color"]
    if cookie is not None:
        headers = {**headers, "Cookie": f"{hostile.SESSION_COOKIE}={own}" if cookie == "own" else cookie}

    response = client.open(with_query(path, query), method=method, headers=headers, data=body,
                           content_type=content_type)
    # A valid PUT /admin/faults may have switched faults on: the checks below need them off.
    store_app.extensions["webgatos"]["faults"].update(NO_FAULTS)

    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    seen_path = response.request.path
    if seen_path not in SESSION_PATHS:  # probes, /metrics, /admin, static files
        assert "Set-Cookie" not in response.headers
    if (seen_path, method, response.status_code) == ("/api/session", "GET", 200):
        data = response.get_json()
        check_session_json(data, store)
        if cookie == "own":
            assert (data["color"], data["new"]) == (color, False)
    again = client.get("/api/session", headers={"Cookie": f"{hostile.SESSION_COOKIE}={own}"})
    assert again.status_code == 200
    check_session_json(again.get_json(), store)
    assert (again.get_json()["color"], again.get_json()["new"]) == (color, False)
    assert "Traceback" not in app_log.text()


@settings(max_examples=fuzz_examples(1))
@given(method=hostile.methods, query=hostile.query_strings, headers=hostile.headers, body=hostile.bodies,
       content_type=hostile.content_types, cookie=st.one_of(st.none(), hostile.hostile_cookies),
       probe=st.sampled_from(["/healthz", "/readyz"]))
def test_probes_never_set_a_session_cookie(store_app, method, query, headers, body, content_type, cookie, probe):
    if cookie is not None:
        headers = {**headers, "Cookie": cookie}
    response = store_app.test_client(use_cookies=False).open(
        with_query(probe, query), method=method, headers=headers, data=body, content_type=content_type)
    assert response.status_code < 500
    assert "Set-Cookie" not in response.headers


@settings(max_examples=fuzz_examples(3))
@given(body=hostile.bodies, content_type=hostile.content_types)
def test_fault_admin_answers_200_with_the_state_or_400_with_a_reason(store_app, app_log, body, content_type):
    faults = store_app.extensions["webgatos"]["faults"]
    before = faults.snapshot()
    app_log.lines.clear()
    response = store_app.test_client().put("/admin/faults", data=body, content_type=content_type,
                                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    after = faults.snapshot()
    faults.update(NO_FAULTS)
    if response.status_code == 200:
        assert response.get_json() == after
    elif response.status_code == 413:
        assert len(body) > hostile.MAX_BODY_BYTES and "bytes" in response.get_data(as_text=True)
        assert after == before
    else:
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        reason = response.get_json()["error"]
        assert reason and "\n" not in reason and len(reason) < 200
        assert after == before  # a refused body changes nothing
    assert "Traceback" not in app_log.text()
