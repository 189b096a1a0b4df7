"""The lab's section: a replica's way back after a kill, and what kills cost users with and
without mesh retries, on the lab's Kubernetes and istiod."""

import os
import signal
import tempfile
import time
from pathlib import Path

from lab.bench.measure import BenchContext
from lab.host.procs import wait_until


def measure_return_to_service(cluster, workdir: Path, kills: int = 3, timeout: float = 60.0) -> list[float]:
    """Seconds from a SIGKILL of a replica's container to the gateway routing to it again: the lab
    node's restart delay, gunicorn's boot, the readiness probe, the WorkloadEntry's health, istiod's
    push and Envoy's EDS update, for `kills` kills of a 2-replica Redis topology."""
    from lab.workloads.topology import TopologySpec, running

    seconds = []
    with running(TopologySpec(store="redis", replicas=2, scenario="retries"), workdir, cluster) as topology:
        for index in range(kills):
            victim = topology.replicas()[index % 2]
            address = f"{victim.address}:{victim.port}"
            killed_at = time.monotonic()
            os.killpg(victim.pid, signal.SIGKILL)
            wait_until(lambda a=address: a not in topology.healthy_endpoints(), timeout,
                       "the gateway to drop the replica", interval=0.02)
            wait_until(lambda a=address: a in topology.healthy_endpoints(), timeout,
                       "the gateway to route to it again", interval=0.02)
            seconds.append(time.monotonic() - killed_at)
    return seconds

def lab_kill_recovery(ctx: BenchContext) -> str:
    """A replica's way back after a kill, and requests failed per kill under the talk's load with
    and without mesh retries (2 replicas, Redis sessions), on the lab's Kubernetes and istiod."""
    from lab.experiments import cases
    from lab.experiments.demo import ARRIVAL_RATE, PAGE_LOADS, chaos_interval
    from lab.experiments.substrates.lab import RESTART_DELAY, run_session
    from lab.kube.cluster import LabCluster

    seconds = max(30.0, float(ctx.duration))
    rows = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp, \
            LabCluster(Path(tmp) / "cluster", restart_delay=RESTART_DELAY) as cluster:
        recovery = measure_return_to_service(cluster, Path(tmp) / "recovery")
        for name in ("chaos-redis-2", "chaos-redis-2-retries"):
            record = run_session(cases.by_name(name), seconds, Path(tmp) / name, cluster, signal_name="SIGKILL",
                                 label="bench", screenshot_dir=None)
            per_kill = record["failed_requests"] / record["kills"] if record["kills"] else float("nan")
            rows.append(f"| {name} | {'yes' if record['retries'] else 'no'} | {record['kills']} "
                        f"| {record['requests']} | {record['failed_requests']} | {per_kill:.1f} "
                        f"| {record['users_completed']}/{record['users_created']} |")
    times = ", ".join(f"{s:.2f}" for s in recovery)
    return f"""## Lab: a replica kill, its way back, and what it costs users

Return to service: SIGKILL to one of 2 replicas' containers (Redis sessions, no load), until the
gateway routes to it again: the lab node's {RESTART_DELAY:g} s restart delay, gunicorn's boot, the
readiness probe (every second), the WorkloadEntry's health, istiod's push and Envoy's EDS update.
Measured {len(recovery)} times: {times} s (median {sorted(recovery)[len(recovery) // 2]:.2f} s).

Failed requests per kill: `python -m lab demo`'s scenarios for {seconds:g} s each (Locust's arrival
profile, {ARRIVAL_RATE:g} new users/s, {PAGE_LOADS} page loads each; SIGKILL every
{chaos_interval(seconds):g} s).

| scenario | retries | kills | requests | failed requests | failed per kill | users completed |
|---|---|---|---|---|---|---|
""" + "\n".join(rows)
