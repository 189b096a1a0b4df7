"""The autoscale case on a cluster: sqrt with its HorizontalPodAutoscaler at a demo's pace
(scripts/cluster/values/hpa-demo-pace.yaml), Locust's ramp (loadtests/ramp.py) as a Job in the
namespace, and the HPA, the Pods and their CPU (metrics.k8s.io, the kubelet's figures) sampled
until the replicas are back at the minimum. The record is the lab's (autoscale.record): the
same keys, judged by the same facts."""

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import yaml

from lab.experiments import autoscale
from lab.experiments.substrates import cluster_job as job
from lab.experiments.substrates import cluster_load as load
from lab.experiments.substrates import phases
from lab.host.paths import CHARTS, REPO_ROOT
from lab.kube.metrics_server import METRIC_RESOLUTION_SECONDS
from lab.workloads.helm import deep_merge

CHART = CHARTS / "sqrt"
PACE_VALUES = REPO_ROOT / "scripts" / "cluster" / "values" / "hpa-demo-pace.yaml"
SELECTOR = "app.kubernetes.io/name=sqrt,app.kubernetes.io/component!=load-generator"
METRICS_TIMEOUT = 180  # the HPA's first CPU reading: metrics-server's first scrapes of the new Pod
SAMPLE_EVERY = 2.0
MIN_HOLD = 40.0


def ramp_for(seconds: float) -> autoscale.Ramp:
    """The lab's ramp shape, its hold scaled by DEMO_SECONDS: long enough for metrics-server to
    see the load and the HPA to act on it."""
    return autoscale.Ramp(hold=max(MIN_HOLD, 2 * seconds))


def values() -> dict:
    """The chart's values with the demo's pace: what the HPA runs by (scale_down_bound reads it)."""
    chart = yaml.safe_load((CHART / "values.yaml").read_text())
    return deep_merge(chart, yaml.safe_load(PACE_VALUES.read_text()))


def cores(quantity: str) -> float:
    """A CPU quantity of metrics.k8s.io ("12345678n", "25m", "1") in cores."""
    scale = {"n": 1e-9, "u": 1e-6, "m": 1e-3}
    return float(quantity[:-1]) * scale[quantity[-1]] if quantity[-1:] in scale else float(quantity)


def pod_cpu(metrics: dict) -> dict[str, float]:
    """Each Pod's CPU in cores, from a PodMetricsList."""
    return {item["metadata"]["name"]: round(sum(cores(c["usage"]["cpu"]) for c in item.get("containers", [])), 3)
            for item in metrics.get("items", [])}


def ready(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def run(substrate, case, namespace: str, seconds: float, workdir: Path, echo: Callable[[str], None]) -> dict:
    """The case's record; sqrt's Pods, however many the HPA makes, are scraped by the substrate's
    Prometheus during the run, and the hypothesis is judged over it (record["slo"])."""
    substrate.install(namespace, autoscale.RELEASE, CHART, ["-f", str(PACE_VALUES.relative_to(REPO_ROOT))])
    with ExitStack() as observed:
        judge = substrate.observing(observed, case, namespace, SELECTOR)
        record = measure(substrate.kube, namespace, seconds, workdir, echo)
        judge(record)
    return record


def measure(kube, namespace: str, seconds: float, workdir: Path, echo: Callable[[str], None]) -> dict:
    """The ramp on the installed release, the HPA sampled until it is back at its minimum."""
    ramp, pace = ramp_for(seconds), values()
    echo(f"kubectl --context {kube.context} get hpa {autoscale.RELEASE} --namespace {namespace} --watch"
         "  (polled until it reads sqrt's CPU)")
    deadline = time.monotonic() + METRICS_TIMEOUT
    while autoscale.hpa_state(kube, namespace)["utilization"] is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the HPA read no CPU of sqrt within {METRICS_TIMEOUT} s (is metrics-server "
                               f"running?)\n{kube.explain(namespace)}")
        time.sleep(SAMPLE_EVERY)
    url = f"http://{autoscale.RELEASE}.{namespace}.svc.cluster.local"
    outputs = (load.SUMMARY, load.HISTORY)
    job.start(kube, namespace, load.ramp_args(url, ramp.users, ramp.up, ramp.hold, ramp.down), workdir, outputs)
    started = time.time()
    samples, load_over = [], None
    minimum = pace["autoscaling"]["minReplicas"]
    end = started + ramp.seconds + ramp.quiet + 60  # the ramp, the HPA's way back down, and a bounded margin
    while time.time() < end:
        now = time.time()
        state = autoscale.hpa_state(kube, namespace)
        pods = kube.get("pods", "--namespace", namespace, "-l", SELECTOR)["items"]
        metrics = kube.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                               quiet=True, check=False)
        cpu = pod_cpu(yaml.safe_load(metrics.stdout) or {}) if metrics.returncode == 0 else {}
        samples.append({"t": round(now - started, 1), "replicas": state["current"], "desired": state["desired"],
                        "ready": sum(map(ready, pods)), "utilization": state["utilization"],
                        "cpu": {name: value for name, value in cpu.items() if name.startswith(autoscale.RELEASE)}})
        if load_over is None:
            if job.done(kube, namespace):
                load_over = now
                print(f"  [autoscale] load over at {now - started:.0f} s with {state['current']} replicas; "
                      "waiting for the scale-down", flush=True)
        elif state["current"] == minimum and state["desired"] == minimum:
            break
        if len(samples) % 5 == 0:
            print(f"  [autoscale] {now - started:4.0f} s  replicas {state['current']} -> {state['desired']}  "
                  f"cpu {state['utilization']}% of request", flush=True)
        time.sleep(max(0.0, SAMPLE_EVERY - (time.time() - now)))
    output = job.output(kube, namespace, workdir, outputs)
    summary = output[load.SUMMARY]
    locust_start = summary.get("started_at", started)
    # Every time in the record counts from Locust's start, as the lab's do.
    shift = round(started - locust_start, 1)
    samples = [{**sample, "t": round(sample["t"] + shift, 1)} for sample in samples]
    events = [{"t": round(e["epoch"] - locust_start, 1), "message": e["message"]}
              for e in autoscale.rescale_events(kube, namespace) if e["epoch"] >= started - 1]
    history = autoscale.locust_history(workdir / load.HISTORY, locust_start)
    load_over_s = summary.get("duration_s", load_over - locust_start if load_over else None)
    record = autoscale.record(samples, events, history, summary, ramp, load_over_s, pace, METRIC_RESOLUTION_SECONDS)
    record["phases"] = phases(locust_start, locust_start + (load_over_s or ramp.seconds), [])
    return {**record, "started_at": round(locust_start, 3)}  # the epoch every t counts from
