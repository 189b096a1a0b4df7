"""The `lab` substrate: a case on the lab's Kubernetes and istiod on loopback. The chart is
installed for real (lab/workloads/), the lab's node runs the replicas as processes, Locust sends
the talk's arrival profile through the lab's ingress gateway (Envoy programmed by istiod) and the
chaos tool kills replicas on the node. The lab's control plane starts with the first case and
stops in close()."""

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from lab.experiments import autoscale, slo
from lab.experiments.cases import Case
from lab.experiments.demo import DRAIN_SECONDS, chaos_argv, chaos_interval, load_notes, locust_argv
from lab.experiments.substrates import CaseInputError, CaseSkipped, phases
from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.kube.cluster import LabCluster
from lab.kube.node.lifecycle import DEFAULT_RESTART_DELAY as RESTART_DELAY
from lab.observe.lab_targets import watching
from lab.observe.prometheus import Prometheus
from lab.observe.zipkin import ZipkinClient, ZipkinServer, chart_values, register_in_mesh, report_traces
from lab.workloads.helm import deep_merge
from lab.workloads.topology import LabInputError, Topology, TopologySpec, running

PROGRESS_EVERY = 2.0
CONTROL_PLANE_ERRORS = (RuntimeError, TimeoutError, OSError, binaries.MissingBinary)


def spec(case: Case, extra_values: dict | None = None) -> TopologySpec:
    return TopologySpec(store=case.store, replicas=case.replicas, scenario=case.lab_mesh,
                        values=deep_merge(case.values, extra_values or {}))


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


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def exits(topology: Topology) -> list[dict]:
    """The lab node's container exits in this topology (the chaos tool's kills)."""
    return [e for e in topology.node.events() if e["event"] == "exited" and e.get("namespace") == topology.namespace]


def echo_install(case: Case, workdir: Path, echo: Callable[[str], None]) -> None:
    """What the lab runs for a case, as the command a reader would type (lab/workloads/install.py)."""
    extra = f", chart values {json.dumps(case.values)}" if case.values else ""
    echo(f"helm install webgatos charts/webgatos -f lab/values/webgatos.yaml -f istio/scenarios/{case.lab_mesh}.yaml "
         f"-f {workdir}/webgatos-values.yaml  # store {case.store}, {case.replicas} replica(s){extra}")


def run_session(case: Case, seconds: float, workdir: Path, cluster: LabCluster, *, signal_name: str, label: str,
                screenshot_dir: Path | None, echo: Callable[[str], None] = print,
                prometheus: Prometheus | None = None, prometheus_error: str = "",
                zipkin: ZipkinServer | None = None, zipkin_error: str = "") -> dict:
    """One session case on `cluster`: its record (results.json's schema, without `substrate`).
    With `prometheus`, the case's targets are scraped during the run and its hypothesis is judged
    per phase (record["slo"]); without, a hypothesis is "unknown" with `prometheus_error`. With
    `zipkin`, the gateway and the replicas report spans, and the record links the traces of failed
    or retried requests (record["traces"]); without, record["traces_error"] says why."""
    interval = chaos_interval(seconds)
    record = {"name": case.name, "kind": "sessions", "store": case.store, "replicas": case.replicas,
              "mesh": case.mesh, "retries": case.retries, "chaos": case.chaos, "shows": case.shows, "seconds": seconds}
    if case.chaos:
        record.update(chaos_interval_s=interval, chaos_signal=signal_name)
    echo_install(case, workdir, echo)
    hypothesis = slo.hypothesis_of(case)
    tracing = chart_values(zipkin.collector_url) if zipkin is not None else None
    with running(spec(case, tracing), workdir, cluster) as topology, ExitStack() as observed:
        if prometheus is not None:
            observed.enter_context(watching(prometheus, cluster, topology.release, case=case.name,
                                            redis_url=topology.store_address if case.store == "redis" else ""))
        locust_summary, chaos_summary = workdir / "locust-summary.json", workdir / "chaos-summary.json"
        argv = locust_argv(topology.url, seconds, locust_summary)
        echo(" ".join(["locust", *argv[1:]]).replace(str(REPO_ROOT) + "/", ""))
        start = time.time()
        locust = topology.group.start("locust", argv, cwd=REPO_ROOT)
        chaos = None
        if case.chaos:
            argv = chaos_argv(topology.state_path, interval, seconds, signal_name, chaos_summary)
            echo(" ".join(["python", *argv[1:]]).replace(str(workdir) + "/", ""))
            chaos = topology.group.start("chaos", argv, cwd=REPO_ROOT)
        progress = Progress(topology, start)
        deadline = time.monotonic() + seconds + DRAIN_SECONDS + 60  # Locust's own end plus a bounded margin
        next_line = 0.0
        while locust.alive() and time.monotonic() < deadline:
            requests, failed = progress.sample()
            elapsed = time.time() - start
            if elapsed >= next_line:
                kills = len(exits(topology))
                print(f"  [{label} {case.name}] {min(elapsed, seconds):4.0f}/{seconds:g} s  "
                      f"requests {requests}  failed {failed}" + (f"  kills {kills}" if case.chaos else ""),
                      flush=True)
                next_line = elapsed + PROGRESS_EVERY
            time.sleep(1.0)
        progress.sample()
        end = time.time()
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
        started = summary.get("started_at", start)
        run_phases = phases(started, end, [e["epoch"] for e in killed])
        record.update(report_traces(ZipkinClient(zipkin.url), start, end) if zipkin is not None
                      else {"traces": [], "traces_error": f"no Zipkin: {zipkin_error or 'not started'}"})
        if hypothesis:
            record["slo"] = judged(prometheus, prometheus_error, case, hypothesis, run_phases, topology)
        record.update(plotted(prometheus, case, run_phases, topology))
        if screenshot_dir is not None and not case.chaos:
            record["screenshot"] = take_screenshot(topology.url, screenshot_dir, case.store)
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
        started_at=int(started),
        phases=run_phases,
    )
    if "slo" in record:
        record["slo"]["disagreements"] = slo.disagreements(record, record["slo"])
    if chaos_summary.exists():
        record["chaos_summary"] = read_json(chaos_summary)
    return record


def judged(prometheus: Prometheus | None, prometheus_error: str, case: Case, hypothesis: dict, run_phases: dict,
           topology: Topology) -> dict:
    """The case's hypothesis judged by Prometheus, inside `watching` (leaving it drops the targets)."""
    return slo.judged_or_unknown(prometheus.client() if prometheus else None, prometheus_error, hypothesis,
                                 run_phases, {"case": case.name}, slo.gateway_signals(topology.release.port))


def plotted(prometheus: Prometheus | None, case: Case, run_phases: dict, topology: Topology) -> dict:
    """record["prometheus_series"] (and the reasons for any series missing) for the report's plot."""
    if prometheus is None or not run_phases:
        return {}
    windows = list(run_phases.values())
    series, missing = slo.plot_series(prometheus.client(), slo.gateway_signals(topology.release.port),
                                      {"case": case.name}, min(w[0] for w in windows), max(w[1] for w in windows))
    return {"prometheus_series": series, **({"prometheus_series_missing": missing} if missing else {})}


def take_screenshot(url: str, folder: Path, store: str) -> str | None:
    """One picture of the page per store (by the browser engineer's walk); None when no browser."""
    try:
        from lab.experiments import browser
        walk = browser.walk_colors(url, loads=1, screenshot_dir=folder, label=store)
    except Exception as error:  # the picture is a nicety: a missing Chromium must not fail the demo
        print(f"  (no screenshot for {store}: {str(error).splitlines()[0] if str(error) else type(error).__name__})")
        return None
    return str(Path(walk.screenshots[0]).relative_to(folder.parent)) if walk.screenshots else None


def run_autoscale(case: Case, cluster: LabCluster, seconds: float, workdir: Path, echo: Callable[[str], None],
                  prometheus: Prometheus | None = None, prometheus_error: str = "") -> dict:
    """The autoscale case; with a hypothesis, sqrt's replicas, the gateway and the HPA are scraped
    during the run and judged per phase (an unreachable Prometheus: "unknown", as for sessions)."""
    ramp = autoscale.Ramp(hold=max(60.0, 3 * seconds))
    echo("helm install sqrt charts/sqrt -f lab/values/sqrt.yaml")
    echo(f"locust -f loadtests/ramp.py --headless --ramp-users {ramp.users} --ramp-up {ramp.up:g}s "
         f"--ramp-hold {ramp.hold:g}s --ramp-down {ramp.down:g}s")
    return autoscale.run(cluster, workdir, ramp, observer=autoscale.Observer(
        case.name, slo.hypothesis_of(case), prometheus, prometheus_error))


class LabSubstrate:
    """The Substrate protocol (substrates/__init__.py) on the lab's own cluster."""

    name = "lab"

    def __init__(self, workdir: Path, signal_name: str = "SIGKILL", screenshot_dir: Path | None = None,
                 seconds: float = 20.0):
        self.workdir = workdir
        self.signal_name = signal_name
        self.screenshot_dir = screenshot_dir
        self.cluster: LabCluster | None = None
        self.prometheus: Prometheus | None = None
        self.prometheus_error = ""
        self.zipkin: ZipkinServer | None = None
        self.zipkin_error = ""
        self.failed: RuntimeError | None = None  # the control plane's start failed: no second try
        self.order: list[str] = []  # the cases of this run, for the progress lines' "[2/5 name]"
        self.notes = [*load_notes(seconds, signal_name),
                      f"a killed replica's container is restarted {RESTART_DELAY:g} s after it died (the lab's node, "
                      "as a kubelet); Pods, Service endpoints and the gateway's routes come from the lab's "
                      "kube-apiserver and istiod"]

    def check(self, cases: list[Case]) -> None:
        self.order = [case.name for case in cases]
        for case in cases:
            if case.workload != "sessions" or case.store == "hazelcast":  # no Hazelcast: skipped in run()
                continue
            try:
                spec(case).validate()
            except LabInputError as error:
                raise CaseInputError(f"case {case.name}: {error}") from error

    def run(self, case: Case, seconds: float, workdir: Path, echo: Callable[[str], None]) -> dict:
        if case.store == "hazelcast" and (missing := binaries.hazelcast_missing()):
            raise CaseSkipped(missing)
        cluster = self.start()
        if case.workload == "autoscale":
            record = run_autoscale(case, cluster, seconds, workdir, echo, self.prometheus, self.prometheus_error)
        else:
            index = self.order.index(case.name) + 1 if case.name in self.order else 1
            record = run_session(case, seconds, workdir, cluster, signal_name=self.signal_name,
                                 label=f"{index}/{len(self.order) or 1}", screenshot_dir=self.screenshot_dir,
                                 echo=echo, prometheus=self.prometheus, prometheus_error=self.prometheus_error,
                                 zipkin=self.zipkin, zipkin_error=self.zipkin_error)
        return {**record, "substrate": self.name}

    def start(self) -> LabCluster:
        """The lab's control plane, started once (the first case pays its start-up)."""
        if self.failed is not None:
            raise self.failed
        if self.cluster is None:
            try:
                self.cluster = LabCluster(self.workdir, restart_delay=RESTART_DELAY).start()
            except CONTROL_PLANE_ERRORS as error:
                self.failed = RuntimeError(f"the lab's control plane did not start: {error}")
                raise self.failed from error
            self.start_prometheus()
            self.start_zipkin()
        return self.cluster

    def start_zipkin(self) -> None:
        """Zipkin for every case of the run, known to istiod as the mesh's `zipkin` provider."""
        try:
            self.zipkin = ZipkinServer(self.cluster.group).start()
            register_in_mesh(self.cluster.plane, self.zipkin.port)
        except CONTROL_PLANE_ERRORS as error:
            self.zipkin = None
            self.zipkin_error = str(error).splitlines()[0] if str(error) else type(error).__name__
            print(f"  Zipkin did not start: {self.zipkin_error}", flush=True)
            return
        print(f"  Zipkin (UI and API): {self.zipkin.url}/zipkin/", flush=True)

    def start_prometheus(self) -> None:
        """Prometheus for every case of the run; without it the hypotheses are "unknown" (exit 1)."""
        try:
            self.prometheus = Prometheus(self.workdir / "prometheus").start()
        except CONTROL_PLANE_ERRORS as error:
            self.prometheus_error = str(error).splitlines()[0] if str(error) else type(error).__name__
            print(f"  Prometheus did not start: {self.prometheus_error}", flush=True)
            return
        print(f"  Prometheus (UI and query API): {self.prometheus.url}/", flush=True)

    def close(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
