"""A lab topology on loopback: the session store (a real Redis, or a two-member Hazelcast
cluster), then `helm install charts/webgatos` with a mesh scenario on the lab's own Kubernetes
(lab/kube/), through the one install path (install.py): the Deployment's Pods run on the lab's
node (lab/kube/node/), istiod programs the ingress gateway from the chart's Istio resources
(lab/kube/mesh/).

    with LabCluster(workdir) as cluster:              # control plane, node, istiod, gateway
        with running(TopologySpec(store="redis"), workdir / "case", cluster) as topology:
            topology.url                               # the gateway, http://127.0.0.1:PORT

`TopologySpec.validate()` rejects bad input before anything starts; `running(...)` removes the
topology's namespace and stops its store when its `with` block ends, whatever happened.
"""

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab.host import binaries
from lab.host.paths import REPO_ROOT, SCENARIO_DIR
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, port_in_use, wait_until
from lab.kube.cluster import LabCluster
from lab.kube.mesh import admin
from lab.kube.mesh.mesh import Mesh
from lab.kube.node.lifecycle import LabNode
from lab.kube.node.pods import PodRun
from lab.workloads.helm import deep_merge
from lab.workloads.install import Release, installed

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
            binaries.hazelcast_member()


@dataclass
class Topology:
    """A running topology: where everything listens, and what runs it. `url` is the chart's
    Gateway on the ingress gateway (http://127.0.0.1:PORT), `upstream_cluster` the Envoy cluster
    istiod names after the chart's Service."""

    spec: TopologySpec
    cluster: LabCluster
    group: ProcessGroup
    release: Release
    store_address: str = ""

    def __post_init__(self):
        self.namespace, self.url = self.release.namespace, self.release.url
        self.upstream_cluster = self.release.upstream_cluster
        self.node: LabNode = self.cluster.node
        self.mesh: Mesh = self.cluster.mesh

    @property
    def admin_url(self) -> str:
        return self.mesh.admin_url

    @property
    def state_path(self) -> Path:
        """The replica state `python -m chaos local --state` reads."""
        return self.node.state_path(self.namespace)

    def replicas(self) -> list[PodRun]:
        return sorted(self.node.runs(self.namespace), key=lambda run: run.name)

    @property
    def replica_urls(self) -> list[str]:
        """Each replica's own address, past the gateway (tests/e2e/test_admin_edge.py reads them)."""
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


@contextmanager
def running(spec: TopologySpec, workdir: str | Path, cluster: LabCluster) -> Iterator[Topology]:
    """Start the topology described by `spec` on `cluster`; remove it when the block ends."""
    spec.validate()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with ProcessGroup(workdir / "logs") as group:
        store_values, store_address = _store(spec, group)
        values = {**store_values, "replicaCount": spec.replicas, "shutdown": {"drainSeconds": spec.drain_seconds},
                  "istio": {"gateway": {"bind": LOOPBACK}}}
        with installed(cluster, RELEASE, workdir, [SCENARIO_DIR / f"{spec.scenario}.yaml"],
                       deep_merge(values, spec.values), port=spec.port) as release:
            topology = Topology(spec=spec, cluster=cluster, group=group, release=release,
                                store_address=store_address)
            topology.wait_routed(spec.replicas)
            yield topology


def gateway_config(topology: Topology, timeout: float = 30.0) -> dict:
    """What istiod programmed into the gateway for `topology` (lab/kube/mesh/admin.py's
    gateway_config), once Envoy holds all four parts (RDS can trail LDS)."""
    found = {}

    def complete() -> bool:
        found.update(admin.gateway_config(topology.mesh.config_dump(), topology.release.port,
                                          topology.upstream_cluster))
        return all(found.values())
    wait_until(complete, timeout, f"the gateway to hold the listener, route, cluster and endpoints of {topology.url}",
               interval=0.2)
    return found
