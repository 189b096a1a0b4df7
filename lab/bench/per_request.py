"""The per-request section: webgatos per store against a bare WSGI hello and a Flask hello served
the same way (lab/bench/apps/), judged against targets.toml."""

import os
import uuid

from lab.bench import targets as bench_targets
from lab.bench.measure import (
    BenchContext,
    Figures,
    Server,
    bench_cpus,
    measure_rounds,
    median_ratio,
    on_cpus,
    start_servers,
)
from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.host.procs import LOOPBACK, free_port

WEBGATOS_CONF = REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"
BENCH_APPS_CONF = REPO_ROOT / "lab" / "bench" / "apps" / "gunicorn.conf.py"
HELLO = "Flask hello"


def webgatos_servers(ctx: BenchContext, stores_cpus: set[int] | None) -> list[Server | str]:
    """The reference apps and webgatos per store (a string: a row that cannot be measured, and why)."""
    reference = dict(config=BENCH_APPS_CONF, path="/", ready_path="/", env={})
    servers: list[Server | str] = [Server("bare WSGI hello", "lab.bench.apps:bare_wsgi", **reference),
                                   Server(HELLO, "lab.bench.apps:flask_hello", **reference)]
    for store in ("memory", "redis", "hazelcast"):
        env = {"SESSION_STORE": store, "SECRET_KEY": "bench", "REPLICA_NAME": f"bench-{store}"}
        with on_cpus(stores_cpus):
            if store == "redis":
                redis_port = free_port()
                ctx.procs.redis(redis_port)
                env["REDIS_URL"] = f"redis://{LOOPBACK}:{redis_port}/0"
            elif store == "hazelcast":
                if missing := binaries.hazelcast_missing():
                    servers.append(f"webgatos hazelcast: not measured: {missing}")
                    continue
                member_port, cluster_name = free_port(), f"bench-{uuid.uuid4().hex[:8]}"
                ctx.procs.hazelcast_cluster([member_port], cluster_name)
                env.update(HAZELCAST_MEMBERS=f"{LOOPBACK}:{member_port}", HAZELCAST_CLUSTER_NAME=cluster_name)
        servers.append(Server(f"webgatos {store}", "webgatos:create_app()", WEBGATOS_CONF, "/api/session",
                              "/readyz", env))
    return servers


def target_checks(figures: dict[str, Figures], targets: bench_targets.PerRequestTargets | None = None
                  ) -> list[tuple[str, bool]]:
    """(what, met) for each target (targets.toml) that could be measured: every ratio is to the
    Flask hello of the same rounds."""
    targets = targets or bench_targets.load()
    hello = figures.get(HELLO)
    checks = []
    for store, target in targets.stores.items():
        row = figures.get(f"webgatos {store}")
        if row is None or hello is None:
            continue
        share = row.share_of(hello)
        checks.append((f"{store}: {share:.0%} of the Flask hello's saturation "
                       f"(target >= {target.share_of_flask_hello_at_least:.0%})",
                       share >= target.share_of_flask_hello_at_least))
        checks.append((f"{store}: p95 {row.p95_ms:.2f} ms at the fixed rate (target < {targets.p95_ms_below:g} ms)",
                       row.p95_ms < targets.p95_ms_below))
        checks.append((f"{store}: {row.rss_mib:.0f} MiB RSS (target <= {target.rss_mib_at_most:g})",
                       row.rss_mib <= target.rss_mib_at_most))
        ready = row.ready_ratio_to(hello.ready_runs)
        checks.append((f"{store}: ready in {row.ready_seconds:.2f} s, {ready:.2f}x the Flask hello's start in the "
                       f"same round ({hello.ready_seconds:.2f} s; median of {len(row.ready_runs)} rounds; target "
                       f"<= {target.ready_vs_flask_hello_at_most:.2f}x)", ready <= target.ready_vs_flask_hello_at_most))
        checks.append((f"{store}: {row.success:.1%} of requests succeeded", row.success == 1.0))
    return checks


def webgatos_per_request(ctx: BenchContext) -> str:
    """webgatos per store against a bare WSGI hello and a Flask hello served the same way:
    saturation, CPU per request, p95 at a fixed rate, RSS, start-up; the ratios to the hello."""
    server_cpus, other_cpus = bench_cpus()
    not_measured, to_start = [], []
    with on_cpus(other_cpus):
        for server in webgatos_servers(ctx, other_cpus):
            if isinstance(server, str):
                not_measured.append(f"| {server} | | | | | | | |")
                continue
            to_start.append(server)
        print(f"bench:   starting {len(to_start)} servers ({ctx.starts} times each, in turn) ...", flush=True)
        running, _ = start_servers(ctx, to_start, server_cpus, starts=ctx.starts)
        figures = measure_rounds(ctx, running)
    hello = figures.get(HELLO)
    rows = [f"| {name} | {row.saturation:,.0f} | {row.share_of(hello):.0%} ({min(row.shares_of(hello)):.0%}-"
            f"{max(row.shares_of(hello)):.0%}) | {row.cpu_ms:.3f} "
            f"| {row.p95_ms:.2f} ({row.p95_range}) | {row.rss_mib:.0f} | {row.ready_seconds:.2f} | {row.success:.1%} |"
            for name, row in figures.items()] + not_measured
    targets = bench_targets.load()
    start_rows = [f"| {store} | {figures[f'webgatos {store}'].ready_seconds:.3f} | {hello.ready_seconds:.3f} "
                  f"| {median_ratio(figures[f'webgatos {store}'].ready_runs, hello.ready_runs):.2f}x "
                  f"| {target.ready_vs_flask_hello_at_most:.2f}x |"
                  for store, target in targets.stores.items() if hello and f"webgatos {store}" in figures]
    checks = target_checks(figures, targets)
    for what, met in checks:
        print(f"bench: target {'met' if met else 'MISSED'}: {what}", flush=True)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    placement = (f"the servers on CPU {min(server_cpus)}, the load generator and the stores on CPU "
                 f"{', '.join(map(str, sorted(other_cpus)))}" if server_cpus else "everything on the one CPU")
    return f"""## webgatos per request, next to a bare WSGI and a Flask hello

Each row is one gunicorn server with webgatos's settings (one gthread worker, its default
threads, the same response writer); the hellos answer `GET /`, webgatos `GET /api/session` with a
session cookie (each request reads the session from the store and writes it back). Placement:
{placement}. Hazelcast is one member. All servers run side by side (only one is loaded at a time)
and are measured in interleaved rounds, every server in turn in each round: {ctx.rounds} saturation
rounds (as fast as {ctx.concurrency} keep-alive connections go for {ctx.saturation_seconds:g} s), then
{ctx.repeats} fixed-rate rounds (a constant {ctx.rate} requests/s for {ctx.duration:g} s). Saturation and CPU
per request (the server's process tree's user + system time over the run divided by its requests)
are medians over the rounds; the share of the Flask hello is the median over rounds of the two
servers' ratio in the same round (the range over the rounds in brackets), so that a drift in the
machine's speed does not decide it. p95:
the median round's (the range over the rounds in brackets). RSS: the server's process tree after
the last run. Ready: from spawning gunicorn to the first 200 of its readiness path (`/readyz`,
which needs the store), the median of {ctx.starts} starts, in rounds (every server starts once per
round, before the runs). Load average after the section (1/5/15 min): {load}.

| server | saturation requests/s | share of the Flask hello | server CPU ms/request | p95 ms at {ctx.rate}/s \
| RSS MiB (process tree) | ready s | success |
|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + """

Start-up against the Flask hello started in the same rounds on the same CPU: the ratio is the
median over the rounds of the two starts in the same round; the target is the issue's own table
(webgatos's start over its Flask hello's before the issue's first change, targets.toml).

| store | ready s | Flask hello ready s | ratio to the Flask hello | target |
|---|---|---|---|---|
""" + "\n".join(start_rows) + """

Targets (the per-request-cost issue's, in lab/bench/targets.toml), each judged below: webgatos's
saturation as a share of the Flask hello's, p95 at the fixed rate, RSS, and start-up relative to
the Flask hello's.

""" + "\n".join(f"- {'met' if met else '**missed**'}: {what}" for what, met in checks)
