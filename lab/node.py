"""The lab's node: a stand-in for the kubelet, which cannot run here (no container runtime).

`LabNode` registers a real Node on the lab's API server (lab/controlplane.py) and keeps its Lease
fresh; the real kube-scheduler binds Pods to it. For every bound Pod whose image it knows
(RUNNABLE_IMAGES: the repo's own services) it does a kubelet's job with a local process group:

- starts the container's program on a loopback address of the Pod's own (127.x.y.z, the Pod's
  "IP"), with the Pod's environment resolved as a kubelet resolves it (values with $(VAR)
  references, Secret and ConfigMap keys, the downward API), a private /tmp, and the Pod's CPU
  limit when the machine lets us (lab/cgroups.py);
- runs the startup, liveness and readiness probes of the Pod spec, restarts a container that
  exits or fails its liveness probe (restartPolicy Always, after `restart_delay`), and reports
  phase, conditions and container states through the Pod's status subresource;
- on deletion runs the preStop sleep, sends SIGTERM, SIGKILLs after the grace period and then
  removes the Pod object, as a kubelet does.

What it leaves out: images other than RUNNABLE_IMAGES (such Pods are reported Waiting with the
reason), volumes other than /tmp, init containers and sidecars. The Pod's IP stays unset in its
status: EndpointSlices refuse loopback addresses, so lab/mesh.py publishes the address to Istio
itself. The node carries the taint NODE_TAINT, so only Pods that tolerate it (the lab's values
files) land here; other Pods stay Pending as on a cluster without a fitting node.
"""

import base64
import datetime
import os
import queue
import random
import re
import shutil
import signal
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from chaos import local as chaos_local
from lab import binaries, cgroups
from lab.controlplane import ControlPlane
from lab.procs import Proc, ProcessGroup, free_port, wait_until

REPO_ROOT = binaries.REPO_ROOT
NODE_TAINT = {"key": "resilience-lab.io/lab-node", "value": "true", "effect": "NoSchedule"}
LEASE_SECONDS = 40
LEASE_RENEW_SECONDS = 10
# A killed container's way back: the kubelet's back-off starts at 10 s; 2 s lets short runs see it.
DEFAULT_RESTART_DELAY = 2.0


@dataclass(frozen=True)
class AppImage:
    """One of the repo's services, as its image would run it: gunicorn with the service's config,
    bound to the Pod's address and container port."""
    app: str
    config: Path

    def __call__(self, run: "PodRun") -> list[str]:
        return [str(binaries.VENV_BIN / "gunicorn"), "--config", str(self.config), "--bind",
                f"{run.address}:{run.port}", self.app]


# Image repository -> the command line of its container on this node.
Runner = Callable[["PodRun"], list[str]]
RUNNABLE_IMAGES: dict[str, Runner] = {
    "resilience-lab/webgatos": AppImage("webgatos:create_app()",
                                        REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"),
    "resilience-lab/sqrt": AppImage("sqrt:create_app()", REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"),
}


def image_repository(image: str) -> str:
    """`resilience-lab/webgatos:0.1.0` -> `resilience-lab/webgatos` (a registry port is kept)."""
    name = image.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def loopback_address(port: int, rng: random.Random | None = None) -> str:
    """A loopback address (127.x.y.z) on which `port` is free: a Pod's own IP on this machine."""
    rng = rng or random.Random()
    for _ in range(200):
        address = f"127.{rng.randint(100, 199)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return address
    raise RuntimeError(f"no loopback address with port {port} free after 200 tries")


class EnvError(ValueError):
    """A Pod's environment cannot be resolved (missing Secret key, ...): the container waits."""


_VAR_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, `$$` escapes, others stay."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return defined.get(match.group(1), match.group(0))
    return _VAR_REFERENCE.sub(replace, value)


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


@dataclass
class PodRun:
    """What the node does for one Pod (one container: the first of the spec)."""
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    service_account: str
    ports: dict[str, int]
    image: str
    container: str
    address: str
    port: int
    env: dict[str, str]
    tmp: Path
    grace_seconds: float
    prestop_seconds: float
    cpu_limit: float | None
    probes: dict[str, Probe]
    proc: Proc | None = None
    cgroup: cgroups.CpuGroup | None = None
    restarts: int = 0
    started: bool = False  # startup probe passed (or there is none)
    ready: bool = False
    waiting_reason: str = ""
    waiting_message: str = ""
    last_exit: dict | None = None
    started_at: str = ""
    restart_at: float | None = None
    deleting_since: float | None = None
    sigterm_at: float | None = None
    kill_at: float | None = None
    reported: dict = field(default_factory=dict)
    gone: bool = False  # the Pod is deleted and its process stopped: the listeners' last call
    # Probe threads and the node's loop all report: one at a time, each with the state as it is
    # then, so that the API server's last status is the newest.
    report_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.alive() else None


class LabNode:
    """A Node named `name` whose Pods run as processes of `group` (see the module docstring)."""

    def __init__(self, plane: ControlPlane, group: ProcessGroup, *, name: str = "lab-node",
                 restart_delay: float = DEFAULT_RESTART_DELAY, state_dir: str | Path | None = None,
                 cpu_limits: bool = True):
        self.plane = plane
        self.group = group
        self.name = name
        self.restart_delay = restart_delay
        self.state_dir = Path(state_dir) if state_dir else None
        self.workdir = plane.workdir / "node" / name
        self.cpu_limits = cpu_limits and cgroups.available()
        self.listeners: list[Callable[[PodRun], None]] = []
        self.runners: dict[str, Runner] = dict(RUNNABLE_IMAGES)
        self._api = client.CoreV1Api(plane.api_client())
        self._runs: dict[str, PodRun] = {}
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._inbox: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self._rng = random.Random()
        self._state_namespaces: set[str] = set()
        self.kubelet_port = free_port()
        self._kubelet_server: ThreadingHTTPServer | None = None

    # Life cycle

    def start(self, timeout: float = 60.0) -> "LabNode":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._serve_kubelet_endpoint()
        self._register()
        for target, thread_name in ((self._watch, "node-watch"), (self._loop, "node-loop"),
                                    (self._heartbeat, "node-lease")):
            thread = threading.Thread(target=target, name=thread_name, daemon=True)
            thread.start()
            self._threads.append(thread)
        # A new Node is tainted not-ready until the node lifecycle controller sees it Ready, as
        # after a kubelet registers; Pods are scheduled here only after that.
        wait_until(self._schedulable, timeout, f"the node lifecycle controller to find {self.name} Ready",
                   interval=0.2)
        return self

    def _schedulable(self) -> bool:
        taints = self._api.read_node(self.name).spec.taints or []
        return [taint.key for taint in taints] == [NODE_TAINT["key"]]

    def stop(self, grace: float = 5.0) -> None:
        """Stop every Pod's process (SIGTERM, then SIGKILL after `grace`) and the node's threads.
        The Pod objects stay: the API server outlives the node only in tests."""
        self._stopping.set()
        if self._kubelet_server is not None:
            self._kubelet_server.shutdown()
            self._kubelet_server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            self._stop_process(run, grace)
        self._probes.shutdown(wait=False, cancel_futures=True)
        self._write_state()

    def __enter__(self) -> "LabNode":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # What the lab and the tests read

    def runs(self, namespace: str | None = None) -> list[PodRun]:
        with self._lock:
            return [run for run in self._runs.values() if namespace is None or run.namespace == namespace]

    def events(self) -> list[dict]:
        with self._lock:
            return [dict(event) for event in self._events]

    # Registration and heartbeat

    def _register(self) -> None:
        cpu = os.cpu_count() or 1
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name,
                                                             "kubernetes.io/os": "linux",
                                                             "resilience-lab.io/lab-node": "true"}},
                "spec": {"taints": [NODE_TAINT]}}
        try:
            self._api.create_node(node)
        except ApiException as error:
            if error.status != 409:
                raise
        capacity = {"cpu": str(cpu), "memory": "16Gi", "pods": "110", "ephemeral-storage": "50Gi"}
        self._api.patch_node_status(self.name, {"status": {
            "capacity": capacity, "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "conditions": self._node_conditions(),
            "nodeInfo": {"kubeletVersion": binaries.control_plane_versions()["KUBE_VERSION"],
                         "containerRuntimeVersion": "resilience-lab://processes", "operatingSystem": "linux",
                         "architecture": "amd64", "osImage": "resilience-lab node (processes on loopback)",
                         "kernelVersion": os.uname().release, "kubeProxyVersion": "", "machineID": "",
                         "systemUUID": "", "bootID": ""}}})
        self._renew_lease()

    def _node_conditions(self) -> list[dict]:
        now = now_rfc3339()
        conditions = [("Ready", "True", "KubeletReady", "lab node is running Pods as local processes")]
        pressures = (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"),
                     ("PIDPressure", "SufficientPID"))
        conditions += [(kind, "False", f"KubeletHas{reason}", "") for kind, reason in pressures]
        return [{"type": kind, "status": status, "reason": reason, "message": message,
                 "lastHeartbeatTime": now, "lastTransitionTime": now} for kind, status, reason, message in conditions]

    def _renew_lease(self) -> None:
        api = client.CoordinationV1Api(self._api.api_client)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now}}
        try:
            api.patch_namespaced_lease(self.name, "kube-node-lease", body)
        except ApiException as error:
            if error.status != 404:
                raise
            api.create_namespaced_lease("kube-node-lease", body)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(LEASE_RENEW_SECONDS):
            try:
                self._renew_lease()
                self._api.patch_node_status(self.name, {"status": {"conditions": self._node_conditions()}})
            except (ApiException, OSError) as error:
                self._record("heartbeat-failed", None, error=str(error))

    # The kubelet's resource metrics endpoint, which metrics-server scrapes (lab/metrics.py)

    def _serve_kubelet_endpoint(self) -> None:
        """HTTPS on 127.0.0.1:kubelet_port (the Node's daemonEndpoints), client certificates of
        the lab's CA only, as a kubelet authenticates x509 clients: /metrics/resource, /healthz."""
        serving = self.plane.ca.issue(f"kubelet-{self.name}", f"system:node:{self.name}",
                                      server_names=["127.0.0.1", self.name], client=False)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(serving.cert), str(serving.key))
        context.load_verify_locations(cafile=str(self.plane.ca.cert_path))
        context.verify_mode = ssl.CERT_REQUIRED
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] == "/metrics/resource":
                    body, kind = node.resource_metrics().encode(), "text/plain; version=0.0.4"
                elif self.path == "/healthz":
                    body, kind = b"ok", "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.kubelet_port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._kubelet_server = server
        threading.Thread(target=server.serve_forever, name="kubelet-endpoint", daemon=True).start()

    def cpu_seconds(self, run: PodRun) -> float:
        """CPU time the Pod's container used: its cgroup's accounting, else its process tree's."""
        if run.cgroup is not None:
            return run.cgroup.cpu_seconds()
        return cgroups.process_tree_cpu_seconds(run.pid) if run.pid else 0.0

    def resource_metrics(self) -> str:
        """The kubelet's /metrics/resource (Prometheus text, stable metric names), for this node."""
        import psutil

        now_ms = int(time.time() * 1000)
        labels = 'container="{c}",namespace="{n}",pod="{p}"'
        lines = ["# TYPE container_cpu_usage_seconds_total counter",
                 "# TYPE container_memory_working_set_bytes gauge",
                 "# TYPE container_start_time_seconds gauge"]
        for run in self.runs():
            if run.pid is None:
                continue
            ids = labels.format(c=run.container, n=run.namespace, p=run.name)
            memory = cgroups.process_tree_rss_bytes(run.pid)
            started = datetime.datetime.strptime(run.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.UTC).timestamp()
            lines += [f"container_cpu_usage_seconds_total{{{ids}}} {self.cpu_seconds(run):.6f} {now_ms}",
                      f"container_memory_working_set_bytes{{{ids}}} {memory} {now_ms}",
                      f"container_start_time_seconds{{{ids}}} {started:.0f}"]
        times = psutil.cpu_times()
        busy = times.user + times.system + getattr(times, "irq", 0) + getattr(times, "softirq", 0)
        memory = psutil.virtual_memory()
        lines += ["# TYPE node_cpu_usage_seconds_total counter", f"node_cpu_usage_seconds_total {busy:.3f} {now_ms}",
                  "# TYPE node_memory_working_set_bytes gauge",
                  f"node_memory_working_set_bytes {memory.total - memory.available} {now_ms}",
                  "# TYPE resource_scrape_error gauge", "resource_scrape_error 0"]
        return "\n".join(lines) + "\n"

    # Watching the Pods bound here

    def _watch(self) -> None:
        api = client.CoreV1Api(self.plane.api_client())
        selector = f"spec.nodeName={self.name}"
        resource_version = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    listing = api.list_pod_for_all_namespaces(field_selector=selector)
                    resource_version = listing.metadata.resource_version
                    self._inbox.put(("SYNC", [api.api_client.sanitize_for_serialization(p) for p in listing.items]))
                stream = watch.Watch().stream(api.list_pod_for_all_namespaces, field_selector=selector,
                                              resource_version=resource_version, timeout_seconds=30,
                                              allow_watch_bookmarks=True)
                for event in stream:
                    if self._stopping.is_set():
                        return
                    obj = event["raw_object"]
                    resource_version = obj.get("metadata", {}).get("resourceVersion", resource_version)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._inbox.put((event["type"], obj))
            except ApiException as error:
                if error.status == 410:  # too old: list again
                    resource_version = None
                    continue
                self._record("watch-failed", None, error=f"{error.status} {error.reason}")
                self._stopping.wait(1.0)
            except Exception as error:  # the connection dropped: watch again from where we were
                if self._stopping.is_set():
                    return
                self._record("watch-failed", None, error=repr(error))
                self._stopping.wait(0.5)

    # The control loop

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
                self._finalize(meta["namespace"], meta["name"], meta["uid"])
                return
            run = self._admit(obj)
            if run is None:
                return
        if meta.get("deletionTimestamp") and run.deleting_since is None:
            grace = obj["metadata"].get("deletionGracePeriodSeconds", run.grace_seconds)
            run.grace_seconds = float(grace if grace is not None else run.grace_seconds)
            run.deleting_since = time.monotonic()
            run.ready = False
            self._record("terminating", run, grace_seconds=run.grace_seconds)
            self._report(run)

    def _admit(self, pod: dict) -> PodRun | None:
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        repository = image_repository(container.get("image", ""))
        ports = {p.get("name", ""): int(p["containerPort"]) for p in container.get("ports", [])}
        port = next(iter(ports.values()), 8080)
        namespace, name = meta["namespace"], meta["name"]
        limits = (container.get("resources") or {}).get("limits") or {}
        run = PodRun(namespace=namespace, name=name, uid=meta["uid"], labels=dict(meta.get("labels") or {}),
                     service_account=spec.get("serviceAccountName", "default"), ports=ports,
                     image=container.get("image", ""),
                     container=container["name"], address=loopback_address(port, self._rng), port=port, env={},
                     tmp=self.workdir / "pods" / f"{namespace}_{name}" / "tmp",
                     grace_seconds=float(spec.get("terminationGracePeriodSeconds", 30)),
                     prestop_seconds=float(((container.get("lifecycle") or {}).get("preStop") or {})
                                           .get("sleep", {}).get("seconds", 0)),
                     cpu_limit=parse_cpu(limits.get("cpu")) if limits.get("cpu") else None,
                     probes={kind: probe for kind in ("startup", "liveness", "readiness")
                             if (probe := Probe.from_spec(kind, container.get(f"{kind}Probe"), ports))})
        with self._lock:
            self._runs[run.key] = run
        if repository not in self.runners:
            run.waiting_reason = "ImageNotRunnableInLab"
            run.waiting_message = (f"the lab node runs only {', '.join(sorted(self.runners))}; "
                                   f"{repository or 'this image'} needs a real kubelet")
            self._report(run)
            return run
        try:
            run.env = self._resolve_env(pod, container, run)
        except EnvError as error:
            run.waiting_reason, run.waiting_message = "CreateContainerConfigError", str(error)
            self._report(run)
            return run
        self._record("scheduled", run, address=run.address, port=run.port)
        self._start_process(run)
        return run

    def _resolve_env(self, pod: dict, container: dict, run: PodRun) -> dict[str, str]:
        fields = {"metadata.name": run.name, "metadata.namespace": run.namespace, "metadata.uid": run.uid,
                  "spec.nodeName": self.name, "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                  "status.podIP": run.address, "status.hostIP": "127.0.0.1"}
        env: dict[str, str] = {}
        for source in container.get("envFrom", []) or []:
            env.update({(source.get("prefix", "") + k): v for k, v in self._key_values(run.namespace, source).items()})
        for entry in container.get("env", []) or []:
            if "value" in entry:
                env[entry["name"]] = expand(entry.get("value") or "", env)
                continue
            ref = entry.get("valueFrom") or {}
            if "fieldRef" in ref:
                path = ref["fieldRef"]["fieldPath"]
                if path not in fields:
                    raise EnvError(f"env {entry['name']}: fieldRef {path} is not supported by the lab node")
                env[entry["name"]] = fields[path]
            elif "secretKeyRef" in ref or "configMapKeyRef" in ref:
                kind = "secretKeyRef" if "secretKeyRef" in ref else "configMapKeyRef"
                key_ref = ref[kind]
                values = self._key_values(run.namespace, {kind.replace("KeyRef", "Ref"): key_ref})
                if key_ref["key"] not in values:
                    if key_ref.get("optional"):
                        continue
                    raise EnvError(f"env {entry['name']}: key {key_ref['key']!r} not found in "
                                   f"{kind.replace('KeyRef', '')} {key_ref['name']!r}")
                env[entry["name"]] = values[key_ref["key"]]
            elif "resourceFieldRef" in ref:
                resource = ref["resourceFieldRef"]["resource"]
                section, _, what = resource.partition(".")
                env[entry["name"]] = str(((container.get("resources") or {}).get(section) or {}).get(what, ""))
        return {"HOSTNAME": run.name, **env}

    def _key_values(self, namespace: str, source: dict) -> dict[str, str]:
        try:
            if "secretRef" in source:
                data = self._api.read_namespaced_secret(source["secretRef"]["name"], namespace).data or {}
                return {k: base64.b64decode(v).decode() for k, v in data.items()}
            if "configMapRef" in source:
                return dict(self._api.read_namespaced_config_map(source["configMapRef"]["name"], namespace).data or {})
        except ApiException as error:
            if error.status == 404 and (source.get("secretRef") or source.get("configMapRef") or {}).get("optional"):
                return {}
            name = (source.get("secretRef") or source.get("configMapRef"))["name"]
            raise EnvError(f"cannot read {'Secret' if 'secretRef' in source else 'ConfigMap'} {name!r}: "
                           f"{error.status} {error.reason}") from None
        return {}

    # Processes

    def _start_process(self, run: PodRun) -> None:
        runner = self.runners[image_repository(run.image)]
        if run.tmp.exists():
            shutil.rmtree(run.tmp, ignore_errors=True)  # a container restart starts with an empty /tmp
        run.tmp.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(run.tmp),
               "TMPDIR": str(run.tmp), **run.env}
        argv = runner(run)
        if self.cpu_limits and run.cpu_limit:
            run.cgroup = cgroups.CpuGroup.create(f"{run.namespace}_{run.name}_{run.restarts}", run.cpu_limit)
            argv = run.cgroup.wrap(argv)
        run.proc = self.group.start(f"{run.namespace}_{run.name}", argv, env=env, cwd=REPO_ROOT)
        run.started_at = now_rfc3339()
        run.started = "startup" not in run.probes
        run.ready = False
        run.restart_at = None
        run.waiting_reason = ""
        now = time.monotonic()
        for probe in run.probes.values():
            probe.successes = probe.failures = 0
            probe.next_at = now + probe.initial_delay
        self._record("started" if run.restarts == 0 else "restarted", run, pid=run.proc.pid)
        self._report(run)
        self._write_state()

    def _stop_process(self, run: PodRun, grace: float) -> None:
        if run.proc is not None:
            run.proc.stop(grace)
            self._drop(run.proc)
        if run.cgroup is not None:
            run.cgroup.remove()
            run.cgroup = None

    def _drop(self, proc: Proc) -> None:
        # A dead container's process group is gone; keep the ProcessGroup from signalling its id
        # again at teardown, when the kernel may have handed it to someone else.
        if proc in self.group.procs:
            self.group.procs.remove(proc)

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
                self._container_exited(run, now)
                continue
            self._probe_step(run, now)

    def _container_exited(self, run: PodRun, now: float) -> None:
        code = run.proc.returncode()
        # Like a container runtime, end whatever the container left behind (gunicorn's workers).
        self._stop_process(run, grace=0)
        run.last_exit = {"exitCode": 128 - code if code is not None and code < 0 else code,
                         "reason": "Error" if code else "Completed", "startedAt": run.started_at,
                         "finishedAt": now_rfc3339(), **({"signal": -code} if code is not None and code < 0 else {})}
        run.proc, run.ready = None, False
        self._record("exited", run, returncode=code)
        # From the recorded exit, not from `now`: ending the leftovers can take a while on a busy machine.
        run.restart_at = time.monotonic() + self.restart_delay
        self._report(run)
        self._write_state()

    def _probe_step(self, run: PodRun, now: float) -> None:
        for probe in run.probes.values():
            if probe.in_flight or now < probe.next_at:
                continue
            if probe.kind == "startup" and run.started:
                continue
            if probe.kind != "startup" and not run.started:
                continue
            probe.in_flight = True
            probe.next_at = now + probe.period
            self._probes.submit(self._probe, run, probe, run.proc)

    def _probe(self, run: PodRun, probe: Probe, proc: Proc) -> None:
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
            self._record("probe-failed", run, probe=probe.kind)
            run.proc.stop(grace=0)  # the restart follows from _tick, as for any container exit
        if changed:
            self._record("ready" if run.ready else "started-probe" if probe.kind == "startup" else "not-ready", run)
            self._report(run)

    def _terminate_step(self, run: PodRun, now: float) -> None:
        if run.proc is not None and run.proc.alive():
            if run.sigterm_at is None and now >= run.deleting_since + min(run.prestop_seconds, run.grace_seconds):
                run.sigterm_at = now
                run.kill_at = run.deleting_since + run.grace_seconds
                run.proc.signal(signal.SIGTERM)
                self._record("sigterm", run, pid=run.proc.pid)
            elif run.kill_at is not None and now >= run.kill_at:
                self._record("sigkill", run, pid=run.proc.pid)
                self._stop_process(run, grace=0)
            return
        returncode = run.proc.returncode() if run.proc is not None else None
        self._stop_process(run, grace=0)
        self._finalize(run.namespace, run.name, run.uid)
        self._forget(run, "terminated", returncode=returncode)

    def _finalize(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's last word on a Pod: delete it for good (grace 0, this uid only)."""
        try:
            self._api.delete_namespaced_pod(name, namespace, grace_period_seconds=0,
                                            body=client.V1DeleteOptions(grace_period_seconds=0,
                                                                        preconditions=client.V1Preconditions(uid=uid)))
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _forget(self, run: PodRun, why: str, **details) -> None:
        self._stop_process(run, grace=0)
        run.proc, run.ready, run.gone = None, False, True
        with self._lock:
            self._runs.pop(run.key, None)
        shutil.rmtree(run.tmp.parent, ignore_errors=True)
        self._record(why, run, **details)
        for listener in self.listeners:
            listener(run)
        self._write_state()

    # Status

    def _report(self, run: PodRun) -> None:
        """Pod status through the status subresource, as a kubelet reports it.

        Two unserialized reports of one Pod (a startup probe's, then a readiness probe's a few
        milliseconds later) could reach the API server in the wrong order and leave it with the
        older status for good: a Pod the node runs as ready, shown not ready (seen under load)."""
        with run.report_lock:
            self._patch_status(run)
        for listener in self.listeners:
            listener(run)

    def _patch_status(self, run: PodRun) -> None:
        now = now_rfc3339()
        running = run.proc is not None and run.proc.alive()
        if running:
            state = {"running": {"startedAt": run.started_at}}
        elif run.last_exit is not None and run.restart_at is not None:
            state = {"waiting": {"reason": "ContainerRestarting", "message": "restarting after the container exited"}}
        else:
            state = {"waiting": {"reason": run.waiting_reason or "ContainerCreating",
                                 **({"message": run.waiting_message} if run.waiting_message else {})}}
        container_status = {"name": run.container, "image": run.image, "imageID": "", "ready": run.ready,
                            "started": running and run.started, "restartCount": run.restarts, "state": state}
        if running:
            container_status["containerID"] = f"lab://{run.proc.pid}"
        if run.last_exit is not None:
            container_status["lastState"] = {"terminated": run.last_exit}
        flags = {"PodScheduled": True, "Initialized": True, "PodReadyToStartContainers": running,
                 "ContainersReady": run.ready, "Ready": run.ready}
        previous = {c["type"]: c for c in run.reported.get("conditions", [])}
        conditions = []
        for kind, value in flags.items():
            status = "True" if value else "False"
            old = previous.get(kind)
            since = old["lastTransitionTime"] if old and old["status"] == status else now
            conditions.append({"type": kind, "status": status, "lastTransitionTime": since, "lastProbeTime": None})
        status = {"phase": "Running" if running or run.restarts else "Pending", "hostIP": "127.0.0.1",
                  "hostIPs": [{"ip": "127.0.0.1"}], "startTime": run.reported.get("startTime", now),
                  "conditions": conditions, "containerStatuses": [container_status]}
        run.reported = status
        try:
            self._api.patch_namespaced_pod_status(run.name, run.namespace, {"status": status})
        except ApiException as error:
            if error.status != 404:
                self._record("status-failed", run, error=f"{error.status} {error.reason}")

    def _record(self, event: str, run: PodRun | None, **details) -> None:
        now = time.time()
        entry = {"epoch": round(now, 3), "event": event, **details}
        if run is not None:
            entry.update(pod=run.name, namespace=run.namespace, restarts=run.restarts)
        with self._lock:
            self._events.append(entry)

    def state_path(self, namespace: str) -> Path:
        """The replica state `python -m chaos local --state` reads for one namespace's Pods."""
        if self.state_dir is None:
            raise RuntimeError("this node keeps no replica state (no state_dir)")
        return self.state_dir / f"{namespace}.json"

    def _write_state(self) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        runs = self.runs()
        for namespace in {run.namespace for run in runs} | self._state_namespaces:
            records = [chaos_local.ReplicaRecord(name=run.name, pid=run.pid, address=f"{run.address}:{run.port}",
                                                 restarts=run.restarts,
                                                 state=chaos_local.RUNNING if run.pid else chaos_local.RESTARTING)
                       for run in runs if run.namespace == namespace]
            chaos_local.write_state(self.state_path(namespace), records)
        self._state_namespaces = {run.namespace for run in runs}


def parse_cpu(quantity: str) -> float:
    """CPUs in a Kubernetes quantity: "200m" -> 0.2, "1" -> 1.0, "1.5" -> 1.5."""
    text = str(quantity).strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def http_probe(url: str, timeout: float) -> bool:
    """A kubelet httpGet probe: any status from 200 to 399 passes."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except urllib.error.HTTPError as error:
        return 200 <= error.code < 400
    except (OSError, ValueError):
        return False
