"""The Locust Job of a case, on the cluster: the loadtests/ ConfigMap and the Job applied (its
manifest kept in the case's folder), waited on with a progress line, and its log read back
(cluster_load.py builds the manifest and reads the log)."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from lab.experiments.substrates import cluster_load as load
from lab.experiments.substrates.cluster_kube import Kube, shown

NAME = "loadtest"
START_TIMEOUT = 120  # the Locust Pod scheduled, its image there, its container started
PROGRESS_EVERY = 5.0


def start(kube: Kube, namespace: str, args: list[str], workdir: Path, outputs: tuple[str, ...] = (load.SUMMARY,),
          job: str = NAME) -> None:
    """The loadtests/ ConfigMap and the Locust Job; returns once its container runs, so that chaos
    starts with the load."""
    kube.kubectl("create", "configmap", load.CONFIGMAP, "--namespace", namespace,
                 f"--from-file={shown(load.LOADTESTS)}/")
    manifest = workdir / "loadtest-job.yaml"
    manifest.write_text(yaml.safe_dump(load.job_manifest(job, args, load.locust_image(), outputs), sort_keys=False))
    kube.kubectl("apply", "--namespace", namespace, "-f", shown(manifest))

    def running() -> bool:
        pods = kube.get("pods", "--namespace", namespace, "-l", f"job-name={job}")["items"]
        return any(s.get("state", {}).get("running") or s.get("state", {}).get("terminated")
                   for p in pods for s in p.get("status", {}).get("containerStatuses") or [])
    deadline = time.monotonic() + START_TIMEOUT
    while not running():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {START_TIMEOUT} s waiting for the Locust Pod of job {job} to start\n"
                               f"{kube.explain(namespace)}")
        time.sleep(0.3)


def done(kube: Kube, namespace: str, job: str = NAME) -> bool:
    status = kube.get("job", job, "--namespace", namespace).get("status", {})
    return bool(status.get("succeeded") or status.get("failed"))  # failed: Locust exits 1 when a request failed


def wait(kube: Kube, namespace: str, timeout: float, seconds: float, label: str, kills: Callable[[], int | None],
         job: str = NAME) -> None:
    """Until the Job is done (at most `timeout`), a progress line every few seconds."""
    start_time, next_line = time.monotonic(), 0.0
    kube.echo(f"kubectl --context {kube.context} get job {job} --namespace {namespace} --watch  "
              f"(until it completes, at most {timeout:.0f} s)")
    while not done(kube, namespace, job):
        elapsed = time.monotonic() - start_time
        if elapsed > timeout:
            raise TimeoutError(f"job {job} did not finish within {timeout:.0f} s\n{kube.explain(namespace)}")
        if elapsed >= next_line:
            count = kills()
            where = f"{elapsed:4.0f}/{seconds:g} s of load" if elapsed <= seconds else \
                f"{elapsed:4.0f} s: load over, users finishing their visits"
            print(f"  [{label}] {where}" + ("" if count is None else f"  kills {count}"), flush=True)
            next_line = elapsed + PROGRESS_EVERY
        time.sleep(1.0)


def output(kube: Kube, namespace: str, workdir: Path, outputs: tuple[str, ...] = (load.SUMMARY,),
           job: str = NAME) -> dict:
    """Locust's log (kept as locust.log) and its printed files (kept beside it): JSON parsed, others as text."""
    log = kube.kubectl("logs", f"job/{job}", "--namespace", namespace, "--tail", "-1").stdout
    own, files = load.split_log(log, outputs)
    (workdir / "locust.log").write_text(own + "\n")
    found = {}
    for name in outputs:
        text = files.get(name, "")
        (workdir / name).write_text(text + "\n")
        try:
            found[name] = json.loads(text) if name.endswith(".json") else text
        except ValueError:
            found[name] = {}
    return found
