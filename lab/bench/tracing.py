"""The tracing section: what OpenTelemetry's spans cost webgatos per request, at the sampling rates
that matter. The same webgatos (Redis sessions) plain and with spans exported to a real Zipkin
server, sent the B3 headers the gateway sends (its decision in `x-b3-sampled`): every request
sampled, none, and the chart's default `randomSamplingPercentage`. Interleaved rounds at the fixed
rate; the default rate is judged against targets.toml's [tracing]."""

import json
import secrets
import subprocess
from statistics import median

import yaml

from lab.bench import targets as bench_targets
from lab.bench.measure import BenchContext, Running, Server, bench_cpus, ms, on_cpus, start_servers
from lab.bench.per_request import WEBGATOS_CONF
from lab.host.binaries import MissingBinary
from lab.host.paths import CHARTS
from lab.host.procs import LOOPBACK, free_port
from lab.host.proctree import process_tree_cpu_seconds
from lab.observe.zipkin import ZipkinServer

PLAIN = "webgatos redis"
# Enough distinct traces that a round never reuses one (vegeta sends its targets round-robin).
TRACES_PER_CYCLE = 2000


def default_sampling_percentage() -> float:
    """The edge's sampling rate a release gets unless it says otherwise (charts/webgatos/values.yaml)."""
    values = yaml.safe_load((CHARTS / "webgatos" / "values.yaml").read_text())
    return float(values["istio"]["tracing"]["randomSamplingPercentage"])


def traced_name(percentage: float) -> str:
    return f"webgatos redis, traced, {percentage:g} % sampled"


def edge_headers(sampled_share: float, count: int = TRACES_PER_CYCLE) -> list[dict[str, str]]:
    """The B3 headers of `count` requests from a gateway that samples `sampled_share` of them: each
    its own trace, the sampled ones spread evenly (request i is sampled when the running count of
    sampled requests steps up), so any stretch of the cycle holds the share."""
    return [{"x-b3-traceid": secrets.token_hex(16), "x-b3-spanid": secrets.token_hex(8),
             "x-b3-sampled": "1" if int((i + 1) * sampled_share) > int(i * sampled_share) else "0"}
            for i in range(count)]


def vegeta_targets(url: str, requests_headers: list[dict[str, str]]) -> str:
    """vegeta's HTTP target format: one `GET url` block per request, its headers below, blank-line separated."""
    return "\n".join(f"GET {url}\n" + "".join(f"{name}: {value}\n" for name, value in headers.items())
                     for headers in requests_headers)


def attack_targets(vegeta: str, targets: str, *, rate: int, duration: float) -> dict:
    """measure.attack's run, over many targets (each request its own B3 headers)."""
    results = subprocess.run([vegeta, "attack", f"-rate={rate}/s", f"-duration={duration}s", "-timeout=10s",
                              "-keepalive=true"], input=targets.encode(), capture_output=True, check=True,
                             timeout=duration + 60).stdout
    report = subprocess.run([vegeta, "report", "-type=json"], input=results, capture_output=True, check=True,
                            timeout=60).stdout
    return json.loads(report)


def overhead(plain_cpu_ms: list[float], traced_cpu_ms: list[float]) -> float:
    """The traced server's extra CPU per request, as a share of the plain one's: the median over
    the rounds of the two servers' ratio in the same round (a drift of the machine hits both)."""
    return median(traced / plain - 1 for plain, traced in zip(plain_cpu_ms, traced_cpu_ms, strict=True))


def fixed_rate_rounds(ctx: BenchContext, servers: list[tuple[Running, str]]) -> dict[str, dict[str, list[float]]]:
    """ctx.repeats rounds, each server in turn at ctx.rate for ctx.duration with its targets: CPU ms
    per request (the server's process tree, the exporter's thread included) and p95 ms, per round."""
    figures = {running.server.name: {"cpu_ms": [], "p95_ms": [], "success": []} for running, _ in servers}
    for round_number in range(ctx.repeats):
        print(f"bench:   tracing round {round_number + 1}/{ctx.repeats} ...", flush=True)
        for running, targets in servers:
            cpu_before = process_tree_cpu_seconds(running.proc.pid)
            report = attack_targets(ctx.vegeta, targets, rate=ctx.rate, duration=ctx.duration)
            used = process_tree_cpu_seconds(running.proc.pid) - cpu_before
            row = figures[running.server.name]
            row["cpu_ms"].append(used * 1000 / max(report["requests"], 1))
            row["p95_ms"].append(ms(report["latencies"]["95th"]))
            row["success"].append(report["success"])
    return figures


def tracing_overhead(ctx: BenchContext) -> str:
    default = default_sampling_percentage()
    percentages = sorted({100.0, default, 0.0}, reverse=True)
    server_cpus, other_cpus = bench_cpus()
    with on_cpus(other_cpus):
        try:
            zipkin = ZipkinServer(ctx.procs).start()
        except MissingBinary as missing:
            return f"## Tracing overhead\n\nNot measured: {missing}"
        redis_port = free_port()
        ctx.procs.redis(redis_port)
    env = {"SESSION_STORE": "redis", "SECRET_KEY": "bench", "REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0"}
    traced_env = {**env, "OTEL_EXPORTER_ZIPKIN_ENDPOINT": zipkin.collector_url}
    rows = [(PLAIN, env, None)] + [(traced_name(p), traced_env, p) for p in percentages]
    servers = [Server(name, "webgatos:create_app()", WEBGATOS_CONF, "/api/session", "/readyz", server_env)
               for name, server_env, _ in rows]
    with on_cpus(other_cpus):
        running, _ = start_servers(ctx, servers, server_cpus)
        # Every server gets the gateway's headers (the plain one ignores them) and its returning user's cookie.
        with_targets = [(server, vegeta_targets(server.url, [{**server.headers, **headers} for headers in
                                                             edge_headers((percentage or 0) / 100)]))
                        for server, (_, _, percentage) in zip(running, rows, strict=True)]
        figures = fixed_rate_rounds(ctx, with_targets)
    plain = figures[PLAIN]
    shares = {p: overhead(plain["cpu_ms"], figures[traced_name(p)]["cpu_ms"]) for p in percentages}
    target = bench_targets.tracing_cpu_overhead_at_most()
    met = shares[default] <= target
    print(f"bench: target {'met' if met else 'MISSED'}: tracing at the default {default:g} % sampling adds "
          f"{shares[default]:.1%} CPU per request (target <= {target:.0%}); 100 % sampled {shares[100.0]:.1%}, "
          f"none sampled {shares[0.0]:.1%}", flush=True)
    table = [f"| {name} | {median(row['cpu_ms']):.3f} ({min(row['cpu_ms']):.3f}-{max(row['cpu_ms']):.3f}) "
             f"| {'' if name == PLAIN else format(overhead(plain['cpu_ms'], row['cpu_ms']), '+.1%')} "
             f"| {median(row['p95_ms']):.2f} ({min(row['p95_ms']):.2f}-{max(row['p95_ms']):.2f}) "
             f"| {min(row['success']):.1%} |" for name, row in figures.items()]
    return f"""## Tracing overhead

webgatos with Redis sessions: plain, and with `OTEL_EXPORTER_ZIPKIN_ENDPOINT` set (a server span
per request, a span per Redis command on the traced path, batched to a real Zipkin server with
in-memory storage on the other CPU; docs/tracing.md). Every request carries the B3 headers the
gateway sends, each its own trace, with the gateway's decision in `x-b3-sampled`: sampled for
100 %, for the chart's default `istio.tracing.randomSamplingPercentage` ({default:g} %) and for
none. webgatos sends a request the gateway did not sample straight to its uninstrumented app.
{ctx.repeats} interleaved rounds of {ctx.rate} requests/s for {ctx.duration:g} s each. CPU per request is
the server's process tree's user + system time over the run divided by its requests (the export
thread included), the median round's (the range in brackets); the overhead is the median of the
rounds' ratios to the plain server.

| server | server CPU ms/request at {ctx.rate}/s | overhead | p95 ms at {ctx.rate}/s | success |
|---|---|---|---|---|
""" + "\n".join(table) + f"""

- {'met' if met else '**missed**'}: at the default {default:g} % sampling, tracing adds {shares[default]:.1%} CPU per
  request (target <= {target:.0%}, lab/bench/targets.toml)
- every request sampled: {shares[100.0]:+.1%}; none sampled: {shares[0.0]:+.1%}"""
