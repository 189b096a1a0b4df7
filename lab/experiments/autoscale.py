"""The talk's opening demo in the lab: sqrt under a ramp of load, scaled by the real HPA
controller (kube-controller-manager) on the chart's own HorizontalPodAutoscaler.

`helm install sqrt charts/sqrt -f lab/values/sqrt.yaml` (lab/workloads/install.py) puts the
Deployment, Service, HPA and the Istio Gateway/VirtualService on the lab's API server; the lab's
node runs each Pod with its CPU limit (lab/host/cgroups.py) and reports its real CPU use on its
kubelet endpoint, which metrics-server serves as metrics.k8s.io (lab/kube/metrics_server.py);
Locust's ramp shape (loadtests/ramp.py) sends SqrtUser through istiod's gateway. Nothing here
decides a replica count: it only samples what happens.
`run(cluster, workdir)` returns the record `make demo` writes into results.json.
"""

import csv
import datetime
import json
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from lab.experiments import slo
from lab.experiments.substrates import phases
from lab.host.paths import LAB_VALUES, REPO_ROOT, VENV_BIN
from lab.host.procs import wait_until
from lab.kube.metrics_server import METRIC_RESOLUTION_SECONDS
from lab.observe.lab_targets import watching
from lab.observe.prometheus import Prometheus
from lab.observe.promql import PromQLError
from lab.workloads.install import installed

RAMP = REPO_ROOT / "loadtests" / "ramp.py"
RELEASE = "sqrt"


class Ramp(NamedTuple):
    """Locust's ramp shape (loadtests/ramp.py): users, and the seconds up, held and down."""
    users: int = 4
    up: float = 10.0
    hold: float = 60.0
    down: float = 5.0
    quiet: float = 120.0  # after the load: at most this long for the HPA to scale back to its minimum

    @property
    def seconds(self) -> float:
        return self.up + self.hold + self.down


DEFAULT_RAMP = Ramp()


def lab_values() -> dict:
    return yaml.safe_load((LAB_VALUES / f"{RELEASE}.yaml").read_text())


def scale_down_bound(values: dict, metric_resolution: float, sync_period: float) -> float:
    """Seconds after the load stops by which the HPA must be back at its minimum: the CPU of the
    last loaded window leaving metrics-server (two resolutions), the scale-down stabilization
    window, and each scale-down step (policy period) from the maximum, plus a few controller loops."""
    down = values["autoscaling"]["behavior"]["scaleDown"]
    steps = max(1, values["autoscaling"]["maxReplicas"] - values["autoscaling"]["minReplicas"])
    period = min(p["periodSeconds"] for p in down["policies"])
    percent = max((p["value"] for p in down["policies"] if p["type"] == "Percent"), default=0)
    step_time = period if percent >= 100 else period * steps
    return 2 * metric_resolution + down["stabilizationWindowSeconds"] + step_time + 3 * sync_period


def hpa_state(plane, namespace: str) -> dict:
    hpa = plane.get("hpa", RELEASE, "--namespace", namespace)
    status = hpa.get("status", {})
    utilization = next((m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
                        if m.get("type") == "Resource"), None)
    return {"current": status.get("currentReplicas", 0), "desired": status.get("desiredReplicas", 0),
            "utilization": utilization}


def rescale_events(plane, namespace: str) -> list[dict]:
    events = plane.get("events", "--namespace", namespace, "--field-selector",
                       f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={RELEASE}")["items"]
    found = []
    for event in events:
        if event.get("reason") != "SuccessfulRescale":
            continue
        stamp = event.get("eventTime") or event.get("lastTimestamp") or event["metadata"]["creationTimestamp"]
        epoch = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        found.append({"epoch": epoch, "message": event.get("message", "")})
    return sorted(found, key=lambda e: e["epoch"])


def locust_history(path: Path, started: float) -> list[dict]:
    """Locust's per-second history (--csv-full-history): users, requests/s and p95 over time."""
    rows = []
    if not path.exists():
        return rows
    with open(path) as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated":
                continue
            p95 = row.get("95%")
            rows.append({"t": round(float(row["Timestamp"]) - started, 1), "users": int(float(row["User Count"])),
                         "rps": float(row["Requests/s"]),
                         "p95_ms": float(p95) if p95 not in (None, "", "N/A") else None})
    return rows


@dataclass
class Observer:
    """The case's steady-state hypothesis and the lab's Prometheus (None: `unavailable` says why).
    While sqrt is installed its replicas (job "sqrt"), the gateway and the HPA's replica state are
    scraped, and the run is judged per phase through the gateway's listener for sqrt."""
    case: str
    hypothesis: dict
    prometheus: Prometheus | None = None
    unavailable: str = ""

    def watching(self, cluster, release):
        if self.prometheus is None or not self.hypothesis:
            return nullcontext()
        return watching(self.prometheus, cluster, release, case=self.case, job=RELEASE)

    def judge(self, release, run_phases: dict) -> dict:
        promql = self.prometheus.client() if self.prometheus else None
        verdict = slo.judged_or_unknown(promql, self.unavailable, self.hypothesis, run_phases, {"case": self.case},
                                        slo.gateway_signals(release.port, sessions=False))
        if promql is not None:
            verdict["replicas_scraped_max"] = self.replicas_scraped(promql, run_phases)
        return verdict

    def replicas_scraped(self, promql, run_phases: dict) -> float | None:
        """The most sqrt replicas Prometheus scraped at once during the run (None: no answer)."""
        start, end = min(w[0] for w in run_phases.values()), max(w[1] for w in run_phases.values())
        query = f'max_over_time(count(up{{job="{RELEASE}",case="{self.case}"}} == 1)[{max(1, round(end - start))}s:1s])'
        try:
            return promql.value(query, end)
        except PromQLError:
            return None


def run(cluster, workdir: Path, ramp: Ramp = DEFAULT_RAMP, progress=print, observer: Observer | None = None) -> dict:
    """Install sqrt, drive the ramp through the gateway, sample the HPA every second until it is
    back at its minimum (or `ramp.quiet` is over); the case's record, with its phases (the load,
    then the way back down) and, with an `observer` that has a hypothesis, its verdict ("slo")."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    plane, node, mesh = cluster.plane, cluster.node, cluster.mesh
    values = lab_values()
    samples, cpu_seen = [], {}
    with installed(cluster, RELEASE, workdir) as release, \
            (observer.watching(cluster, release) if observer else nullcontext()):
        namespace, url = release.namespace, release.url

        def routed() -> bool:
            ready = [f"{r.address}:{r.port}" for r in node.runs(namespace) if r.ready]
            hosts = mesh.endpoints(release.upstream_cluster)
            return bool(ready) and all(hosts.get(h) == "healthy" for h in ready)
        wait_until(routed, 90, f"sqrt to be routed through the gateway at {url}", interval=0.2)
        wait_until(lambda: hpa_state(plane, namespace)["utilization"] is not None, 90,
                   "the HPA to read sqrt's CPU from metrics.k8s.io", interval=1.0)
        summary_path, csv_prefix = workdir / "locust-summary.json", workdir / "locust"
        started = time.time()
        locust = cluster.group.start(f"locust-{namespace}", [
            str(VENV_BIN / "locust"), "-f", str(RAMP), "--headless", "--host", url,
            "--ramp-users", str(ramp.users), "--ramp-up", f"{ramp.up:g}s", "--ramp-hold", f"{ramp.hold:g}s",
            "--ramp-down", f"{ramp.down:g}s", "--csv", str(csv_prefix), "--csv-full-history",
            "--gate-p95-ms", "off", "--gate-error-rate", "off", "--summary-json", str(summary_path),
            "--only-summary", "--loglevel", "WARNING"], cwd=REPO_ROOT)
        minimum = values["autoscaling"]["minReplicas"]
        load_over = None
        deadline = started + ramp.seconds + ramp.quiet + 60
        while time.time() < deadline:
            now = time.time()
            state = hpa_state(plane, namespace)
            runs = node.runs(namespace)
            cpu = {}
            for run_ in runs:
                seconds = node.cpu_seconds(run_)
                before = cpu_seen.get(run_.name)
                if before is not None and now > before[0]:
                    cpu[run_.name] = round(max(0.0, seconds - before[1]) / (now - before[0]), 3)
                cpu_seen[run_.name] = (now, seconds)
            samples.append({"t": round(now - started, 1), "replicas": state["current"], "desired": state["desired"],
                            "ready": sum(1 for r in runs if r.ready), "utilization": state["utilization"],
                            "cpu": cpu})
            if not locust.alive() and load_over is None:
                load_over = now
                progress(f"  [autoscale] load over at {now - started:.0f} s with {state['current']} replicas; "
                         "waiting for the scale-down")
            if load_over is not None and state["current"] == minimum and state["desired"] == minimum \
                    and now - load_over > 1:
                break
            if len(samples) % 5 == 0:
                progress(f"  [autoscale] {now - started:4.0f} s  replicas {state['current']} -> {state['desired']}  "
                         f"cpu {state['utilization']}% of request")
            time.sleep(max(0.0, 1.0 - (time.time() - now)))
        if locust.alive():
            locust.stop(grace=10)
        events = [{"t": round(e["epoch"] - started, 1), "message": e["message"]}
                  for e in rescale_events(plane, namespace) if e["epoch"] >= started - 1]
        history = locust_history(Path(f"{csv_prefix}_stats_history.csv"), started)
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        found = record(samples, events, history, summary, ramp, load_over - started if load_over else None, values,
                       METRIC_RESOLUTION_SECONDS)
        found["phases"] = phases(started, started + (samples[-1]["t"] if samples else ramp.seconds), [])
        if observer is not None and observer.hypothesis:
            found["slo"] = observer.judge(release, found["phases"])
            found["slo"]["disagreements"] = slo.disagreements(found, found["slo"])
    return {**found, "started_at": round(started, 3)}  # the epoch the samples' t counts from (the run's phases)


def record(samples, events, history, summary, ramp: Ramp, load_over_s, values, metric_resolution) -> dict:
    replicas = [s["replicas"] for s in samples if s["replicas"]]
    ups = [e for e in events if "above target" in e["message"]]
    loaded = [h["p95_ms"] for h in history if h["p95_ms"] is not None and h["users"] > 0]
    first_up = ups[0]["t"] if ups else None

    def median(values_):
        return round(statistics.median(values_), 1) if values_ else None

    # p95 while one replica carried the load, and in the last third of the hold (scaled out).
    before = [h["p95_ms"] for h in history if h["p95_ms"] is not None and h["users"] > 0
              and (first_up is None or h["t"] <= first_up)]
    after = [h["p95_ms"] for h in history if h["p95_ms"] is not None and h["users"] > 0
             and ramp.up + ramp.hold * 2 / 3 <= h["t"] <= ramp.up + ramp.hold]
    return {
        "name": "autoscale", "kind": "autoscale", "store": "-", "app": "sqrt", "retries": False, "chaos": False,
        "seconds": ramp.seconds, "ramp": {"users": ramp.users, "up_s": ramp.up, "hold_s": ramp.hold,
                                          "down_s": ramp.down},
        "min_replicas": min(replicas) if replicas else None, "max_replicas": max(replicas) if replicas else None,
        "replicas": max(replicas) if replicas else None, "p95_ms": median(loaded),  # the contract's keys
        "time_to_first_scale_up_s": first_up,
        "load_over_s": round(load_over_s, 1) if load_over_s is not None else None,
        "back_to_min_after_load_s": next((round(s["t"] - load_over_s, 1) for s in samples
                                          if load_over_s is not None and s["t"] > load_over_s
                                          and s["replicas"] == values["autoscaling"]["minReplicas"]), None),
        "scale_down_bound_s": scale_down_bound(values, metric_resolution, 5.0),
        "p95_before_ms": median(before), "p95_after_ms": median(after), "p95_loaded_ms": median(loaded),
        "requests": summary.get("requests", 0), "failed_requests": summary.get("failed_requests", 0),
        "users_created": summary.get("users_created", 0), "users_completed": summary.get("users_completed", 0),
        "color_changes": 0, "events": events, "samples": samples, "load": history,
    }
