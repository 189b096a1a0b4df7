"""How the benchmark measures a server: vegeta runs (constant rate or as fast as it goes), timed
starts, interleaved rounds, CPU placement, and the figures each server gets (`Figures`)."""

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import psutil

from lab.host.procs import LOOPBACK, ProcessGroup, free_port, http_status, wait_until
from lab.host.proctree import process_tree_cpu_seconds, process_tree_rss_bytes

MIB = 1024 * 1024


@dataclass(kw_only=True)
class BenchContext:
    """What a section measures with, and how long: `python -m lab bench`'s options."""
    procs: ProcessGroup
    vegeta: str
    # The saturation runs: `rounds` of `saturation_seconds`, as fast as `concurrency` connections go.
    concurrency: int
    rounds: int = 10
    saturation_seconds: float = 5.0
    # The fixed-rate runs: `repeats` of `duration` seconds at `rate` requests/s; then the timed starts.
    rate: int
    duration: float
    repeats: int
    starts: int = 10

Section = Callable[[BenchContext], str]

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

@dataclass
class Server:
    """One measured row: an app under gunicorn with the benchmark's settings."""
    name: str
    app: str
    config: Path
    path: str
    ready_path: str
    env: dict

def median_ratio(mine: list[float], theirs: list[float]) -> float:
    """The median over rounds of mine / theirs in the same round."""
    return median(a / b for a, b in zip(mine, theirs, strict=True))

@dataclass
class Figures:
    saturation_runs: list[float]  # requests/s per round, as fast as ctx.concurrency connections go
    cpu_ms: float  # the server's process tree, CPU time per request at saturation (median round)
    p95_runs: list[float]  # ms per round, at the fixed rate
    rss_mib: float  # the server's process tree after the last saturation run
    ready_runs: list[float]  # seconds from spawn to the first ready 200, per start round
    success: float  # the worst success ratio of all runs

    @property
    def saturation(self) -> float:
        return median(self.saturation_runs)

    @property
    def p95_ms(self) -> float:
        return median(self.p95_runs)

    @property
    def p95_range(self) -> str:
        return f"{min(self.p95_runs):.2f}-{max(self.p95_runs):.2f}"

    @property
    def ready_seconds(self) -> float:
        return median(self.ready_runs)

    def ready_ratio_to(self, reference_runs: list[float]) -> float:
        """The median over the start rounds of this server's start-up time over the reference's."""
        return median_ratio(self.ready_runs, reference_runs)

    def shares_of(self, reference: "Figures") -> list[float]:
        """This server's saturation over the reference's in the same round, round by round."""
        return [mine / theirs for mine, theirs in zip(self.saturation_runs, reference.saturation_runs, strict=True)]

    def share_of(self, reference: "Figures") -> float:
        return median(self.shares_of(reference))

def bench_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(the server's CPUs, everything else's): the server on the last CPU, the load generator and
    the stores on the others, so that the server's figures are not the load generator's. None on
    a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])

@contextlib.contextmanager
def on_cpus(cpus: set[int] | None):
    """Processes started inside run on `cpus` (they inherit this process's affinity)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)

@dataclass
class Running:
    """A started server: its process, the URL it is measured on, the cookie of its returning user."""
    server: Server
    proc: object
    url: str
    headers: dict
    ready_seconds: list[float]

def start_servers(ctx: BenchContext, servers: list[Server], server_cpus: set[int] | None,
                  starts: int = 1) -> tuple[list[Running], dict[str, list[float]]]:
    """Start each server `starts` times, timing each start to its first ready 200, and keep the last
    ones running. The starts are interleaved (every server once per
    round), like the measurement rounds, so that start-up ratios are taken within a round, not
    across a drift. Returns the running servers and every server's start times."""
    procs: dict[str, object] = {}
    ports: dict[str, int] = {}
    ready_seconds: dict[str, list[float]] = {server.name: [] for server in servers}
    for start in range(starts):
        for server in servers:
            if server.name in procs:
                procs.pop(server.name).stop()
            port = ports[server.name] = free_port()
            with on_cpus(server_cpus):
                started = time.monotonic()
                proc = procs[server.name] = ctx.procs.gunicorn(
                    server.app, port, {"SHUTDOWN_DRAIN_SECONDS": "0", **server.env},
                    name=f"{server.name} {start}", config=server.config, wait=False)
                ready_url = f"http://{LOOPBACK}:{port}{server.ready_path}"
                wait_until(lambda url=ready_url: http_status(url, timeout=2) == 200, 60,
                           f"{server.name} at {ready_url}", interval=0.01, proc=proc)
                ready_seconds[server.name].append(time.monotonic() - started)
    running = [warmed_up(ctx, server, procs[server.name], ports[server.name], ready_seconds[server.name])
               for server in servers]
    return running, ready_seconds

def warmed_up(ctx: BenchContext, server: Server, proc, port: int, ready_seconds: list[float]) -> Running:
    url = f"http://{LOOPBACK}:{port}{server.path}"
    # A returning user: webgatos reads the session and writes it back on every request.
    with urllib.request.urlopen(url, timeout=10) as first:
        cookie = (first.headers["Set-Cookie"] or "").split(";", 1)[0]
    headers = {"Cookie": cookie} if cookie else {}
    # Warm-up: the fixed rate, then all connections at once (the store clients' pools fill up).
    attack(ctx.vegeta, url, rate=ctx.rate, duration=min(3.0, ctx.duration), headers=headers)
    attack(ctx.vegeta, url, rate=0, duration=min(2.0, ctx.saturation_seconds), workers=ctx.concurrency, headers=headers)
    return Running(server, proc, url, headers, ready_seconds)

def measure_rounds(ctx: BenchContext, servers: list[Running]) -> dict[str, Figures]:
    """ctx.rounds short saturation rounds, then ctx.repeats fixed-rate rounds; in each round every
    server in turn gets one run. Interleaved, a drift in the machine's speed (another tenant: 5-s
    windows of one CPU loop vary by 20 % here) lands on the servers of a round alike instead of on
    whichever was measured last."""
    saturation: dict[str, list[tuple[dict, float]]] = {running.server.name: [] for running in servers}
    fixed_rate: dict[str, list[dict]] = {running.server.name: [] for running in servers}
    for round_number in range(ctx.rounds):
        print(f"bench:   saturation round {round_number + 1}/{ctx.rounds} ...", flush=True)
        for running in servers:
            cpu_before = process_tree_cpu_seconds(running.proc.pid)
            capacity = attack(ctx.vegeta, running.url, rate=0, duration=ctx.saturation_seconds,
                              workers=ctx.concurrency, headers=running.headers)
            used = process_tree_cpu_seconds(running.proc.pid) - cpu_before
            saturation[running.server.name].append((capacity, used))
    for round_number in range(ctx.repeats):
        print(f"bench:   fixed-rate round {round_number + 1}/{ctx.repeats} ...", flush=True)
        for running in servers:
            fixed_rate[running.server.name].append(
                attack(ctx.vegeta, running.url, rate=ctx.rate, duration=ctx.duration, headers=running.headers))
    figures = {}
    for running in servers:
        capacities, fixed = saturation[running.server.name], fixed_rate[running.server.name]
        figures[running.server.name] = Figures(
            saturation_runs=[capacity["throughput"] for capacity, _ in capacities],
            cpu_ms=median([cpu * 1000 / max(capacity["requests"], 1) for capacity, cpu in capacities]),
            p95_runs=[ms(report["latencies"]["95th"]) for report in fixed],
            rss_mib=process_tree_rss_bytes(running.proc.pid) / MIB, ready_runs=running.ready_seconds,
            success=min(report["success"] for report in [*(capacity for capacity, _ in capacities), *fixed]))
    return figures

def measure_server(ctx: BenchContext, server: Server, server_cpus: set[int] | None) -> Figures:
    (running,), _ = start_servers(ctx, [server], server_cpus)
    figures = measure_rounds(ctx, [running])[server.name]
    running.proc.stop()
    return figures

def paced_latencies_ms(call: Callable[[], object], rate: int, seconds: float) -> list[float]:
    """Each call's latency in ms, `rate` calls a second for `seconds` (one at a time, like a user)."""
    latencies, interval = [], 1.0 / rate
    next_at = time.monotonic()
    for _ in range(max(1, int(rate * seconds))):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return sorted(latencies)
