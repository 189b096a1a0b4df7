"""`LabNode`: the lab's node (see lab/kube/node/__init__.py), its Pods' life cycle: watch the
Pods bound to it, admit them, start, restart and stop their containers, and report each change."""

import queue
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.host import cgroups
from lab.host.procs import ProcessGroup, wait_until
from lab.kube.controlplane import ControlPlane
from lab.kube.node import kubelet_endpoint
from lab.kube.node.env import EnvError, resolve_env
from lab.kube.node.pod_watch import watch_bound_pods
from lab.kube.node.pods import RUNNABLE_IMAGES, PodRun, Runner, image_repository
from lab.kube.node.probes import Prober
from lab.kube.node.replica_state import ReplicaState
from lab.kube.node.runtime import ProcessRuntime
from lab.kube.node.status import LEASE_RENEW_SECONDS, NodeObject, delete_pod, pod_status

# A killed container's way back: the kubelet's back-off starts at 10 s; 2 s lets short runs see it.
DEFAULT_RESTART_DELAY = 2.0


class EventLog:
    """What happened on the node, in order (started, exited, probe-failed, ...): the tests and
    the demo read it."""

    def __init__(self):
        self._entries: list[dict] = []
        self._lock = threading.Lock()

    def record(self, event: str, run: PodRun | None, **details) -> None:
        entry = {"epoch": round(time.time(), 3), "event": event, **details}
        if run is not None:
            entry.update(pod=run.name, namespace=run.namespace, restarts=run.restarts)
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict]:
        with self._lock:
            return [dict(entry) for entry in self._entries]


class LabNode:
    """A Node named `name` whose Pods run as processes of `group` (see the package docstring)."""

    def __init__(self, plane: ControlPlane, group: ProcessGroup, *, name: str = "lab-node",
                 restart_delay: float = DEFAULT_RESTART_DELAY, state_dir: str | Path | None = None,
                 cpu_limits: bool = True):
        self.plane = plane
        self.group = group
        self.name = name
        self.restart_delay = restart_delay
        self.workdir = plane.workdir / "node" / name
        self.listeners: list[Callable[[PodRun], None]] = []
        self.runners: dict[str, Runner] = dict(RUNNABLE_IMAGES)
        self._api = client.CoreV1Api(plane.api_client())
        self._node = NodeObject(self._api, name)
        self._runs: dict[str, PodRun] = {}
        self._lock = threading.Lock()
        self._events = EventLog()
        self._record = self._events.record
        self._inbox: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._prober = Prober(self._record, self._report)
        self._runtime = ProcessRuntime(group, self.runners, cpu_limits and cgroups.available())
        self._rng = random.Random()
        self._state = ReplicaState(state_dir)
        self._endpoint = kubelet_endpoint.KubeletEndpoint(plane.ca, name, self.resource_metrics)

    # Life cycle

    def start(self, timeout: float = 60.0) -> "LabNode":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._endpoint.start()
        self._node.register(self._endpoint.port)
        for target, thread_name in ((self._watch, "node-watch"), (self._loop, "node-loop"),
                                    (self._heartbeat, "node-lease")):
            thread = threading.Thread(target=target, name=thread_name, daemon=True)
            thread.start()
            self._threads.append(thread)
        # A new Node is tainted not-ready until the node lifecycle controller sees it Ready, as
        # after a kubelet registers; Pods are scheduled here only after that.
        wait_until(self._node.schedulable, timeout, f"the node lifecycle controller to find {self.name} Ready",
                   interval=0.2)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop every Pod's process (SIGTERM, then SIGKILL after `grace`) and the node's threads.
        The Pod objects stay: the API server outlives the node only in tests."""
        self._stopping.set()
        self._endpoint.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        for run in self.runs():
            self._runtime.stop(run, grace)
        self._prober.shutdown()
        self._state.write(self.runs())

    def __enter__(self) -> "LabNode":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # What the lab and the tests read

    def runs(self, namespace: str | None = None) -> list[PodRun]:
        with self._lock:
            return [run for run in self._runs.values() if namespace is None or run.namespace == namespace]

    def events(self) -> list[dict]:
        return self._events.entries()

    def state_path(self, namespace: str) -> Path:
        """The replica state `python -m chaos local --state` reads for one namespace's Pods."""
        return self._state.path(namespace)

    cpu_seconds = staticmethod(kubelet_endpoint.cpu_seconds)

    def resource_metrics(self) -> str:
        return kubelet_endpoint.resource_metrics(self.runs())

    # Threads: the Lease, the watch of the Pods bound here, the control loop

    def _heartbeat(self) -> None:
        while not self._stopping.wait(LEASE_RENEW_SECONDS):
            try:
                self._node.heartbeat()
            except (ApiException, OSError) as error:
                self._record("heartbeat-failed", None, error=str(error))

    def _watch(self) -> None:
        watch_bound_pods(client.CoreV1Api(self.plane.api_client()), self.name, self._inbox, self._stopping,
                         self._record)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._inbox.get(timeout=0.05)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(*item)
                self._tick()
            except Exception as error:  # keep the node alive; the report shows what went wrong
                self._record("node-error", None, error=repr(error))

    # Pods coming, changing and going

    def _handle(self, kind: str, obj) -> None:
        if kind == "SYNC":
            seen = set()
            for pod in obj:
                seen.add(pod["metadata"]["uid"])
                self._handle("MODIFIED", pod)
            for run in [r for r in self.runs() if r.uid not in seen]:
                self._forget(run, "deleted")
            return
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        with self._lock:
            run = self._runs.get(key)
        if run is not None and run.uid != meta["uid"]:
            self._forget(run, "replaced")  # a StatefulSet's Pod came back under the same name
            run = None
        if kind == "DELETED":
            if run is not None:
                self._forget(run, "deleted")
            return
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        if run is None:
            if meta.get("deletionTimestamp"):
                delete_pod(self._api, meta["namespace"], meta["name"], meta["uid"])
                return
            run = self._admit(obj)
        if meta.get("deletionTimestamp") and run.deleting_since is None:
            grace = obj["metadata"].get("deletionGracePeriodSeconds", run.grace_seconds)
            run.grace_seconds = float(grace if grace is not None else run.grace_seconds)
            run.deleting_since = time.monotonic()
            run.ready = False
            self._record("terminating", run, grace_seconds=run.grace_seconds)
            self._report(run)

    def _admit(self, pod: dict) -> PodRun:
        container = pod["spec"]["containers"][0]
        repository = image_repository(container.get("image", ""))
        run = PodRun.admit(pod, self.workdir, self._rng)
        with self._lock:
            self._runs[run.key] = run
        if repository not in self.runners:
            run.waiting_reason = "ImageNotRunnableInLab"
            run.waiting_message = (f"the lab node runs only {', '.join(sorted(self.runners))}; "
                                   f"{repository or 'this image'} needs a real kubelet")
            self._report(run)
            return run
        try:
            run.env = resolve_env(self._api, self.name, pod, container, run)
        except EnvError as error:
            run.waiting_reason, run.waiting_message = "CreateContainerConfigError", str(error)
            self._report(run)
            return run
        self._record("scheduled", run, address=run.address, port=run.port)
        self._start_process(run)
        return run

    def _tick(self) -> None:
        now = time.monotonic()
        for run in self.runs():
            if run.deleting_since is not None:
                self._terminate_step(run, now)
                continue
            if run.proc is None:
                if run.restart_at is not None and now >= run.restart_at:
                    run.restarts += 1
                    self._start_process(run)
                continue
            if not run.proc.alive():
                self._container_exited(run)
                continue
            self._prober.step(run, now)

    # Containers

    def _start_process(self, run: PodRun) -> None:
        self._runtime.start(run)
        now = time.monotonic()
        for probe in run.probes.values():
            probe.restart(now)
        self._record("started" if run.restarts == 0 else "restarted", run, pid=run.proc.pid)
        self._report(run)
        self._state.write(self.runs())

    def _container_exited(self, run: PodRun) -> None:
        code = self._runtime.reap(run)
        self._record("exited", run, returncode=code)
        # From the recorded exit, not from the tick's start: ending the leftovers can take a while
        # on a busy machine.
        run.restart_at = time.monotonic() + self.restart_delay
        self._report(run)
        self._state.write(self.runs())

    def _terminate_step(self, run: PodRun, now: float) -> None:
        if run.proc is not None and run.proc.alive():
            if run.sigterm_at is None and now >= run.deleting_since + min(run.prestop_seconds, run.grace_seconds):
                run.sigterm_at = now
                run.kill_at = run.deleting_since + run.grace_seconds
                run.proc.signal(signal.SIGTERM)
                self._record("sigterm", run, pid=run.proc.pid)
            elif run.kill_at is not None and now >= run.kill_at:
                self._record("sigkill", run, pid=run.proc.pid)
                self._runtime.stop(run, grace=0)
            return
        returncode = run.proc.returncode() if run.proc is not None else None
        self._runtime.stop(run, grace=0)
        delete_pod(self._api, run.namespace, run.name, run.uid)
        self._forget(run, "terminated", returncode=returncode)

    def _forget(self, run: PodRun, why: str, **details) -> None:
        self._runtime.stop(run, grace=0)
        run.proc, run.ready, run.gone = None, False, True
        with self._lock:
            self._runs.pop(run.key, None)
        shutil.rmtree(run.tmp.parent, ignore_errors=True)
        self._record(why, run, **details)
        for listener in self.listeners:
            listener(run)
        self._state.write(self.runs())

    # Reports

    def _report(self, run: PodRun) -> None:
        """Pod status through the status subresource, as a kubelet reports it.

        Two unserialized reports of one Pod (a startup probe's, then a readiness probe's a few
        milliseconds later) could reach the API server in the wrong order and leave it with the
        older status for good: a Pod the node runs as ready, shown not ready (seen under load)."""
        with run.report_lock:
            run.reported = pod_status(run)
            try:
                self._api.patch_namespaced_pod_status(run.name, run.namespace, {"status": run.reported})
            except ApiException as error:
                if error.status != 404:
                    self._record("status-failed", run, error=f"{error.status} {error.reason}")
        for listener in self.listeners:
            listener(run)
