"""webgatos on a real redis-server: sessions persist, expire with the TTL, one connection serves
visit after visit and survives a Redis restart, and an outage is a fast 503 that heals by itself."""

import time

import redis
import requests

from lab.host.procs import LOOPBACK, free_port, http_status, wait_until
from tests.integration.webgatos_client import WEBGATOS_CONF, Browser, timed_get


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def start_replica(procs, redis_port: int, **env: str) -> str:
    """One webgatos replica on the Redis at `redis_port`; returns its URL."""
    port = free_port()
    procs.gunicorn("webgatos:create_app()", port,
                   {"SESSION_STORE": "redis", "REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0",
                    "SHUTDOWN_DRAIN_SECONDS": "0", **env},
                   name="webgatos-0", config=WEBGATOS_CONF)
    return f"http://{LOOPBACK}:{port}"


def test_session_lives_in_redis_and_outlives_the_replica(start_webgatos, procs, redis_url):
    [first_url] = start_webgatos("redis", replicas=1)
    browser = Browser()
    created = browser.visit(first_url)
    assert created["new"] is True and created["store"] == "redis"
    assert redis_client(redis_url).exists(f"session:{browser.session_id}") == 1
    procs.stop_all()  # the replica is gone; Redis (session-wide) keeps the session
    [second_url] = start_webgatos("redis", replicas=1)
    again = browser.visit(second_url)
    assert again["new"] is False
    assert again["color"] == created["color"]
    assert again["visits"] == 2


def test_session_expires_with_the_ttl(start_webgatos, redis_url):
    [url] = start_webgatos("redis", replicas=1, SESSION_TTL_SECONDS="5")
    browser = Browser()
    created = browser.visit(url)
    key = f"session:{browser.session_id}"
    store = redis_client(redis_url)
    assert 0 < store.ttl(key) <= 5
    wait_until(lambda: store.exists(key) == 0, timeout=15, what=f"{key} to expire")
    after = browser.visit(url)
    assert after["new"] is True
    assert after["session_id_hash"] != created["session_id_hash"]


def test_redis_outage_is_a_fast_503_and_heals_by_itself(procs):
    redis_port = free_port()
    redis_proc = procs.redis(redis_port, name="outage-redis")
    url = start_replica(procs, redis_port, SECRET_KEY="k", REPLICA_NAME="webgatos-0")
    browser = Browser()
    browser.visit(url)

    redis_proc.stop()
    ready, ready_seconds = timed_get(url + "/readyz")
    assert ready.status_code == 503
    assert ready_seconds < 2.0
    page = browser.get(url, "/")
    assert page.status_code == 503
    assert page.text == "Session store unavailable, try again shortly.\n"
    assert "Traceback" not in page.text
    assert http_status(url + "/healthz") == 200  # liveness stays green: restarting would not help

    procs.redis(redis_port, name="outage-redis-again")  # same port, empty data
    wait_until(lambda: http_status(url + "/readyz") == 200, timeout=15, what="readyz to recover")
    healed = browser.visit(url)
    assert healed["new"] is True  # the restarted Redis kept nothing (no persistence), but serves again


def test_one_connection_serves_visit_after_visit_and_a_restarted_redis_costs_no_request(procs):
    redis_port = free_port()
    redis_proc = procs.redis(redis_port, name="restarted-redis")
    url = start_replica(procs, redis_port)
    browser = Browser()
    browser.visit(url)
    store = redis_client(f"redis://{LOOPBACK}:{redis_port}/0")
    connections_before = store.info("stats")["total_connections_received"]
    for visits in range(2, 22):
        assert browser.visit(url)["visits"] == visits
    assert store.info("stats")["total_connections_received"] == connections_before  # no new connection

    redis_proc.stop()  # the replica's idle connection is now closed by the other end...
    procs.redis(redis_port, name="restarted-redis-again")
    for visits in (1, 2, 3):  # ...and is replaced before use, not answered with a 503
        assert browser.visit(url)["visits"] == visits


def test_redis_that_hangs_is_bounded_by_the_store_timeout(procs):
    """A Redis that accepts connections but never answers (stopped with SIGSTOP)."""
    import signal

    redis_port = free_port()
    redis_proc = procs.redis(redis_port, name="frozen-redis")
    url = start_replica(procs, redis_port, STORE_TIMEOUT_SECONDS="0.5")
    browser = Browser()
    before = browser.visit(url)
    redis_proc.signal(signal.SIGSTOP)
    try:
        ready, ready_seconds = timed_get(url + "/readyz")
        assert ready.status_code == 503 and ready_seconds < 2.0
        started = time.monotonic()
        page = browser.get(url)  # its GET is sent; the reply comes after the request gave up
        page_seconds = time.monotonic() - started
        assert page.status_code == 503 and page_seconds < 2.0
    finally:
        redis_proc.signal(signal.SIGCONT)
    wait_until(lambda: http_status(url + "/readyz") == 200, timeout=15, what="readyz to recover")
    # The late reply must not be read as the answer to a later command: the same user's session
    # goes on where it was, visit after visit.
    for visits in (2, 3, 4):
        again = browser.visit(url)
        assert (again["color"], again["visits"], again["new"]) == (before["color"], visits, False), again
    assert requests.get(url + "/api/session", timeout=10).status_code == 200
