"""The kubelet's prober for the lab's node: a container's startup, liveness and readiness probes
(httpGet), run on a small thread pool, their verdicts applied to the Pod's run."""

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.host.procs import Proc

if TYPE_CHECKING:  # pods.py holds Probes: only the annotations need PodRun
    from lab.kube.node.pods import PodRun


@dataclass
class Probe:
    """One probe of a container spec, with its running tally."""
    kind: str
    path: str
    port: int
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int
    initial_delay: float
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0
    in_flight: bool = False

    @classmethod
    def from_spec(cls, kind: str, spec: dict | None, ports: dict[str, int]) -> "Probe | None":
        if not spec or "httpGet" not in spec:
            return None
        get = spec["httpGet"]
        port = get.get("port")
        port = ports.get(port, 0) if isinstance(port, str) and not port.isdigit() else int(port)
        return cls(kind, get.get("path", "/"), port, float(spec.get("periodSeconds", 10)),
                   float(spec.get("timeoutSeconds", 1)), int(spec.get("failureThreshold", 3)),
                   int(spec.get("successThreshold", 1)), float(spec.get("initialDelaySeconds", 0)))

    def restart(self, now: float) -> None:
        """A new container: a clean tally, the first probe after the initial delay."""
        self.successes = self.failures = 0
        self.next_at = now + self.initial_delay


def http_probe(url: str, timeout: float) -> bool:
    """A kubelet httpGet probe: any status from 200 to 399 passes."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except urllib.error.HTTPError as error:
        return 200 <= error.code < 400
    except (OSError, ValueError):
        return False


class Prober:
    """Starts each due probe of a run on its pool; `record(event, run, **details)` and
    `report(run)` are the node's event log and status report."""

    def __init__(self, record: Callable[..., None], report: Callable[["PodRun"], None], workers: int = 8):
        self.record, self.report = record, report
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def step(self, run: "PodRun", now: float) -> None:
        for probe in run.probes.values():
            if probe.in_flight or now < probe.next_at:
                continue
            if probe.kind == "startup" and run.started:
                continue
            if probe.kind != "startup" and not run.started:
                continue
            probe.in_flight = True
            probe.next_at = now + probe.period
            self.pool.submit(self._probe, run, probe, run.proc)

    def _probe(self, run: "PodRun", probe: Probe, proc: Proc) -> None:
        ok = http_probe(f"http://{run.address}:{probe.port}{probe.path}", probe.timeout)
        probe.in_flight = False
        if run.proc is not proc or run.deleting_since is not None:
            return  # the container restarted or is going away meanwhile
        if ok:
            probe.successes, probe.failures = probe.successes + 1, 0
        else:
            probe.failures, probe.successes = probe.failures + 1, 0
        changed = False
        if probe.kind == "startup" and probe.successes >= probe.success_threshold:
            run.started, changed = True, True
            now = time.monotonic()
            for other in run.probes.values():
                other.next_at = now  # readiness right away, not one period later
        elif probe.kind == "readiness":
            if not run.ready and probe.successes >= probe.success_threshold:
                run.ready, changed = True, True
            elif run.ready and probe.failures >= probe.failure_threshold:
                run.ready, changed = False, True
        if probe.kind in ("startup", "liveness") and probe.failures >= probe.failure_threshold:
            self.record("probe-failed", run, probe=probe.kind)
            run.proc.stop(grace=0)  # the restart follows from the node's tick, as for any container exit
        if changed:
            self.record("ready" if run.ready else "started-probe" if probe.kind == "startup" else "not-ready", run)
            self.report(run)
