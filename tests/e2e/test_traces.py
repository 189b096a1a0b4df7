"""Traces of a retried request, end to end: a real Zipkin server, istiod's `zipkin` provider selected
by the chart's Telemetry resource (istio.tracing), the ingress gateway's Envoy reporting one span
per upstream attempt, and webgatos's OpenTelemetry spans joining the same trace through B3 headers.

The chaos tool kills one of two Redis-backed replicas (SIGKILL) under a steady request stream with
the `retries` profile; through Zipkin's API the test then finds a request whose trace holds two
attempts: the first to the killed replica, failed, the second to the survivor, answered 200.
"""

import contextlib
import json
import sys
import threading
import time
from collections import Counter

import pytest
import requests

from lab.host.procs import ProcessGroup, wait_for_value, wait_until
from lab.observe.zipkin import (
    ZipkinClient,
    ZipkinServer,
    chart_values,
    describe,
    register_in_mesh,
    retried_traces,
    upstream_attempts,
)
from tests.conftest import REPO_ROOT

GATEWAY_SERVICE = "istio-ingressgateway.istio-ingress"  # the gateway's node cluster (app.namespace)
REQUEST_TIMEOUT = 15.0
KILL_ROUNDS = 3


@pytest.fixture(scope="module")
def zipkin(lab_cluster, tmp_path_factory):
    with ProcessGroup(tmp_path_factory.mktemp("zipkin")) as group:
        server = ZipkinServer(group).start()
        register_in_mesh(lab_cluster.plane, server.port)
        yield server


def wait_gateway_traces(running, client: ZipkinClient) -> None:
    """istiod pushes the tracing config a moment after the Telemetry lands: until one request's
    trace shows the gateway, the stream below would be partly untraced."""
    def traced() -> bool:
        requests.get(f"{running.url}/api/session", timeout=REQUEST_TIMEOUT)
        return GATEWAY_SERVICE in client.services()
    wait_until(traced, 60, f"the gateway ({GATEWAY_SERVICE}) to report spans to Zipkin", interval=1.0)


def stream(url: str, stop: threading.Event, statuses: list, clients: int = 4) -> list[threading.Thread]:
    def client():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    statuses.append(session.get(url, timeout=REQUEST_TIMEOUT).status_code)
                except requests.RequestException:
                    statuses.append(0)
                time.sleep(0.01)
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def two_attempts(client: ZipkinClient, start: float, end: float, killed: set[str], survivors: set[str]):
    """A trace whose first attempt went to a killed replica and failed, and whose last attempt went
    to a survivor and answered 200; None when Zipkin holds none (yet)."""
    for link in retried_traces(client, start, end, limit=50):
        attempts = upstream_attempts(client.trace(link.trace_id))
        if len(attempts) >= 2 and attempts[0].failed and attempts[0].address in killed \
                and attempts[-1].status == 200 and attempts[-1].address in survivors:
            return link, attempts
    return None


def test_a_retried_request_shows_the_failed_attempt_and_the_one_that_answered(topology, zipkin, procs, tmp_path):
    running = topology("retries", store="redis", replicas=2, values=chart_values(zipkin.collector_url))
    client = ZipkinClient(zipkin.url)
    wait_gateway_traces(running, client)
    addresses = {run.name: f"{run.address}:{run.port}" for run in running.replicas()}

    statuses: list[int] = []
    stop = threading.Event()
    started = time.time()
    threads = stream(f"{running.url}/api/session", stop, statuses)
    killed: set[str] = set()
    found = None
    try:
        wait_until(lambda: len(statuses) >= 50, 30, "50 requests before the first kill")
        # A kill shows in a trace only if a request reached the victim before the gateway dropped it
        # from its endpoints: on a busy machine one kill may slip between requests, so kill again
        # (after both replicas are back) until Zipkin holds such a trace, at most KILL_ROUNDS times.
        for round_ in range(1, KILL_ROUNDS + 1):
            summary_path = tmp_path / f"chaos-{round_}.json"
            chaos = procs.start(f"chaos-{round_}", [
                sys.executable, "-m", "chaos", "local", "--state", str(running.state_path), "--interval", "1s",
                "--rounds", "1", "--grace-period", "0", "--seed", "7", "--summary-json",
                str(summary_path)], cwd=REPO_ROOT)
            assert chaos.popen.wait(timeout=60) == 0, chaos.log_tail()
            kills = [k for k in json.loads(summary_path.read_text())["kills"] if k["result"] == "killed"]
            assert kills, "the chaos tool killed nothing"
            killed |= {addresses[k["victim"]] for k in kills}
            wait_until(lambda: all(run.ready for run in running.replicas()), 60, "every replica ready again",
                       interval=0.2)
            survivors = set(addresses.values()) - killed  # the same seed picks the same victim each round
            assert survivors, killed
            # Envoy and webgatos export in batches (up to 5 s): poll Zipkin, bounded.
            with contextlib.suppress(TimeoutError):
                found = wait_for_value(
                    lambda victims=frozenset(killed), others=frozenset(survivors):
                    two_attempts(client, started, time.time() + 1, victims, others),
                    20, "a retried trace", interval=1.0)
            if found:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
    assert set(statuses) == {200}, f"retries should hide the kills: {Counter(statuses)}"
    assert found, (f"no trace with a failed attempt on a killed replica, then a 200 from another, after "
                   f"{KILL_ROUNDS} kills; retried: {retried_traces(client, started, time.time() + 1)}")
    link, attempts = found
    print(f"{link.url}: {link.why}")
    first, last = attempts[0], attempts[-1]
    assert first.cluster == last.cluster == running.upstream_cluster, attempts
    assert first.status == 0 or first.status >= 500, first
    assert first.flags not in ("", "-"), first  # Envoy says why: UF (connect failure), UC, URX...
    # The listing may have described the trace before its last spans arrived: describe it whole.
    assert describe(client.trace(link.trace_id)).startswith("retried"), link
    assert link.url.endswith(link.trace_id)
    # The survivor's own span (OpenTelemetry) joins the gateway's trace through B3, in its next batch.
    wait_until(lambda: any(span.get("localEndpoint", {}).get("serviceName") == "webgatos"
                           and span.get("kind") == "SERVER" for span in client.trace(link.trace_id)),
               30, f"webgatos's span in trace {link.trace_id}", interval=1.0)
