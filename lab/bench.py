"""`python -m lab bench`: measure the services on loopback and write docs/benchmarks.md.

The report is a list of sections (SECTIONS); each is a function that gets a BenchContext (a
ProcessGroup, the load generator, the options) and returns its Markdown. To add a benchmark,
write such a function and append it to SECTIONS. Figures are measured, never assumed: a section
that cannot run (e.g. no Java for Hazelcast) says why instead of printing numbers.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from lab import binaries
from lab.procs import LOOPBACK, ProcessGroup, free_port, http_status, wait_until

REPO_ROOT = binaries.REPO_ROOT
WEBGATOS_CONF = REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"
SQRT_CONF = REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
MIB = 1024 * 1024

# The targets on a 2-core machine; the report marks each figure against them.
TARGET_P95_MS = 25.0
TARGET_READY_SECONDS = 2.0
TARGET_RSS_MIB = 80.0


@dataclass
class BenchContext:
    procs: ProcessGroup
    vegeta: str
    rate: int
    duration: float
    concurrency: int
    repeats: int


Section = Callable[[BenchContext], str]


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help=__doc__.split(": ", 1)[1].splitlines()[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output", type=Path, default=None,
                        help=f"Markdown report to write (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; "
                             "with --only: standard output, so a partial run never replaces the report)")
    parser.add_argument("--rate", type=int, default=100, help="fixed request rate (requests/s) for latency")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each load run")
    parser.add_argument("--repeats", type=int, default=3, help="fixed-rate runs per store (median p95 shown)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections of the capacity run")
    parser.add_argument("--vegeta", default=None, help="vegeta binary (default: VEGETA_BIN, .cache/bin, PATH)")
    parser.add_argument("--only", default=None, help="comma-separated section names to run (default: all)")
    parser.set_defaults(func=run)


def find_vegeta(explicit: str | None) -> str:
    for candidate in (explicit, os.environ.get("VEGETA_BIN"), REPO_ROOT / ".cache" / "bin" / "vegeta",
                      shutil.which("vegeta")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise binaries.MissingBinary("vegeta not found: run `make vegeta`")


def run(args) -> int:
    try:
        vegeta = find_vegeta(args.vegeta)
    except binaries.MissingBinary as missing:
        print(missing, file=sys.stderr)
        return 2
    sections = SECTIONS
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        unknown = wanted - {section.__name__ for section in SECTIONS}
        if unknown:
            print(f"--only: unknown section(s) {', '.join(map(repr, sorted(unknown)))}; "
                  f"known: {', '.join(s.__name__ for s in SECTIONS)}", file=sys.stderr)
            return 2
        sections = [section for section in SECTIONS if section.__name__ in wanted]
    command = " ".join(["python -m lab bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else "make bench"
    parts = [header(command, vegeta)]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for section in sections:
            with ProcessGroup(Path(tmp) / section.__name__) as group:
                context = BenchContext(group, vegeta, args.rate, args.duration, args.concurrency, args.repeats)
                print(f"bench: {section.__name__} ...", flush=True)
                parts.append(section(context))
    report = "\n\n".join(part.strip() for part in parts) + "\n"
    output = args.output or (None if args.only else DEFAULT_OUTPUT)
    if output is None:
        print(report)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(f"bench: wrote {output}")
    return 0


def header(command: str, vegeta: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"""# Benchmarks

Written by `{command}`; `make bench` regenerates it (overwriting this file). Figures are
from one run on the machine below, everything on loopback. The machine is shared with other
jobs (see the load average), so expect noise, mostly in the tail latencies.

| | |
|---|---|
| date (UTC) | {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} |
| machine | {cpu}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM |
| system | {platform.system()} {platform.release()}, Python {platform.python_version()} |
| load average at start (1/5/15 min) | {load} |
| load generator | {vegeta_version(vegeta)}, constant rate, keep-alive connections |

Targets from the services issue: p95 under {TARGET_P95_MS:g} ms at 100 requests/s for every store, ready in under
{TARGET_READY_SECONDS:g} s, under {TARGET_RSS_MIB:g} MiB RSS per worker."""


def vegeta_version(vegeta: str) -> str:
    """The module version `go install` recorded in the binary (vegeta -version is empty then)."""
    go = shutil.which("go")
    if go:
        try:
            out = subprocess.run([go, "version", "-m", vegeta], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in out.splitlines():
            fields = line.split()
            if fields[:1] == ["mod"] and len(fields) >= 3:
                return f"{fields[1]} {fields[2]}"
    return "version unknown"


# --- measurement helpers ---------------------------------------------------------------------

def attack(vegeta: str, url: str, *, rate: int, duration: float, workers: int | None = None,
           headers: dict[str, str] | None = None) -> dict:
    """One vegeta run against `url`; returns vegeta's JSON report (latencies in nanoseconds)."""
    target = f"GET {url}\n" + "".join(f"{name}: {value}\n" for name, value in (headers or {}).items())
    argv = [vegeta, "attack", f"-rate={rate}/s" if rate else "-rate=0", f"-duration={duration}s",
            "-timeout=10s", "-keepalive=true"]
    if workers:
        argv += [f"-workers={workers}", f"-max-workers={workers}"]
    results = subprocess.run(argv, input=target.encode(), capture_output=True, check=True,
                             timeout=duration + 60).stdout
    report = subprocess.run([vegeta, "report", "-type=json"], input=results, capture_output=True, check=True,
                            timeout=60).stdout
    return json.loads(report)


def ms(nanoseconds: float) -> float:
    return nanoseconds / 1e6


def worker_rss_mib(arbiter_pid: int) -> list[float]:
    return [child.memory_info().rss / MIB for child in psutil.Process(arbiter_pid).children()]


def start_timed(procs: ProcessGroup, app: str, env: dict, name: str, config: Path) -> tuple[int, object, float]:
    """Start gunicorn and return (port, proc, seconds from spawn to /readyz 200)."""
    port = free_port()
    started = time.monotonic()
    proc = procs.gunicorn(app, port, {"SHUTDOWN_DRAIN_SECONDS": "0", **env}, name=name, config=config, wait=False)
    url = f"http://{LOOPBACK}:{port}/readyz"
    wait_until(lambda: http_status(url, timeout=2) == 200, 60, f"{name} at {url}", interval=0.01, proc=proc)
    return port, proc, time.monotonic() - started


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


# --- sections --------------------------------------------------------------------------------

def webgatos_stores(ctx: BenchContext) -> str:
    """Per store, one replica (one worker, threads): start-up, latency at a fixed rate, capacity, RSS."""
    rows = []
    for store in ("memory", "redis", "hazelcast"):
        env = {"SESSION_STORE": store, "SECRET_KEY": "bench", "REPLICA_NAME": f"bench-{store}"}
        if store == "redis":
            redis_port = free_port()
            ctx.procs.redis(redis_port)
            env["REDIS_URL"] = f"redis://{LOOPBACK}:{redis_port}/0"
        elif store == "hazelcast":
            try:
                binaries.java()
                binaries.hazelcast_jar()
            except binaries.MissingBinary as missing:
                rows.append(f"| hazelcast | not measured: {missing} | | | | | | | |")
                continue
            ports = [free_port(), free_port()]
            cluster_name = f"bench-{uuid.uuid4().hex[:8]}"
            ctx.procs.hazelcast_cluster(ports, cluster_name)
            env.update(HAZELCAST_MEMBERS=",".join(f"{LOOPBACK}:{p}" for p in ports),
                       HAZELCAST_CLUSTER_NAME=cluster_name)
        port, proc, ready_seconds = start_timed(ctx.procs, "webgatos:create_app()", env, f"webgatos-{store}",
                                                WEBGATOS_CONF)
        url = f"http://{LOOPBACK}:{port}/api/session"
        # A returning user: every request reads the session and writes it back (visits + 1).
        with urllib.request.urlopen(url, timeout=10) as first:
            cookie = first.headers["Set-Cookie"].split(";", 1)[0]
        attack(ctx.vegeta, url, rate=ctx.rate, duration=min(3.0, ctx.duration), headers={"Cookie": cookie})  # warm-up
        # Several fixed-rate runs, reported by their median p95: one run on a shared machine can
        # catch another job's burst in its tail.
        runs = sorted((attack(ctx.vegeta, url, rate=ctx.rate, duration=ctx.duration, headers={"Cookie": cookie})
                       for _ in range(ctx.repeats)), key=lambda report: report["latencies"]["95th"])
        fixed = runs[len(runs) // 2]
        p95_range = f"{ms(runs[0]['latencies']['95th']):.1f}-{ms(runs[-1]['latencies']['95th']):.1f}"
        capacity = attack(ctx.vegeta, url, rate=0, duration=ctx.duration, workers=ctx.concurrency,
                          headers={"Cookie": cookie})
        rss = max(worker_rss_mib(proc.pid))
        p50, p95 = ms(fixed["latencies"]["50th"]), ms(fixed["latencies"]["95th"])
        rows.append(
            f"| {store} | {fixed['throughput']:.1f} | {p50:.1f} | {p95:.1f} ({mark(p95 < TARGET_P95_MS)}) "
            f"| {p95_range} "
            f"| {fixed['success'] * 100:.1f} % | {capacity['throughput']:.0f} "
            f"(p95 {ms(capacity['latencies']['95th']):.0f} ms, {capacity['success'] * 100:.1f} % ok) "
            f"| {ready_seconds:.2f} ({mark(ready_seconds < TARGET_READY_SECONDS)}) "
            f"| {rss:.0f} ({mark(rss < TARGET_RSS_MIB)}) |")
        proc.stop()
    return f"""## webgatos, one replica per store

`GET /api/session` with a session cookie (each request reads the session from the store and
writes it back), one gunicorn worker with its default threads. Latency: a constant
{ctx.rate} requests/s for {ctx.duration:g} s after a short warm-up, {ctx.repeats} times; the row shows the
run with the median p95 and the range of p95 over the runs. Capacity: as fast as
{ctx.concurrency} connections go for {ctx.duration:g} s. Ready: from spawning gunicorn to the first
`/readyz` 200. RSS: the worker process after both runs. Redis and Hazelcast (two members) run on
the same machine, so they share its 2 CPUs with the app and the load generator.

| store | requests/s at {ctx.rate}/s | p50 ms | p95 ms (< {TARGET_P95_MS:g}) | p95 range ms | success \
| capacity requests/s | ready s (< {TARGET_READY_SECONDS:g}) | worker RSS MiB (< {TARGET_RSS_MIB:g}) |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows)


def sqrt_cpu(ctx: BenchContext) -> str:
    """CPU time of one default sqrt request (1,000,000 iterations), read from the worker process."""
    port, proc, ready_seconds = start_timed(ctx.procs, "sqrt:create_app()", {}, "sqrt", SQRT_CONF)
    [worker] = psutil.Process(proc.pid).children()
    url = f"http://{LOOPBACK}:{port}/"
    requests_measured = 10

    def cpu_seconds() -> float:
        times = worker.cpu_times()
        return times.user + times.system

    with urllib.request.urlopen(url, timeout=60) as response:  # warm-up
        assert response.read() == b"OK!"
    walls = []
    cpu_before = cpu_seconds()
    for _ in range(requests_measured):
        wall_started = time.monotonic()
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.read() == b"OK!"
        walls.append(time.monotonic() - wall_started)
    # The kernel counts CPU time in 10 ms ticks: the total over several requests is accurate.
    cpu = (cpu_seconds() - cpu_before) / requests_measured
    wall = sorted(walls)[len(walls) // 2]
    rss = max(worker_rss_mib(proc.pid))
    proc.stop()
    return f"""## sqrt, one default request

`GET /` (1,000,000 iterations of `x += sqrt(x)`), one request at a time, {requests_measured} requests after
one warm-up request. CPU time is the worker process's user + system time divided by the number of
requests; wall time is the median. A replica with a 1-CPU limit serves about {1 / cpu:.0f} such
requests per second.

| CPU time per request | wall time per request | ready s | worker RSS MiB |
|---|---|---|---|
| {cpu * 1000:.0f} ms | {wall * 1000:.0f} ms | {ready_seconds:.2f} | {rss:.0f} |"""


def measure_return_to_service(cluster, workdir: Path, kills: int = 3, timeout: float = 60.0) -> list[float]:
    """Seconds from a SIGKILL of a replica's container to the gateway routing to it again: the lab
    node's restart delay, gunicorn's boot, the readiness probe, the WorkloadEntry's health, istiod's
    push and Envoy's EDS update, for `kills` kills of a 2-replica Redis topology."""
    from lab.topology import TopologySpec, running

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
    from lab.experiment import ARRIVAL_RATE, PAGE_LOADS, RESTART_DELAY, SCENARIOS, chaos_interval, run_scenario
    from lab.topology import LabCluster

    seconds = max(30.0, float(ctx.duration))
    rows = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp, \
            LabCluster(Path(tmp) / "cluster", restart_delay=RESTART_DELAY) as cluster:
        recovery = measure_return_to_service(cluster, Path(tmp) / "recovery")
        for name in ("chaos-redis-2", "chaos-redis-2-retries"):
            record = run_scenario(SCENARIOS[name], seconds, Path(tmp) / name, cluster, signal_name="SIGKILL",
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


SECTIONS: list[Section] = [webgatos_stores, sqrt_cpu, lab_kill_recovery]
