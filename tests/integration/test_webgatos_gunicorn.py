"""webgatos under its real gunicorn config: metrics summed over several workers, and graceful
shutdown (readiness drops first, in-flight requests finish, then the process exits)."""

import re
import signal
import threading
import time

import requests

from lab.host.procs import http_status, wait_until
from tests.conftest import ADMIN_AUTH
from tests.integration.webgatos_client import Browser


def test_metrics_add_up_over_several_workers(start_webgatos):
    [url] = start_webgatos("redis", replicas=1, WEB_CONCURRENCY="3")
    requests_sent = 30
    for _ in range(requests_sent):
        # A new connection each time, so the kernel spreads them over the workers.
        assert requests.get(url + "/api/session", timeout=10, headers={"Connection": "close"}).status_code == 200
    text = requests.get(url + "/metrics", timeout=10).text
    counted = re.search(r'^http_requests_total\{endpoint="/api/session",method="GET",status="200"\} (\S+)$',
                        text, flags=re.M)
    assert counted and float(counted[1]) == requests_sent
    created = re.search(r"^webgatos_sessions_created_total (\S+)$", text, flags=re.M)
    assert created and float(created[1]) == requests_sent


def test_workers_of_one_replica_share_a_random_secret_key(start_webgatos):
    """SECRET_KEY unset: the replica's workers must still accept each other's cookies."""
    [url] = start_webgatos("redis", replicas=1, WEB_CONCURRENCY="3", SECRET_KEY="")
    browser = Browser()
    browser.http.headers["Connection"] = "close"  # a new connection each time: any worker may answer
    visits = [browser.visit(url) for _ in range(12)]
    assert len({visit["color"] for visit in visits}) == 1
    assert [visit["visits"] for visit in visits] == list(range(1, 13))


def test_sigterm_drains_then_finishes_in_flight_requests(start_webgatos, procs):
    drain_seconds = 2.0
    [url] = start_webgatos("redis", replicas=1, SHUTDOWN_DRAIN_SECONDS=str(drain_seconds))
    [replica] = procs.procs[-1:]
    assert requests.put(url + "/admin/faults", json={"delay_seconds": 3.0}, headers=ADMIN_AUTH,
                        timeout=10).status_code == 200
    browser = Browser()
    in_flight: dict = {}

    def slow_request():
        try:
            response = browser.get(url, "/api/session")
            in_flight["status"] = response.status_code
        except requests.RequestException as error:
            in_flight["error"] = repr(error)

    worker = threading.Thread(target=slow_request)
    worker.start()
    # The delay fault counts itself before sleeping: once counted, the request is in the worker.
    wait_until(lambda: 'webgatos_faults_injected_total{kind="delay"} 1.0' in
               requests.get(url + "/metrics", timeout=5).text, timeout=10, what="the slow request to start")
    replica.signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    wait_until(lambda: http_status(url + "/readyz") == 503, timeout=5, what="readyz to answer 503")
    assert time.monotonic() - signalled_at < drain_seconds  # readiness dropped while still serving
    assert http_status(url + "/healthz") == 200  # new connections are still served during the drain
    worker.join(timeout=30)
    assert in_flight == {"status": 200}
    wait_until(lambda: not replica.alive(), timeout=30, what="gunicorn to exit")
    assert replica.returncode() == 0
    assert time.monotonic() - signalled_at >= drain_seconds
    assert http_status(url + "/healthz") is None


def test_concurrent_users_on_threads_keep_their_colors(start_webgatos):
    """Concurrent users on one replica with threads: every user keeps its own color."""
    [url] = start_webgatos("redis", replicas=1, GUNICORN_THREADS="4")
    browsers = [Browser() for _ in range(8)]
    first = [browser.visit(url)["color"] for browser in browsers]
    results: list = [None] * len(browsers)

    def visit_many(index):
        results[index] = {browsers[index].visit(url)["color"] for _ in range(5)}

    threads = [threading.Thread(target=visit_many, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [{color} for color in first]
