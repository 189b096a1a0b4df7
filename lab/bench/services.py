"""Sections that measure one service at a time: the stores' round trips from Python, webgatos
under other gunicorn worker models, and one default sqrt request."""

import dataclasses
import time
import urllib.request
import uuid
from statistics import median

import psutil

from lab.bench.measure import (
    BenchContext,
    Server,
    bench_cpus,
    measure_server,
    on_cpus,
    paced_latencies_ms,
    start_timed,
    worker_rss_mib,
)
from lab.bench.per_request import WEBGATOS_CONF
from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.host.procs import LOOPBACK, free_port

SQRT_CONF = REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"


def store_round_trips(ctx: BenchContext) -> str:
    """One store call from a Python client on the server's CPU, paced like the p95 runs: the floor
    under webgatos's two calls per request, set by the store and the machine, not by the app."""
    import hazelcast
    import redis

    server_cpus, other_cpus = bench_cpus()
    value = b"x" * 40  # about a session's size
    with on_cpus(other_cpus):
        redis_port = free_port()
        ctx.procs.redis(redis_port)
        member_port, cluster_name = free_port(), f"bench-{uuid.uuid4().hex[:8]}"
        hazelcast_missing = binaries.hazelcast_missing()
        if hazelcast_missing:
            member_port = None
        else:
            ctx.procs.hazelcast_cluster([member_port], cluster_name)
    rows = []
    with on_cpus(server_cpus):
        client = redis.Redis(host=LOOPBACK, port=redis_port, socket_timeout=5)
        client.set("session:bench", value)
        calls = [("Redis GET", lambda: client.get("session:bench")),
                 ("Redis SET with a TTL", lambda: client.set("session:bench", value, ex=1800))]
        if member_port:
            member = hazelcast.HazelcastClient(cluster_members=[f"{LOOPBACK}:{member_port}"],
                                               cluster_name=cluster_name, statistics_enabled=False)
            sessions = member.get_map("bench")
            sessions.set("session:bench", bytearray(value)).result()
            calls += [("Hazelcast map get", lambda: sessions.get("session:bench").result()),
                      ("Hazelcast map set with a TTL", lambda: sessions.set("session:bench", bytearray(value),
                                                                            ttl=1800).result())]
        for name, call in calls:
            for _ in range(2000):  # warm-up: connections, the member's JIT
                call()
            latencies = paced_latencies_ms(call, ctx.rate, ctx.duration)
            rows.append(f"| {name} | {median(latencies):.2f} | {latencies[int(len(latencies) * 0.95)]:.2f} |")
        client.close()
        if member_port:
            member.shutdown()
        else:
            rows.append(f"| Hazelcast: not measured: {hazelcast_missing} | | |")
    return f"""## Store round trips from Python

One call at a time from a Python client on the server's CPU to the store on the other CPU,
{ctx.rate} calls/s for {ctx.duration:g} s after 2,000 warm-up calls, a 40-byte value: the floor under
webgatos's two calls per session request (a read and a write), set by the store, its client and
the machine (redis-py and the Hazelcast Python client as shipped). Hazelcast is one member, its
JVM as the lab starts it.

| call | p50 ms | p95 ms |
|---|---|---|
""" + "\n".join(rows)

WORKER_MODELS = [  # (worker class, workers, threads); the first is webgatos's default
    ("service_common.workers.HeadFirstThreadWorker", 1, 8), ("gthread", 1, 8), ("gthread", 1, 4),
    ("gthread", 1, 1), ("gthread", 2, 4), ("sync", 2, 1), ("gevent", 1, 1)]

def worker_models(ctx: BenchContext) -> str:
    """webgatos with Redis sessions under other gunicorn worker models, on the same one CPU."""
    server_cpus, other_cpus = bench_cpus()
    with on_cpus(other_cpus):
        redis_port = free_port()
        ctx.procs.redis(redis_port)
    env = {"SESSION_STORE": "redis", "SECRET_KEY": "bench", "REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0"}
    one_run = dataclasses.replace(ctx, repeats=1, rounds=1, saturation_seconds=ctx.duration)
    rows = []
    for worker_class, workers, threads in WORKER_MODELS:
        name = f"{worker_class}, {workers} worker(s) x {threads} thread(s)"
        print(f"bench:   {name} ...", flush=True)
        server = Server(name, "webgatos:create_app()", WEBGATOS_CONF, "/api/session", "/readyz",
                        {**env, "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads),
                         # the environment's gunicorn flags override the config file's
                         "GUNICORN_CMD_ARGS": f"--worker-class {worker_class}"})
        with on_cpus(other_cpus):
            row = measure_server(one_run, server, server_cpus)
        rows.append(f"| {name} | {row.saturation:,.0f} | {row.cpu_ms:.3f} | {row.p95_ms:.2f} "
                    f"| {row.rss_mib:.0f} | {row.success:.1%} |")
    return f"""## gunicorn worker models for webgatos (Redis sessions)

The same measurement as above (one run of each), with the server on one CPU; the first row is
webgatos's default (`WEB_CONCURRENCY=1`, `GUNICORN_THREADS=8`). sync workers close the connection
after each response, so the load generator reconnects for every request.

| worker model | saturation requests/s | server CPU ms/request | p95 ms at {ctx.rate}/s | RSS MiB | success |
|---|---|---|---|---|---|
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
