"""A lab topology on loopback: the session store (a real Redis, or a two-member Hazelcast
cluster), then `helm install charts/webgatos` with a mesh scenario on the lab's own Kubernetes
(lab/controlplane.py): the Deployment's Pods run on the lab's node (lab/node.py), istiod programs
the ingress gateway from the chart's Istio resources (lab/mesh.py).

    with LabCluster(workdir) as cluster:              # control plane, node, istiod, gateway
        with running(TopologySpec(store="redis"), workdir / "case", cluster) as topology:
            topology.url                               # the gateway, http://127.0.0.1:PORT

`TopologySpec.validate()` rejects bad input before anything starts; `running(...)` removes the
topology's namespace and stops its store when its `with` block ends, whatever happened.
"""

import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab import binaries
from lab.controlplane import ControlPlane
from lab.mesh import Mesh
from lab.metrics import MetricsServer
from lab.node import DEFAULT_RESTART_DELAY, LabNode, PodRun
from lab.procs import LOOPBACK, ProcessGroup, free_port, port_in_use, wait_until

REPO_ROOT = binaries.REPO_ROOT
SCENARIO_DIR = REPO_ROOT / "istio" / "scenarios"
CHART = REPO_ROOT / "charts" / "webgatos"
LAB_VALUES = REPO_ROOT / "lab" / "values" / "webgatos.yaml"
STORES = ("memory", "redis", "hazelcast")
RELEASE = "webgatos"
MAX_REPLICAS = 8  # two shared cores: more replicas only measure the machine
HAZELCAST_MEMBERS = 2


class LabInputError(ValueError):
    """Bad input to the lab (store, scenario, replica count, port); the message says which."""


def scenario_names() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name: str) -> dict:
    """The values overlay `istio/scenarios/NAME.yaml` (the chart checks it when installing)."""
    if name not in scenario_names():
        raise LabInputError(f"unknown scenario {name!r}: choose one of {', '.join(scenario_names())} "
                            f"(files in {SCENARIO_DIR.relative_to(REPO_ROOT)}/)")
    return yaml.safe_load((SCENARIO_DIR / f"{name}.yaml").read_text()) or {}


@dataclass(frozen=True)
class TopologySpec:
    store: str = "redis"
    replicas: int = 2
    scenario: str = "retries"
    port: int = 0  # the gateway's listener; 0 picks a free port
    drain_seconds: int = 2  # shutdown.drainSeconds of the chart
    values: dict = field(default_factory=dict)  # more chart values, e.g. {"faults": {"delaySeconds": 1}}

    def validate(self) -> None:
        """Raise LabInputError naming the first bad field; nothing has started yet."""
        if self.store not in STORES:
            raise LabInputError(f"unknown store {self.store!r}: choose one of {', '.join(STORES)}")
        load_scenario(self.scenario)
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) \
                or not 1 <= self.replicas <= MAX_REPLICAS:
            raise LabInputError(f"bad replica count {self.replicas!r}: a whole number from 1 to {MAX_REPLICAS}")
        if not 0 <= self.port <= 65535:
            raise LabInputError(f"bad gateway port {self.port}: 1-65535, or 0 for a free one")
        if self.port and port_in_use(self.port):
            raise LabInputError(f"port {self.port} (gateway) on {LOOPBACK} is already in use: pick another")
        if self.store == "hazelcast":
            binaries.java()
            binaries.hazelcast_jar()


def hazelcast_available() -> str | None:
    """None when Java and the Hazelcast jar are both there, else why not."""
    try:
        binaries.java()
        binaries.hazelcast_jar()
    except binaries.MissingBinary as missing:
        return str(missing)
    return None


# The HPA controller's loop every 5 s (the default 15 s), so that short lab runs see several
# decisions; everything else about its algorithm is the controller's own.
LAB_CONTROLLER_ARGS = ("--horizontal-pod-autoscaler-sync-period=5s",)


class LabCluster:
    """The lab's Kubernetes and Istio: control plane, node, metrics-server, istiod and the ingress
    gateway. One serves many topologies, one namespace each."""

    def __init__(self, workdir: str | Path, restart_delay: float = DEFAULT_RESTART_DELAY,
                 controller_args: tuple[str, ...] = LAB_CONTROLLER_ARGS):
        self.workdir = Path(workdir)
        self.restart_delay = restart_delay
        self.controller_args = controller_args
        self.group = ProcessGroup(self.workdir / "logs")

    def start(self) -> "LabCluster":
        try:
            self.plane = ControlPlane(self.workdir / "kubernetes", self.group,
                                      controller_args=self.controller_args).start()
            self.node = LabNode(self.plane, self.group, restart_delay=self.restart_delay,
                                state_dir=self.workdir / "replicas").start()
            self.metrics = MetricsServer(self.plane, self.group, self.workdir / "metrics-server").start()
            self.mesh = Mesh(self.plane, self.group, self.node, self.workdir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        node = getattr(self, "node", None)
        if node is not None:
            node.stop(grace=2)
        self.group.stop_all(grace=5)

    def __enter__(self) -> "LabCluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def helm(self, *args: str) -> str:
        env = {**self.plane.env(), "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
               "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
               "HELM_DATA_HOME": str(self.workdir / "helm" / "data")}
        result = subprocess.run([binaries.helm(), *args], capture_output=True, text=True, env=env, timeout=180,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise LabInputError(f"helm {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout


@dataclass
class Topology:
    """A running topology: where everything listens, and what runs it."""

    spec: TopologySpec
    cluster: LabCluster
    group: ProcessGroup
    namespace: str
    url: str
    store_address: str = ""

    @property
    def node(self) -> LabNode:
        return self.cluster.node

    @property
    def mesh(self) -> Mesh:
        return self.cluster.mesh

    @property
    def admin_url(self) -> str:
        return self.mesh.admin_url

    @property
    def upstream_cluster(self) -> str:
        """The Envoy cluster istiod names after the chart's Service."""
        return f"outbound|80||{RELEASE}.{self.namespace}.svc.cluster.local"

    @property
    def state_path(self) -> Path:
        """The replica state `python -m chaos local --state` reads."""
        return self.node.state_path(self.namespace)

    def replicas(self) -> list[PodRun]:
        return sorted(self.node.runs(self.namespace), key=lambda run: run.name)

    @property
    def replica_urls(self) -> list[str]:
        return [f"http://{run.address}:{run.port}" for run in self.replicas()]

    def describe(self) -> list[str]:
        lines = [f"mesh (istiod -> Istio's ingress gateway, scenario {self.spec.scenario}): {self.url}/",
                 f"gateway's Envoy admin: {self.admin_url}/",
                 f"session store: {self.spec.store}" + (f" at {self.store_address}" if self.store_address else ""),
                 f"kubectl: KUBECONFIG={self.cluster.plane.admin_kubeconfig} kubectl -n {self.namespace} get pods"]
        lines += [f"{run.name}: http://{run.address}:{run.port}/" for run in self.replicas()]
        lines.append(f"replica state (for `python -m chaos local --state`): {self.state_path}")
        lines.append(f"logs: {self.cluster.group.log_dir}")
        return lines

    def envoy_stats(self) -> dict[str, int]:
        return self.mesh.stats()

    def counter(self, suffix: str) -> int:
        """An upstream counter of this topology's Service, e.g. counter("upstream_rq_retry")."""
        # istiod gives each cluster the stats name "NAME;" (alt_stat_name).
        return self.envoy_stats().get(f"cluster.{self.upstream_cluster};.{suffix}", 0)

    def listener_counter(self, suffix: str) -> int:
        """A counter of the gateway's HTTP listener for this topology, e.g. "downstream_rq_5xx"."""
        port = self.url.rsplit(":", 1)[1]
        # istiod's stat_prefix for a gateway listener: "outbound_BIND_PORT;".
        return self.envoy_stats().get(f"http.outbound_{LOOPBACK}_{port};.{suffix}", 0)

    def healthy_endpoints(self) -> set[str]:
        """address:port of the Service's endpoints the gateway's Envoy holds, healthy."""
        return {host for host, flags in self.mesh.endpoints(self.upstream_cluster).items() if flags == "healthy"}

    def wait_routed(self, count: int, timeout: float = 60.0) -> float:
        """Wait until the gateway routes to `count` ready replicas (EDS from istiod) and listens."""
        def routed() -> bool:
            ready = {f"{run.address}:{run.port}" for run in self.replicas() if run.ready}
            return len(ready) >= count and ready <= self.healthy_endpoints() and _accepts(self.url)
        return wait_until(routed, timeout, f"the gateway to route to {count} ready replica(s) at {self.url}",
                          interval=0.1)


def _accepts(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _store(spec: TopologySpec, group: ProcessGroup) -> tuple[dict, str]:
    """Start the store; the chart values that point the app at it, and its address."""
    if spec.store == "redis":
        port = free_port()
        group.redis(port)
        return ({"sessionStore": {"type": "redis", "redis": {"bundled": False, "external": {
            "host": LOOPBACK, "port": port}}}}, f"redis://{LOOPBACK}:{port}/0")
    if spec.store == "hazelcast":
        ports = [free_port() for _ in range(HAZELCAST_MEMBERS)]
        name = f"lab-{uuid.uuid4().hex[:8]}"
        group.hazelcast_cluster(ports, name)
        members = ",".join(f"{LOOPBACK}:{p}" for p in ports)
        return ({"sessionStore": {"type": "hazelcast", "hazelcast": {"bundled": False, "clusterName": name,
                                                                     "external": {"members": members}}}},
                f"{members} (cluster {name})")
    return {"sessionStore": {"type": "memory"}}, ""


def deep_merge(base: dict, overlay: dict) -> dict:
    """Helm's rule for `-f` files: maps merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


@contextmanager
def running(spec: TopologySpec, workdir: str | Path, cluster: LabCluster) -> Iterator[Topology]:
    """Start the topology described by `spec` on `cluster`; remove it when the block ends."""
    spec.validate()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    namespace = f"lab-{uuid.uuid4().hex[:6]}"
    with ProcessGroup(workdir / "logs") as group:
        store_values, store_address = _store(spec, group)
        port = spec.port or free_port()
        values = deep_merge(store_values, {
            "replicaCount": spec.replicas, "shutdown": {"drainSeconds": spec.drain_seconds},
            "istio": {"gateway": {"port": port, "bind": LOOPBACK}}})
        values_file = workdir / "values.yaml"
        values_file.write_text(yaml.safe_dump(deep_merge(values, spec.values)))
        cluster.plane.create_namespace(namespace)
        try:
            cluster.mesh.publish_port(port)
            cluster.helm("install", RELEASE, str(CHART), "--namespace", namespace, "-f", str(LAB_VALUES),
                         "-f", str(SCENARIO_DIR / f"{spec.scenario}.yaml"), "-f", str(values_file))
            topology = Topology(spec=spec, cluster=cluster, group=group, namespace=namespace,
                                url=f"http://{LOOPBACK}:{port}", store_address=store_address)
            topology.wait_routed(spec.replicas)
            yield topology
        finally:
            remove_namespace(cluster, namespace)
            cluster.mesh.unpublish_port(port)


def remove_namespace(cluster: LabCluster, namespace: str) -> None:
    """Delete the namespace, its Pods at once (a teardown, not a demo of graceful shutdown)."""
    cluster.plane.kubectl("delete", "pods", "--all", "--namespace", namespace, "--grace-period=0", "--force",
                          "--wait=false", check=False)
    cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    wait_until(lambda: not cluster.node.runs(namespace), 30, f"the Pods of {namespace} to stop", interval=0.1)

