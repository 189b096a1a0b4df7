"""The talk's experiments on loopback (`python -m lab demo`, lab/cli/demo.py): a topology on the
lab's Kubernetes and Istio, Locust's arrival profile, the chaos tool, measured, then printed as a
table and written as results.json plus a report."""

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.experiments import autoscale, report
from lab.host import binaries
from lab.host.paths import REPO_ROOT, VENV_BIN
from lab.kube.cluster import LabCluster
from lab.kube.node.lifecycle import DEFAULT_RESTART_DELAY as RESTART_DELAY
from lab.workloads.topology import LabInputError, Topology, TopologySpec, running

LOCUSTFILE = REPO_ROOT / "loadtests" / "arrival.py"  # the talk's arrival profile (ArrivalUser)
ARRIVAL_RATE = 10.0  # new users per second, as in the talk (1200 users in 120 s)
PAGE_LOADS = 5  # each user reloads the page: a lost session shows as a color change
DRAIN_SECONDS = 10.0  # after the last arrival, how long users still visiting may take
TALK_CHAOS_INTERVAL = 15.0
PROGRESS_EVERY = 2.0
MIN_SECONDS, MAX_SECONDS = 8.0, 3600.0  # a chaos run must fit one kill
MIN_CHAOS_INTERVAL = 7.5  # about twice a killed replica's way back (restart delay, boot, health check)


@dataclass(frozen=True)
class Scenario:
    name: str
    store: str
    replicas: int
    retries: bool
    chaos: bool
    shows: str
    kind: str = "sessions"  # or "autoscale": sqrt under a ramp, scaled by the HPA (autoscale.py)

    @property
    def mesh_scenario(self) -> str:
        return "retries" if self.retries else "no-retries"


MATRIX = [
    Scenario("memory-2", "memory", 2, False, False,
             "sessions in each replica's memory: users bounce between replicas and lose their color"),
    Scenario("redis-2", "redis", 2, False, False, "sessions in Redis: any replica serves any user"),
    Scenario("hazelcast-2", "hazelcast", 2, False, False, "sessions in a two-member Hazelcast cluster"),
    Scenario("chaos-memory-1", "memory", 1, False, True, "the talk's 1 pod under chaos (in-memory sessions)"),
    Scenario("chaos-memory-2", "memory", 2, False, True, "the talk's 2 pods under chaos"),
    Scenario("chaos-memory-2-retries", "memory", 2, True, True,
             "the talk's 2 pods with mesh retries: no HTTP error left, yet in-memory sessions still break"),
    Scenario("chaos-redis-1", "redis", 1, False, True, "1 replica under chaos: nothing serves while it restarts"),
    Scenario("chaos-redis-2", "redis", 2, False, True, "2 replicas: requests in flight to the victim fail"),
    Scenario("chaos-redis-2-retries", "redis", 2, True, True,
             "2 replicas, retries and Redis: no failed request, no lost session"),
    Scenario("autoscale", "-", 1, False, False,
             "sqrt under a ramp of load: the HPA controller adds replicas, then removes them", kind="autoscale"),
]
SCENARIOS = {s.name: s for s in MATRIX}


def chaos_interval(seconds: float) -> float:
    """The talk's 15 s when the run is long enough for a few kills; shorter runs scale it down
    (to no less than MIN_CHAOS_INTERVAL, so a victim is back before the next kill) so that every chaos
    scenario still sees a kill, two from 15 s on. The first kill comes one interval in."""
    if seconds >= 3 * TALK_CHAOS_INTERVAL:
        return TALK_CHAOS_INTERVAL
    return max(MIN_CHAOS_INTERVAL, seconds / 3)


def parse_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:  # also refuses nan
        raise LabInputError(f"bad DEMO_SECONDS {text!r}: seconds per scenario, from {MIN_SECONDS:g} to {MAX_SECONDS:g}")
    return seconds


def parse_scenarios(text: str) -> list[Scenario]:
    if text.strip() in ("", "all"):
        return list(MATRIX)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise LabInputError(f"unknown scenario(s) {', '.join(map(repr, unknown))}: choose from {', '.join(SCENARIOS)}")
    return [SCENARIOS[name] for name in names]


class Progress:
    """The gateway Envoy's own counters for this topology's listener, sampled every second: the
    progress line (and the plot, should Locust leave no timeline)."""

    def __init__(self, topology: Topology, start: float):
        self.topology = topology
        self.start = start
        self.samples: list[tuple[float, int, int]] = []  # (t, requests so far, 5xx so far)

    def sample(self) -> tuple[int, int]:
        requests = self.topology.listener_counter("downstream_rq_completed")
        failed = self.topology.listener_counter("downstream_rq_5xx")
        self.samples.append((time.time() - self.start, requests, failed))
        return requests, failed

    def series(self) -> list[dict]:
        """Requests and 5xx per second, from consecutive samples."""
        points, previous = [], (0.0, 0, 0)
        for t, requests, failed in self.samples:
            span = t - previous[0]
            if span >= 0.5:
                points.append({"t": round(t, 1), "requests": round((requests - previous[1]) / span, 1),
                               "failures": round((failed - previous[2]) / span, 1)})
                previous = (t, requests, failed)
        return points


def locust_argv(url: str, seconds: float, summary_path: Path, page_loads: int = PAGE_LOADS) -> list[str]:
    # Quality gates off: the demo measures, it does not pass or fail a run.
    return [str(VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", url,
            "--arrival-rate", f"{ARRIVAL_RATE:g}", "--arrival-seconds", f"{seconds:g}",
            "--arrival-drain-seconds", f"{DRAIN_SECONDS:g}", "--page-loads", str(page_loads),
            "--gate-p95-ms", "off", "--gate-error-rate", "off", "--summary-json", str(summary_path),
            "--only-summary", "--loglevel", "WARNING"]


def chaos_argv(state_path: Path, interval: float, seconds: float, signal_name: str,
               summary_path: Path) -> list[str]:
    return [sys.executable, "-m", "chaos", "local", "--state", str(state_path), "--interval", f"{interval:g}s",
            "--duration", f"{seconds:g}s", "--signal", signal_name, "--summary-json", str(summary_path)]


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def exits(topology: Topology) -> list[dict]:
    """The lab node's container exits in this topology (the chaos tool's kills)."""
    return [e for e in topology.node.events() if e["event"] == "exited" and e.get("namespace") == topology.namespace]


def run_scenario(scenario: Scenario, seconds: float, workdir: Path, cluster: LabCluster, *, signal_name: str,
                 label: str, screenshot_dir: Path | None) -> dict:
    interval = chaos_interval(seconds)
    spec = TopologySpec(store=scenario.store, replicas=scenario.replicas, scenario=scenario.mesh_scenario)
    record = {"name": scenario.name, "store": scenario.store, "replicas": scenario.replicas,
              "retries": scenario.retries, "chaos": scenario.chaos, "shows": scenario.shows, "seconds": seconds}
    if scenario.chaos:
        record.update(chaos_interval_s=interval, chaos_signal=signal_name)
    with running(spec, workdir, cluster) as topology:
        locust_summary, chaos_summary = workdir / "locust-summary.json", workdir / "chaos-summary.json"
        start = time.time()
        locust = topology.group.start("locust", locust_argv(topology.url, seconds, locust_summary), cwd=REPO_ROOT)
        chaos = None
        if scenario.chaos:
            chaos = topology.group.start("chaos", chaos_argv(topology.state_path, interval, seconds,
                                                             signal_name, chaos_summary), cwd=REPO_ROOT)
        progress = Progress(topology, start)
        deadline = time.monotonic() + seconds + DRAIN_SECONDS + 60  # Locust's own end plus a bounded margin
        next_line = 0.0
        while locust.alive() and time.monotonic() < deadline:
            requests, failed = progress.sample()
            elapsed = time.time() - start
            if elapsed >= next_line:
                kills = len(exits(topology))
                print(f"  [{label} {scenario.name}] {min(elapsed, seconds):4.0f}/{seconds:g} s  "
                      f"requests {requests}  failed {failed}" + (f"  kills {kills}" if scenario.chaos else ""),
                      flush=True)
                next_line = elapsed + PROGRESS_EVERY
            time.sleep(1.0)
        progress.sample()
        if chaos is not None:
            chaos.stop(grace=10)  # SIGTERM: the chaos tool writes its summary and exits
        if locust.alive():
            locust.stop(grace=10)
            raise TimeoutError(f"Locust did not finish within {seconds + DRAIN_SECONDS + 60:g}s\n{locust.log_tail()}")
        summary = read_json(locust_summary)
        if not summary.get("requests"):
            raise RuntimeError(f"Locust exited with {locust.returncode()} and made no request "
                               f"({'; '.join(summary.get('gates', {}).get('reasons', [])) or 'no summary'})\n"
                               f"{locust.log_tail()}")
        killed = exits(topology)
        if screenshot_dir is not None and not scenario.chaos:
            record["screenshot"] = take_screenshot(topology.url, screenshot_dir, scenario.store)
    started = summary.get("started_at", start)
    timeline = summary.get("timeline") or []
    record.update(
        users_created=summary.get("users_created", 0),
        users_completed=summary.get("users_completed", 0),
        users_failed=summary.get("users_failed", 0),
        users_failed_by_type=summary.get("users_failed_by_type", {}),
        requests=summary.get("requests", 0),
        failed_requests=summary.get("failed_requests", 0),
        failed_requests_by_type=summary.get("failed_requests_by_type", {}),
        failure_samples=summary.get("failure_samples", []),
        machine=summary.get("machine", {}),
        color_changes=summary.get("color_changes", 0),
        p95_ms=summary.get("p95_ms"),
        responses_by_replica=summary.get("responses_by_replica", {}),
        kills=len(killed),
        # Seconds since Locust's start, the time base of its timeline.
        kill_times_s=[round(e["epoch"] - int(started), 2) for e in killed],
        series=[{"t": row["second"], "requests": row["requests"], "failures": row["failed_requests"]}
                for row in timeline] or progress.series(),
    )
    if chaos_summary.exists():
        record["chaos_summary"] = read_json(chaos_summary)
    return record


def take_screenshot(url: str, folder: Path, store: str) -> str | None:
    """One picture of the page per store (by the browser engineer's walk); None when no browser."""
    try:
        from lab.experiments import browser
        walk = browser.walk_colors(url, loads=1, screenshot_dir=folder, label=store)
    except Exception as error:  # the picture is a nicety: a missing Chromium must not fail the demo
        print(f"  (no screenshot for {store}: {str(error).splitlines()[0] if str(error) else type(error).__name__})")
        return None
    return str(Path(walk.screenshots[0]).relative_to(folder.parent)) if walk.screenshots else None


def run_demo(scenarios: list[Scenario], seconds: float, out: Path, signal_name: str, screenshots: bool) -> int:
    """Run `scenarios` on one LabCluster, `seconds` of load each; the report into `out`. The
    exit code of `python -m lab demo`: 1 when a scenario failed."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "runs" / "cluster", ignore_errors=True)
    for name in SCENARIOS:  # what an earlier run left, so the report shows this run only
        (out / f"{name}.svg").unlink(missing_ok=True)
        shutil.rmtree(out / "runs" / name, ignore_errors=True)
    shutil.rmtree(out / "screenshots", ignore_errors=True)
    (out / "autoscale.svg").unlink(missing_ok=True)
    interval = chaos_interval(seconds)
    notes = [f"Locust: the talk's arrival profile for {seconds:g} s per scenario ({LOCUSTFILE.relative_to(REPO_ROOT)})",
             f"chaos: {signal_name} to a random replica every {interval:g} s"
             + ("" if interval == TALK_CHAOS_INTERVAL else
                f" (the talk's {TALK_CHAOS_INTERVAL:g} s scaled down so short runs still see kills;"
                f" DEMO_SECONDS={3 * TALK_CHAOS_INTERVAL:g} or more keeps it)"),
             f"a killed replica's container is restarted {RESTART_DELAY:g} s after it died (the lab's node, as a "
             "kubelet); Pods, Service endpoints and the gateway's routes come from the lab's kube-apiserver and "
             "istiod"]
    print(f"lab demo: {len(scenarios)} scenario(s), {seconds:g} s of load each; report in {out}/", flush=True)
    for note in notes:
        print(f"  {note}", flush=True)
    hazelcast_missing = binaries.hazelcast_missing()
    records, problems = [], []
    try:
        cluster = LabCluster(out / "runs" / "cluster", restart_delay=RESTART_DELAY).start()
    except (RuntimeError, TimeoutError, OSError, binaries.MissingBinary) as error:
        print(f"lab demo: the lab's control plane did not start: {error}", file=sys.stderr)
        return 1
    try:
        run_cases(scenarios, seconds, out, cluster, signal_name, screenshots, hazelcast_missing, records, problems)
    finally:
        cluster.stop()
    ran = [r for r in records if not r.get("skipped")]
    paths = report.write(ran, out, seconds=seconds, notes=notes, skipped=[r for r in records if r.get("skipped")])
    print("\n" + report.table(ran) + "\n", flush=True)
    for text, ok in report.key_facts(ran):
        print(f"  {'not run' if ok is None else 'yes' if ok else 'NO'}: {text}")
    print(f"\nresults: {paths['results']}\nreport:  {paths['markdown']} and {paths['html']}", flush=True)
    if problems:
        print(f"lab demo: {len(problems)} scenario(s) failed: {', '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def run_cases(scenarios, seconds, out, cluster, signal_name, screenshots, hazelcast_missing, records,
              problems) -> None:
    for index, scenario in enumerate(scenarios, 1):
        label = f"{index}/{len(scenarios)}"
        if scenario.store == "hazelcast" and hazelcast_missing:
            print(f"[{label}] {scenario.name}: skipped ({hazelcast_missing})", flush=True)
            records.append({"name": scenario.name, "store": scenario.store, "skipped": hazelcast_missing})
            continue
        print(f"[{label}] {scenario.name}: {scenario.shows}", flush=True)
        try:
            if scenario.kind == "autoscale":
                ramp = autoscale.Ramp(hold=max(60.0, 3 * seconds))
                record = autoscale.run(cluster, out / "runs" / scenario.name, ramp)
                records.append(record)
                print(f"[{label}] {scenario.name}: replicas {record['min_replicas']} -> {record['max_replicas']} "
                      f"(first scale-up {record['time_to_first_scale_up_s']} s), back to "
                      f"{record['min_replicas']} {record['back_to_min_after_load_s']} s after the load; p95 "
                      f"{record['p95_before_ms']} ms on one replica, {record['p95_after_ms']} ms scaled out",
                      flush=True)
                continue
            record = run_scenario(scenario, seconds, out / "runs" / scenario.name, cluster, signal_name=signal_name,
                                  label=label, screenshot_dir=out / "screenshots" if screenshots else None)
        except (RuntimeError, TimeoutError, OSError, binaries.MissingBinary) as error:
            print(f"[{label}] {scenario.name}: FAILED: {error}", file=sys.stderr, flush=True)
            problems.append(scenario.name)
            records.append({"name": scenario.name, "store": scenario.store, "skipped": f"failed: {error}"})
            continue
        records.append(record)
        print(f"[{label}] {scenario.name}: users {record['users_completed']}/{record['users_created']} completed, "
              f"failed requests {record['failed_requests']}, color changes {record['color_changes']}", flush=True)
