"""The lab's Prometheus on a real topology (lab/observe/lab_targets.py): it scrapes the replicas,
the gateway's Envoy, redis_exporter and the replica state while a replica is killed, and the SLO
judge, reading the gateway's counters, sees the kill in the fault phase only."""

import contextlib
import os
import signal
import threading
import time

import requests

from lab.experiments import slo
from lab.observe.lab_targets import watching
from lab.observe.prometheus import Prometheus

HYPOTHESIS = {"availability": 0.5, "p95_ms": 2000, "color_changes": 0, "min_replicas": 2}
CASE = "e2e-prometheus"


def traffic(url: str, stopping: threading.Event, max_seconds: float = 90.0) -> None:
    users = [requests.Session() for _ in range(3)]
    deadline = time.monotonic() + max_seconds
    while not stopping.is_set() and time.monotonic() < deadline:
        for user in users:
            with contextlib.suppress(requests.RequestException):  # a 503 or a reset is what the judge counts
                user.get(url + "/api/session", timeout=5)
        time.sleep(0.02)


def test_a_killed_replica_breaks_min_replicas_in_the_fault_phase_only(topology, procs, tmp_path):
    lab = topology("no-retries", store="redis", replicas=2, drain_seconds=1)
    with Prometheus(tmp_path / "prometheus", group=procs) as server, \
            watching(server, lab.cluster, lab.release, case=CASE, redis_url=lab.store_address):
        client = server.client()
        assert client.value(f'redis_up{{case="{CASE}"}}') == 1
        assert client.value(f'count(up{{job="webgatos",case="{CASE}"}} == 1)') == 2
        stopping = threading.Event()
        sender = threading.Thread(target=traffic, args=(lab.url, stopping), daemon=True)
        sender.start()
        try:
            t0 = time.time()
            time.sleep(5)
            t1 = time.time()
            os.kill(lab.replicas()[0].pid, signal.SIGKILL)
            lab.wait_routed(2, timeout=60)
            time.sleep(3)  # the replica exporter reads the Deployment's status once a second
            t2 = time.time()
            time.sleep(6)
            t3 = time.time()
        finally:
            stopping.set()
            sender.join(timeout=15)
        phases = {"baseline": [t0, t1], "fault": [t1, t2], "recovery": [t2, t3]}
        result = slo.judge(client, HYPOTHESIS, phases, {"case": CASE}, slo.gateway_signals(lab.release.port))
    checks = {phase: {entry["check"]: entry for entry in entries} for phase, entries in result["phases"].items()}
    assert result["verdict"] == "broken", result
    assert checks["fault"]["min_replicas"]["value"] == 1 and not checks["fault"]["min_replicas"]["ok"]
    for phase in ("baseline", "recovery"):
        missed = [(phase, e["check"], e["value"], e["reason"]) for e in checks[phase].values() if not e["ok"]]
        assert not missed
    assert checks["baseline"]["availability"]["value"] == 1
    assert f"_{lab.release.port}__downstream_rq_xx" in checks["recovery"]["availability"]["promql"]
    assert result["totals"]["requests"] > 100 and result["totals"]["color_changes"] == 0
