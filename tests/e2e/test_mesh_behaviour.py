"""Each mesh scenario does what it claims: real Envoy (rendered by lab.envoy from the scenario's
chart values) in front of two real gunicorn replicas of webgatos on loopback.

Shares are checked against binomial bands wide enough (about 5 standard deviations) that a
correct mesh fails them less than once in a million runs, and narrow enough that a missing or
doubled fault fails them every time.
"""

import math
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests

from lab import envoy
from lab.binaries import REPO_ROOT
from lab.procs import LOOPBACK, Proc, free_port, wait_until

REQUEST_TIMEOUT = 15.0
GUNICORN_CONF = REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"


@dataclass
class Mesh:
    url: str
    admin_port: int
    replica_urls: list[str]
    replicas: list[Proc]
    upstreams: list[tuple[str, int]]
    envoys: list[Proc] = field(default_factory=list)

    def counter(self, name: str) -> int:
        return envoy.counter(self.admin_port, name)

    def replica_index(self, response) -> int | None:
        name = response.headers.get("X-Replica", "")
        return int(name.rsplit("-", 1)[1]) if name.startswith("webgatos-") else None


@pytest.fixture
def mesh(procs, start_webgatos, tmp_path):
    """start(scenario, **replica_env) -> Mesh: two replicas with the scenario's app fault switches
    (plus `replica_env`), and Envoy with the scenario's bootstrap, ready with both upstreams."""

    def start_envoy(values: dict, upstreams, name: str) -> tuple[str, int, Proc]:
        listen_port, admin_port = free_port(), free_port()
        bootstrap = envoy.render_bootstrap(values, listen_port=listen_port, admin_port=admin_port,
                                           upstreams=upstreams)
        config = tmp_path / f"{name}.yaml"
        config.write_text(envoy.to_yaml(bootstrap))
        proc = procs.envoy(config, admin_port, name=name)
        wait_until(lambda: envoy.healthy_upstreams(admin_port) == set(upstreams), 30,
                   f"{name} to see every replica ready", proc=proc)
        return f"http://{LOOPBACK}:{listen_port}", admin_port, proc

    def start(scenario: str, **replica_env) -> Mesh:
        values = envoy.load_scenario(scenario)
        env = {**envoy.replica_environment(values), **{k: str(v) for k, v in replica_env.items()}}
        replica_urls = start_webgatos("memory", replicas=2, **env)
        replicas = [next(p for p in procs.procs if p.name == f"webgatos-{i}") for i in range(2)]
        upstreams = [(LOOPBACK, int(url.rsplit(":", 1)[1])) for url in replica_urls]
        url, admin_port, proc = start_envoy(values, upstreams, f"envoy-{scenario}")
        result = Mesh(url, admin_port, replica_urls, replicas, upstreams, [proc])
        result.start_envoy = lambda other: start_envoy(envoy.load_scenario(other), upstreams, f"envoy-{other}")
        return result

    return start


# Envoy arms timers from its event loop's cached clock, so a 1 s timer can fire a millisecond or
# two before 1 s has passed on the client's clock (seen: 0.9989 s); allow that much, no more.
ENVOY_TIMER_SLACK = 0.05


def get(session: requests.Session, url: str) -> tuple[int, float, requests.Response | None]:
    """(status, seconds, response); status 0 when the request itself failed."""
    started = time.monotonic()
    try:
        response = session.get(url, timeout=REQUEST_TIMEOUT)
    except requests.RequestException:
        return 0, time.monotonic() - started, None
    return response.status_code, time.monotonic() - started, response


def concurrently(url: str, count: int, workers: int) -> list[tuple[int, float, requests.Response | None]]:
    barrier = threading.Barrier(min(count, workers))

    def one(index):
        if index < workers:
            barrier.wait(timeout=REQUEST_TIMEOUT)
        with requests.Session() as session:
            return get(session, url)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def binomial_band(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def set_faults(replica_url: str, **faults) -> None:
    response = requests.put(f"{replica_url}/admin/faults", json=faults, timeout=5)
    assert response.status_code == 200, response.text


# --- Pod chaos: one of two replicas SIGKILLed under a steady request stream ---------------------


def stream_through_kill(mesh: Mesh, clients: int = 4, pace: float = 0.01) -> dict:
    """Clients send requests back to back (each paced by `pace`) while the second replica is killed
    (its whole process group: SIGKILL, as when a pod's container is killed). The stream runs on
    until the readiness gate has dropped the dead replica and then for another second."""
    results: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                status, _, _ = get(session, f"{mesh.url}/api/session")
                with lock:
                    results.append((time.monotonic(), status))
                time.sleep(pace)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(results) >= 50, 30, "50 requests before the kill")
        killed_at = time.monotonic()
        os.killpg(mesh.replicas[1].pid, signal.SIGKILL)
        dead = mesh.upstreams[1]
        wait_until(lambda: dead not in envoy.healthy_upstreams(mesh.admin_port), 15,
                   "Envoy's readiness gate to drop the killed replica")
        gated_at = time.monotonic()
        time.sleep(1.0)  # the stream goes on: every request now has to land on the survivor
    finally:
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
    failures_after_gate = [s for t, s in results if t > gated_at + 0.2 and s != 200]
    return {
        "total": len(results),
        "failed": sum(1 for _, s in results if s != 200),
        "failed_before_kill": sum(1 for t, s in results if t < killed_at and s != 200),
        "failed_after_gate": len(failures_after_gate),
        "after_kill": sum(1 for t, _ in results if t > killed_at),
    }


def test_retries_hide_a_killed_replica(mesh):
    running = mesh("retries")
    outcome = stream_through_kill(running)
    assert outcome["after_kill"] >= 50, outcome
    assert outcome["failed"] == 0, outcome
    # The stream did hit the dead replica: Envoy had to retry on the other one.
    assert running.counter("cluster.webgatos.upstream_rq_retry") >= 1


def test_without_retries_a_killed_replica_fails_requests(mesh):
    running = mesh("no-retries")
    outcome = stream_through_kill(running)
    assert outcome["failed_before_kill"] == 0, outcome
    assert outcome["failed"] >= 1, outcome
    # Once the readiness gate has dropped the dead replica, the survivor serves everything.
    assert outcome["failed_after_gate"] == 0, outcome
    assert running.counter("cluster.webgatos.upstream_rq_retry") == 0


# --- Mesh fault injection -----------------------------------------------------------------------


def test_fault_abort_answers_about_half_with_503_from_the_mesh(mesh):
    running = mesh("fault-abort")
    n = 400
    statuses = []
    with requests.Session() as session:
        for _ in range(n):
            status, _, response = get(session, f"{running.url}/api/session")
            statuses.append(status)
            if status == 503:
                assert "X-Replica" not in response.headers  # no replica saw it: the mesh answered
    aborted = statuses.count(503)
    low, high = binomial_band(n, 0.5)  # 200 +- 50: a fair coin leaves it with p < 1e-6
    assert low <= aborted <= high, f"{aborted} of {n} aborted, expected {low:.0f}..{high:.0f}"
    assert statuses.count(200) == n - aborted
    assert running.counter("http.webgatos.fault.aborts_injected") == aborted


def test_fault_delay_holds_the_affected_share_at_least_the_delay(mesh):
    running = mesh("fault-delay")
    delay = envoy.parse_duration(
        envoy.load_scenario("fault-delay")["istio"]["virtualService"]["fault"]["delay"]["fixedDelay"], "fixedDelay")
    n = 80
    results = concurrently(f"{running.url}/api/session", n, workers=40)
    assert [status for status, _, _ in results] == [200] * n
    delayed = running.counter("http.webgatos.fault.delays_injected")
    low, high = binomial_band(n, 0.5)
    assert low <= delayed <= high, f"{delayed} of {n} delayed, expected {low:.0f}..{high:.0f}"
    latencies = sorted((seconds for _, seconds, _ in results), reverse=True)
    # Every delayed request took at least the delay: the `delayed` slowest all did.
    assert latencies[delayed - 1] >= delay - ENVOY_TIMER_SLACK, latencies


# --- Timeout ------------------------------------------------------------------------------------


def test_route_timeout_answers_504_before_the_slow_replica(mesh):
    running = mesh("timeout", FAULT_DELAY_SECONDS=3)
    with requests.Session() as session:
        status, seconds, response = get(session, f"{running.url}/api/session")
    assert status == 504, response.text if response is not None else status
    assert 1.0 - ENVOY_TIMER_SLACK <= seconds < 3.0


# --- Circuit breaking ---------------------------------------------------------------------------


def test_circuit_breaker_overflow_is_a_fast_503_not_a_queue(mesh):
    app_delay = 1.0  # below the route's perTryTimeout (2 s), so no request is retried for slowness
    running = mesh("circuit-breaker", FAULT_DELAY_SECONDS=app_delay)
    results = concurrently(f"{running.url}/api/session", 12, workers=12)
    statuses = [status for status, _, _ in results]
    served = [seconds for status, seconds, _ in results if status == 200]
    overflow = [response for status, _, response in results if status == 503]
    fast_overflow = [seconds for status, seconds, _ in results if status == 503 and seconds < app_delay / 2]
    assert len(served) + len(overflow) == 12, statuses
    assert all(response.headers.get("x-envoy-overloaded") == "true" for response in overflow), statuses
    # One request on the one connection, one waiting for it; everything on top is refused at once,
    # without waiting for a replica. (The waiting one may itself overflow once the connection
    # closes after its single request: maxRequestsPerConnection 1.)
    assert len(served) >= 1, statuses
    assert len(fast_overflow) >= 10, results
    assert all(seconds >= app_delay for seconds in served)
    assert running.counter("cluster.webgatos.upstream_rq_pending_overflow") >= 1
    assert running.counter("cluster.webgatos.upstream_rq_retry") == 0  # an overflow is never retried


def test_default_pool_queues_the_same_load_instead(mesh):
    running = mesh("retries", FAULT_DELAY_SECONDS=1)
    results = concurrently(f"{running.url}/api/session", 12, workers=12)
    assert [status for status, _, _ in results] == [200] * 12


# --- Outlier detection --------------------------------------------------------------------------


def test_outlier_detection_ejects_a_failing_replica_and_traffic_recovers(mesh):
    running = mesh("outlier-detection")
    failing = running.upstreams[1]
    set_faults(running.replica_urls[1], error_rate=1.0)
    statuses = []
    with requests.Session() as session:
        def ejected() -> bool:
            statuses.append(get(session, f"{running.url}/api/session")[0])
            return "failed_outlier_check" in envoy.upstream_health(running.admin_port).get(failing, "")

        wait_until(ejected, 15, "outlier detection to eject the failing replica", interval=0.01)
        assert statuses.count(503) >= 3  # consecutive5xxErrors: 3
        # Ejected: the healthy replica serves everything.
        after = [get(session, f"{running.url}/api/session") for _ in range(30)]
        assert [status for status, _, _ in after] == [200] * 30
        assert {running.replica_index(response) for _, _, response in after} == {0}

        # The replica heals; after baseEjectionTime (5 s) Envoy gives it traffic again.
        set_faults(running.replica_urls[1], error_rate=0.0)

        def back_in_rotation() -> bool:
            status, _, response = get(session, f"{running.url}/api/session")
            assert status == 200
            return running.replica_index(response) == 1

        wait_until(back_in_rotation, 20, "the healed replica to get traffic again", interval=0.05)
    assert running.counter("cluster.webgatos.outlier_detection.ejections_enforced_consecutive_5xx") >= 1


# --- Retries masking faults injected by the app (not the mesh) ----------------------------------


def test_retries_mask_app_faults_that_fail_requests_without_them(mesh):
    running = mesh("app-faults-retries")  # both replicas answer 30 % of app requests with 503
    error_rate = envoy.load_scenario("app-faults-retries")["faults"]["errorRate"]
    plain_url, plain_admin, _ = running.start_envoy("no-retries")
    n = 300
    with requests.Session() as session:
        with_retries = [get(session, f"{running.url}/api/session")[0] for _ in range(n)]
        without = [get(session, f"{plain_url}/api/session")[0] for _ in range(n)]
    failed_without = sum(1 for status in without if status != 200)
    low, high = binomial_band(n, error_rate)
    assert low <= failed_without <= high, f"{failed_without} of {n} failed without retries"
    # A request fails only if all 6 tries fail: 0.3^6 = 0.07 %, so about 0.2 of 300 on average;
    # more than 3 would happen with p < 1e-4.
    assert sum(1 for status in with_retries if status != 200) <= 3
    assert running.counter("cluster.webgatos.upstream_rq_retry") >= low
    assert envoy.counter(plain_admin, "cluster.webgatos.upstream_rq_retry") == 0


# --- The readiness gate --------------------------------------------------------------------------


def test_draining_replica_leaves_rotation_without_failures_and_a_restart_rejoins(mesh, procs):
    """SIGTERM makes a replica answer /readyz 503 while it drains: Envoy's health check takes it
    out of rotation before it stops, so even without retries nothing fails. A replica started
    again on the same port is back in rotation within a couple of health-check intervals."""
    running = mesh("no-retries", SHUTDOWN_DRAIN_SECONDS=3)
    draining = running.upstreams[1]
    running.replicas[1].signal(signal.SIGTERM)
    statuses = []
    with requests.Session() as session:
        def drained() -> bool:
            statuses.append(get(session, f"{running.url}/api/session")[0])
            return draining not in envoy.healthy_upstreams(running.admin_port)

        wait_until(drained, 10, "the draining replica to leave rotation", interval=0.01)
        wait_until(lambda: not running.replicas[1].alive(), 30, "the drained replica to exit")
        statuses += [get(session, f"{running.url}/api/session")[0] for _ in range(20)]
    assert statuses.count(200) == len(statuses), statuses

    env = {**envoy.replica_environment(envoy.load_scenario("no-retries")), "SESSION_STORE": "memory",
           "REPLICA_NAME": "webgatos-1", "SECRET_KEY": "test-secret-key", "SHUTDOWN_DRAIN_SECONDS": "1"}
    procs.gunicorn("webgatos:create_app()", draining[1], env, name="webgatos-1-again", config=GUNICORN_CONF)
    seconds = wait_until(lambda: draining in envoy.healthy_upstreams(running.admin_port), 5,
                         "the restarted replica to rejoin")
    print(f"restarted replica back in rotation {seconds:.2f}s after it was ready")
