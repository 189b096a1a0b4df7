"""Each mesh scenario does what it claims, through real istiod: `helm install charts/webgatos -f
istio/scenarios/NAME.yaml` on the lab's API server, istiod programs Istio's ingress gateway
(Envoy), two real gunicorn replicas run on the lab's node and reach the gateway as the Service's
endpoints (WorkloadEntries whose health follows the readiness probe).

Shares are checked against binomial bands wide enough (about 5 standard deviations) that a
correct mesh fails them less than once in a million runs, and narrow enough that a missing or
doubled fault fails them every time. Every assertion message carries what a person needs to
understand a failure: per failed request its status and Envoy's response flags, and the
gateway's counters.
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

from lab.host.procs import wait_until

REQUEST_TIMEOUT = 15.0
# Envoy arms timers from its event loop's cached clock, so a 1 s timer can fire a millisecond or
# two before 1 s has passed on the client's clock (seen: 0.9989 s); allow that much, no more.
ENVOY_TIMER_SLACK = 0.05


@dataclass
class Outcome:
    """One request as the client saw it."""
    at: float
    status: int  # 0: no HTTP answer
    seconds: float
    replica: str | None = None
    flags: str = ""  # Envoy's x-envoy-response-flags-like detail: the body of a mesh-made answer
    response: requests.Response | None = field(default=None, repr=False)


def get(session: requests.Session, url: str) -> Outcome:
    started = time.monotonic()
    try:
        response = session.get(url, timeout=REQUEST_TIMEOUT)
    except requests.RequestException as error:
        return Outcome(started, 0, time.monotonic() - started, flags=type(error).__name__)
    flags = "" if response.status_code == 200 else response.text.strip()[:80]
    return Outcome(started, response.status_code, time.monotonic() - started, response.headers.get("X-Replica"),
                   flags, response)


def concurrently(url: str, count: int, workers: int) -> list[Outcome]:
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


def set_faults(replica, **faults) -> None:
    """Straight to the replica, with the admin token the chart gave it (from its generated Secret)."""
    response = requests.put(f"http://{replica.address}:{replica.port}/admin/faults", json=faults, timeout=5,
                            headers={"Authorization": f"Bearer {replica.env['ADMIN_TOKEN']}"})
    assert response.status_code == 200, response.text


def explain(topology, outcomes: list[Outcome], **extra) -> str:
    """What a failure message needs: each failed request, the gateway's counters, the events."""
    failed = [(round(o.at, 3), o.status, o.flags, round(o.seconds, 3)) for o in outcomes if o.status != 200]
    counters = {name.rsplit(".", 1)[1]: value for name, value in topology.envoy_stats().items()
                if topology.upstream_cluster in name and value and any(
                    word in name for word in ("retry", "cx_connect_fail", "rq_5xx", "overflow", "reset", "timeout"))}
    events = [(e["epoch"], e["event"], e.get("pod")) for e in topology.node.events()
              if e.get("namespace") == topology.namespace][-10:]
    return f"{extra}\nfailed (time, status, detail, seconds): {failed[:20]}\ncounters: {counters}\nnode: {events}"


# --- Pod chaos: one of two replicas killed under a steady request stream -----------------------


def stream_through_kill(topology, kill, clients: int = 4, pace: float = 0.01) -> dict:
    """Clients send requests back to back while `kill(victim)` takes the second replica down. The
    stream goes on until the gateway has dropped the victim's endpoint and for a second more."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                outcome = get(session, f"{topology.url}/api/session")
                with lock:
                    outcomes.append(outcome)
                time.sleep(pace)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    victim = topology.replicas()[1]
    address = f"{victim.address}:{victim.port}"
    try:
        wait_until(lambda: len(outcomes) >= 50, 30, "50 requests before the kill")
        killed_at = time.monotonic()
        kill(victim)
        wait_until(lambda: address not in topology.healthy_endpoints(), 15,
                   "the gateway to drop the killed replica's endpoint", interval=0.02)
        gated_at = time.monotonic()
        time.sleep(1.0)  # the stream goes on: every request now has to land on the survivor
    finally:
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
    return {
        "outcomes": outcomes,
        "total": len(outcomes),
        "failed": sum(1 for o in outcomes if o.status != 200),
        # Answered before the kill: a request still in flight at the kill may fail without retries.
        "failed_before_kill": sum(1 for o in outcomes if o.at + o.seconds < killed_at and o.status != 200),
        "failed_after_gate": sum(1 for o in outcomes if o.at > gated_at + 0.2 and o.status != 200),
        "after_kill": sum(1 for o in outcomes if o.at > killed_at),
        "gate_seconds": round(gated_at - killed_at, 3),
    }


def sigkill(victim) -> None:
    os.killpg(victim.pid, signal.SIGKILL)  # the whole container, as when its process is killed


def summary(outcome: dict) -> dict:
    return {key: value for key, value in outcome.items() if key != "outcomes"}


def sigterm(victim) -> None:
    victim.proc.signal(signal.SIGTERM)  # the container's main process: gunicorn drains, then stops


@pytest.mark.parametrize("kill", [sigkill, sigterm], ids=["SIGKILL", "SIGTERM"])
def test_retries_hide_a_killed_replica(topology, kill):
    running = topology("retries")
    outcome = stream_through_kill(running, kill)
    message = explain(running, outcome["outcomes"], **summary(outcome))
    assert outcome["after_kill"] >= 50, message
    assert outcome["failed"] == 0, message
    if kill is sigkill:  # the stream did hit the dead replica: Envoy had to retry on the other one
        assert running.counter("upstream_rq_retry") >= 1, message


def test_without_retries_a_killed_replica_fails_requests(topology):
    running = topology("no-retries")
    outcome = stream_through_kill(running, sigkill)
    message = explain(running, outcome["outcomes"], **summary(outcome))
    assert outcome["failed_before_kill"] == 0, message
    assert outcome["failed"] >= 1, message
    # Once the gateway has dropped the dead replica, the survivor serves everything.
    assert outcome["failed_after_gate"] == 0, message
    assert running.counter("upstream_rq_retry") == 0, message


# --- Mesh fault injection -----------------------------------------------------------------------


def test_fault_abort_answers_about_half_with_503_from_the_mesh(topology):
    running = topology("fault-abort")
    n = 400
    with requests.Session() as session:
        outcomes = [get(session, f"{running.url}/api/session") for _ in range(n)]
    aborted = [o for o in outcomes if o.status == 503]
    assert all(o.replica is None for o in aborted)  # no replica saw them: the mesh answered
    low, high = binomial_band(n, 0.5)  # 200 +- 50: a fair coin leaves it with p < 1e-6
    assert low <= len(aborted) <= high, f"{len(aborted)} of {n} aborted, expected {low:.0f}..{high:.0f}"
    assert sum(1 for o in outcomes if o.status == 200) == n - len(aborted), explain(running, outcomes)
    assert running.listener_counter("fault.aborts_injected") == len(aborted)


def test_fault_delay_holds_the_affected_share_at_least_the_delay(topology):
    running = topology("fault-delay")
    delay = 1.0  # istio/scenarios/fault-delay.yaml: fixedDelay 1s on 50 %
    n = 80
    outcomes = concurrently(f"{running.url}/api/session", n, workers=40)
    assert [o.status for o in outcomes] == [200] * n, explain(running, outcomes)
    delayed = running.listener_counter("fault.delays_injected")
    low, high = binomial_band(n, 0.5)
    assert low <= delayed <= high, f"{delayed} of {n} delayed, expected {low:.0f}..{high:.0f}"
    latencies = sorted((o.seconds for o in outcomes), reverse=True)
    # Every delayed request took at least the delay: the `delayed` slowest all did.
    assert latencies[delayed - 1] >= delay - ENVOY_TIMER_SLACK, latencies


# --- Timeout ------------------------------------------------------------------------------------


def test_route_timeout_answers_504_before_the_slow_replica(topology):
    running = topology("timeout", values={"faults": {"delaySeconds": 3}})
    with requests.Session() as session:
        outcome = get(session, f"{running.url}/api/session")
    assert outcome.status == 504, outcome
    assert 1.0 - ENVOY_TIMER_SLACK <= outcome.seconds < 3.0, outcome


# --- Circuit breaking ---------------------------------------------------------------------------


def test_circuit_breaker_overflow_is_a_fast_503_not_a_queue(topology):
    app_delay = 1.0  # below the route's perTryTimeout (2 s), so no request is retried for slowness
    running = topology("circuit-breaker", values={"faults": {"delaySeconds": app_delay}})
    outcomes = concurrently(f"{running.url}/api/session", 12, workers=12)
    served = [o.seconds for o in outcomes if o.status == 200]
    overflow = [o for o in outcomes if o.status == 503]
    fast_overflow = [o for o in overflow if o.seconds < app_delay / 2]
    message = explain(running, outcomes)
    assert len(served) + len(overflow) == 12, message
    assert all(o.response.headers.get("x-envoy-overloaded") == "true" for o in overflow), message
    # One request on the one connection, one waiting for it; everything on top is refused at once,
    # without waiting for a replica. (The waiting one may itself overflow once the connection
    # closes after its single request: maxRequestsPerConnection 1.)
    assert len(served) >= 1, message
    assert len(fast_overflow) >= 10, message
    assert all(seconds >= app_delay for seconds in served), message
    # Which limit refuses depends on timing: the pending queue (http1MaxPendingRequests) or the active
    # requests (http2MaxRequests, Envoy's max_requests); both are the breaker, neither is a queue.
    breaker = running.counter("upstream_rq_pending_overflow") + running.counter("upstream_rq_active_overflow")
    assert breaker >= 1, message
    assert running.counter("upstream_rq_retry") == 0, message  # an overflow is never retried


def test_default_pool_queues_the_same_load_instead(topology):
    running = topology("retries", values={"faults": {"delaySeconds": 1}})
    outcomes = concurrently(f"{running.url}/api/session", 12, workers=12)
    assert [o.status for o in outcomes] == [200] * 12, explain(running, outcomes)


# --- Outlier detection --------------------------------------------------------------------------


def test_outlier_detection_ejects_a_failing_replica_and_traffic_recovers(topology):
    running = topology("outlier-detection")
    failing = running.replicas()[1]
    failing_address = f"{failing.address}:{failing.port}"
    set_faults(failing, error_rate=1.0)
    outcomes = []
    with requests.Session() as session:
        def ejected() -> bool:
            outcomes.append(get(session, f"{running.url}/api/session"))
            return "failed_outlier_check" in running.mesh.endpoints(running.upstream_cluster).get(failing_address, "")

        wait_until(ejected, 15, "outlier detection to eject the failing replica", interval=0.01)
        assert sum(1 for o in outcomes if o.status == 503) >= 3, explain(running, outcomes)  # consecutive5xxErrors
        # Ejected: the healthy replica serves everything, once Envoy's workers see the new host set.
        # Envoy merges host-set changes over `update_merge_window` (1 s by default; istiod leaves it).
        ejected_at = time.monotonic()
        after: list[Outcome] = []

        def only_the_healthy_replica() -> bool:
            after.append(get(session, f"{running.url}/api/session"))
            return len(after) >= 30 and all(o.status == 200 and o.replica == running.replicas()[0].name
                                             for o in after[-30:])

        wait_until(only_the_healthy_replica, 10, "30 requests in a row on the healthy replica", interval=0.01)
        first_of_the_run = after[-30].at
        assert first_of_the_run - ejected_at < 1.0 + 0.5, explain(running, after, merge_window_seconds=round(
            first_of_the_run - ejected_at, 3))

        # The replica heals; after baseEjectionTime (5 s) Envoy gives it traffic again.
        set_faults(failing, error_rate=0.0)

        def back_in_rotation() -> bool:
            outcome = get(session, f"{running.url}/api/session")
            assert outcome.status == 200, outcome
            return outcome.replica == failing.name

        wait_until(back_in_rotation, 20, "the healed replica to get traffic again", interval=0.05)
    assert running.counter("outlier_detection.ejections_enforced_consecutive_5xx") >= 1


# --- Retries masking faults injected by the app (not the mesh) ----------------------------------


def test_retries_mask_app_faults_that_fail_requests_without_them(topology):
    error_rate = 0.3  # istio/scenarios/app-faults-retries.yaml: faults.errorRate
    with_retries = topology("app-faults-retries")
    without = topology("no-retries", values={"faults": {"errorRate": error_rate}})
    n = 300
    with requests.Session() as session:
        masked = [get(session, f"{with_retries.url}/api/session") for _ in range(n)]
        raw = [get(session, f"{without.url}/api/session") for _ in range(n)]
    failed_without = sum(1 for o in raw if o.status != 200)
    low, high = binomial_band(n, error_rate)
    assert low <= failed_without <= high, f"{failed_without} of {n} failed without retries"
    # A request fails only if all 6 tries fail: 0.3^6 = 0.07 %, so about 0.2 of 300 on average;
    # more than 3 would happen with p < 1e-4.
    assert sum(1 for o in masked if o.status != 200) <= 3, explain(with_retries, masked)
    assert with_retries.counter("upstream_rq_retry") >= low
    assert without.counter("upstream_rq_retry") == 0


# --- The readiness gate --------------------------------------------------------------------------


def test_draining_replica_leaves_rotation_without_failures_and_its_restart_rejoins(topology):
    """SIGTERM to a replica's container: it answers /readyz 503 while it drains, the lab node's
    readiness probe marks the Pod unready, its endpoint leaves the gateway before the process stops,
    so even without retries nothing fails. The restarted container is back in rotation."""
    running = topology("no-retries", drain_seconds=3)
    draining = running.replicas()[1]
    address = f"{draining.address}:{draining.port}"
    draining.proc.signal(signal.SIGTERM)
    outcomes = []
    with requests.Session() as session:
        def drained() -> bool:
            outcomes.append(get(session, f"{running.url}/api/session"))
            return address not in running.healthy_endpoints()

        wait_until(drained, 10, "the draining replica to leave rotation", interval=0.01)
        wait_until(lambda: draining.restarts >= 1, 30, "the drained replica's container to exit and restart")
        outcomes += [get(session, f"{running.url}/api/session") for _ in range(20)]
    assert [o.status for o in outcomes] == [200] * len(outcomes), explain(running, outcomes)
    seconds = wait_until(lambda: address in running.healthy_endpoints(), 15, "the restarted replica to rejoin")
    print(f"restarted replica back in rotation {seconds:.2f}s after its restart")


@pytest.mark.parametrize("scenario", ["retries", "no-retries"])
def test_istio_balances_by_least_request_unlike_strict_round_robin(topology, scenario):
    """Istio's default load balancer is LEAST_REQUEST (the old hand translation used ROUND_ROBIN):
    one client's sequential requests still reach both replicas, but not in strict alternation."""
    running = topology(scenario)
    with requests.Session() as session:
        replicas = [get(session, f"{running.url}/api/session").replica for _ in range(60)]
    assert set(replicas) == {run.name for run in running.replicas()}
